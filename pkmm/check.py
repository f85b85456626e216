"""Predict, then check: answer checkers for the lab notebooks.

Teaching layer.  Each checker runs the model on a fresh build of the layout and compares
the learner's prediction with what the model did.  Like OSTEP's ``-c``, the solver and
the checker are one object -- but the answer is shown only *after* a prediction: a
checker called without one (``answer=...`` or ``None``) asks for it and reveals nothing,
so "Run All" on a notebook never prints an answer under its question.

A :class:`Verdict` speaks plainly first -- one or two sentences a learner who never read
kernel C can follow (from :mod:`pkmm.explain`) -- and then gives the kernel detail: the
functions that decided and the rule each applied, taken from the fork's trace, with only
the clauses that applied.
Taught in: notebooks/00-start-here.ipynb (and every later notebook)

>>> layout = {"vmas": [{"start": 0, "npages": 4}], "folios": {"F": {"order": 2}},
...           "ptes": [{"addr": 0, "folio": "F"}]}
>>> v = batches(layout, "v6.9")          # no prediction yet: it only asks
>>> print(v)  # doctest: +ELLIPSIS
? batches under v6.9
  On the static page: predict, then open the Answer box.
  Running the notebook: replace the ... in this cell with the list of batch sizes, ...
>>> batches(layout, "v6.9", [4]).correct
True
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from . import costmodel
from . import explain as ex
from .errors import LayoutError
from .folio import folio_maybe_dma_pinned
from .fork import ForkResult, fork
from .kernels import get_kernel
from .process import dma_write
from .pte import PAGE_SIZE, PTE_BITS
from .scenario import as_scenario
from .vma import VM_SHARED, vma_soft_dirty_enabled

__all__ = ["FAULT_KINDS_ASKED", "STATIC_LINE", "Verdict", "batches", "child_bits", "copies",
           "eagain", "fault_kind", "fork_ops", "mapcount", "ops", "parent_bits", "predicted",
           "read_after", "refcount", "rss", "speedup", "vma_copied"]

#: What an unanswered verdict says first: a static page (the site, a notebook opened before
#: running it) shows the saved output, where running a cell is not possible -- so the way to
#: predict and check there leads, and the replace-and-run line follows.
STATIC_LINE = "On the static page: predict, then open the Answer box."
#: The fault kinds fault_kind()'s prompt names (keys of explain.FAULT_WORDS): the ones the
#: notebooks ask about after fork.
FAULT_KINDS_ASKED = ("cow-copy", "reuse", "thp-reuse", "no fault")

#: The bits a learner may predict: the PTE bit table's, except "special" (not copied apart).
BITS: tuple[str, ...] = tuple(b.name for b in PTE_BITS if b.name != "special")


def predicted(answer: Any) -> bool:
    """Whether ``answer`` is a prediction (``...`` and ``None`` mean "not yet")."""
    return answer is not None and answer is not Ellipsis


@dataclass(frozen=True)
class Verdict:
    """A prediction checked against the model: plain words first, then kernel detail.

    Without a prediction (``answer`` is ``...`` or ``None``) it only asks for one: its
    text and HTML never show ``expected``.
    """

    question: str
    answer: Any
    expected: Any
    summary: str            # plain words: what happened and why
    detail: str             # the kernel functions and rules, from the trace
    hint: str = ""          # how to write a prediction
    within: float = 0.0     # a numeric answer counts as right within this fraction

    @property
    def asked(self) -> bool:
        """True when no prediction was given (the verdict only asks for one)."""
        return not predicted(self.answer)

    @property
    def correct(self) -> bool:
        """The prediction equals the model's answer (or is within ``within`` of it)."""
        if self.asked:
            return False
        if self.within and isinstance(self.answer, (int, float)):
            return bool(abs(self.answer - self.expected) <= self.within * abs(self.expected))
        return bool(self.answer == self.expected)

    @property
    def explanation(self) -> str:
        """Plain words, then the kernel detail."""
        return f"{self.summary} Kernel detail: {self.detail}"

    def __bool__(self) -> bool:
        return self.correct

    def __str__(self) -> str:
        if self.asked:
            return (f"? {self.question}\n  {STATIC_LINE}\n  Running the notebook: "
                    f"replace the ... in this cell with {self.hint}, and run again.")
        head = "correct" if self.correct else "not quite"
        return (f"{head}: {self.question}\n  your answer: {_show(self.answer)}\n"
                f"  the model:   {_show(self.expected)}\n  In plain words: {self.summary}\n"
                f"  Kernel detail: {self.detail}")

    __repr__ = __str__

    def _repr_html_(self) -> str:
        e = html.escape
        if self.asked:
            return (f'<div class="pkmm-verdict asked" style="border-left:4px solid #1c7ed6;'
                    f'padding:2px 8px"><b>? {e(self.question)}</b><br>{e(STATIC_LINE)}<br>'
                    "<b>Running the notebook: replace the <code>...</code> in this cell with "
                    f"{e(self.hint)}, and run again.</b></div>")
        color, head = ("#2b8a3e", "&#10004; correct") if self.correct else \
            ("#c92a2a", "&#10008; not quite")
        return (f'<div class="pkmm-verdict" style="border-left:4px solid {color};'
                f'padding:2px 8px"><b style="color:{color}">{head}</b>: {e(self.question)}'
                f"<br>your answer: <code>{e(_show(self.answer))}</code> &middot; the model: "
                f"<code>{e(_show(self.expected))}</code><br><b>In plain words:</b> "
                f"{e(self.summary)}<br><small><b>Kernel detail:</b> {e(self.detail)}"
                "</small></div>")


