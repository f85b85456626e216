"""The bulk form: one mm's private anonymous page tables and the folios behind them, as arrays.

Simulator concept (no kernel file).  Per PTE slot: ``pfn`` (int64) and ``bits`` (uint16,
the :data:`BIT` flags below; 0 is pte_none).  Per page: logical ``_mapcount`` and
AnonExclusive.  Per folio: head pfn, order, refcount, pincount, entire (PMD) mapcount.
Non-present entries keep their exact :class:`pkmm.Pte` value in a side dict: they are
rare and take the per-entry path.  PMD leaves are arrays of (pmd index, pfn, bits).
Conversions: :func:`from_process` (Process -> bulk) and :func:`to_process` (bulk -> Process).
Taught in: notebooks/08-cost.ipynb
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import LayoutError
from ..kernels import DEFAULT_KERNEL
from ..pgtable import Pmd, PteTable
from ..pte import PAGE_SHIFT, PAGE_SIZE, PMD_SHIFT, Pte
from ..vma import VM_MAYWRITE, VM_PFNMAP, VM_SHARED

# Present-PTE bits, named once (pkmm.pte.PTE_BITS order after PRESENT); NP = non-present.
P, W, D, A, SD, UW, PN, SP, NP = 1, 2, 4, 8, 16, 32, 64, 128, 256
BIT = {"write": W, "dirty": D, "young": A, "soft_dirty": SD, "uffd_wp": UW,
       "protnone": PN, "special": SP}
# PMD leaf bits (pkmm.pgtable.Pmd fields).
PMD_BIT = {"write": 1, "dirty": 2, "young": 4, "soft_dirty": 8, "uffd_wp": 16, "huge_zero": 32}


def pte_bits(pte: Pte | None) -> int:
    """The bulk ``bits`` of one slot.

    >>> pte_bits(Pte(pfn=1, write=True, dirty=True)) == P | W | D
    True
    """
    if pte is None:
        return 0
    if not pte.present:
        return NP
    return P | sum(b for name, b in BIT.items() if getattr(pte, name))


def bits_pte(pfn: int, bits: int) -> Pte | None:
    """The :class:`Pte` value of a present or none slot (inverse of :func:`pte_bits`)."""
    if not bits:
        return None
    return Pte(pfn=pfn, **{name: bool(bits & b) for name, b in BIT.items()})


@dataclass
class BulkVma:
    """One private anonymous VMA; its slots are ``[slot0, slot0 + npages)`` of the mm."""

    start: int
    end: int
    flags: int
    slot0: int
    anon_vma: bool = True
    uffd_fork: bool = False

    @property
    def npages(self) -> int:
        return (self.end - self.start) >> PAGE_SHIFT


@dataclass
class BulkMachine:
    """Folio and page state of the pages the bulk mm maps (pfns ``base .. base+len``)."""

    base: int
    page_folio: np.ndarray          # int32 folio index per page, -1 for no folio
    mapcount: np.ndarray            # int32 logical _mapcount per page
    ae: np.ndarray                  # bool PageAnonExclusive per page
    folio_pfn: np.ndarray           # int64 head pfn per folio
    folio_order: np.ndarray         # int8
    refcount: np.ndarray            # int64
    pincount: np.ndarray            # int64 (pkmm Folio.pincount)
    entire: np.ndarray              # int32 entire_mapcount
    next_pfn: int                   # the bump allocator's next pfn
    zero_pfn: int = 0x10
    huge_zero_pfn: int = 0x200
    swap: dict[int, int] = field(default_factory=dict)   # swap offset -> swap count
    copies: list[tuple[int, int]] = field(default_factory=list)  # runs of order-0 copies
    thp_copies: list[int] = field(default_factory=list)  # head pfns of order-9 copies
                                                                  # made by fork: (pfn, n)

    def add_copies(self, pfn: int, n: int) -> None:
        """Record ``n`` order-0 copies at pfns [pfn, pfn+n) (refcount 1, mapcount 1, AE)."""
        if self.copies and sum(self.copies[-1]) == pfn:
            self.copies[-1] = (self.copies[-1][0], self.copies[-1][1] + n)
        elif n:
            self.copies.append((pfn, n))

    def alloc_thp_copy(self) -> int:
        """An order-9 eager copy (refcount 1, one PMD mapping, head AE): its head pfn,
        naturally aligned as pkmm.Machine.alloc_folio places it."""
        pfn = (self.next_pfn + 511) & ~511
        self.next_pfn = pfn + 512
        self.thp_copies.append(pfn)
        return pfn

    def page_head(self) -> np.ndarray:
        """True for the first page of each folio (pages without a folio: True)."""
        head = np.ones(len(self.page_folio), dtype=bool)
        ok = self.page_folio >= 0
        idx = np.flatnonzero(ok)
        head[idx] = self.folio_pfn[self.page_folio[idx]] == idx + self.base
        return head


@dataclass
class BulkMM:
    """One mm in bulk form."""

    vmas: list[BulkVma]
    pfn: np.ndarray
    bits: np.ndarray
    nonpresent: dict[int, Pte] = field(default_factory=dict)
    pmd_idx: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    pmd_pfn: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    pmd_bits: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint8))
    tables: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    deposited: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    rss: dict[str, int] = field(default_factory=dict)
    has_pinned: bool = False
    huge_zero_ref: bool = False
    on_mmlist: bool = False

    @property
    def nr_ptes(self) -> int:
        """Page-table pages: PTE tables plus deposited tables (mm_inc_nr_ptes)."""
        return len(self.tables) + len(self.deposited)

    def slot_addr(self, slot: int) -> int:
        """Virtual address of ``slot``."""
        for v in self.vmas:
            if v.slot0 <= slot < v.slot0 + v.npages:
                return v.start + (slot - v.slot0) * PAGE_SIZE
        raise IndexError(slot)


@dataclass
class Bulk:
    """A process in bulk form: its mm and the machine state it points at."""

    mm: BulkMM
    machine: BulkMachine


def _check_vma(v: object) -> None:
    from ..vma import Vma
    assert isinstance(v, Vma)
    if v.backing != "anon" or v.vm_flags & (VM_SHARED | VM_PFNMAP) or \
            not v.vm_flags & VM_MAYWRITE:
        raise LayoutError(f"from_process: {v.describe()} is not private anonymous memory; "
                          "the bulk form holds private anon VMAs only (fork it with pkmm.fork)")


def from_process(p: object) -> Bulk:
    """The bulk form of process ``p`` (private anon VMAs only; other processes on the
    machine contribute only through the folio counters)."""
    from ..process import Process
    assert isinstance(p, Process)
    m = p.machine
    folios = sorted((f for f in m.folios.values() if f.kind == "anon"), key=lambda f: f.pfn)
    for f in folios:
        if any(pg.hwpoison for pg in f.pages) or f.ksm:
            raise LayoutError("from_process: hwpoisoned or KSM pages are not in the bulk form")
    base = folios[0].pfn if folios else m._next_pfn
    top = max((f.pfn + f.nr_pages for f in folios), default=base)
    npg = top - base
    mach = BulkMachine(
        base=base, page_folio=np.full(npg, -1, np.int32), mapcount=np.zeros(npg, np.int32),
        ae=np.zeros(npg, bool), folio_pfn=np.array([f.pfn for f in folios], np.int64),
        folio_order=np.array([f.order for f in folios], np.int8),
        refcount=np.array([f.refcount for f in folios], np.int64),
        pincount=np.array([f.pincount for f in folios], np.int64),
        entire=np.array([f.entire_mapcount for f in folios], np.int32),
        next_pfn=m._next_pfn, zero_pfn=m.zero_folio.pfn, huge_zero_pfn=m.huge_zero_folio.pfn,
        swap={off: s.count for off, s in m.swap.items()})
    for i, f in enumerate(folios):
        lo = f.pfn - base
        mach.page_folio[lo:lo + f.nr_pages] = i
        mach.mapcount[lo:lo + f.nr_pages] = [pg._mapcount for pg in f.pages]
        mach.ae[lo:lo + f.nr_pages] = [pg.anon_exclusive for pg in f.pages]
    return Bulk(_mm_from(p.mm), mach)


def _mm_from(mm: object) -> BulkMM:
    from ..mm import MmStruct
    assert isinstance(mm, MmStruct)
    vmas, slot = [], 0
    for v in mm.vmas:
        _check_vma(v)
        vmas.append(BulkVma(v.vm_start, v.vm_end, int(v.vm_flags), slot,
                            v.anon_vma is not None, v.uffd_fork))
        slot += v.npages
    b = BulkMM(vmas, np.zeros(slot, np.int64), np.zeros(slot, np.uint16), rss=dict(mm.rss),
               has_pinned=mm.has_pinned, huge_zero_ref=mm.huge_zero_ref,
               on_mmlist=mm.on_mmlist)
    for bv in vmas:
        for k in range(bv.npages):
            a = bv.start + k * PAGE_SIZE
            t = mm.pmds.get(a >> PMD_SHIFT)
            pte = t.ptes[(a >> PAGE_SHIFT) & 511] if isinstance(t, PteTable) else None
            b.bits[bv.slot0 + k] = pte_bits(pte)
            if pte is not None and pte.present:
                b.pfn[bv.slot0 + k] = pte.pfn
            elif pte is not None:
                b.nonpresent[bv.slot0 + k] = pte
    leaves = sorted((i, t) for i, t in mm.pmds.items() if isinstance(t, Pmd))
    b.pmd_idx = np.array([i for i, _ in leaves], np.int64)
    b.pmd_pfn = np.array([t.pfn for _, t in leaves], np.int64)
    b.pmd_bits = np.array([sum(v for n, v in PMD_BIT.items() if getattr(t, n))
                           for _, t in leaves], np.uint8)
    b.tables = np.array(sorted(i for i, t in mm.pmds.items() if isinstance(t, PteTable)),
                        np.int64)
    b.deposited = np.array(sorted(i for i, on in mm.deposited.items() if on), np.int64)
    if len(b.tables) + len(b.deposited) != mm.nr_ptes:
        raise LayoutError(f"from_process: nr_ptes={mm.nr_ptes} does not match the tables")
    return b


def to_process(b: Bulk, kernel: str = DEFAULT_KERNEL) -> object:
    """A :class:`pkmm.Process` with exactly the state of ``b`` (inverse of
    :func:`from_process`).  Folio counters are copied as they are, so pins show up as
    pincount/refcount; ``Process.pins`` (which process would unpin at exit) stays empty.
    """
    from ..machine import Machine, SwapSlot
    from ..process import Process
    from ..vma import VM_SOFTDIRTY, VM_UFFD_WP, VM_WRITE, AnonVma
    mach = b.machine
    m = Machine()
    for i in range(len(mach.folio_pfn)):
        m._next_pfn = int(mach.folio_pfn[i])  # pkmm: place the folio at its recorded pfn
        f = m.alloc_folio(int(mach.folio_order[i]), "anon")
        lo = f.pfn - mach.base
        f.refcount, f.entire_mapcount = int(mach.refcount[i]), int(mach.entire[i])
        f.pins = int(mach.pincount[i])
        f._pincount = f.pins if f.order else 0
        for k, pg in enumerate(f.pages):
            pg._mapcount, pg.anon_exclusive = int(mach.mapcount[lo + k]), bool(mach.ae[lo + k])
        f.fresh = False
    m._next_pfn = mach.next_pfn
    m.swap = {off: SwapSlot(c, 0) for off, c in mach.swap.items()}
    m._next_swap = max(m.swap, default=0) + 1
    p = Process(kernel, machine=m)
    bm = b.mm
    for v in bm.vmas:
        vma = p.mmap(v.start, v.npages, write=bool(v.flags & VM_WRITE),
                     uffd_wp=bool(v.flags & VM_UFFD_WP), uffd_fork=v.uffd_fork,
                     soft_dirty_tracking=not v.flags & VM_SOFTDIRTY)
        vma.anon_vma = AnonVma() if v.anon_vma else None
    _fill_mm(p.mm, bm)
    return p


def _fill_mm(mm: object, bm: BulkMM) -> None:
    """Write ``bm``'s tables, PMD leaves, rss and flags into the model's ``mm``."""
    from ..mm import MmStruct
    assert isinstance(mm, MmStruct)
    for i in bm.tables.tolist():
        mm.pmds[i] = PteTable()
    for v in bm.vmas:
        for k in range(v.npages):
            s = v.slot0 + k
            bits = int(bm.bits[s])
            if not bits:
                continue
            a = v.start + k * PAGE_SIZE
            t = mm.pmds[a >> PMD_SHIFT]
            assert isinstance(t, PteTable)
            t.ptes[(a >> PAGE_SHIFT) & 511] = (bm.nonpresent[s] if bits & NP
                                               else bits_pte(int(bm.pfn[s]), bits))
    leaves = zip(bm.pmd_idx.tolist(), bm.pmd_pfn.tolist(), bm.pmd_bits.tolist(), strict=True)
    for i, pfn, bits in leaves:
        mm.pmds[i] = Pmd(pfn, **{n: bool(bits & v) for n, v in PMD_BIT.items()})
    mm.deposited = dict.fromkeys(bm.deposited.tolist(), True)
    mm.nr_ptes = bm.nr_ptes
    mm.rss.update(bm.rss)
    mm.has_pinned, mm.huge_zero_ref, mm.on_mmlist = bm.has_pinned, bm.huge_zero_ref, \
        bm.on_mmlist


#: Folio layouts of the benchmark (real-kernel-6.18.md §6): name -> (order, PMD-mapped).
FOLIOS = {"4K": (0, False), "16K": (2, False), "32K": (3, False), "64K": (4, False),
          "128K": (5, False), "256K": (6, False), "512K": (7, False), "1M": (8, False),
          "2M-pte": (9, False), "2M-pmd": (9, True)}
REGION_START = 1 << 30


def build_region(size_bytes: int, folio: str, state: str = "fresh") -> Bulk:
    """One private anon region of ``size_bytes`` fully populated with ``folio`` folios.

    ``state="fresh"``: every PTE writable, dirty, young and AnonExclusive (first fork);
    ``"repeat"``: as after an earlier fork whose child exited (read-only, not AE).
    """
    from ..mm import NR_MM_COUNTERS
    from ..vma import VM_MAYREAD, VM_MAYWRITE, VM_READ, VM_SOFTDIRTY, VM_WRITE
    if folio not in FOLIOS:
        raise LayoutError(f"folio={folio!r}: choose one of {', '.join(FOLIOS)}")
    if size_bytes <= 0 or size_bytes % (2 << 20):
        raise LayoutError(f"size_bytes={size_bytes}: a positive multiple of 2 MiB")
    if state not in ("fresh", "repeat"):
        raise LayoutError(f"state={state!r}: 'fresh' or 'repeat'")
    order, pmd = FOLIOS[folio]
    n, base, fresh = size_bytes >> PAGE_SHIFT, 0x1000, state == "fresh"
    nf = n >> order
    mach = BulkMachine(
        base=base, page_folio=np.repeat(np.arange(nf, dtype=np.int32), 1 << order),
        mapcount=np.zeros(n, np.int32) if pmd else np.ones(n, np.int32),
        ae=np.zeros(n, bool), folio_pfn=base + (np.arange(nf, dtype=np.int64) << order),
        folio_order=np.full(nf, order, np.int8),
        refcount=np.full(nf, 1 if pmd else 1 << order, np.int64),
        pincount=np.zeros(nf, np.int64), entire=np.full(nf, int(pmd), np.int32),
        next_pfn=base + n)
    flags = int(VM_READ | VM_WRITE | VM_MAYREAD | VM_MAYWRITE | VM_SOFTDIRTY)
    mm = BulkMM([BulkVma(REGION_START, REGION_START + size_bytes, flags, 0)],
                np.zeros(n, np.int64), np.zeros(n, np.uint16),
                rss=dict.fromkeys(NR_MM_COUNTERS, 0))
    mm.rss["MM_ANONPAGES"] = n
    idx = np.arange(REGION_START >> PMD_SHIFT, (REGION_START + size_bytes) >> PMD_SHIFT)
    if pmd:
        mach.ae[::512] = fresh
        mm.pmd_idx, mm.pmd_pfn = idx, mach.folio_pfn.copy()
        mm.pmd_bits = np.full(len(idx), PMD_BIT["dirty"] | PMD_BIT["young"]
                              | (PMD_BIT["write"] if fresh else 0), np.uint8)
        mm.deposited = idx.copy()
    else:
        mach.ae[:] = fresh
        mm.pfn[:] = np.arange(base, base + n)
        mm.bits[:] = P | D | A | (W if fresh else 0)
        mm.tables = idx
    return Bulk(mm, mach)
