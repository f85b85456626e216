"""A fork recorded frame by frame: the model's own state after every event and step.

Simulator concept.  :class:`ForkReplay` runs :func:`pkmm.fork` with an observer that,
after every trace event and every copy-loop step, copies what the model holds at that
moment: for parent and child their VMAs, every PTE table and PMD slot, the rss counters
(and the running ``copy_pte_range`` pass's local ``rss[]``, which the kernel adds to the
child's counters only when the pass ends); for every folio its refcount, pincount,
entire and total mapcount, and each page's mapcount and AnonExclusive bit.  Nothing is
rebuilt from rules afterwards: a viewer reads numbers the model had.  (Recording costs
one copy of the state per frame, which suits teaching layouts of a few hundred PTEs;
big layouts fork with ``detail=False`` and are not replayed.)
Taught in: notebooks/02-fork-one-pte-at-a-time.ipynb

>>> import pkmm
>>> p = pkmm.Process()
>>> _ = p.mmap(0x200000, 512)
>>> thp = p.alloc_folio(9)
>>> p.map_pmd(0x200000, thp)
>>> rp = ForkReplay(p, "v6.17")
>>> first, last = rp[0], rp[-1]
>>> first.item is None, first.folio(thp.pfn).refcount, last.folio(thp.pfn).refcount
(True, 1, 2)
>>> [f.item.rule for f in rp.frames if f.kind == "event"][:3]
['copy:anon_vma', 'cow:write_protect_seq', 'share']
>>> last.child.pmd(0x200000), last.child.rss["MM_ANONPAGES"]
(Pmd(pfn=0x1000 D), 512)
>>> last.parent.pte(0x201000)
Pte(pfn=0x1001 P PMD D A)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from .context import ForkContext
from .errors import ForkError
from .folio import Folio
from .fork import ForkResult, fork
from .kernels import DEFAULT_KERNEL
from .mm import NR_MM_COUNTERS, MmStruct
from .pgtable import Pmd, PteTable, pmd_index, pte_index
from .process import Process
from .pte import PAGE_SIZE, PMD_SHIFT, PTRS_PER_PTE, Pte
from .scenario import Scenario, as_scenario
from .trace import Event, Step

__all__ = ["FolioState", "ForkReplay", "Frame", "MmState", "VmaState"]

FrameKind = Literal["start", "event", "step"]


@dataclass(frozen=True, slots=True)
class VmaState:
    """One VMA of an mm at a frame: its range and :meth:`pkmm.Vma.describe` text."""

    start: int
    end: int
    text: str


@dataclass(frozen=True)
class MmState:
    """One mm at a frame: VMAs, page-table slots, rss counters (all copied, immutable)."""

    name: str
    vmas: tuple[VmaState, ...]
    tables: Mapping[int, tuple[Pte | None, ...]]   # PMD index -> the 512 PTE slots
    pmds: Mapping[int, Pmd]                        # PMD index -> PMD leaf
    rss: Mapping[str, int]
    nr_ptes: int

    def pte(self, addr: int) -> Pte | None:
        """The PTE at ``addr`` (a PMD leaf gives the same read-only view as
        :meth:`pkmm.Process.pte`)."""
        leaf = self.pmds.get(pmd_index(addr))
        if leaf is not None:
            return Pte(pfn=leaf.pfn + pte_index(addr), write=leaf.write, dirty=leaf.dirty,
                       young=leaf.young, soft_dirty=leaf.soft_dirty, uffd_wp=leaf.uffd_wp,
                       special=leaf.huge_zero, pmd=True)
        table = self.tables.get(pmd_index(addr))
        return None if table is None else table[pte_index(addr)]

    def pmd(self, addr: int) -> Pmd | None:
        """The PMD leaf covering ``addr``, if any."""
        return self.pmds.get(pmd_index(addr))

    def slots(self) -> Iterator[tuple[int, Pte | None]]:
        """(addr, pte) for every page of every VMA, in address order."""
        for v in self.vmas:
            for a in range(v.start, v.end, PAGE_SIZE):
                yield a, self.pte(a)


@dataclass(frozen=True, slots=True)
class FolioState:
    """One folio at a frame.  ``pages[i]`` is page i's (mapcount, AnonExclusive)."""

    pfn: int
    order: int
    kind: str
    uid: int
    refcount: int
    pincount: int
    entire_mapcount: int
    mapcount: int
    pages: tuple[tuple[int, bool], ...]

    @property
    def nr_pages(self) -> int:
        """``folio_nr_pages``."""
        return 1 << self.order


@dataclass(frozen=True)
class Frame:
    """The model after one event or step (frame 0: just before fork).

    ``item`` is the :class:`~pkmm.trace.Event` or :class:`~pkmm.trace.Step` just recorded
    (None at frame 0); ``pending_rss`` the running copy_pte_range pass's local counters;
    ``changed`` what differs from the frame before: ``("parent"|"child", addr)`` slots and
    ``("folio", pfn)`` folios.
    """

    index: int
    kind: FrameKind
    item: Event | Step | None
    parent: MmState
    child: MmState
    folios: Mapping[int, FolioState]
    pending_rss: Mapping[str, int]
    changed: frozenset[tuple[str, int]]

    def folio(self, pfn: int) -> FolioState:
        """The folio whose head page is ``pfn`` (KeyError if it does not exist here)."""
        return self.folios[pfn]

    def page_of(self, pfn: int) -> tuple[FolioState, int] | None:
        """The folio holding page ``pfn`` and the page's index in it, if any."""
        for f in self.folios.values():
            if f.pfn <= pfn < f.pfn + f.nr_pages:
                return f, pfn - f.pfn
        return None


_ZERO_RSS = MappingProxyType(dict.fromkeys(NR_MM_COUNTERS, 0))


