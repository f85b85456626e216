"""Between the model and the bulk form: from_process, to_process, and comparable snapshots.

Simulator concept.  :func:`from_process` takes any :class:`pkmm.Process` (every VMA kind,
file / shmem / anon folios, zero pages, PFN maps, swap, migration and marker entries, PMD
leaves, pins); :func:`to_process` rebuilds one with exactly that state on a new machine.
Two snapshots are equal exactly when every PTE, PMD and table of the mm, its rss, nr_ptes
and mm flags, every folio's counters and per-page state, the page caches, the allocator
and the swap counts agree.  The bulk form does not carry page contents.
Taught in: notebooks/08-cost.ipynb
"""

from __future__ import annotations

from operator import attrgetter
from typing import Any

import numpy as np

from ..errors import LayoutError
from ..folio import Folio
from ..kernels import DEFAULT_KERNEL, get_kernel
from ..machine import Machine, SwapSlot
from ..mm import MmStruct
from ..pgtable import Pmd, PteTable
from ..process import Process
from ..pte import PAGE_SHIFT, PMD_SHIFT, PTRS_PER_PTE, Pte
from ..vma import AnonVma, File, Vma, VmFlags
from .hard import rebuild_folio
from .layout import (
    FOLIO_KINDS,
    Bulk,
    BulkFile,
    BulkMachine,
    BulkMM,
    BulkVma,
    decode,
    encodable,
    encode,
    pmd_code,
    pmd_decode,
)

#: What an entry's code depends on: every field of a Pte but its pfn, and of its swap
#: payload all but the offset.
_PTE = attrgetter("present", "write", "dirty", "young", "soft_dirty", "uffd_wp", "protnone",
                  "special", "pmd")
_SWP = attrgetter("kind", "exclusive", "markers")


def _fields(pte: Pte) -> tuple[object, ...]:
    return _PTE(pte) if pte.swp is None else _PTE(pte) + _SWP(pte.swp)


def from_process(p: Process) -> Bulk:
    """The bulk form of process ``p``; other processes on its machine show only in the
    folio counters.  Raises :class:`pkmm.LayoutError` for something that is not a live
    process."""
    if not isinstance(p, Process):
        raise LayoutError(f"from_process: p={p!r} is not a pkmm.Process; pass one")
    if p.exited:
        raise LayoutError(f"from_process: process {p.name!r} has exited; pass a live one")
    m = p.machine
    folios = sorted((f for f in m.folios.values() if f.kind in FOLIO_KINDS),
                    key=lambda f: f.pfn)
    row = {f.pfn: i for i, f in enumerate(folios)}
    mach = _machine_from(m, folios)
    files: list[File] = []
    vmas = []
    for v in p.mm.vmas:
        fi = -1
        if v.vm_file is not None:
            if v.vm_file not in files:
                files.append(v.vm_file)
            fi = files.index(v.vm_file)
        vmas.append(BulkVma(v.vm_start, v.vm_end, int(v.vm_flags), v.backing, fi,
                            v.vm_pgoff, v.anon_vma is not None, v.uffd_fork))
    mach.files = [BulkFile(f.name, f.kind, {off: pg.pfn for off, pg in f.cache.items()})
                  for f in files]
    return Bulk(_mm_from(p.mm, vmas), mach, p.kernel,
                [(row[f.pfn], i) for f, i in p.pins],
                [(row[f.pfn], i) for f, i in p.gup_refs])


def _machine_from(m: Machine, folios: list[Folio]) -> BulkMachine:
    base = folios[0].pfn if folios else m.next_pfn
    top = max((f.pfn + f.nr_pages for f in folios), default=base)
    npg = top - base
    mach = BulkMachine(
        base=base, page_folio=np.full(npg, -1, np.int32), mapcount=np.zeros(npg, np.int32),
        ae=np.zeros(npg, bool), folio_pfn=np.array([f.pfn for f in folios], np.int64),
        folio_order=np.array([f.order for f in folios], np.int8),
        refcount=np.array([f.refcount for f in folios], np.int64),
        pincount=np.array([f.pincount if f.order else 0 for f in folios], np.int64),
        entire=np.array([f.entire_mapcount for f in folios], np.int32),
        next_pfn=m.next_pfn,
        folio_kind=np.array([FOLIO_KINDS.index(f.kind) for f in folios], np.uint8),
        pins=np.array([f.pins for f in folios], np.int64),
        gup_refs=np.array([f.gup_refs for f in folios], np.int64),
        ksm=np.array([f.ksm for f in folios], bool), hwpoison=np.zeros(npg, bool),
        zero_pfn=m.zero_folio.pfn, huge_zero_pfn=m.huge_zero_folio.pfn,
        next_swap=m.next_swap, fail_alloc=m.fail_alloc)
    for i, f in enumerate(folios):
        lo = f.pfn - base
        mach.page_folio[lo:lo + f.nr_pages] = i
        mach.mapcount[lo:lo + f.nr_pages] = [pg.pte_mapcount for pg in f.pages]
        mach.ae[lo:lo + f.nr_pages] = [pg.anon_exclusive for pg in f.pages]
        mach.hwpoison[lo:lo + f.nr_pages] = [pg.hwpoison for pg in f.pages]
    offs = sorted(m.swap)
    mach.swap_offset = np.array(offs, np.int64)
    mach.swap_count = np.array([m.swap[o].count for o in offs], np.int64)
    mach.swap_data = np.array([m.swap[o].data for o in offs], np.int64)
    return mach


