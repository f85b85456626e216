"""Predict, then check: answer checkers for the lab notebooks.

Simulator concept.  Each checker runs the model on a fresh build of the layout, compares
the learner's prediction with what the model did, and returns a :class:`Verdict` whose
explanation is taken from the fork's trace: the rule that fired, the function that
applied it and why (e.g. "folio_pte_batch stopped the batch: next PTE differs in the
dirty bit").  Like OSTEP's ``-c``, the solver and the checker are one object.
Taught in: notebooks/02-fork-one-pte-at-a-time.ipynb (and every later notebook)
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .fork import ForkResult, fork
from .kernels import get_kernel
from .kernels.common import stop_words
from .process import dma_write
from .pte import PAGE_SIZE
from .scenario import as_scenario

__all__ = ["Verdict", "batches", "child_bits", "copies", "eagain", "fault_kind",
           "parent_bits", "read_after", "refcount", "vma_copied"]


@dataclass(frozen=True)
class Verdict:
    """Right or wrong, the model's answer, and why (named rules, functions, versions)."""

    question: str
    answer: Any
    expected: Any
    correct: bool
    explanation: str

    def __bool__(self) -> bool:
        return self.correct

    def __str__(self) -> str:
        head = "correct" if self.correct else "not quite"
        return (f"{head}: {self.question}\n  your answer: {self.answer!r}\n"
                f"  model:       {self.expected!r}\n  why: {self.explanation}")

    __repr__ = __str__

    def _repr_html_(self) -> str:
        color, head = ("#2b8a3e", "&#10004; correct") if self.correct else \
            ("#c92a2a", "&#10008; not quite")
        e = html.escape
        return (f'<div style="border-left:4px solid {color};padding:2px 8px">'
                f'<b style="color:{color}">{head}</b>: {e(self.question)}<br>'
                f"your answer: <code>{e(repr(self.answer))}</code> &middot; model: "
                f"<code>{e(repr(self.expected))}</code><br>{e(self.explanation)}</div>")


def _fork(layout: Any, kernel: str, without: Iterable[str] = ()) -> tuple[Any, Any, ForkResult]:
    p, folios = as_scenario(layout).build()
    return p, folios, fork(p, kernel=kernel, without=frozenset(without))


def _verdict(question: str, answer: Any, expected: Any, why_right: str,
             why_wrong: str) -> Verdict:
    ok = answer == expected
    return Verdict(question, answer, expected, ok, why_right if ok else why_wrong)


def _batch_story(r: ForkResult) -> str:
    """Why each batch ended, from the stop events of the trace."""
    parts = []
    for e in r.trace:
        if e.rule.startswith("stop:"):
            parts.append(f"{e.func}() at {e.addr:#x} scanned {e.nr}: {stop_words(e.rule[5:])}")
        elif e.rule == "anon-dup:busy" and e.nr > 1:
            parts.append(f"{e.func}() refused the whole batch of {e.nr} (all-or-nothing): "
                         "-EAGAIN, retry per PTE")
        elif e.rule == "truncate":
            parts.append(f"{e.func}(): {e.reason}")
    if not parts:
        per = {s.stop or s.reason for s in r.steps}
        parts.append(f"{r.kernel} copies one PTE per call ({'; '.join(sorted(per))})"
                     if not get_kernel(r.kernel).batch_func else "no batch was scanned")
    return "; ".join(parts)


def batches(layout: Any, kernel: str, answer: Sequence[int | str]) -> Verdict:
    """Predict the batch sequence (``r.batches``; ``"E"`` for -EAGAIN)."""
    _, _, r = _fork(layout, kernel)
    story = _batch_story(r)
    return _verdict(f"batches under {kernel}", list(answer), r.batches, story,
                    f"{kernel}: {story}.")


def _bits(proc: Any, start: int, n: int, bit: str) -> list[int]:
    out = []
    for k in range(n):
        p = proc.pte(start + k * PAGE_SIZE)
        out.append(int(bool(p is not None and p.present and getattr(p, bit))))
    return out


