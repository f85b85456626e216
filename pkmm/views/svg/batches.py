"""The batch strip: one VMA's PTEs before fork, a bracket under each copy call.

Simulator concept (views layer).  The brackets are the fork's own steps (what each
``copy_present_pte(s)`` call returned: a batch of n mapped (not copied), a copy, a raw copy, or
-EAGAIN); the numbered marker at the end of each bracket says why it ended, in the words
the variant module gives its stop reasons (``kernels.common.stop_words``).
Taught in: notebooks/03-seed-patch-batching.ipynb, notebooks/06-upstream-batching.ipynb
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ...context import FolioEnd
from ...errors import LayoutError
from ...kernels import DEFAULT_KERNEL, get_kernel
from ...kernels.common import stop_words
from ...pte import PAGE_SIZE
from ...trace import Event, Step
from .core import CHAR_W, Canvas, Picture, action_word, wrap
from .scene import Slot, build_fork, need_kernel, runs, slot_of

LEFT, MAX_W, CH = 8, 952, 44
#: the narrowest strip: room for its title and notes without wrapping most of them
MIN_W = 480
#: What a bracket's word means, said under the notes for the words the strip used.
BRACKET_WORDS = {"map": "the child's N PTEs map the parent's own N pages, nothing copied",
                 "copy": "the child gets a new copy of the page",
                 "raw": "no counted page (zero page, raw PFN): the PTE copied by value"}


def step_groups(steps: Sequence[Step]) -> list[tuple[int, int, str]]:
    """Consecutive calls that ended the same way: (first step, last step, words).

    An -EAGAIN and the retry at the same PTE count as one call ("-EAGAIN, then ...").

    >>> from pkmm.trace import Step
    >>> s = [Step(0, 1, "share", "r", "f", "small-folio"),
    ...      Step(4096, 1, "share", "r", "f", "small-folio"),
    ...      Step(8192, 0, "eagain", "needs a page", "f"), Step(8192, 1, "copy", "copied", "f")]
    >>> for g in step_groups(s): print(g)
    (0, 1, 'map 1: order-0 folio: nothing to batch')
    (2, 3, '-EAGAIN (needs a page), then copy 1: copied')
    """
    def words(s: Step) -> str:
        return f"{action_word(s.action)} {s.nr}: {stop_words(s.stop) if s.stop else s.reason}"
    calls: list[tuple[int, int, str]] = []
    i = 0
    while i < len(steps):
        s = steps[i]
        if s.action == "eagain" and i + 1 < len(steps) and steps[i + 1].addr == s.addr:
            calls.append((i, i + 1, f"-EAGAIN ({s.reason}), then {words(steps[i + 1])}"))
            i += 2
            continue
        calls.append((i, i, f"-EAGAIN: {s.reason}" if s.action == "eagain" else words(s)))
        i += 1
    out: list[tuple[int, int, str]] = []
    for first, last, w in calls:
        if out and out[-1][2] == w:
            out[-1] = (out[-1][0], last, w)
        else:
            out.append((first, last, w))
    return out


def batch_strip(layout: Any, kernel: str = DEFAULT_KERNEL, *, without: Iterable[str] = (),
                vma: int = 0) -> Picture:
    """The PTEs of VMA ``vma`` as the kernel scanned them, with one bracket per call.

    >>> pic = batch_strip({"vmas": [{"start": 0, "npages": 4}],
    ...     "folios": {"F": {"order": 2}}, "ptes": [{"addr": 0, "folio": "F", "nr": 2},
    ...     {"addr": 8192, "folio": "F", "page": 2, "nr": 2, "dirty": False}]}, "v6.9")
    >>> pic.data["batches"]
    [2, 2]
    >>> "next PTE differs in the dirty bit" in pic.svg
    True
    """
    need_kernel(kernel, "batch_strip")
    sc, _, folios, r = build_fork(layout, kernel, without)
    assert r is not None
    before, _ = sc.build()           # the PTEs as the scan saw them (fork changes W)
    if not isinstance(vma, int) or not 0 <= vma < len(before.vmas):
        raise LayoutError(f"vma={vma!r}: the layout has {len(before.vmas)} VMA(s); pick "
                          f"0..{max(len(before.vmas) - 1, 0)}")
    v = before.vmas[vma]
    names = {f.pfn: n for n, f in folios.items()}
    slots = [slot_of(before, (a - v.vm_start) // PAGE_SIZE, a, p, names)
             for a, p in before.ptes(v.vm_start, v.vm_end)]
    steps = [s for s in r.steps if v.vm_start <= s.addr < v.vm_end]
    k = get_kernel(kernel)
    calls = f"{k.present_func}()" + (f" with {k.batch_func}()" if k.batch_func else "")
    # 44 px a slot: at 36, sixteen "map 1" labels (33 px each) touched and read "map 1map 1"
    w = min(44.0, (MAX_W - 2 * LEFT) / max(len(slots), 1))
    groups = step_groups(steps)
    rejected = _rejected(r.trace, k.folio_end, v.vm_start, len(slots))
    notes = _notes(kernel, k.batch_func, steps, groups, v.vm_start, rejected)
    # only as wide as the strip or its longest line needs: a canvas of MAX_W for a strip
    # of 4 PTEs was shrunk to the page's column with everything in it, its 11 px text too
    title = f"{kernel}: {calls}, one bracket per call"
    bold_w = 1.2 * CHAR_W           # the 12 px bold title's glyphs, with room to spare
    need = max(len(slots) * w, CHAR_W * (max(len(t) for t, _ in notes) + 3),
               bold_w * (len(title) + 1)) + 2 * LEFT
    c = Canvas(int(min(MAX_W, max(MIN_W, need))))
    per_line = int((c.width - 2 * LEFT) / CHAR_W)
    y = 14.0
    for line in wrap(title, int((c.width - 2 * LEFT) / bold_w)):
        c.text(LEFT, y, line, "pk-h")
        y += 15
    for line in wrap(f"before fork: {v.describe()}", per_line):
        c.text(LEFT, y, line, "pk-t")
        y += 14
    top = y + 6                     # room above the strip for the -EAGAIN marks
    h = _strip(c, slots, w, top)
    _brackets(c, slots, steps, groups, w, v.vm_start, top + h + 6, h)
    for i in rejected:
        x = LEFT + i * w
        c.path(f"M{x + 1:g},{top - 3:g} h{w - 2:g} v{h + 6:g} h{2 - w:g} z", "hot", width=2,
               dash="4 2", tip=f"PTE #{i}: read by the batch scan, then rejected: it maps "
               "a page past the end of the batch's folio (stop:folio-end)")
    y = top + h + 66                # below the markers' two lines (they overprinted note 1)
    c.group("why each call ended")
    for text, cls in notes:
        for j, line in enumerate(wrap(text, per_line - 2)):
            c.text(LEFT + (12 if j else 0), y, line, cls)    # a wrapped note's next lines indent
            y += 14
    c.end()
    batches = ["E" if s.action == "eagain" else s.nr for s in steps if s.action != "nonpresent"]
    desc = f"{kernel} fork of {len(slots)} PTEs: {_calls_text(batches, len(steps))}"
    return c.picture("batch-strip", f"batches under {kernel}", desc,
                     data={"batches": batches, "groups": [g[2] for g in groups],
                           "rejected": rejected})


def _notes(kernel: str, batch_func: str | None, steps: Sequence[Step],
           groups: Sequence[tuple[int, int, str]], base: int,
           rejected: Sequence[int]) -> list[tuple[str, str]]:
    """The lines under the strip, with their text class: one note per group of calls (why
    they ended), the red outline's meaning, and the bracket words the strip used."""
    out = []
    for n, (first, last, words) in enumerate(groups, 1):
        span = _span(steps[first], steps[last], base)
        ncalls = sum(1 for st in steps[first:last + 1] if st.action != "eagain") or 1
        times = f" (x{ncalls})" if ncalls > 1 else ""
        # a version without a batch function ends every call after one PTE: that is the
        # reason the call ended, the words only say what it did
        why = ("" if batch_func or "eagain" in {st.action for st in steps[first:last + 1]}
               else f"; each call ends after 1 PTE ({kernel} has no batching)")
        out.append((f"note {n}, {span}: {words}{times}{why}", "pk-t"))
    if rejected:
        out.append(("red dashed outline: " + ", ".join(f"PTE #{i}" for i in rejected)
                    + " read by the scan and rejected (past the end of the folio)", "pk-t"))
    used = sorted({action_word(s.action) for s in steps} - {"-EAGAIN", "non-present"})
    if used:
        out.append(("; ".join(f"{a} N: {BRACKET_WORDS[a]}" for a in used
                              if a in BRACKET_WORDS), "pk-t2"))
    return out