def _mm_from(mm: MmStruct, vmas: list[BulkVma]) -> BulkMM:
    tables = sorted(i for i, t in mm.pmds.items() if isinstance(t, PteTable))
    pfn = np.zeros(len(tables) * PTRS_PER_PTE, np.int64)
    bits = np.zeros(len(tables) * PTRS_PER_PTE, np.uint16)
    codes: dict[tuple[object, ...], int] = {}
    for k, i in enumerate(tables):
        t = mm.pmds[i]
        assert isinstance(t, PteTable)
        for j, pte in enumerate(t.ptes):
            if pte is None:
                continue
            key = _fields(pte)
            code = codes.get(key)
            if code is None:        # pkmm: encode each distinct kind of entry once
                if not encodable(pte):
                    raise LayoutError(f"from_process: the entry {pte!r} at "
                                      f"{(i << PMD_SHIFT) + (j << PAGE_SHIFT):#x} has no "
                                      "bulk encoding; fork this process with pkmm.fork")
                code = codes[key] = encode(pte)
            s = k * PTRS_PER_PTE + j
            bits[s] = code
            pfn[s] = pte.pfn if pte.present else (pte.swp.offset if pte.swp else 0)
    leaves = sorted((i, t) for i, t in mm.pmds.items() if isinstance(t, Pmd))
    b = BulkMM(vmas, np.array(tables, np.int64), pfn, bits,
               pmd_idx=np.array([i for i, _ in leaves], np.int64),
               pmd_pfn=np.array([t.pfn for _, t in leaves], np.int64),
               pmd_bits=np.array([pmd_code(t) for _, t in leaves], np.uint8),
               deposited=np.array(sorted(i for i, on in mm.deposited.items() if on), np.int64),
               rss=dict(mm.rss), has_pinned=mm.has_pinned, huge_zero_ref=mm.huge_zero_ref,
               on_mmlist=mm.on_mmlist)
    if b.nr_ptes != mm.nr_ptes:
        raise LayoutError(f"from_process: nr_ptes={mm.nr_ptes} does not match the "
                          f"{b.nr_ptes} tables of the mm")
    return b


def to_process(b: Bulk, kernel: str | None = None) -> Process:
    """A :class:`pkmm.Process` with exactly the state of ``b``, on a new machine (inverse
    of :func:`from_process`; page contents start at 0)."""
    if not isinstance(b, Bulk):
        raise LayoutError(f"to_process: b={b!r} is not a pkmm.fast.Bulk")
    name = get_kernel(kernel or b.kernel or DEFAULT_KERNEL).name
    mach = b.machine
    m = Machine()
    folios = []
    for i in range(len(mach.folio_pfn)):
        folios.append(rebuild_folio(m, mach, i))
    m.next_pfn = mach.next_pfn
    m.swap = {int(o): SwapSlot(int(c), int(d)) for o, c, d in
              zip(mach.swap_offset, mach.swap_count, mach.swap_data, strict=True)}
    m.next_swap = mach.next_swap
    m.fail_alloc = mach.fail_alloc
    p = Process(name, machine=m)
    files = [File(f.name, "shmem" if f.kind == "shmem" else "file",
                  {off: _page(m, pfn) for off, pfn in f.cache.items()}) for f in mach.files]
    for v in b.mm.vmas:
        p.mm.insert_vma(Vma(p.mm, v.start, v.end, VmFlags(v.flags), v.backing,  # type: ignore[arg-type]
                            files[v.file] if v.file >= 0 else None, v.pgoff,
                            anon_vma=AnonVma() if v.anon_vma else None,
                            uffd_fork=v.uffd_fork))
    _fill_mm(p.mm, b.mm)
    p.mm.pins[:] = [(folios[i], pg) for i, pg in b.pins]
    p.mm.gup_refs[:] = [(folios[i], pg) for i, pg in b.gup_refs]
    _mm_ids(p.mm, folios)
    return p


def _page(m: Machine, pfn: int) -> Any:
    found = m.pfn_folio(pfn)
    if found is None:
        raise LayoutError(f"to_process: a page cache entry points at pfn {pfn:#x}, which no "
                          "folio holds")
    return found[0].pages[found[1]]


