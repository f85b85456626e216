"""The bulk form: one mm's page tables and the folios behind them, as numpy arrays.

Simulator concept (no kernel file).  The form is the page table itself, one row of 512
slots per PTE table the mm has (``tables``: sorted PMD indexes), so memory follows what
is mapped, not the size of the VMAs.  Per slot: ``pfn`` (int64; the swap offset or the
migration pfn of a non-present entry) and ``bits`` (uint16: the entry code below, 0 is
pte_none).  Per page of the machine: logical ``_mapcount``, AnonExclusive, hwpoison.
Per folio: head pfn, order, kind, refcount, pins, entire (PMD) mapcount, its migration
entries, its swap-cache slot, and the two MM-id slots of a large folio (ids, mapcounts,
"maybe mapped shared").  PMD leaves are arrays of (PMD index, pfn, bits).  Swap slots are
arrays of (offset, count, anon, swap-cache pfn).  hugetlb VMAs have no bulk form.
Conversions to and from :class:`pkmm.Process` live in :mod:`pkmm.fast.convert`.
Taught in: notebooks/08-cost.ipynb

The entry code of a slot (one uint16), named from :data:`pkmm.pte.PTE_BITS`:

* present: bit 0 (``P``) and one bit per named PTE bit (``W`` ``D`` ``A`` ``SD`` ``UW``
  ``PN`` ``SP``, in the table's order from bit 1);
* non-present: ``NP`` (bit 8), the swap-PTE soft-dirty / uffd-wp bits at their present
  positions, the entry kind in bits 9-11, swap-exclusive in bit 12 and the PTE-marker bits
  from bit 13.

>>> from pkmm.pte import Pte, mk_swap_pte
>>> decode(encode(Pte(pfn=5, write=True, dirty=True)), 5)
Pte(pfn=0x5 P W D)
>>> decode(encode(mk_swap_pte("swap", 7, exclusive=True)), 7)
Pte(swap off=0x7 EX)
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

from ..errors import LayoutError
from ..folio import FolioKind
from ..machine import FIRST_PFN, HUGE_ZERO_PFN, ZERO_PFN
from ..mm import MM_ANONPAGES, NR_MM_COUNTERS
from ..pgtable import Pmd
from ..pte import (
    BULK_NONPRESENT,
    BULK_PRESENT,
    MARKERS,
    PAGE_SHIFT,
    PMD_BULK_HUGE_ZERO,
    PMD_SHIFT,
    PTE_BITS,
    PTRS_PER_PTE,
    Pte,
    SwpEntry,
    SwpKind,
)
from ..vma import VM_MAYREAD, VM_MAYWRITE, VM_READ, VM_SOFTDIRTY, VM_WRITE

P, NP = BULK_PRESENT, BULK_NONPRESENT
#: The code bit of each named PTE bit (pkmm.pte.PTE_BITS, its ``bulk`` flag).
BIT: dict[str, int] = {b.name: b.bulk for b in PTE_BITS}
W, D, A, SD, UW, PN, SP = (b.bulk for b in PTE_BITS)
#: Non-present entry kinds, coded in bits 9-11 of an entry with ``NP`` set.
SWP_KINDS: tuple[SwpKind, ...] = ("swap", "migration_read", "migration_read_exclusive",
                                  "migration_write", "marker", "hwpoison")
KIND_SHIFT, EXCLUSIVE, MARKER_SHIFT = 9, 1 << 12, 13
SWP_BITS = ("soft_dirty", "uffd_wp")       # the swap-PTE bits a non-present entry keeps
#: PMD leaf bits: each bit a PMD has (its ``pmd_bulk`` flag), and the huge zero page.
PMD_BIT: dict[str, int] = {b.name: b.pmd_bulk for b in PTE_BITS if b.pmd} | {
    "huge_zero": PMD_BULK_HUGE_ZERO}
#: Folio kinds the bulk form holds (the zero folios are pfns, not rows).
FOLIO_KINDS: tuple[FolioKind, ...] = ("anon", "file", "shmem")


def swp_kind(code: int) -> SwpKind:
    """The kind of a non-present entry code."""
    return SWP_KINDS[(code >> KIND_SHIFT) & 7]


def encode(pte: Pte | None) -> int:
    """The entry code of one slot (see the module docstring)."""
    if pte is None:
        return 0
    if pte.present:
        return P | sum(b for name, b in BIT.items() if getattr(pte, name))
    s = pte.swp
    assert s is not None
    code = NP | (SWP_KINDS.index(s.kind) << KIND_SHIFT) | (EXCLUSIVE if s.exclusive else 0)
    code |= sum(1 << (MARKER_SHIFT + i) for i, m in enumerate(MARKERS) if m in s.markers)
    return code | sum(BIT[n] for n in SWP_BITS if getattr(pte, n))


def decode(code: int, pfn: int) -> Pte | None:
    """The :class:`Pte` value of a slot (inverse of :func:`encode`)."""
    if not code:
        return None
    if code & P:
        return Pte(pfn=pfn, write=bool(code & W), dirty=bool(code & D), young=bool(code & A),
                   soft_dirty=bool(code & SD), uffd_wp=bool(code & UW),
                   protnone=bool(code & PN), special=bool(code & SP))
    kind = swp_kind(code)
    markers = frozenset(m for i, m in enumerate(MARKERS) if code >> (MARKER_SHIFT + i) & 1)
    swp = SwpEntry(kind, 0 if kind == "marker" else pfn, bool(code & EXCLUSIVE), markers)
    return Pte(present=False, swp=swp, soft_dirty=bool(code & SD), uffd_wp=bool(code & UW))


def encodable(pte: Pte) -> bool:
    """Whether ``pte`` survives :func:`encode` / :func:`decode` unchanged."""
    off = pte.pfn if pte.present else (pte.swp.offset if pte.swp is not None else 0)
    return not pte.pmd and decode(encode(pte), off) == pte


def pmd_code(pmd: Pmd) -> int:
    """The bits of a PMD leaf."""
    return sum(b for name, b in PMD_BIT.items() if getattr(pmd, name))


def pmd_decode(pfn: int, code: int) -> Pmd:
    """The :class:`Pmd` value of a leaf (inverse of :func:`pmd_code`)."""
    return Pmd(pfn, **{name: bool(code & b) for name, b in PMD_BIT.items()})


@dataclass
class BulkVma:
    """One VMA: its range, flags and backing (``file`` indexes :attr:`BulkMachine.files`)."""

    start: int
    end: int
    flags: int
    backing: str = "anon"
    file: int = -1
    pgoff: int = 0
    anon_vma: bool = True
    uffd_fork: bool = False

    @property
    def npages(self) -> int:
        return (self.end - self.start) >> PAGE_SHIFT


@dataclass
class BulkFile:
    """A file or shmem inode: its page cache as file offset (pages) -> pfn."""

    name: str
    kind: str
    cache: dict[int, int] = field(default_factory=dict)


def _z(dtype: Any) -> np.ndarray:
    return np.zeros(0, dtype)


@dataclass
class BulkMachine:
    """The folios, pages and swap slots the bulk mm can reach.

    Page arrays cover pfns ``base .. base + len(page_folio)``; a page outside every
    folio has ``page_folio == -1``.
    """

    base: int
    page_folio: np.ndarray          # int32 folio row per page, -1 for none
    mapcount: np.ndarray            # int32 logical _mapcount per page
    ae: np.ndarray                  # bool PageAnonExclusive per page
    folio_pfn: np.ndarray           # int64 head pfn per folio
    folio_order: np.ndarray         # int8
    refcount: np.ndarray            # int64
    pincount: np.ndarray            # int64 folio->_pincount (large folios; 0 for small)
    entire: np.ndarray              # int32 entire_mapcount
    next_pfn: int                   # the bump allocator's next pfn
    folio_kind: np.ndarray = field(default_factory=lambda: _z(np.uint8))  # FOLIO_KINDS index
    pins: np.ndarray = field(default_factory=lambda: _z(np.int64))      # FOLL_PIN references
    gup_refs: np.ndarray = field(default_factory=lambda: _z(np.int64))  # FOLL_GET references
    ksm: np.ndarray = field(default_factory=lambda: _z(bool))
    hwpoison: np.ndarray = field(default_factory=lambda: _z(bool))      # per page
    migration: np.ndarray = field(default_factory=lambda: _z(np.int64))  # migration entries
    swapcache: np.ndarray = field(default_factory=lambda: _z(np.int64))  # folio->swap, -1
    mm_ids: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))  # -1: free
    mm_counts: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))
    mm_shared: np.ndarray = field(default_factory=lambda: _z(bool))  # maybe mapped shared
    zero_pfn: int = ZERO_PFN
    huge_zero_pfn: int = HUGE_ZERO_PFN
    swap_offset: np.ndarray = field(default_factory=lambda: _z(np.int64))  # sorted
    swap_count: np.ndarray = field(default_factory=lambda: _z(np.int64))
    swap_data: np.ndarray = field(default_factory=lambda: _z(np.int64))
    swap_anon: np.ndarray = field(default_factory=lambda: _z(bool))
    swap_cache: np.ndarray = field(default_factory=lambda: _z(np.int64))  # pfn, -1: none
    next_swap: int = 1
    next_mm_id: int = 2
    fail_alloc: int = 0
    files: list[BulkFile] = field(default_factory=list)

    def __post_init__(self) -> None:
        nf, npg = len(self.folio_pfn), len(self.page_folio)
        for name, n, dtype in (("folio_kind", nf, np.uint8), ("pins", nf, np.int64),
                               ("gup_refs", nf, np.int64), ("ksm", nf, bool),
                               ("hwpoison", npg, bool), ("migration", nf, np.int64),
                               ("mm_shared", nf, bool)):
            if len(getattr(self, name)) != n:
                setattr(self, name, np.zeros(n, dtype))
        if len(self.swapcache) != nf:
            self.swapcache = np.full(nf, -1, np.int64)
        if len(self.mm_ids) != nf:
            self.mm_ids = np.full((nf, 2), -1, np.int64)
            self.mm_counts = np.zeros((nf, 2), np.int64)
        ns = len(self.swap_offset)
        if len(self.swap_anon) != ns:
            self.swap_anon = np.ones(ns, bool)
            self.swap_cache = np.full(ns, -1, np.int64)

    def copy(self) -> BulkMachine:
        """An independent copy (arrays copied)."""
        return replace(self, **{f.name: getattr(self, f.name).copy() for f in fields(self)
                                if isinstance(getattr(self, f.name), np.ndarray)},
                       files=[BulkFile(f.name, f.kind, dict(f.cache)) for f in self.files])

    def folio_end(self) -> np.ndarray:
        """Per folio: the pfn after its last page."""
        end: np.ndarray = self.folio_pfn + (np.int64(1) << self.folio_order.astype(np.int64))
        return end

    def grow(self, top: int) -> None:
        """Extend the page arrays to cover pfns below ``top``."""
        extra = top - self.base - len(self.page_folio)
        if extra > 0:
            self.page_folio = np.concatenate([self.page_folio, np.full(extra, -1, np.int32)])
            for name, dtype in (("mapcount", np.int32), ("ae", bool), ("hwpoison", bool)):
                setattr(self, name, np.concatenate([getattr(self, name),
                                                    np.zeros(extra, dtype)]))

    def add_folios(self, pfn: np.ndarray, order: int, kind: str, refcount: int,
                   mapcount: np.ndarray, ae: np.ndarray, entire: int = 0,
                   mm_id: tuple[tuple[int, int], tuple[int, int], bool] | None = None) -> None:
        """Append folios of one ``order`` at head pfns ``pfn`` (new copies made by fork);
        ``mapcount``/``ae`` give each new page's state, folio after folio; ``mm_id``
        the MM-id slots of each (ids, mapcounts, shared; none taken by default)."""
        if not len(pfn):
            return
        nr = 1 << order
        self.grow(int(pfn.max()) + nr)
        first = len(self.folio_pfn)
        n = len(pfn)
        self.folio_pfn = np.concatenate([self.folio_pfn, pfn.astype(np.int64)])
        ids, counts, shared = mm_id or ((-1, -1), (0, 0), False)
        for name, value, dtype in (("folio_order", order, np.int8),
                                   ("folio_kind", FOLIO_KINDS.index(kind), np.uint8),
                                   ("refcount", refcount, np.int64), ("pincount", 0, np.int64),
                                   ("entire", entire, np.int32), ("pins", 0, np.int64),
                                   ("gup_refs", 0, np.int64), ("ksm", False, bool),
                                   ("migration", 0, np.int64), ("swapcache", -1, np.int64),
                                   ("mm_shared", shared, bool)):
            setattr(self, name, np.concatenate([getattr(self, name),
                                                np.full(n, value, dtype)]))
        self.mm_ids = np.concatenate([self.mm_ids, np.tile(np.array(ids, np.int64), (n, 1))])
        self.mm_counts = np.concatenate([self.mm_counts,
                                         np.tile(np.array(counts, np.int64), (n, 1))])
        pages = (pfn[:, None] - self.base + np.arange(nr)).ravel()
        self.page_folio[pages] = np.repeat(np.arange(first, first + n, dtype=np.int32), nr)
        self.mapcount[pages] = mapcount
        self.ae[pages] = ae


@dataclass
class BulkMM:
    """One mm in bulk form: VMAs, PTE tables (512 slots each), PMD leaves, counters."""

    vmas: list[BulkVma]
    tables: np.ndarray              # int64 sorted PMD indexes that hold a PTE table
    pfn: np.ndarray                 # int64, 512 per table
    bits: np.ndarray                # uint16 entry codes, 512 per table
    pmd_idx: np.ndarray = field(default_factory=lambda: _z(np.int64))   # sorted leaves
    pmd_pfn: np.ndarray = field(default_factory=lambda: _z(np.int64))
    pmd_bits: np.ndarray = field(default_factory=lambda: _z(np.uint8))
    deposited: np.ndarray = field(default_factory=lambda: _z(np.int64))
    rss: dict[str, int] = field(default_factory=lambda: dict.fromkeys(NR_MM_COUNTERS, 0))
    has_pinned: bool = False
    huge_zero_ref: bool = False
    on_mmlist: bool = False
    mm_id: int = 1                  # CONFIG_MM_ID: this mm's id on the machine

    @property
    def nr_ptes(self) -> int:
        """Page-table pages: PTE tables plus deposited tables (mm_inc_nr_ptes)."""
        return len(self.tables) + len(self.deposited)

    def copy(self) -> BulkMM:
        """An independent copy."""
        return replace(self, vmas=[replace(v) for v in self.vmas], rss=dict(self.rss),
                       **{n: getattr(self, n).copy() for n in
                          ("tables", "pfn", "bits", "pmd_idx", "pmd_pfn", "pmd_bits",
                           "deposited")})

    def slot_of(self, addr: int) -> int | None:
        """The slot of ``addr``, or None when no PTE table covers it."""
        i = int(np.searchsorted(self.tables, addr >> PMD_SHIFT))
        if i == len(self.tables) or self.tables[i] != addr >> PMD_SHIFT:
            return None
        return i * PTRS_PER_PTE + ((addr >> PAGE_SHIFT) & (PTRS_PER_PTE - 1))

    def slot_addrs(self) -> np.ndarray:
        """The virtual address of every slot."""
        return ((np.repeat(self.tables, PTRS_PER_PTE) << PMD_SHIFT)
                + (np.tile(np.arange(PTRS_PER_PTE, dtype=np.int64), len(self.tables))
                   << PAGE_SHIFT))


@dataclass
class Bulk:
    """A process in bulk form: its mm, the machine state it points at, and the pins and
    plain GUP references it holds (``(folio row, page)``, as :class:`pkmm.Process`)."""

    mm: BulkMM
    machine: BulkMachine
    kernel: str = ""
    pins: list[tuple[int, int]] = field(default_factory=list)
    gup_refs: list[tuple[int, int]] = field(default_factory=list)

    def copy(self) -> Bulk:
        """An independent copy, e.g. to fork one layout under several kernels."""
        return Bulk(self.mm.copy(), self.machine.copy(), self.kernel, list(self.pins),
                    list(self.gup_refs))


#: Folio layouts of the benchmark: name -> (order, PMD-mapped).
FOLIOS = {"4K": (0, False), "16K": (2, False), "32K": (3, False), "64K": (4, False),
          "128K": (5, False), "256K": (6, False), "512K": (7, False), "1M": (8, False),
          "2M-pte": (9, False), "2M-pmd": (9, True)}
REGION_START = 1 << 30
MAX_REGION = 64 << 30


def build_region(size_bytes: int, folio: str, state: str = "fresh") -> Bulk:
    """One private anon region of ``size_bytes`` fully populated with ``folio`` folios.

    ``state="fresh"``: every PTE writable, dirty, young and AnonExclusive (first fork);
    ``"repeat"``: as after an earlier fork whose child exited (read-only, not AE).
    """
    if folio not in FOLIOS:
        raise LayoutError(f"folio={folio!r}: choose one of {', '.join(FOLIOS)}")
    if not isinstance(size_bytes, int) or isinstance(size_bytes, bool) or size_bytes <= 0 \
            or size_bytes % (2 << 20) or size_bytes > MAX_REGION:
        raise LayoutError(f"size_bytes={size_bytes!r}: a positive multiple of 2 MiB, at "
                          f"most {MAX_REGION >> 30} GiB")
    if state not in ("fresh", "repeat"):
        raise LayoutError(f"state={state!r}: 'fresh' or 'repeat'")
    order, pmd = FOLIOS[folio]
    n, base, fresh = size_bytes >> PAGE_SHIFT, FIRST_PFN, state == "fresh"
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
    idx = np.arange(REGION_START >> PMD_SHIFT, (REGION_START + size_bytes) >> PMD_SHIFT)
    vma = BulkVma(REGION_START, REGION_START + size_bytes, flags)
    if pmd:
        mach.ae[::512] = fresh
        mm = BulkMM([vma], _z(np.int64), _z(np.int64), _z(np.uint16), pmd_idx=idx,
                    pmd_pfn=mach.folio_pfn.copy(), deposited=idx.copy(),
                    pmd_bits=np.full(len(idx), PMD_BIT["dirty"] | PMD_BIT["young"]
                                     | (PMD_BIT["write"] if fresh else 0), np.uint8))
    else:
        mach.ae[:] = fresh
        mm = BulkMM([vma], idx, np.arange(base, base + n, dtype=np.int64),
                    np.full(n, P | D | A | (W if fresh else 0), np.uint16))
    mm.rss[MM_ANONPAGES] = n
    if order:           # CONFIG_MM_ID: this mm owns slot 0 of every large folio, alone
        mach.mm_ids[:, 0] = mm.mm_id
        mach.mm_counts[:, 0] = 1 if pmd else 1 << order
    return Bulk(mm, mach)