def _show(v: Any) -> str:
    return v if isinstance(v, str) else repr(v)


def _verdict(question: str, answer: Any, expected: Any, summary: str, detail: str,
             hint: str, within: float = 0.0) -> Verdict:
    if isinstance(answer, (list, tuple)):
        answer = [a if isinstance(a, str) else int(a) for a in answer]
    return Verdict(question, answer, expected, summary, detail or "no rule applied", hint,
                   within)


def _fork(layout: Any, kernel: str, without: Iterable[str] = ()) -> tuple[Any, Any, ForkResult]:
    p, folios = as_scenario(layout).build()
    return p, folios, fork(p, kernel=kernel, without=frozenset(without))


def _call(name: str, kernel: str, *args: str) -> str:
    inner = ", ".join(("layout", f'"{kernel}"') + args)
    return f"check.{name}({inner}, ...)"


def _grouped(items: Iterable[tuple[str, int, int, str]], limit: int = 6) -> str:
    """(function, first PTE, nr, words) -> one clause per (function, words), with the PTEs
    it applied to, in first-seen order."""
    groups: dict[tuple[str, str], list[int]] = {}
    for func, first, nr, words in items:
        groups.setdefault((func, words), []).extend(range(first, first + max(nr, 1)))
    parts = [f"{func}() at {ex.slots_text(slots)}: {words}"
             for (func, words), slots in groups.items()]
    more = len(parts) - limit
    return ex.join(parts[:limit]) + (f"; and {more} more" if more > 0 else "")


# --- batches ---------------------------------------------------------------------------

def _calls(r: ForkResult, base: int) -> list[tuple[list[int], str, str]]:
    """(PTE numbers, action, stop) per present-copy call, in order."""
    out: list[tuple[list[int], str, str]] = []
    for s in r.steps:
        if s.action == "nonpresent":
            continue
        first = ex.slot_of(s.addr, base)
        out.append((list(range(first, first + max(s.nr, 1))), s.action, s.stop))
    return out


_ACTION = {"share": "shared", "copy": "copied for the child", "raw": "copied by value",
           "eagain": "returned -EAGAIN"}


def _ranges_text(ranges: list[list[int]]) -> str:
    """Separate PTE ranges, kept apart: ``[[0, 1], [2, 3]]`` -> ``'PTEs 0-1 and 2-3'``."""
    parts = [f"{r[0]}" if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in ranges]
    return "PTEs " + (parts[0] if len(parts) == 1 else
                      ", ".join(parts[:-1]) + " and " + parts[-1])


def _calls_text(calls: list[tuple[list[int], str, str]]) -> str:
    """What the calls did, PTE range by PTE range, repeated patterns said once."""
    per_range: dict[tuple[int, ...], list[str]] = {}
    for slots, action, stop in calls:
        if action == "eagain":
            phrase = "E (a page must be copied; nothing changed yet)"
        else:
            phrase = _ACTION[action] + (f" ({ex.stop_text(stop)})" if stop else "")
        key = tuple(slots) if action != "eagain" else tuple(slots[:1])
        per_range.setdefault(key, []).append(phrase)
    groups: dict[tuple[str, ...], list[list[int]]] = {}
    for rng, phrases in per_range.items():
        groups.setdefault(tuple(phrases), []).append(list(rng))
    told = []
    for said, ranges in groups.items():
        how = ", then ".join(said)
        if all(len(r) == 1 for r in ranges):
            where = ex.slots_text([r[0] for r in ranges])
            told.append(f"{where}: {how}" if len(ranges) == 1 else
                        f"{where}, each in turn: {how}")
        else:
            each = " each" if len(ranges) > 1 else ""
            told.append(f"{_ranges_text(ranges)}: one batch{each}, {how}")
    return "; ".join(told)


def _batch_story(r: ForkResult, base: int) -> tuple[str, str]:
    k = get_kernel(r.kernel)
    calls = _calls(r, base)
    n = sum(len(c[0]) for c in calls if c[1] != "eagain")
    summary = (f"{r.kernel} made {ex.n_of(len(calls), 'call')} for "
               f"{ex.n_of(n, 'present PTE')}")
    if not k.batch_func:
        summary += (f": it has no batching, {k.present_func}() handles one PTE per call.")
    else:
        summary += ": " + _calls_text(calls) + "."
    if any(a == "eagain" for _, a, _ in calls):
        summary += (" 'E' is a call that could not finish: a page needed a private copy, so "
                    "the call returned -EAGAIN, fork dropped its locks to allocate a page and "
                    "retried the same PTE.")
    items = []
    for e in r.trace:
        if e.addr is None:
            continue
        first = ex.slot_of(e.addr, base)
        if e.rule.startswith("stop:"):
            items.append((e.func, first, 1, f"batch of {e.nr}, {ex.stop_text(e.rule[5:])}"))
        elif e.rule == "anon-dup:busy":
            what = "the whole batch (all-or-nothing)" if e.nr > 1 else "the page"
            items.append((e.func, first, 1, f"refused {what}: it must be copied"))
        elif e.rule == "truncate":
            items.append((e.func, first, 1, e.reason))
    detail = _grouped(items) if items else f"{k.present_func}() once per PTE"
    return summary, detail


