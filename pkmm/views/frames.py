"""Fork-stepper frames: :class:`pkmm.replay.ForkReplay` drawn as PTE-grid cells.

Simulator concept (views layer), a thin adapter: every number here is one the model held
at that event, recorded by :mod:`pkmm.replay`; this module only turns PTE values and
folio states into :class:`~pkmm.views.render.Cell` labels.  One frame before fork, then
one per trace event (the replay's per-step frames are left out here).
Taught in: notebooks/02-fork-one-pte-at-a-time.ipynb
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass

from ..mm import NR_MM_COUNTERS
from ..pte import PAGE_SIZE, Pte
from ..replay import FolioState, ForkReplay, Frame
from ..scenario import Scenario
from ..trace import Event
from .render import Cell, pte_cell


@dataclass
class Snapshot:
    """State after one event: cells of both page tables, page counters, child rss."""

    index: int
    event: Event | None
    parent: list[Cell]
    child: list[Cell]
    current: range
    changed: set[tuple[str, int]]   # ("parent"|"child", slot address) of each PTE written
    pages: dict[tuple[str, int], tuple[int, bool]]   # (folio, page) -> (mapcount, AE)
    refcount: dict[str, int]
    rss: dict[str, int]
    kinds: dict[str, str]      # folio -> "anon", "file", "shmem", ... (only anon has AE)


class _Pages:
    """pfn -> (folio state, page index) over one frame's folios."""

    def __init__(self, frame: Frame) -> None:
        self.heads = sorted(frame.folios)
        self.folios = frame.folios

    def find(self, pfn: int) -> tuple[FolioState, int] | None:
        i = bisect_right(self.heads, pfn) - 1
        if i < 0:
            return None
        f = self.folios[self.heads[i]]
        return (f, pfn - f.pfn) if pfn < f.pfn + f.nr_pages else None


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
        self.replay = ForkReplay.from_scenario(scenario, kernel, frozenset(without))
        if self.replay.result is None:
            raise self.replay.error or RuntimeError("fork failed")
        self.result = self.replay.result
        self.parent, self.child = self.result.parent, self.result.child
        self.names = dict(self.replay.folio_names)
        self.frames = self.replay.events()
        self.events: list[Event] = [f.item for f in self.frames[1:]
                                    if isinstance(f.item, Event)]
        self.addrs = [a for a, _ in self.frames[0].parent.slots()]

    def __len__(self) -> int:
        """Frames: one before fork plus one per event."""
        return len(self.frames)

    def __repr__(self) -> str:
        return (f"ForkFrames({self.scenario.name}, kernel={self.kernel}, "
                f"events={len(self.events)})")

    def _cell(self, addr: int, pte: Pte | None, pages: _Pages) -> Cell:
        found = None if pte is None or not pte.present or pte.special else pages.find(pte.pfn)
        if found is None:   # empty, non-present, zero page or raw PFN: no folio counters
            return pte_cell(addr, pte, self.parent.machine, self.names)
        assert pte is not None
        cell = pte_cell(addr, pte, self.parent.machine, self.names)
        f, i = found
        label = f"{self.names.get(f.pfn, f'f{f.uid}')}:{i}" + (" PMD" if pte.pmd else "")
        kind = "anon" if f.kind == "anon" else f.kind
        return Cell(addr, label, cell.bits, kind, "AE" if f.pages[i][1] else "")

    def snapshot(self, k: int) -> Snapshot:
        """State after the first ``k`` events (``k == 0``: just before fork)."""
        k = max(0, min(k, len(self.frames) - 1))
        fr = self.frames[k]
        ev = fr.item if isinstance(fr.item, Event) else None
        pages = _Pages(fr)
        parent = [self._cell(a, fr.parent.pte(a), pages) for a in self.addrs]
        child = [self._cell(a, fr.child.pte(a), pages) for a in self.addrs]
        named = {pfn: fr.folios[pfn] for pfn in self.names if pfn in fr.folios}
        counters = {(self.names[pfn], i): pg for pfn, f in named.items()
                    for i, pg in enumerate(f.pages)}
        refcount = {self.names[pfn]: f.refcount for pfn, f in named.items()}
        kinds = {self.names[pfn]: f.kind for pfn, f in named.items()}
        rss = {c: fr.child.rss[c] + fr.pending_rss[c] for c in NR_MM_COUNTERS}
        # The PTEs this event wrote, per side: compared with the frame of the previous
        # *event* (the replay's own diff is against its last step frame, which this
        # event list leaves out), and by PTE value alone -- a page counter that moved
        # (mapcount, AnonExclusive) is shown in the folio rows, it is not a PTE write.
        changed: set[tuple[str, int]] = set()
        if k:
            prev = self.frames[k - 1]
            for side, now, before in (("parent", fr.parent, prev.parent),
                                      ("child", fr.child, prev.child)):
                changed |= {(side, a) for a in self.addrs if now.pte(a) != before.pte(a)}
        cur = range(0)
        if ev is not None and ev.addr is not None:
            cur = range(ev.addr, ev.addr + max(ev.nr, 1) * PAGE_SIZE, PAGE_SIZE)
        return Snapshot(k, ev, parent, child, cur, changed, counters, refcount, rss, kinds)
