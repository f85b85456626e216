"""Hard slices: run the traced fork path on part of a bulk mm, then write the result back.

Simulator concept.  A *slice* is one PMD slice of one VMA (what copy_pmd_range hands to
copy_pte_range or copy_huge_pmd).  :class:`SliceModel` materialises the PTE tables and PMD
leaves of some slices as model objects -- a :class:`~pkmm.machine.Machine` holding just
the folios and swap slots they reach, a parent and a child :class:`~pkmm.mm.MmStruct`,
one :class:`~pkmm.vma.Vma` pair per VMA -- runs :func:`pkmm.memory.copy_pmd_range` on each
slice in address order, and writes back what changed: entries and leaves as values,
folio, page and swap counters as differences (so slices done by the vectorised engine
may touch the same folios), new folios, and the fork's counters.  Every kernel rule that
fires here is the traced model's own.
Taught in: notebooks/08-cost.ipynb
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np

from ..context import ForkContext, KernelVersion
from ..folio import Folio, folio_restore, page_restore
from ..machine import Machine, SwapSlot
from ..memory import copy_pmd_range
from ..mm import MmStruct
from ..pgtable import Pmd, PteTable
from ..pte import PTRS_PER_PTE, Pte
from ..vma import AnonVma, File, Vma, VmFlags
from .layout import (
    FOLIO_KINDS,
    NP,
    Bulk,
    BulkMachine,
    BulkMM,
    BulkVma,
    P,
    decode,
    encode,
    pmd_decode,
    swp_kind,
)


class Slice(NamedTuple):
    """One PMD slice of VMA ``vma``: slots ``[lo, hi)`` of table row ``row`` (a PTE table),
    or the leaf in row ``row`` of the PMD leaf arrays (``leaf``)."""

    vma: int
    pmd: int
    start: int     # virtual address range of the slice
    end: int
    leaf: bool
    row: int
    lo: int = 0
    hi: int = 0


def _vma_pair(src_mm: MmStruct, dst_mm: MmStruct, v: BulkVma, c: BulkVma,
              files: list[str]) -> tuple[Vma, Vma]:
    file = None
    if v.backing != "anon":
        file = File(files[v.file] if v.file >= 0 else "file", "shmem" if v.backing == "shmem"
                    else "file")
    src = Vma(src_mm, v.start, v.end, VmFlags(v.flags), v.backing, file, v.pgoff,  # type: ignore[arg-type]
              anon_vma=AnonVma() if v.anon_vma else None, uffd_fork=v.uffd_fork)
    dst = Vma(dst_mm, c.start, c.end, VmFlags(c.flags), c.backing, file, c.pgoff,  # type: ignore[arg-type]
              anon_vma=AnonVma(src.anon_vma) if c.anon_vma and src.anon_vma else None,
              uffd_fork=c.uffd_fork)
    src_mm.insert_vma(src)
    dst_mm.insert_vma(dst)
    return src, dst


def mm_id_state(mach: BulkMachine, i: int) -> tuple[list[int | None], list[int], bool]:
    """The MM-id slots of folio row ``i``: ids (None for a free slot), mapcounts, shared."""
    return ([None if x < 0 else x for x in mach.mm_ids[i].tolist()],
            mach.mm_counts[i].tolist(), bool(mach.mm_shared[i]))


def set_mm_id_state(mach: BulkMachine, i: int, f: Folio) -> None:
    """Store the MM-id slots of model folio ``f`` in folio row ``i``."""
    mach.mm_ids[i] = [-1 if x is None else x for x in f.mm_ids]
    mach.mm_counts[i] = f.mm_id_mapcount
    mach.mm_shared[i] = f.mm_ids_shared


def rebuild_folio(m: Machine, mach: BulkMachine, i: int) -> Folio:
    """Folio row ``i`` of ``mach`` as a model folio of machine ``m``, at its pfn."""
    f = m.alloc_folio_at(int(mach.folio_order[i]), FOLIO_KINDS[int(mach.folio_kind[i])],
                         int(mach.folio_pfn[i]))
    swap = int(mach.swapcache[i])
    folio_restore(f, refcount=int(mach.refcount[i]), pincount=int(mach.pincount[i]),
                  pins=int(mach.pins[i]), gup_refs=int(mach.gup_refs[i]),
                  entire_mapcount=int(mach.entire[i]), ksm=bool(mach.ksm[i]),
                  migration_entries=int(mach.migration[i]), swap=None if swap < 0 else swap,
                  mm_ids=mm_id_state(mach, i))
    lo = f.pfn - mach.base
    for pg, mc, ae, hw in zip(f.pages, mach.mapcount[lo:lo + f.nr_pages].tolist(),
                              mach.ae[lo:lo + f.nr_pages].tolist(),
                              mach.hwpoison[lo:lo + f.nr_pages].tolist(), strict=True):
        page_restore(pg, mapcount=mc, anon_exclusive=ae, hwpoison=hw)
    return f


class SliceModel:
    """Model objects for some slices of ``b`` (see the module docstring)."""

    def __init__(self, b: Bulk, child_vmas: list[BulkVma | None], kernel: KernelVersion,
                 without: frozenset[str], need_resched: bool = False,
                 fail_prealloc: int | bool = False) -> None:
        self.b, self.child_vmas = b, child_vmas
        self.m = Machine()
        self.m.fail_alloc = b.machine.fail_alloc
        self.fc = ForkContext(kernel, without, False, need_resched, fail_prealloc)
        self.src, self.dst = MmStruct(self.m), MmStruct(self.m)
        # the mms' own ids, so the MM-id slots of large folios name them as pkmm.fork would
        # (the child's is the id the machine hands out next)
        self.src.mm_id, self.dst.mm_id = b.mm.mm_id, b.machine.next_mm_id
        self.src.has_pinned = b.mm.has_pinned
        self.folios: dict[int, Folio] = {}          # bulk folio row -> model folio
        self.before: dict[int, tuple[int, int, list[int], list[bool], int]] = {}
        #: folio row -> its mapcount after the traced slices (their MM-id slots are exact)
        self.mapped_after: dict[int, int] = {}
        self.swap_rows: dict[int, int] = {}          # swap offset -> bulk row
        self.vmas: dict[int, tuple[Vma, Vma]] = {}
        self.rows: dict[int, int] = {}               # PMD index -> parent table row
        self.leaves: dict[int, int] = {}             # PMD index -> parent leaf row

    # -- materialising ------------------------------------------------------------------
    def add(self, slices: Iterable[Slice]) -> None:
        """Materialise the tables / leaves of ``slices`` and what they reach."""
        for s in slices:
            if s.vma not in self.vmas:
                c = self.child_vmas[s.vma]
                assert c is not None
                names = [f.name for f in self.b.machine.files]
                self.vmas[s.vma] = _vma_pair(self.src, self.dst, self.b.mm.vmas[s.vma], c,
                                             names)
            if s.leaf and s.pmd not in self.leaves:
                self._add_leaf(s.pmd, s.row)
            elif not s.leaf and s.pmd not in self.rows:
                self._add_table(s.pmd, s.row)

    def _add_table(self, pmd: int, row: int) -> None:
        bm = self.b.mm
        lo = row * PTRS_PER_PTE
        codes = bm.bits[lo:lo + PTRS_PER_PTE].tolist()
        pfns = bm.pfn[lo:lo + PTRS_PER_PTE].tolist()
        t = PteTable()
        t.ptes = [decode(c, f) if c else None for c, f in zip(codes, pfns, strict=True)]
        self.src.pmds[pmd] = t
        self.src.nr_ptes += 1
        self.rows[pmd] = row
        for c, f in zip(codes, pfns, strict=True):
            if c & P or (c & NP and swp_kind(c).startswith("migration")):
                self._add_folio_at(f)
            elif c & NP and swp_kind(c) == "swap":
                self._add_swap(f)

    def _add_leaf(self, pmd: int, row: int) -> None:
        bm = self.b.mm
        self.src.pmds[pmd] = pmd_decode(int(bm.pmd_pfn[row]), int(bm.pmd_bits[row]))
        if pmd in set(bm.deposited.tolist()):
            self.src.deposited[pmd] = True
            self.src.nr_ptes += 1
        self.leaves[pmd] = row
        self._add_folio_at(int(bm.pmd_pfn[row]))

    def _add_folio_at(self, pfn: int) -> None:
        mach = self.b.machine
        page = pfn - mach.base
        if not 0 <= page < len(mach.page_folio) or mach.page_folio[page] < 0:
            return
        i = int(mach.page_folio[page])
        if i in self.folios:
            return
        f = rebuild_folio(self.m, mach, i)
        lo = f.pfn - mach.base
        maps = mach.mapcount[lo:lo + f.nr_pages].tolist()
        aes = mach.ae[lo:lo + f.nr_pages].tolist()
        self.folios[i] = f
        self.before[i] = (f.refcount, f.entire_mapcount, maps, aes, f.migration_entries)

    def _add_swap(self, off: int) -> None:
        mach = self.b.machine
        if off in self.swap_rows:
            return
        k = int(np.searchsorted(mach.swap_offset, off))
        assert k < len(mach.swap_offset) and mach.swap_offset[k] == off
        # pkmm: fork only counts the slot's references; its swap-cache folio stays in the
        # bulk arrays (copy_nonpresent_pte never looks at it)
        self.m.swap[off] = SwapSlot(int(mach.swap_count[k]), int(mach.swap_data[k]),
                                    bool(mach.swap_anon[k]))
        self.swap_rows[off] = k

    # -- running ------------------------------------------------------------------------
    def run(self, s: Slice, next_pfn: int) -> tuple[int, int]:
        """copy_pmd_range() of slice ``s`` with the allocator at ``next_pfn``; returns
        (its return value, the allocator's next pfn afterwards)."""
        self.m.next_pfn = next_pfn
        src, dst = self.vmas[s.vma]
        ret = copy_pmd_range(self.fc, dst, src, s.start, s.end)
        return ret, self.m.next_pfn

    # -- writing back -------------------------------------------------------------------
    def write_entries(self, s: Slice, child: BulkMM) -> None:
        """Parent and child entries of a PTE-table slice (both in parent table rows)."""
        bm = self.b.mm
        lo, hi = s.row * PTRS_PER_PTE + s.lo, s.row * PTRS_PER_PTE + s.hi
        _store(bm, lo, hi, self.src.pmds[s.pmd], s.lo)
        t = self.dst.pmds.get(s.pmd)
        if t is not None:
            _store(child, lo, hi, t, s.lo)

    def leaf_result(self, s: Slice) -> tuple[PteTable | Pmd, PteTable | Pmd | None, bool]:
        """A leaf slice: the parent's entry now (a table if it was split), the child's
        entry (a leaf, a table, or None) and whether the child got a deposited table."""
        return (self.src.pmds[s.pmd], self.dst.pmds.get(s.pmd),
                bool(self.dst.deposited.get(s.pmd)))

    def write_counters(self, child: BulkMM) -> None:
        """Folio, page and swap counters as differences; new folios; the child's rss."""
        mach = self.b.machine
        for i, f in self.folios.items():
            ref, ent, maps, aes, mig = self.before[i]
            lo = f.pfn - mach.base
            mach.refcount[i] += f.refcount - ref
            mach.entire[i] += f.entire_mapcount - ent
            mach.migration[i] += f.migration_entries - mig
            if f.order:
                set_mm_id_state(mach, i, f)
                self.mapped_after[i] = f.total_mapcount
            now = [pg.pte_mapcount for pg in f.pages]
            mach.mapcount[lo:lo + f.nr_pages] += np.array(now, np.int32) - np.array(maps, np.int32)
            for k, (pg, was) in enumerate(zip(f.pages, aes, strict=True)):
                if pg.anon_exclusive != was:
                    mach.ae[lo + k] = pg.anon_exclusive
        for off, k in self.swap_rows.items():
            mach.swap_count[k] = self.m.swap[off].count if off in self.m.swap else 0
        known = {f.pfn for f in self.folios.values()}
        for f in sorted(self.m.folios.values(), key=lambda f: f.pfn):
            if f.kind == "anon" and f.pfn not in known:
                ids = tuple(-1 if x is None else x for x in f.mm_ids)
                counts = tuple(f.mm_id_mapcount)
                mach.add_folios(np.array([f.pfn]), f.order, f.kind, f.refcount,
                                np.array([pg.pte_mapcount for pg in f.pages], np.int32),
                                np.array([pg.anon_exclusive for pg in f.pages]),
                                f.entire_mapcount,
                                ((ids[0], ids[1]), (counts[0], counts[1]), f.mm_ids_shared))
        for key, v in self.dst.rss.items():
            child.rss[key] = child.rss.get(key, 0) + v
        child.on_mmlist |= self.dst.on_mmlist
        child.huge_zero_ref |= self.dst.huge_zero_ref

    def counters(self) -> tuple[tuple[int, int, int, int, int], Counter[str],
                                Counter[tuple[str, str]]]:
        """(eagain, copies, wasted, passes, lock_breaks), ops and step counts."""
        fc = self.fc
        return ((fc.eagain, fc.copies, fc.wasted, fc.passes, fc.lock_breaks), fc.ops,
                fc.step_counts)

    def batch_sizes(self) -> Counter[int]:
        """The traced steps' batch-size histogram (ForkContext.batch_sizes: PTEs per
        step -> steps, for the steps the model counts there)."""
        return Counter(self.fc.batch_sizes)


def _store(bm: BulkMM, lo: int, hi: int, t: PteTable | Pmd, first: int) -> None:
    assert isinstance(t, PteTable)
    ptes: list[Pte | None] = t.ptes[first:first + hi - lo]
    bm.bits[lo:hi] = [encode(p) for p in ptes]
    bm.pfn[lo:hi] = [0 if p is None else p.pfn if p.present else
                     (p.swp.offset if p.swp is not None else 0) for p in ptes]


def table_codes(t: PteTable) -> tuple[np.ndarray, np.ndarray]:
    """The (pfn, bits) rows of a model PTE table."""
    pfn = np.array([0 if p is None else p.pfn if p.present else
                    (p.swp.offset if p.swp is not None else 0) for p in t.ptes], np.int64)
    return pfn, np.array([encode(p) for p in t.ptes], np.uint16)