def batches(layout: Any, kernel: str, answer: Sequence[int | str] | None = None) -> Verdict:
    """Predict the batch sequence: what each call of the present-PTE copy function
    returned (``r.batches``; ``"E"`` for -EAGAIN)."""
    p, _, r = _fork(layout, kernel)
    summary, detail = _batch_story(r, p.vmas[0].vm_start)
    hint = ("the list of batch sizes, one per call in order ('E' for a call that returned "
            "-EAGAIN)")
    return _verdict(f"batches under {kernel}", answer, r.batches, summary, detail, hint)


# --- PTE bits after fork -----------------------------------------------------------------

def _bits(proc: Any, start: int, n: int, bit: str) -> list[int | None]:
    out: list[int | None] = []
    for k in range(n):
        p = proc.pte(start + k * PAGE_SIZE)
        out.append(int(bool(getattr(p, bit))) if p is not None and p.present else None)
    return out


def _events_at(r: ForkResult, addr: int) -> list[Any]:
    return [e for e in r.trace if e.addr is not None
            and e.addr <= addr < e.addr + max(e.nr, 1) * PAGE_SIZE]


def _batch_first(r: ForkResult, addr: int) -> int | None:
    for s in r.steps:
        if s.action in ("share", "raw") and s.addr <= addr < s.addr + s.nr * PAGE_SIZE:
            return s.addr
    return None


def _child_case(r: ForkResult, bit: str, addr: int, before: list[int | None], base: int,
                got: int, vma: Any) -> str:
    """Which :data:`pkmm.explain.WHY_BIT` case describes the child's ``bit`` at ``addr``,
    read from the outcome and the rules that fired there."""
    evs = _events_at(r, addr)
    rules = {e.rule for e in evs}
    if "copied" in rules:
        return "copied"
    shared = bool(vma.vm_flags & VM_SHARED)
    was = before[ex.slot_of(addr, base)]
    first = _batch_first(r, addr)
    first_val = before[ex.slot_of(first, base)] if first is not None else was
    if bit == "write":
        if "shared-mixed-write" in rules:
            return "mixed-ro"
        if not shared and was:
            return "cow"
        if shared and got and not was:
            return "merged"
        return "shared-kept" if shared and was else "kept"
    if got == was:
        if bit == "uffd_wp" and was:
            return "uffd-kept"
        if bit == "dirty" and was and not shared:
            return "kept-private"
        return "kept"
    if bit == "young":
        return "cleared"
    if bit == "dirty":
        if "private-dirty-merge" in rules:
            return "merged"
        return "cleared-shared" if shared else "other"
    if bit == "soft_dirty":
        if got == first_val and not vma_soft_dirty_enabled(vma):
            return "first"
        sets = [e for e in evs if e.rule.startswith("set-pte")]
        return "cleared" if any("soft-dirty cleared" in e.reason for e in sets) else "other"
    if bit == "uffd_wp" and not got:
        return "cleared"
    return "other"


def _bit_story(r: ForkResult, bit: str, base: int, before: list[int | None],
               after: list[int | None], side: str, vma: Any) -> tuple[str, str]:
    cases: dict[str, list[int]] = {}
    for k, (was, got) in enumerate(zip(before, after, strict=True)):
        if got is None:
            cases.setdefault("absent", []).append(k)
            continue
        addr = base + k * PAGE_SIZE
        if side == "parent":
            rules = {e.rule for e in _events_at(r, addr)}
            case = "cow" if bit == "write" and was and not got and "cow-wrprotect" in rules \
                else "untouched"
        else:
            assert got is not None
            case = _child_case(r, bit, addr, before, base, got, vma)
        cases.setdefault(case, []).append(k)
    parts = []
    for case, slots in cases.items():
        if case == "absent":
            parts.append(f"{ex.slots_text(slots)}: no present PTE in the {side}")
        elif case == "untouched":
            parts.append(f"{ex.slots_text(slots)}: fork leaves the parent's {bit} bit as it was")
        elif case == "other":
            parts.append(f"{ex.slots_text(slots)}: the child's {bit} bit differs from the "
                         "parent's")
        else:
            why = ex.WHY_BIT.get((bit, case)) or ex.WHY_BIT.get(("any", case), case)
            parts.append(f"{ex.slots_text(slots)}: {why}")
    summary = "; ".join(parts) + "."
    summary = summary[0].upper() + summary[1:]
    return summary, _bit_detail(r, bit, base, before, side)