def _mm_state(name: str, mm: MmStruct | None) -> MmState:
    if mm is None:
        return MmState(name, (), MappingProxyType({}), MappingProxyType({}), _ZERO_RSS, 0)
    tables: dict[int, tuple[Pte | None, ...]] = {}
    pmds: dict[int, Pmd] = {}
    for idx, ent in mm.pmds.items():
        if isinstance(ent, PteTable):
            tables[idx] = tuple(ent.ptes)
        else:
            pmds[idx] = ent
    vmas = tuple(VmaState(v.vm_start, v.vm_end, v.describe()) for v in mm.vmas)
    return MmState(name, vmas, MappingProxyType(tables), MappingProxyType(pmds),
                   MappingProxyType(dict(mm.rss)), mm.nr_ptes)


def _folio_state(f: Folio) -> FolioState:
    pages = tuple((pg.mapcount, pg.anon_exclusive) for pg in f.pages)
    return FolioState(f.pfn, f.order, f.kind, f.uid, f.refcount, f.pincount,
                      f.entire_mapcount, f.mapcount, pages)


def _changed(side: str, old: MmState, new: MmState) -> set[tuple[str, int]]:
    out: set[tuple[str, int]] = set()
    for idx in old.tables.keys() | new.tables.keys():
        a, b = old.tables.get(idx), new.tables.get(idx)
        if a == b:
            continue
        base = idx << PMD_SHIFT
        for i in range(PTRS_PER_PTE):
            if (a[i] if a else None) != (b[i] if b else None):
                out.add((side, base + i * PAGE_SIZE))
    for idx in old.pmds.keys() | new.pmds.keys():
        if old.pmds.get(idx) != new.pmds.get(idx):
            base = idx << PMD_SHIFT
            out.update((side, base + i * PAGE_SIZE) for i in range(PTRS_PER_PTE))
    return out


class ForkReplay:
    """Fork ``parent`` under ``kernel`` and keep a :class:`Frame` per event and step.

    The fork really happens (``parent`` is changed as :func:`pkmm.fork` changes it).
    ``result`` is the :class:`~pkmm.ForkResult`; if fork fails with ENOMEM the frames up
    to the failure are kept, ``result`` is None and ``error`` holds the
    :class:`~pkmm.ForkError`.  Other arguments are those of :func:`pkmm.fork`.
    """

    def __init__(self, parent: Process, kernel: str = DEFAULT_KERNEL,
                 without: Iterable[str] = frozenset(), *, need_resched: bool = False,
                 fail_prealloc: int | bool = False) -> None:
        self.parent = parent
        self.kernel = kernel
        self.frames: list[Frame] = []
        self._folios = {pfn: _folio_state(f) for pfn, f in parent.machine.folios.items()
                        if f.kind not in ("zero", "huge_zero")}
        self.child: Process | None = None
        self.result: ForkResult | None = None
        self.error: ForkError | None = None
        self.folio_names: dict[int, str] = {}
        self.frames.append(self._frame("start", None, parent, None, None))
        machine = parent.machine
        machine.watch = set()
        try:
            self.result = fork(parent, kernel, without, need_resched=need_resched,
                               fail_prealloc=fail_prealloc, observer=self._observe)
        except ForkError as e:
            self.error = e
        else:
            self.child = self.result.child
        finally:
            machine.watch = None

    @classmethod
    def from_scenario(cls, layout: Scenario | dict[str, Any], kernel: str = DEFAULT_KERNEL,
                      without: Iterable[str] = frozenset(), **kw: Any) -> ForkReplay:
        """Build ``layout`` (a Scenario, a scenario dict or a LayoutBuilder) and replay its
        fork.  ``folio_names`` maps each scenario folio's head pfn to its name."""
        parent, folios = as_scenario(layout).build()
        rp = cls(parent, kernel, without, **kw)
        rp.folio_names = {f.pfn: name for name, f in folios.items()}
        return rp

    def _observe(self, parent: Process, child: Process, fc: ForkContext,
                 item: Event | Step) -> None:
        kind: FrameKind = "event" if isinstance(item, Event) else "step"
        self.frames.append(self._frame(kind, item, parent, child, fc))

    def _frame(self, kind: FrameKind, item: Event | Step | None, parent: Process,
               child: Process | None, fc: ForkContext | None) -> Frame:
        p = _mm_state(parent.name, parent.mm)
        c = _mm_state(child.name if child is not None else "child",
                      child.mm if child is not None else None)
        changed: set[tuple[str, int]] = set()
        touched = parent.machine.watch
        if touched:     # only folios whose counters changed are copied again
            for pfn in touched:
                f = parent.machine.folios.get(pfn)
                old = self._folios.pop(pfn, None)
                new = None if f is None else _folio_state(f)
                if new is not None:
                    self._folios[pfn] = new
                if new != old:
                    changed.add(("folio", pfn))
            touched.clear()
        pending = _ZERO_RSS if fc is None or fc.rss is None else \
            MappingProxyType(dict(fc.rss))
        if self.frames:
            prev = self.frames[-1]
            changed |= _changed("parent", prev.parent, p) | _changed("child", prev.child, c)
        return Frame(len(self.frames), kind, item, p, c, MappingProxyType(dict(self._folios)),
                     pending, frozenset(changed))

    # -- reading ---------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, k: int) -> Frame:
        return self.frames[k]

    def __iter__(self) -> Iterator[Frame]:
        return iter(self.frames)

    def events(self) -> list[Frame]:
        """The frame before fork and one frame per trace event (steps left out)."""
        return [f for f in self.frames if f.kind != "step"]

    def __repr__(self) -> str:
        state = "failed" if self.error is not None else f"{len(self.frames)} frames"
        return f"ForkReplay(kernel={self.kernel}, {state})"