def _fill_mm(mm: MmStruct, bm: BulkMM) -> None:
    """Write ``bm``'s tables, PMD leaves, rss and flags into the model's ``mm``."""
    for k, i in enumerate(bm.tables.tolist()):
        t = PteTable()
        lo = k * PTRS_PER_PTE
        codes, pfns = bm.bits[lo:lo + PTRS_PER_PTE].tolist(), bm.pfn[lo:lo + PTRS_PER_PTE].tolist()
        t.ptes = [decode(c, f) if c else None for c, f in zip(codes, pfns, strict=True)]
        mm.pmds[i] = t
    for i, pfn, bits in zip(bm.pmd_idx.tolist(), bm.pmd_pfn.tolist(), bm.pmd_bits.tolist(),
                            strict=True):
        mm.pmds[i] = pmd_decode(pfn, bits)
    mm.deposited = dict.fromkeys(bm.deposited.tolist(), True)
    mm.nr_ptes = bm.nr_ptes
    mm.rss.update(bm.rss)
    mm.has_pinned, mm.huge_zero_ref, mm.on_mmlist = bm.has_pinned, bm.huge_zero_ref, \
        bm.on_mmlist


def _mm_ids(mm: MmStruct, folios: list[Folio]) -> None:
    """CONFIG_MM_ID per-mm mapcounts: this mm's own mappings, the rest to one other mm
    (so "maybe mapped shared" reads as it did)."""
    own: dict[int, int] = {}
    for t in mm.pmds.values():
        if isinstance(t, Pmd):
            found = mm.machine.pfn_folio(t.pfn)
            if found is not None and not t.huge_zero:
                own[found[0].pfn] = own.get(found[0].pfn, 0) + 1
            continue
        for pte in t.ptes:
            if pte is not None and pte.present and not pte.special:
                found = mm.machine.pfn_folio(pte.pfn)
                if found is not None:
                    own[found[0].pfn] = own.get(found[0].pfn, 0) + 1
    other = mm.machine.new_mm_id()
    for f in folios:
        mine = own.get(f.pfn, 0)
        f.mm_mapcount = {k: v for k, v in ((mm.mm_id, mine), (other, f.mapcount - mine)) if v}


# --- what dup_mmap decides per VMA ------------------------------------------------------

#: A kind of VMA for dup_mmap: (kernel, ablations, flags, backing, anon_vma, uffd_fork).
DupKey = tuple[str, frozenset[str], int, str, bool, bool]
_DUP_CACHE: dict[DupKey, tuple[BulkVma | None, bool]] = {}


def dup_vmas(b: Bulk, kernel: str, without: frozenset[str]
             ) -> tuple[list[BulkVma | None], list[bool]]:
    """Per VMA of ``b``: the child's VMA (None when fork gives the child none there) and
    whether fork copies its page tables.

    Found by running :func:`pkmm.fork` itself on a skeleton process: each VMA shrunk to
    its first page, holding one PTE marker, so dup_mmap() and vma_needs_copy() decide as
    they would for the real VMA; the decisions are cached per kind of VMA.
    """
    keys: list[DupKey] = [(kernel, without, v.flags, v.backing, v.anon_vma, v.uffd_fork)
                          for v in b.mm.vmas]
    todo = [k for k in dict.fromkeys(keys) if k not in _DUP_CACHE]
    if todo:
        _dup_skeleton(kernel, without, todo)
    out: list[BulkVma | None] = []
    copied = []
    for v, k in zip(b.mm.vmas, keys, strict=True):
        c, copy = _DUP_CACHE[k]
        out.append(None if c is None else BulkVma(v.start, v.end, c.flags, v.backing, v.file,
                                                  v.pgoff, c.anon_vma, c.uffd_fork))
        copied.append(copy)
    return out, copied


def _dup_skeleton(kernel: str, without: frozenset[str],
                  keys: list[DupKey]) -> None:
    from ..fork import fork
    from ..pgtable import ptep_get, set_pte_at
    from ..pte import PAGE_SIZE, PMD_SIZE, make_pte_marker
    p = Process(kernel)
    starts = []
    for n, (_, _, flags, backing, anon_vma, uffd_fork) in enumerate(keys):
        a = n * PMD_SIZE
        file = None if backing == "anon" else File(f"skeleton{n}", "shmem" if backing == "shmem"
                                                   else "file")
        p.mm.insert_vma(Vma(p.mm, a, a + PAGE_SIZE, VmFlags(flags), backing, file,  # type: ignore[arg-type]
                            anon_vma=AnonVma() if anon_vma else None, uffd_fork=bool(uffd_fork)))
        set_pte_at(p.mm, a, make_pte_marker(frozenset({"poisoned"})))
        starts.append(a)
    child = fork(p, kernel, without, detail=False).child
    for k, a in zip(keys, starts, strict=True):
        c = child.mm.find_vma(a)
        cv = None if c is None else BulkVma(a, a + PAGE_SIZE, int(c.vm_flags), c.backing,
                                            anon_vma=c.anon_vma is not None,
                                            uffd_fork=c.uffd_fork)
        _DUP_CACHE[k] = (cv, ptep_get(child.mm, a) is not None)