#: Which clause of a set-pte(s) event's reason is about which bit.
_CLAUSE_BIT = {"old": "young", "clean (shared)": "dirty", "uffd-wp cleared": "uffd_wp",
               "soft-dirty cleared": "soft_dirty"}
_REL = {"write": ("cow-wrprotect", "shared-mixed-write", "copied"),
        "dirty": ("private-dirty-merge", "copied", "stop:bit:dirty"),
        "soft_dirty": ("stop:bit:soft_dirty", "copied"),
        "uffd_wp": ("stop:bit:uffd_wp", "copied"),
        "young": ("copied",), "protnone": ("stop:bit:protnone",)}


def _bit_detail(r: ForkResult, bit: str, base: int, before: list[int | None],
                side: str) -> str:
    """The trace events that set ``bit``, with only the clauses that applied."""
    items = []
    had = any(before)
    for e in r.trace:
        if e.addr is None:
            continue
        first = ex.slot_of(e.addr, base)
        if e.rule.startswith(_REL.get(bit, ())):
            reason = e.reason.split("; a later PTE is writable")[0]
            items.append((e.func, first, e.nr, reason))
        elif bit == "write" and e.rule.startswith("stop:") and "a later PTE is writable" \
                in e.reason:
            items.append((e.func, first, e.nr, "a PTE after the first is writable "
                          "(any_writable): the batch's PTE value gets W"))
        elif side == "child" and e.rule.startswith("set-pte") and ": " in e.reason:
            clauses = [c for c in e.reason.split(": ", 1)[1].split(", ")
                       if _CLAUSE_BIT.get(c) == bit and (had or bit == "young")]
            if clauses:
                items.append((e.func, first, e.nr, "child PTEs written " + ", ".join(clauses)))
    return _grouped(items)


def _bits_check(side: str, layout: Any, kernel: str, bit: str, answer: Sequence[int] | None,
                start: int | None) -> Verdict:
    if bit not in BITS:
        raise LayoutError(f"bit={bit!r}: choose one of {', '.join(BITS)}")
    sc = as_scenario(layout)
    before_p, _ = sc.build()
    p, _, r = _fork(sc, kernel)
    vma = p.vmas[0]
    a = vma.vm_start if start is None else start
    n = len(answer) if answer is not None and predicted(answer) else \
        (vma.vm_end - a) // PAGE_SIZE
    before = _bits(before_p, a, n, bit)
    after = _bits(p if side == "parent" else r.child, a, n, bit)
    summary, detail = _bit_story(r, bit, a, before, after, side, vma)
    if bit == "uffd_wp" and side == "child" and not any(before):
        summary = "No parent PTE had uffd-wp set, so there was nothing to keep or drop."
    got = [0 if x is None else x for x in after]
    hint = "a list of 0s and 1s, one per PTE from the start of the VMA"
    return _verdict(f"{side} {bit} bits under {kernel}", answer, got, summary, detail, hint)


def child_bits(layout: Any, kernel: str, bit: str, answer: Sequence[int] | None = None,
               start: int | None = None) -> Verdict:
    """Predict one bit (``"write"``, ``"dirty"``, ``"young"``, ``"soft_dirty"``,
    ``"uffd_wp"``, ``"protnone"``) of each child PTE, from the layout's first VMA (or
    ``start``) for ``len(answer)`` PTEs; 0 where the child has no present PTE."""
    return _bits_check("child", layout, kernel, bit, answer, start)


def parent_bits(layout: Any, kernel: str, bit: str, answer: Sequence[int] | None = None,
                start: int | None = None) -> Verdict:
    """Like :func:`child_bits`, for the parent's PTEs after fork."""
    return _bits_check("parent", layout, kernel, bit, answer, start)


# --- copies at fork (pinned pages) ----------------------------------------------------------

