"""The -EAGAIN loop of copy_pte_range(): -EAGAIN -> drop locks -> preallocate -> retry.

Simulator concept (views layer).  The rounds come from the fork's trace: each -EAGAIN
return, the preallocation that followed (by the allocator the variant declares), and what
the retry at the same PTE did with the page (copied into it, or freed it unused).  The
loop's four stations are the control flow of mm/memory.c copy_pte_range(); the current
round is lit.
Taught in: notebooks/04-pinned-pages.ipynb
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ...errors import LayoutError
from ...fork import ForkResult
from ...kernels import DEFAULT_KERNEL, get_kernel
from ...pte import PAGE_SIZE
from .calls import present_calls
from .core import Canvas, Picture, wrap
from .scene import build_fork, need_kernel


@dataclass(frozen=True)
class Round:
    """One trip round the loop."""

    addr: int
    why: str            # the decision that forced the copy (the trace's reason)
    func: str           # the preallocating function, as the trace names it
    prealloc: str       # what it did
    retry: str          # what the retry at the same PTE did


def eagain_rounds(r: ForkResult) -> list[Round]:
    """The fork's -EAGAIN rounds, read from its trace.

    >>> import pkmm
    >>> p = pkmm.Process(); _ = p.mmap(0, 1); f = p.alloc_folio(0); p.map(0, f); p.pin(f)
    >>> [x.retry for x in eagain_rounds(pkmm.fork(p, "v6.9"))]
    ['copy 1: maybe-pinned AnonExclusive page copied']
    """
    alloc = get_kernel(r.kernel).prealloc_func     # page_copy_prealloc, folio_prealloc
    calls = present_calls(r)
    events = list(r.trace)
    out = []
    for i, c in enumerate(calls):
        if c.step.action != "eagain":
            continue
        busy = [e for e in c.events if e.rule.endswith(":busy") or e.rule == "need-prealloc"]
        why = busy[0].reason if busy else c.step.reason
        after = c.events[-1].seq if c.events else 0
        pre = next((e for e in events if e.seq > after and e.func == alloc), None)
        nxt = calls[i + 1] if i + 1 < len(calls) else None
        retry = (f"{nxt.step.action} {nxt.step.nr}: {nxt.step.reason}"
                 if nxt is not None and nxt.step.addr == c.step.addr else "fork failed")
        out.append(Round(c.step.addr, why, pre.func if pre else alloc,
                         pre.reason if pre else "no page allocated", retry))
    return out


def eagain_loop(layout: Any, kernel: str = DEFAULT_KERNEL, round: int = 1, *,
                without: Iterable[str] = ()) -> Picture:
    """The copy loop of ``copy_pte_range()`` with round ``round`` of the fork lit.

    >>> pic = eagain_loop({"vmas": [{"start": 0, "npages": 1}],
    ...     "folios": {"P": {"order": 0}}, "ptes": [{"addr": 0, "folio": "P"}],
    ...     "pins": [{"folio": "P"}]}, "v6.17")
    >>> pic
    <eagain-loop: v6.17 fork: 1 -EAGAIN round(s); round 1 at PTE #0 lit>
    """
    need_kernel(kernel, "eagain_loop")
    _, procs, _, r = build_fork(layout, kernel, without)
    assert r is not None
    rounds = eagain_rounds(r)
    if rounds and (not isinstance(round, int) or not 1 <= round <= len(rounds)):
        raise LayoutError(f"round={round!r}: this fork took {len(rounds)} -EAGAIN round(s);"
                          f" pick 1..{len(rounds)}")
    base = procs[0].vmas[0].vm_start if procs[0].vmas else 0
    cur = rounds[round - 1] if rounds else None
    slot = f"PTE #{(cur.addr - base) // PAGE_SIZE}" if cur else "a PTE"
    k = get_kernel(kernel)
    c = Canvas(900)
    c.text(8, 14, f"{kernel}: the -EAGAIN loop of copy_pte_range() "
                  f"({len(rounds)} round(s) in this fork)", "pk-h")
    stations = [
        ("copy_pte_range()", "both PTE locks held: copy PTE after PTE",
         f"{r.passes} pass(es) over the range in this fork"),
        (f"{k.present_func}()", f"returns -EAGAIN at {slot}",
         cur.why if cur else "no PTE needed a copy in this fork"),
        (f"{cur.func if cur else k.prealloc_func}()",
         "locks dropped: allocate one page (may sleep)",
         cur.prealloc if cur else ""),
        ("again:", f"retake the locks, retry {slot} with the page",
         cur.retry if cur else ""),
    ]
    boxes = [(40, 40), (480, 40), (480, 190), (40, 190)]
    w, h = 380, 112
    for i, ((x, y), (func, what, detail)) in enumerate(zip(boxes, stations, strict=True)):
        role = "lit" if cur else "none"
        c.rect(x, y, w, h, role, rx=8, tip=detail or what,
               extra=' stroke-width="2"' if cur else "")
        c.text(x + 10, y + 18, f"{i + 1}. {func}", "pk-h")
        c.text(x + 10, y + 34, what, "pk-t")
        for j, line in enumerate(wrap(detail, 54)[:5]):
            c.text(x + 10, y + 50 + 12 * j, line, "pk-t")
    role = "lit" if cur else ""
    c.path("M420,96 L478,96", role, width=2, arrow=True)
    c.path("M620,152 L620,188", role, width=2, arrow=True)
    c.path("M480,246 L422,246", role, width=2, arrow=True)
    c.path("M220,190 L220,154", role, width=2, arrow=True)
    c.text(449, 90, "-EAGAIN", "pk-t2", anchor="middle")
    c.text(449, 240, "retry", "pk-t2", anchor="middle")
    y = 322
    c.group("rounds of this fork")
    for n, rd in enumerate(rounds, 1):
        mark = ">" if rd is cur else " "
        line = (f"{mark} round {n}: -EAGAIN at PTE #{(rd.addr - base) // PAGE_SIZE}, "
                f"then {rd.retry}")
        if rd is cur:    # the lit round in the stations' colour, so the eye finds it
            c.rect(4, y - 11, min(c.width - 8, len(line) * 6.6 + 10), 15, "lit", rx=3,
                   tip=f"round {n}: the round lit in the loop above",
                   extra=' stroke-width="2"')
        c.text(8, y, line, "pk-t", extra=' font-weight="bold"' if rd is cur else "")
        y += 16
    if not rounds:
        c.text(8, y, "no round: every PTE was mapped (the same page in the child) or "
               "copied by value on the first try", "pk-t")
    c.end()
    desc = (f"{kernel} fork: {len(rounds)} -EAGAIN round(s)"
            + (f"; round {round} at {slot} lit" if cur else ""))
    return c.picture("eagain-loop", "the -EAGAIN loop", desc,
                     data={"rounds": [rd.retry for rd in rounds]})
