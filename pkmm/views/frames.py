"""Per-event snapshots of one fork, derived from the trace (for the fork stepper).

Simulator concept (views layer).  The model records every decision as a trace event with
the address range it acted on.  Each piece of state fork changes is changed by exactly one
decision: a child slot is written once (``set-ptes``/``set-pte``, ``copy_present_page``,
``copy_nonpresent_pte``, ``copy_huge_pmd``), a parent slot is write-protected once
(``cow-wrprotect``), and a page's mapcount/AnonExclusive change once (``anon-dup:ok`` or
``file-dup``).  So the state after event *k* is: the final value for every item whose
deciding event is <= k, the pre-fork value for the others.  No kernel rule is re-derived
here; initial and final values both come from the model (two builds of one scenario).
Taught in: notebooks/02-fork-one-pte-at-a-time.ipynb
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..fork import ForkResult, fork
from ..mm import MM_SWAPENTS, NR_MM_COUNTERS, mm_counter
from ..process import Process
from ..pte import PAGE_SIZE, Pte
from ..scenario import Scenario
from ..trace import Event
from .render import Cell, pte_cell

_CHILD_RULES = {"set-ptes", "set-pte", "copied", "set-pmd", "huge-zero"}
_PARENT_RULES = {"cow-wrprotect", "split:pinned", "set-pmd"}
_PAGE_RULES = {"anon-dup:ok", "file-dup", "share"}


def _span(e: Event) -> range:
    """The slot addresses an event acted on (a PMD event covers 512 slots)."""
    if e.addr is None:
        return range(0)
    n = 512 if e.func == "copy_huge_pmd" else max(e.nr, 1)
    return range(e.addr, e.addr + n * PAGE_SIZE, PAGE_SIZE)


@dataclass
class Snapshot:
    """State after one event: cells of both page tables, page counters, child rss."""

    index: int
    event: Event | None
    parent: list[Cell]
    child: list[Cell]
    current: range
    changed: set[int]
    pages: dict[tuple[str, int], tuple[int, bool]]   # (folio, page) -> (mapcount, AE)
    refcount: dict[str, int]
    rss: dict[str, int]


class ForkFrames:
    """One fork of ``scenario`` under ``kernel``, replayable event by event.

    >>> from pkmm.scenario import Scenario
    >>> s = Scenario.from_dict({"vmas": [{"start": 0, "npages": 4}],
    ...     "folios": {"F": {"order": 2}}, "ptes": [{"addr": 0, "folio": "F"}]})
    >>> ff = ForkFrames(s, "v6.9")
    >>> ff.result.batches, len(ff) > 2
    ([4], True)
    >>> ff.snapshot(0).child[0].label, ff.snapshot(len(ff) - 1).child[0].label
    ('--', 'F:0')
    """

    def __init__(self, scenario: Scenario, kernel: str,
                 without: Iterable[str] = frozenset()) -> None:
        self.scenario = scenario
        self.kernel = kernel
        before, folios0 = scenario.build()
        parent, folios = scenario.build()
        self.result: ForkResult = fork(parent, kernel=kernel, without=frozenset(without))
        self.parent, self.child, self.folios = parent, self.result.child, folios
        self.names = {f.pfn: n for n, f in folios.items()}
        self.events: list[Event] = list(self.result.trace)
        self.addrs = [a for a, _ in parent.ptes()]
        self._initial(before, folios0)
        self._final()
        self._attribute()

    def __len__(self) -> int:
        """Frames: one before fork plus one per event."""
        return len(self.events) + 1

    def __repr__(self) -> str:
        return (f"ForkFrames({self.scenario.name}, kernel={self.kernel}, "
                f"events={len(self.events)})")

    # -- building ------------------------------------------------------------------------
    def _initial(self, before: Process, folios0: dict[str, object]) -> None:
        m = before.machine
        self.p0 = {a: pte_cell(a, p, m, self.names) for a, p in before.ptes()}
        self.c0 = {a: Cell(a, "--", "", "none") for a in self.addrs}
        self.page0 = {(n, i): (pg.mapcount, pg.anon_exclusive)
                      for n, f in folios0.items() for i, pg in enumerate(f.pages)}  # type: ignore[attr-defined]
        self.ref0 = {n: f.refcount for n, f in folios0.items()}  # type: ignore[attr-defined]
        self.slot_page = {}
        for a, p in before.ptes():
            if p is not None and p.present:
                hit = m.pfn_folio(p.pfn)
                if hit is not None and hit[0].pfn in self.names:
                    self.slot_page[a] = (self.names[hit[0].pfn], hit[1])

    def _final(self) -> None:
        m = self.parent.machine
        self.p1 = {a: pte_cell(a, p, m, self.names) for a, p in self.parent.ptes()}
        child_ptes = dict(self.child.ptes())
        self.c1 = {a: pte_cell(a, child_ptes.get(a), m, self.names) for a in self.addrs}
        self.page1 = {(n, i): (pg.mapcount, pg.anon_exclusive)
                      for n, f in self.folios.items() for i, pg in enumerate(f.pages)}
        self.ref1 = {n: f.refcount for n, f in self.folios.items()}
        self.child_rss_of: dict[int, tuple[str, int]] = {}
        for a in self.addrs:
            p = child_ptes.get(a)
            self.child_rss_of[a] = self._rss_unit(p)

    def _rss_unit(self, p: Pte | None) -> tuple[str, int]:
        if p is None:
            return ("", 0)
        if not p.present:
            return (MM_SWAPENTS, 1) if p.swp is not None and p.swp.kind == "swap" else ("", 0)
        hit = self.child.machine.pfn_folio(p.pfn)
        if hit is None or p.special:
            return ("", 0)
        return (mm_counter(hit[0]), 1)

    def _attribute(self) -> None:
        """For every changed item, the index (1-based frame) of the event that changed it."""
        last = len(self.events)
        self.child_at = dict.fromkeys(self.addrs, last)
        self.parent_at = dict.fromkeys(self.addrs, last)
        self.page_at = dict.fromkeys(self.page0, last)
        seen_child: set[int] = set()
        seen_parent: set[int] = set()
        for k, e in enumerate(self.events, start=1):
            rule = e.rule
            nonpresent = e.func == "copy_nonpresent_pte"
            for a in _span(e):
                if (rule in _CHILD_RULES or nonpresent) and a not in seen_child:
                    self.child_at[a] = k
                    seen_child.add(a)
                if (rule in _PARENT_RULES or nonpresent) and a not in seen_parent:
                    self.parent_at[a] = k
                    seen_parent.add(a)
                if rule in _PAGE_RULES and a in self.slot_page:
                    key = self.slot_page[a]
                    if self.page_at.get(key, 0) == last:
                        self.page_at[key] = k
        for a in self.addrs:      # unchanged items need no event
            if self.p0.get(a) == self.p1.get(a):
                self.parent_at[a] = 0
            if self.c1[a].kind == "none":
                self.child_at[a] = 0
        for key in self.page0:
            if self.page0[key] == self.page1.get(key):
                self.page_at[key] = 0

    # -- reading -------------------------------------------------------------------------
    def snapshot(self, k: int) -> Snapshot:
        """State after the first ``k`` events (``k == 0``: just before fork)."""
        k = max(0, min(k, len(self.events)))
        ev = self.events[k - 1] if k else None
        parent, child, changed = [], [], set()
        rss = dict.fromkeys(NR_MM_COUNTERS, 0)
        for a in self.addrs:
            pa, ca = self.parent_at[a], self.child_at[a]
            parent.append(self.p1[a] if 0 < pa <= k else self.p0.get(a, self.c0[a]))
            child.append(self.c1[a] if 0 < ca <= k else self.c0[a])
            if k and (pa == k or ca == k):
                changed.add(a)
            if 0 < ca <= k:
                name, n = self.child_rss_of[a]
                if name:
                    rss[name] += n
        pages = {key: (self.page1[key] if 0 < at <= k else self.page0[key])
                 for key, at in self.page_at.items()}
        refcount = {}
        for n in self.ref0:
            pending = sum(self.page1[(m, i)][0] - self.page0[(m, i)][0]
                          for (m, i), at in self.page_at.items()
                          if m == n and not 0 < at <= k)
            refcount[n] = self.ref1[n] - pending
        cur = _span(ev) if ev is not None else range(0)
        for key, at in self.page_at.items():
            if k and at == k:
                changed.update(a for a, kk in self.slot_page.items() if kk == key)
        return Snapshot(k, ev, parent, child, cur, changed, pages, refcount, rss)