def _pin_story(p: Any, folios: dict[str, Any], r: ForkResult) -> tuple[str, str]:
    """What fork copied and why, in plain words; then counts per kernel function."""
    if any(e.func == "uvmcopy" for e in r.trace):
        return (f"{r.kernel} copies every private page at fork (no copy-on-write): "
                f"{ex.n_of(r.copies, 'page')} copied.",
                "uvmcopy() copied each present private page")
    busy = [e for e in r.trace if e.rule == "anon-dup:busy"]
    if not busy:
        maybe = [n for n, f in folios.items() if folio_maybe_dma_pinned(f)]
        if maybe and not p.has_pinned:
            why = (f"folio {', '.join(maybe)} looks pinned (many references), but this "
                   "process never pinned a page (MMF_HAS_PINNED is not set), so fork trusts "
                   "that it is not pinned and shares it")
        elif p.has_pinned and maybe:
            why = ("the pinned-looking pages are not AnonExclusive (already shared), so "
                   "sharing them once more changes nothing for a pin")
        else:
            why = "no page may be pinned, so every page is shared copy-on-write"
        return (f"Fork copied no page: {why}.",
                "every anon rmap dup succeeded (no folio_try_dup_anon_rmap refused)")
    summary = (f"Fork copied {ex.n_of(r.copies, 'page')} for the child: each was exclusive to the "
               "parent (AnonExclusive) in a folio that may be pinned for DMA, so sharing it "
               "could let a later copy-on-write fault move the parent away from the page "
               "the device writes into. The child gets the copy; the parent keeps the "
               "pinned page.")
    if r.eagain:
        summary += (f" Each copy needs a new page, and fork cannot allocate while it holds "
                    f"the page-table locks: {ex.n_of(r.eagain, '-EAGAIN round')} (drop "
                    "the locks, allocate one page, retry the same PTE).")
    big = [e for e in busy if e.nr > 1]
    if big:
        were = "was" if len(big) == 1 else "were"
        summary += (f" {ex.n_of(len(big), 'batch attempt')} {were} refused as a whole "
                    "(all-or-nothing) and then retried one PTE at a time, so "
                    f"{len(busy)} refusals in all.")
    if r.wasted:
        were = "was" if r.wasted == 1 else "were"
        summary += (f" {ex.n_of(r.wasted, 'allocated page')} {were} not needed: the "
                    "single-PTE retry could share that page after all, so it was freed.")
    funcs = sorted({e.func for e in busy})
    detail = [f"{', '.join(f + '()' for f in funcs)} refused {ex.n_of(len(busy), 'time')}: "
              f"{busy[0].reason}", f"copy_present_page() copied {ex.n_of(r.copies, 'page')}"]
    if r.eagain:
        detail.append(f"{ex.n_of(r.eagain, '-EAGAIN round')} with "
                      f"{get_kernel(r.kernel).prealloc_func}()")
    if r.wasted:
        detail.append(f"{ex.n_of(r.wasted, 'preallocated page')} freed unused "
                      "(prealloc-wasted)")
    return summary, ex.join(detail)


def copies(layout: Any, kernel: str, answer: int | None = None,
           without: Iterable[str] = ()) -> Verdict:
    """Predict how many pages fork copies for the child (``r.copies``)."""
    p, folios, r = _fork(layout, kernel, without)
    summary, detail = _pin_story(p, folios, r)
    return _verdict(f"pages copied at fork under {kernel}", answer, r.copies, summary, detail,
                    "a whole number")


def eagain(layout: Any, kernel: str, answer: int | None = None) -> Verdict:
    """Predict the number of -EAGAIN / preallocate / retry rounds (``r.eagain``)."""
    p, folios, r = _fork(layout, kernel)
    summary, detail = _pin_story(p, folios, r)
    return _verdict(f"-EAGAIN rounds under {kernel}", answer, r.eagain, summary, detail,
                    "a whole number")


# --- which VMAs are copied ------------------------------------------------------------------

_VMA_WHY = {
    "copy:anon_vma": "Copied: the VMA has an anon_vma, so it may hold private anonymous "
                     "pages that exist nowhere else; no page fault in the child could "
                     "recreate them, so fork must copy the page table.",
    "copy:uffd-wp": "Copied: the child's VMA is registered for userfaultfd write-protect, "
                    "and that protection lives only in the PTEs.",
    "copy:pfnmap": "Copied: raw PFN mappings (PFNMAP/MIXEDMAP) have no pages a fault could "
                   "find again.",
    "skip": "Not copied: every page here can be found again by a page fault (from the file, "
            "the page cache or the zero page), so fork leaves the child's page table empty "
            "and lets faults fill it. That is what keeps fork cheap for big shared mappings.",
    "skip:dontcopy": "Not copied: the VMA is marked VM_DONTCOPY (madvise MADV_DONTFORK), so "
                     "the child gets no VMA here at all.",
    "skip:wipeonfork": "Not copied: the VMA is VM_WIPEONFORK, so the child starts with empty, "
                       "zero-filled memory here.",
}


def vma_copied(layout: Any, kernel: str, answer: bool | None = None, vma: int = 0) -> Verdict:
    """Predict whether fork copies the page table of the layout's VMA number ``vma``."""
    p, _, r = _fork(layout, kernel)
    start = p.vmas[vma].vm_start
    ev = [e for e in r.trace if e.addr == start and e.func in ("vma_needs_copy", "dup_mmap")
          and e.rule in _VMA_WHY]
    copied = any(e.rule.startswith("copy:") for e in ev)
    summary = " ".join(_VMA_WHY[e.rule] for e in ev[:1])
    detail = "; ".join(f"{e.func}() {e.rule}: {e.reason}" for e in ev)
    return _verdict(f"page table of the VMA at {start:#x} copied under {kernel}",
                    None if not predicted(answer) else bool(answer), copied, summary, detail,
                    "True or False")


# --- counters -------------------------------------------------------------------------------

def refcount(layout: Any, kernel: str, folio: str, answer: int | None = None) -> Verdict:
    """Predict a folio's refcount right after fork."""
    sc = as_scenario(layout)
    _, before = sc.build()
    p, folios, r = _fork(sc, kernel)
    f, was = folios[folio], before[folio].refcount
    added = f.refcount - was
    dups = [e for e in r.trace if e.rule in ("anon-dup:ok", "file-dup")]
    summary = (f"The refcount counts every reference to the folio; each page-table mapping "
               f"holds one. {folio} had {was} before fork; the child now maps {added} of its "
               f"pages, one reference each, so {was} + {added} = {f.refcount}.")
    if f.pincount or was > f.nr_pages:
        summary += (" References that are not mappings (pins, pipes) were already part of "
                    "the count before fork and stay.")
    if r.copies:
        summary += " Pages copied for the child point at new pages and add nothing here."
    funcs = ", ".join(sorted({e.func + "()" for e in dups})) or "no rmap dup"
    detail = (f"{ex.n_of(sum(e.nr for e in dups), 'page')} duplicated via {funcs}, "
              "each with one more reference")
    return _verdict(f"refcount of {folio} after fork under {kernel}", answer, f.refcount,
                    summary, detail, "a whole number")


