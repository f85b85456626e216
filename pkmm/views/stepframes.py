"""The stepper's frame interface: state after each event of one fork, as drawable data.

Simulator concept (views layer).  :class:`StepFrames` is the one adapter between a
source of per-event fork state and the stepper's pictures.  Today the source is
:class:`pkmm.views.frames.ForkFrames` (state attributed to the deciding event); when the
model records its own state at every event, only :meth:`StepFrames._load` changes.
Key frames (for the static filmstrip) are the ends of the present-PTE copy calls.
Taught in: notebooks/02-fork-one-pte-at-a-time.ipynb
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..scenario import Scenario
from ..trace import Event
from .frames import ForkFrames
from .render import Cell
from .svg.calls import present_calls


@dataclass(frozen=True)
class FolioRow:
    """One folio's counters in a frame."""

    name: str
    refcount: int
    mapcounts: tuple[int, ...]
    exclusive: int          # pages with AnonExclusive
    anon: bool = True       # AnonExclusive exists only for anonymous folios


@dataclass(frozen=True)
class Frame:
    """State after event ``index`` (0: before fork) of one fork."""

    index: int
    total: int
    event: Event | None
    parent: tuple[Cell, ...]
    child: tuple[Cell, ...]
    current: frozenset[int]     # slot addresses the event acted on (the scan cursor)
    changed: frozenset[tuple[str, int]]   # ("parent"|"child", slot address) of each
                                          # PTE this event wrote
    folios: tuple[FolioRow, ...]
    rss: tuple[tuple[str, int], ...]
    base: int                   # address of slot 0


class StepFrames:
    """All frames of one fork of ``scenario`` under ``kernel``.

    >>> from pkmm.scenario import Scenario
    >>> s = Scenario.from_dict({"vmas": [{"start": 0, "npages": 4}],
    ...     "folios": {"F": {"order": 2}}, "ptes": [{"addr": 0, "folio": "F"}]})
    >>> sf = StepFrames(s, "v6.9")
    >>> sf.frame(0).child[0].label, sf.frame(len(sf) - 1).child[0].label
    ('--', 'F:0')
    >>> sf.key_frames()[0], sf.key_frames()[-1] == len(sf) - 1
    (0, True)
    """

    def __init__(self, scenario: Scenario, kernel: str,
                 without: Iterable[str] = frozenset()) -> None:
        self.scenario, self.kernel, self.without = scenario, kernel, frozenset(without)
        self._load()

    def _load(self) -> None:
        self._src = ForkFrames(self.scenario, self.kernel, self.without)
        self.result = self._src.result
        self.events = self._src.events

    def __len__(self) -> int:
        return len(self._src)

    def frame(self, k: int) -> Frame:
        """The state after the first ``k`` events (clamped to the fork's length)."""
        snap = self._src.snapshot(k)
        rows = []
        for name, ref in snap.refcount.items():
            pages = sorted((i, mc, ae) for (n, i), (mc, ae) in snap.pages.items()
                           if n == name)
            rows.append(FolioRow(name, ref, tuple(mc for _, mc, _ in pages),
                                 sum(1 for *_, ae in pages if ae),
                                 snap.kinds.get(name, "anon") == "anon"))
        return Frame(snap.index, len(self) - 1, snap.event, tuple(snap.parent),
                     tuple(snap.child), frozenset(snap.current), frozenset(snap.changed),
                     tuple(rows), tuple(sorted((k_, v) for k_, v in snap.rss.items() if v)),
                     self._src.addrs[0] if self._src.addrs else 0)

    def call_ends(self) -> list[int]:
        """Frame index after the last event of each present-PTE copy call."""
        pos = {e.seq: i for i, e in enumerate(self.events, start=1)}
        return [pos[c.events[-1].seq] for c in present_calls(self.result)
                if c.events and c.events[-1].seq in pos]

    def next_call(self, k: int, direction: int = 1) -> int:
        """The next (or previous) call end after (before) frame ``k``."""
        ends = self.call_ends() + [len(self) - 1]
        if direction > 0:
            return next((e for e in ends if e > k), len(self) - 1)
        return next((e for e in reversed([0, *ends]) if e < k), 0)

    def key_frames(self, most: int = 6) -> list[int]:
        """Frames for a filmstrip: before fork, the end of the first call of each kind
        (the functions its decisions ran: a zero page, a file page, a copied page each
        show up), then call ends spread evenly, and the last frame."""
        pos = {e.seq: i for i, e in enumerate(self.events, start=1)}
        calls = [c for c in present_calls(self.result)
                 if c.events and c.events[-1].seq in pos]
        ends = [pos[c.events[-1].seq] for c in calls]
        last = len(self) - 1
        if len(ends) <= most - 2:
            # few calls: spend the spare frames inside them, on each decision's first
            # occurrence (a one-call batch fork shows its scan and its counted bits)
            keep = {0, *ends, last}
            rules: set[str] = set()
            # decisions about the whole batch first, per-page ones (rmap dups) after
            events = [e for c in calls for e in c.events if e.nr == c.step.nr]
            events += [e for c in calls for e in c.events if e.nr != c.step.nr]
            for e in events:
                if len(keep) < most and e.rule not in rules:
                    rules.add(e.rule)
                    keep.add(pos[e.seq])
            return sorted(keep)
        # a static page cannot step: show each kind of decision once before repeats
        seen: set[tuple[str, ...]] = set()
        pick: list[int] = []
        for c, end in zip(calls, ends, strict=True):
            kind = tuple(sorted({e.func for e in c.events}))
            if kind not in seen and len(pick) < most - 2:
                seen.add(kind)
                pick.append(end)
        spread = [ends[round(i * (len(ends) - 1) / (most - 3))] for i in range(most - 2)]
        for end in spread:
            if len(pick) >= most - 2:
                break
            if end not in pick:
                pick.append(end)
        return sorted({0, *pick, last})