def _events_over(r: ForkResult, start: int, n: int, rules: tuple[str, ...]) -> str:
    end = start + n * PAGE_SIZE
    seen = []
    for e in r.trace:
        if e.addr is not None and start <= e.addr < end and e.rule.startswith(rules):
            line = f"{e.func}() [{e.version}] {e.rule}: {e.reason}"
            if line not in seen:
                seen.append(line)
    return "; ".join(seen[:4]) or "no rule touched these PTEs"


_BIT_RULES = ("set-pte", "cow-wrprotect", "private-dirty-merge", "shared-mixed-write",
              "copied", "stop:bit")


def child_bits(layout: Any, kernel: str, bit: str, answer: Sequence[int],
               start: int | None = None) -> Verdict:
    """Predict one bit (``"write"``, ``"dirty"``, ``"soft_dirty"``, ...) of each child PTE
    in the first ``len(answer)`` slots of the layout's first VMA (0/1 per slot)."""
    p, _, r = _fork(layout, kernel)
    a = p.vmas[0].vm_start if start is None else start
    got = _bits(r.child, a, len(answer), bit)
    why = _events_over(r, a, len(answer), _BIT_RULES)
    return _verdict(f"child {bit} bits under {kernel}", [int(x) for x in answer], got, why,
                    why)


def parent_bits(layout: Any, kernel: str, bit: str, answer: Sequence[int],
                start: int | None = None) -> Verdict:
    """Like :func:`child_bits`, for the parent's PTEs after fork."""
    p, _, r = _fork(layout, kernel)
    a = p.vmas[0].vm_start if start is None else start
    got = _bits(p, a, len(answer), bit)
    why = _events_over(r, a, len(answer), ("cow-wrprotect", "copied", "set-pte"))
    return _verdict(f"parent {bit} bits under {kernel}", [int(x) for x in answer], got, why,
                    why)


def _pin_story(r: ForkResult) -> str:
    if not get_kernel(r.kernel).copy_on_write:
        return (f"uvmcopy() (eager-copy, the xv6 baseline) copied all {r.copies} present "
                "private page(s) at fork; nothing is shared, so no CoW fault ever happens")
    busy = [e for e in r.trace if e.rule == "anon-dup:busy"]
    text = (f"{len(busy)} anon dup(s) refused ({busy[0].func}: {busy[0].reason})"
            if busy else "no anon dup was refused: nothing maybe-pinned and AnonExclusive")
    return (f"{text}; copy_present_page() copied {r.copies} page(s) after {r.eagain} "
            f"-EAGAIN round(s) (drop locks, preallocate, retry), {r.wasted} preallocated "
            "page(s) freed unused")


def copies(layout: Any, kernel: str, answer: int, without: Iterable[str] = ()) -> Verdict:
    """Predict how many pages fork copies for the child (``r.copies``)."""
    _, _, r = _fork(layout, kernel, without)
    story = _pin_story(r)
    return _verdict(f"pages copied at fork under {kernel}", answer, r.copies, story, story)


def eagain(layout: Any, kernel: str, answer: int) -> Verdict:
    """Predict the number of -EAGAIN / preallocate / retry rounds (``r.eagain``)."""
    _, _, r = _fork(layout, kernel)
    story = _pin_story(r)
    return _verdict(f"-EAGAIN rounds under {kernel}", answer, r.eagain, story, story)


def vma_copied(layout: Any, kernel: str, answer: bool, vma: int = 0) -> Verdict:
    """Predict whether fork copies the page tables of the layout's VMA number ``vma``."""
    p, _, r = _fork(layout, kernel)
    start = p.vmas[vma].vm_start
    ev = [e for e in r.trace if e.addr == start and e.func in ("vma_needs_copy", "dup_mmap")]
    copied = any(e.rule.startswith("copy:") for e in ev)
    why = "; ".join(f"{e.func}() {e.rule}: {e.reason}" for e in ev)
    return _verdict(f"VMA at {start:#x} copied under {kernel}", bool(answer), copied, why,
                    why)