def mapcount(layout: Any, kernel: str, folio: str, answer: Sequence[int] | None = None
             ) -> Verdict:
    """Predict each page's mapcount (number of page-table mappings) after fork."""
    sc = as_scenario(layout)
    _, before = sc.build()
    p, folios, r = _fork(sc, kernel)
    f = folios[folio]
    got = [f.page(i).mapcount for i in range(f.nr_pages)]
    was = [before[folio].page(i).mapcount for i in range(f.nr_pages)]
    up = [i for i in range(f.nr_pages) if got[i] > was[i]]
    summary = ("A page's mapcount counts the page tables that map it, nothing else (pins "
               "and other references are in the refcount only).")
    if up:
        summary += f" The child now maps {ex.slots_text(up, word='page')} too: +1 each."
    else:
        summary += " The child maps none of this folio's pages."
    detail = ex.join(sorted({f"{e.func}(): {e.reason}" for e in r.trace
                             if e.rule in ("anon-dup:ok", "file-dup")}))
    return _verdict(f"mapcount of each page of {folio} after fork under {kernel}", answer, got,
                    summary, detail, "a list with one number per page of the folio")


_RSS_WORDS = {"MM_ANONPAGES": "anonymous pages", "MM_FILEPAGES": "file pages",
              "MM_SHMEMPAGES": "shmem pages", "MM_SWAPENTS": "swap entries"}


def rss(layout: Any, kernel: str, counter: str, answer: int | None = None) -> Verdict:
    """Predict one of the child's rss counters right after fork (``"MM_ANONPAGES"``,
    ``"MM_FILEPAGES"``, ``"MM_SHMEMPAGES"``, ``"MM_SWAPENTS"``)."""
    if counter not in _RSS_WORDS:
        raise LayoutError(f"counter={counter!r}: choose one of {', '.join(_RSS_WORDS)}")
    p, _, r = _fork(layout, kernel)
    got = r.child.rss[counter]
    raw = sum(s.nr for s in r.steps if s.action == "raw")
    summary = (f"The child's {counter} counts the {_RSS_WORDS[counter]} its page tables map; "
               f"fork adds one for each such entry it copies: {got} in all.")
    if raw and counter == "MM_ANONPAGES":
        summary += (f" {ex.n_of(raw, 'PTE')} copied by value (zero page, raw PFN) "
                    f"{'is' if raw == 1 else 'are'} not counted: no counted page is behind "
                    f"{'it' if raw == 1 else 'them'}.")
    skipped = [e for e in r.trace if e.func == "vma_needs_copy" and e.rule == "skip"]
    if skipped:
        summary += (f" {ex.n_of(len(skipped), 'VMA')} {'was' if len(skipped) == 1 else 'were'}"
                    " not copied at all and count nothing until the child faults pages in.")
    steps = [s for s in r.steps if s.action in ("share", "copy", "nonpresent")]
    detail = (f"{ex.n_of(len(steps), 'copy call')} added to the child's counters "
              "(add_mm_rss_vec() at the end of each copy_pte_range() pass)")
    return _verdict(f"child {counter} after fork under {kernel}", answer, got, summary, detail,
                    "a whole number")


#: What each operation count of a fork counts, for a learner.
OP_WORDS = {
    "pte_reads": "PTE reads: each PTE the copy loop looks at, plus each PTE a batch function "
                 "reads while it grows a batch",
    "pte_writes": "child PTEs written",
    "set_ptes_calls": "calls that write child PTEs (one per batch)",
    "batch_scans": "times a batch function scanned ahead (large folios only)",
    "refcount_ops": "atomic updates of a folio's refcount (one per call, however many pages)",
    "wrprotect_calls": "write-protect operations on the parent's PTEs (one per batch)",
    "page_copies": "pages copied for the child at fork",
}


def ops(layout: Any, kernel: str, op: str, answer: int | None = None) -> Verdict:
    """Predict one operation count of the fork (``r.ops[op]``; see :data:`OP_WORDS`)."""
    if op not in OP_WORDS:
        raise LayoutError(f"op={op!r}: choose one of {', '.join(OP_WORDS)}")
    p, _, r = _fork(layout, kernel)
    got = r.ops.get(op, 0)
    calls = sum(1 for s in r.steps if s.action != "nonpresent")
    summary = (f"{kernel} counted {got} {OP_WORDS[op]}; it made {ex.n_of(calls, 'call')} for "
               f"{ex.n_of(sum(s.nr for s in r.steps if s.action != 'eagain'), 'PTE')}.")
    stops = [e for e in r.trace if e.rule.startswith("stop:")]
    detail = (_grouped((e.func, ex.slot_of(e.addr, p.vmas[0].vm_start), 1,
                        f"batch of {e.nr}, {ex.stop_text(e.rule[5:])}") for e in stops
                       if e.addr is not None)
              or f"{get_kernel(kernel).present_func}() once per PTE")
    return _verdict(f"{op} of the fork under {kernel}", answer, got, summary, detail,
                    "a whole number")