def _rejected(trace: Iterable[Event], folio_end: FolioEnd, base: int, n: int) -> list[int]:
    """Slots the batch scan read and rejected because they lie past the folio's end.

    A ``stop:folio-end`` event at ``addr`` with ``nr`` names the slot ``addr + nr``; the
    scan read it only where the variant tests the folio end after the compare (v6.9's
    ``folio_end="after-compare"``); a variant that clamps ``max_nr`` never reads it."""
    if folio_end != "after-compare":
        return []
    out = []
    for e in trace:
        if e.rule == "stop:folio-end" and e.addr is not None:
            i = (e.addr - base) // PAGE_SIZE + e.nr
            if 0 <= i < n and i not in out:
                out.append(i)
    return out


def _calls_text(batches: list[Any], ncalls: int) -> str:
    """The calls and their batches, whole: a long list that is one value, or one short
    pattern, over and over is said in words instead of being cut.

    >>> _calls_text([4, 4], 2)
    '2 call(s), batches [4, 4]'
    >>> _calls_text([1] * 16, 16)
    '16 calls, each a batch of 1'
    >>> _calls_text(["E", 1] * 512, 1024)
    "1024 call(s), batches ['E', 1] repeated 512 times"
    """
    n = len(batches)
    # the shortest repeating pattern; an -EAGAIN is no batch, so "each a batch of E" is not said
    period = next((p for p in range(1, 5) if n % p == 0 and batches == batches[:p] * (n // p)
                   and (p > 1 or batches[0] != "E")), 0) if n > 12 and ncalls == n else 0
    if period == 1:
        return f"{n} calls, each a batch of {batches[0]}"
    if period:
        return f"{ncalls} call(s), batches {batches[:period]} repeated {n // period} times"
    return f"{ncalls} call(s), batches {batches}"


def _span(a: Step, b: Step, base: int) -> str:
    lo = (a.addr - base) // PAGE_SIZE
    hi = (b.addr - base) // PAGE_SIZE + max(b.nr, 1) - 1
    return f"PTE #{lo}" if lo == hi else f"PTEs #{lo}-#{hi}"


def _strip(c: Canvas, slots: Sequence[Slot], w: float, y: float) -> float:
    """The PTE cells; returns their height (taller when a cell's letters need more lines:
    three letters to a line ran "D A UW" into the next cell)."""
    c.group("PTEs before fork")
    per_line = max(1, int((w - 7) / CHAR_W))   # 11 px monospace glyphs are 6.6 px wide
    lines = [wrap(s.letters, per_line) for s in slots] if w >= 20 else []
    h = max([float(CH)] + [26.0 + 12 * len(ls) + 3 for ls in lines])
    if w >= 20:
        for i, (s, ls) in enumerate(zip(slots, lines, strict=True)):
            x = LEFT + i * w
            c.rect(x + 1, y, w - 2, h, s.kind, tip=f"PTE #{i} at {s.addr:#x}: "
                   + (repr(s.pte) if s.pte else "empty"))
            c.text(x + 3, y + 11, f"#{i}", "pk-t2")
            fit = (f' textLength="{w - 6:g}" lengthAdjust="spacingAndGlyphs"'
                   if len(s.label) * CHAR_W > w - 6 else "")
            c.text(x + 3, y + 23, s.label, "pk-t2", extra=fit)
            for k, line in enumerate(ls):
                c.text(x + 3, y + 35 + 12 * k, line, "pk-t2", extra=' font-weight="bold"')
    else:   # too narrow for words: one box per run of equal PTEs, words in the tooltip
        for r in runs(slots):
            s = r.head
            c.rect(LEFT + r.first * w, y, r.n * w, CH, s.kind,
                   tip=f"PTEs #{r.first}-#{r.last}: {s.label}... {s.letters or 'no bits'}")
            if r.n * w > 60:
                c.text(LEFT + r.first * w + 3, y + 21, f"{s.label} {s.letters}", "pk-t2")
    c.end()
    return h


def _brackets(c: Canvas, slots: Sequence[Slot], steps: Sequence[Step],
              groups: Sequence[tuple[int, int, str]], w: float, base: int, y: float,
              h: float = CH) -> None:
    c.group("copy calls")
    # every call carries its note's number: calls that ended for the same reason share one
    # note ("(x2)"), and a bracket without a number read as a call without a reason; "note
    # 1", not "(1)", which a reader took for the batch size
    end_of = {i: n for n, (first, last, _) in enumerate(groups, 1)
              for i in range(first, last + 1)}
    if w < 20:       # too narrow for one bracket per call: one per group of calls
        for n, (first, last, words) in enumerate(groups, 1):
            a, b = steps[first], steps[last]
            x0 = LEFT + (a.addr - base) // PAGE_SIZE * w + 1
            x1 = LEFT + ((b.addr - base) // PAGE_SIZE + max(b.nr, 1)) * w - 1
            d = f"M{x0:g},{y:g} L{x0:g},{y + 8:g} L{x1:g},{y + 8:g} L{x1:g},{y:g}"
            c.path(d, "anon", width=2, tip=words)
            c.text(x1, y + 20, f"note {n}", "pk-t", anchor="end", tip=words)
        c.end()
        return
    for i, s in enumerate(steps):
        first = (s.addr - base) // PAGE_SIZE
        x0 = LEFT + first * w + 2
        if s.action == "eagain":
            c.text(x0 + w / 2 - 2, y - h - 9, "E", "pk-h", anchor="middle",
                   tip="-EAGAIN: drop locks, preallocate a page, retry this PTE")
            continue
        role = {"share": "anon", "copy": "hot", "raw": "special"}.get(s.action, "nonpresent")
        x1 = LEFT + (first + s.nr) * w - 2
        d = f"M{x0:g},{y:g} L{x0:g},{y + 8:g} L{x1:g},{y + 8:g} L{x1:g},{y:g}"
        c.path(d, role, width=2, tip=f"{s.func}() returned {s.nr}: {s.reason}")
        word = action_word(s.action)
        # "map 1", not "map": the intro says each bracket reads "map N"; a one-PTE
        # bracket too narrow for "copy 1" in 11 px glyphs says its word alone
        # (a 4 px gap at least, so neighbours' labels never run together)
        label = next((t for t in (f"{word} {s.nr}", word) if len(t) * CHAR_W <= x1 - x0 - 4),
                     "")
        if label:
            c.text((x0 + x1) / 2, y + 20, label, "pk-t", anchor="middle",
                   tip=f"{word} {s.nr}")
        mark = end_of.get(i)
        g = groups[mark - 1] if mark is not None else None
        ncalls = 0 if g is None else sum(
            1 for st in steps[g[0]:g[1] + 1] if st.action != "eagain")
        if g is not None and ncalls > 1 and len(groups) <= 40:
            # several calls that ended alike: one note under the group's whole span (a
            # note under each of 16 brackets, staggered on two lines, was noise)
            if i == g[1]:
                start = (steps[g[0]].addr - base) // PAGE_SIZE
                gx0, gx1 = LEFT + start * w + 2, x1
                c.path(f"M{gx0:g},{y + 27:g} L{gx1:g},{y + 27:g}", "", width=0.8)
                # the longest label that fits the group's span: one wider than it ran
                # over the next call's "note 2" ("note 1 (x2note 2"); its line says "(xN)"
                label = next((t for t in (f"note {mark}: each of these {ncalls} calls",
                                          f"note {mark} (x{ncalls})", f"note {mark}")
                              if len(t) * CHAR_W <= gx1 - gx0), f"note {mark}")
                # line at y + 27, label at y + 39: at y + 24 the line ran through the
                # descenders of the "map 1" labels above it, and the label touched it
                c.text((gx0 + gx1) / 2, y + 39, label, "pk-t", anchor="middle", tip=g[2])
            continue
        if mark is not None and (len(groups) <= 40):
            # narrow brackets take turns on two lines, so "note 1 note 1" never runs on
            # (by slot, not by step: an -EAGAIN step between two calls broke the turns)
            low = (x1 - x0) < CHAR_W * len(f"note {mark}") + 8 and first % 2 == 1
            c.text(x1, y + (42 if low else 32), f"note {mark}", "pk-t", anchor="end",
                   tip=groups[mark - 1][2])
    c.end()