def refcount(layout: Any, kernel: str, folio: str, answer: int) -> Verdict:
    """Predict a folio's refcount right after fork."""
    _, folios, r = _fork(layout, kernel)
    f = folios[folio]
    dups = [e for e in r.trace if e.rule in ("anon-dup:ok", "file-dup", "share")]
    funcs = ", ".join(sorted({e.func for e in dups})) or "no rmap dup"
    why = (f"refcount = references before fork + one per page the child now maps "
           f"({sum(e.nr for e in dups)}, via {funcs}); pages copied for the child add "
           f"none; pins count too (pincount {f.pincount})")
    return _verdict(f"refcount of {folio} after fork under {kernel}", answer, f.refcount,
                    why, why)


def _run(layout: Any, kernel: str, ops: Sequence[tuple[str, str, int]],
         without: Iterable[str] = ()) -> tuple[Any, Any, Any]:
    p, folios, r = _fork(layout, kernel, without)
    procs = {"parent": p, "child": r.child}
    base = p.vmas[0].vm_start
    for who, op, slot in ops:
        addr = base + slot * PAGE_SIZE
        if op == "exit":
            procs[who].exit()
        elif op == "read":
            procs[who].read(addr)
        else:
            procs[who].write(addr, int(op.split("=")[1]) if "=" in op else 1)
    return procs, folios, base


def fault_kind(layout: Any, kernel: str, ops: Sequence[tuple[str, str, int]],
               answer: str) -> Verdict:
    """After fork, run ``ops`` [(who, "read"|"write"|"write=V"|"exit", slot)], then predict
    what the *last* access did: ``"cow-copy"``, ``"reuse"``, ``"no fault"``, ..."""
    procs, _, _ = _run(layout, kernel, ops)
    who = ops[-1][0]
    fr = procs[who].last_fault
    kind = "no fault" if fr is None or not fr.faulted else fr.kind
    why = ("the PTE allowed the access" if kind == "no fault" else
           "; ".join(f"{f}(): {rule} -- {reason}" for f, rule, reason in fr.events[:4]))
    return _verdict(f"last access ({ops[-1][0]} {ops[-1][1]} slot {ops[-1][2]}) under "
                    f"{kernel}", answer, kind, why, why)


def read_after(layout: Any, kernel: str, ops: Sequence[tuple[str, str, int]], who: str,
               slot: int, answer: int, without: Iterable[str] = ()) -> Verdict:
    """After fork and ``ops`` (``"dma=V"`` is a device write into the first pinned page),
    predict what ``who`` reads at ``slot``."""
    p, folios, r = _fork(layout, kernel, without)
    procs = {"parent": p, "child": r.child}
    sc = as_scenario(layout)
    base = p.vmas[0].vm_start
    for w, op, s in ops:
        if op.startswith("dma="):
            pin = sc.pins[0]
            dma_write(folios[pin["folio"]], pin.get("page", 0), int(op[4:]))
        elif op.startswith("write"):
            procs[w].write(base + s * PAGE_SIZE, int(op.split("=")[1]) if "=" in op else 1)
        elif op == "exit":
            procs[w].exit()
        else:
            procs[w].read(base + s * PAGE_SIZE)
    got = procs[who].read(base + slot * PAGE_SIZE)
    ablated = f" with {', '.join(sorted(without))} switched off" if without else ""
    story = _pin_story(r) + ablated
    hit = procs[who].page_at(base + slot * PAGE_SIZE)
    if hit is not None:
        name = {f.pfn: n for n, f in folios.items()}.get(hit[0].pfn, "a new page")
        story += f"; {who} now maps {name} at slot {slot}"
    return _verdict(f"{who} reads slot {slot} under {kernel}{ablated}", answer, got, story,
                    story)