_SIZES = {"16M": 16 << 20, "256M": 256 << 20, "1G": 1 << 30}


def _size(size: str) -> int:
    if size not in _SIZES:
        raise LayoutError(f"size={size!r}: choose one of {', '.join(_SIZES)}")
    return _SIZES[size]


def fork_ops(size: str, folio: str, kernel: str, op: str, answer: int | None = None
             ) -> Verdict:
    """Predict one operation count of forking a whole region of ``size`` (``"16M"``,
    ``"256M"``, ``"1G"``) filled with folios of one ``folio`` size (``"4K"``, ``"64K"``,
    ``"2M-pte"``, ``"2M-pmd"``, ...), from the bulk fork :mod:`pkmm.fast`."""
    from .fast import build_region, fork_bulk  # numpy: only when a region is forked
    if op not in OP_WORDS:
        raise LayoutError(f"op={op!r}: choose one of {', '.join(OP_WORDS)}")
    c = dict(fork_bulk(build_region(_size(size), folio), kernel).ops)
    got = int(c.get(op, 0))
    ptes, pmds = c.get("pte_writes", 0), c.get("pmd_copies", 0)
    calls = c.get("set_ptes_calls", 0)
    summary = (f"Forking {size} of {folio} folios under {kernel}: {ex.n_of(ptes, 'child PTE')} "
               f"written in {ex.n_of(calls, 'call')}"
               + (f", and {ex.n_of(pmds, 'PMD entry', 'PMD entries')} copied whole" if pmds
                  else "") + f"; {got} {OP_WORDS[op]}.")
    if ptes and calls and ptes != calls:
        summary += f" That is {ptes // calls} PTEs per call: one call per folio."
    detail = ", ".join(f"{k} {v}" for k, v in sorted(c.items()) if v)
    return _verdict(f"{op} to fork {size} of {folio} folios under {kernel}", answer, got,
                    summary, f"counts of the bulk fork: {detail}", "a whole number")


def speedup(folio: str, answer: float | None = None, mode: str = "fresh",
            within: float = 0.25) -> Verdict:
    """Predict how many times faster than 4K pages the real kernel forked 1 GiB of
    ``folio`` folios (stored timings); right within ``within`` (a fraction)."""
    base = costmodel.stored_fork_seconds(1 << 30, "4K", mode)
    t = costmodel.stored_fork_seconds(1 << 30, folio, mode)
    if base is None or t is None:
        raise LayoutError(f"folio={folio!r}, mode={mode!r}: no stored 1 GiB timing; choose a "
                          f"folio of {', '.join(costmodel.FOLIOS)} and mode fresh or repeat")
    got = round(base / t, 2)
    summary = (f"Forking 1 GiB took {base * 1e3:.2f} ms with 4K pages and {t * 1e3:.2f} ms "
               f"with {folio} folios ({mode.upper()}, stored timings, net of forking the "
               f"process itself): {got}x faster. "
               + ("One PMD entry replaces 512 PTEs, so almost all per-PTE work disappears."
                  if folio.endswith("pmd") else
                  "The per-PTE work stays; batching removes only the per-call part, so the "
                  "gain levels off as folios grow."))
    detail = (f"costmodel.stored_fork_seconds() for 1 GiB, {mode}; counted right within "
              f"{within:.0%}")
    return _verdict(f"speed-up of {folio} over 4K ({mode}, 1 GiB, stored timings)", answer,
                    got, summary, detail, "a number (how many times faster)", within)


# --- after fork -----------------------------------------------------------------------------

def _apply(procs: dict[str, Any], folios: dict[str, Any], pin: dict[str, Any] | None,
           base: int, who: str, op: str, slot: int) -> str | None:
    """Run one after-fork action; returns the plain words for what the access did."""
    addr = base + slot * PAGE_SIZE
    if op.startswith("dma="):
        if pin is None:
                raise LayoutError(f"ops: {op!r} needs a pinned page in the layout (add 'pins')")
        dma_write(folios[pin["folio"]], pin.get("page", 0), int(op[4:]))
        return None
    if op == "exit":
        procs[who].exit()
        return None
    was = procs[who].pte(addr)
    if op == "read":
        procs[who].read(addr)
    else:
        procs[who].write(addr, int(op.split("=")[1]) if "=" in op else 1)
    fr = procs[who].last_fault
    words = ex.fault_words(_fault_name(fr, was))
    if fr is not None and any(rule.startswith("split") for _, rule, _ in fr.events):
        words = ex.fault_words("split-pmd") + "; " + words
    return words


def _fault_name(fr: Any, was: Any) -> str:
    """The lab's name for what a fault did: ``FaultResult.kind``, except that a copy of the
    zero page is "cow-zero".  The kernel serves both with wp_page_copy(); the lab's words
    (explain.FAULT_WORDS) tell them apart, since the zero page is never copied from."""
    kind = "no fault" if fr is None or not fr.faulted else str(fr.kind)
    if kind == "cow-copy" and was is not None and was.present and was.special:
        return "cow-zero"
    return kind


def _kind(proc: Any) -> str:
    fr = proc.last_fault
    return "no fault" if fr is None or not fr.faulted else str(fr.kind)


def _op_text(who: str, op: str, slot: int, words: str | None) -> str:
    if op.startswith("dma="):
        return f"the device writes {op[4:]} into the pinned page"
    if op == "exit":
        return f"the {who} exits (its mappings go away)"
    verb = "reads" if op == "read" else f"writes {op.split('=')[1]} to" if "=" in op \
        else "writes to"
    return f"the {who} {verb} PTE {slot}: {words}"


def fault_kind(layout: Any, kernel: str, ops: Sequence[tuple[str, str, int]],
               answer: str | None = None) -> Verdict:
    """After fork, run ``ops`` [(who, "read"|"write"|"write=V"|"exit", slot)], then predict
    what the *last* access did: ``"cow-copy"`` (or ``"copy"``), ``"reuse"``, ``"no fault"``, ..."""
    sc = as_scenario(layout)
    p, folios, r = _fork(sc, kernel)
    procs = {"parent": p, "child": r.child}
    base = p.vmas[0].vm_start
    pin = sc.pins[0] if sc.pins else None
    story = [_op_text(who, op, slot, _apply(procs, folios, pin, base, who, op, slot))
             for who, op, slot in ops[:-1]]
    who, op, slot = ops[-1]
    was = procs[who].pte(base + slot * PAGE_SIZE) if op not in ("exit",) else None
    story.append(_op_text(who, op, slot, _apply(procs, folios, pin, base, who, op, slot)))
    fr = procs[who].last_fault
    kind = _kind(procs[who])
    # the model's kind and the lab's name for it (see _fault_name) are both right answers;
    # "copy" is how the kernel-run tables of notebook 09 name a cow-copy
    if answer == _fault_name(fr, was) or (answer == "copy" and kind == "cow-copy"):
        kind = str(answer)
    summary = "After fork, " + "; then ".join(story) + "."
    detail = ("the PTE allowed the access" if fr is None or kind == "no fault" else
              ex.join([f"{f}(): {reason}" for f, _, reason in fr.events[:4]]))
    w, o, s = ops[-1]
    # a PMD-mapped THP has no PTE at that index before the fault: name the page instead
    at = base + s * PAGE_SIZE
    unit = "page" if any(m["addr"] <= at < m["addr"] + PAGE_SIZE * 512 for m in sc.pmds) \
        else "PTE"
    return _verdict(f"what the last access ({w} {o} {unit} {s}) did under {kernel}", answer, kind,
                    summary, detail, "one of " + ", ".join(repr(k) for k in FAULT_KINDS_ASKED)
                    + ", as a string")


def read_after(layout: Any, kernel: str, ops: Sequence[tuple[str, str, int]], who: str,
               slot: int, answer: int | None = None, without: Iterable[str] = ()) -> Verdict:
    """After fork and ``ops`` (``"dma=V"`` is a device write into the layout's first pinned
    page), predict the value ``who`` reads at PTE ``slot``."""
    sc = as_scenario(layout)
    p, folios, r = _fork(sc, kernel, without)
    procs = {"parent": p, "child": r.child}
    base = p.vmas[0].vm_start
    pin = sc.pins[0] if sc.pins else None
    off = sorted(without)
    ablated = f" with {', '.join(off)} switched off" if off else ""
    fork_text = (f"at fork the child got its own copy of {ex.n_of(r.copies, 'page')} and "
                 "the parent kept the originals" if r.copies else
                 "at fork every page was shared copy-on-write (no page was copied)")
    story = [fork_text + ablated]
    for w, op, s in ops:
        story.append(_op_text(w, op, s, _apply(procs, folios, pin, base, w, op, s)))
    got = procs[who].read(base + slot * PAGE_SIZE)
    hit = procs[who].page_at(base + slot * PAGE_SIZE)
    end = ""
    if pin is not None and hit is not None:
        pinned = folios[pin["folio"]]
        same = hit[0] is pinned and hit[1] == pin.get("page", 0)
        end = (f" At the end the {who} still maps the pinned page, the one the device "
               "writes into." if same else f" At the end the {who} maps a different page "
               "from the pinned one the device writes into.")
    summary = (f"The {who} reads {got}: " + "; then ".join(story) + "." + end)
    detail = ex.join(list(dict.fromkeys(
        f"{e.func}(): {e.reason}" for e in r.trace
        if e.rule in ("copied", "anon-dup:busy") or e.rule.startswith("ablation")))[:3]) \
        or "fork shared every page (anon rmap dup succeeded)"
    return _verdict(f"what the {who} reads at PTE {slot} under {kernel}{ablated}", answer, got,
                    summary, detail, "a number")

