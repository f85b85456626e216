"""Pinning user pages: FOLL_PIN pins, plain FOLL_GET references, and a device writing
through its pin.

Mirrors: mm/gup.c __get_user_pages() (the page-table walk with faultin_page(), used by
pin_user_pages() -- FOLL_PIN | FOLL_LONGTERM, what io_uring fixed buffers and RDMA take,
R/W or R/O -- and by get_user_pages(), FOLL_GET, what vmsplice() into a pipe holds),
gup_fast_fallback() (GUP-fast and its refusals), check_vma_flags(), follow_page_pte();
mm/internal.h gup_must_unshare(); unpin_user_page(); include/linux/mm.h
mm_set_has_pinned_flag(); v6.8 .. v6.17.
Simplified: no locks, no mmap_lock retries, no migration of pages out of ZONE_MOVABLE /
CMA before a long-term pin.  Pins taken through an mm are dropped by
:func:`pkmm.mmap.exit_mmap`, as closing the pinner's files at exit would.
Taught in: notebooks/04-pinned-pages.ipynb
"""

from __future__ import annotations

import errno

from .context import FaultResult, KernelVersion
from .errors import KernelBug
from .fault import handle_mm_fault
from .folio import Folio, folio_pin, folio_put, folio_ref_add, folio_test_anon, folio_unpin
from .hugetlb import hugetlb_page
from .mm import MmStruct
from .pgtable import huge_ptep_get, pmdp_get, pte_index, ptep_get
from .pte import PAGE_SIZE, PMD_SIZE
from .vma import VM_PFNMAP, VM_SHARED, VM_WRITE, Vma, is_cow_mapping

__all__ = ["FOLL_GET", "FOLL_LONGTERM", "FOLL_PIN", "FOLL_WRITE", "check_vma_flags",
           "dma_write", "follow_page", "get_user_page_refs", "get_user_pages",
           "gup_fast_refuses", "gup_must_unshare", "pin_user_page", "put_user_page",
           "unpin_user_page",
           "unpin_user_pages_all"]


def pin_user_page(mm: MmStruct, folio: Folio, page: int, nr: int = 1) -> None:
    """Take one FOLL_PIN reference on each of pages ``page .. page + nr - 1`` of ``folio``
    through ``mm`` (the pages of one huge leaf are grabbed together, as the kernel does).

    The first pin marks the mm for good (kernel, sched/coredump.h: MMF_HAS_PINNED "FOLL_PIN
    has run, never cleared"), and only such mms pay for fork's pin check.
    """
    folio_pin(folio, nr)
    mm.has_pinned = True            # mm_set_has_pinned_flag()
    for j in range(page, page + nr):
        mm.pins[(folio, j)] += 1


def unpin_user_page(mm: MmStruct, folio: Folio, page: int, nr: int = 1) -> None:
    """Drop pins ``mm`` took with :func:`pin_user_page` on pages ``page .. page + nr - 1``
    (MMF_HAS_PINNED stays set)."""
    for j in range(page, page + nr):
        if not mm.pins[(folio, j)]:
            raise KernelBug(f"unpin_user_page: {mm.owner!r} holds no pin on page {j} of "
                            f"{folio!r}")
    for j in range(page, page + nr):
        mm.pins[(folio, j)] -= 1
        if not mm.pins[(folio, j)]:
            del mm.pins[(folio, j)]
    folio_unpin(folio, nr)


def get_user_page_refs(mm: MmStruct, folio: Folio, page: int, refs: int) -> None:
    """Hold ``refs`` plain (FOLL_GET) references, as vmsplice() into a pipe does.

    Unlike a pin this leaves MMF_HAS_PINNED alone, yet 1024 of them make a small folio
    look pinned to folio_maybe_dma_pinned() (its refcount test is fuzzy).
    """
    folio_ref_add(folio, refs)
    folio.gup_refs += refs
    mm.gup_refs.extend([(folio, page)] * refs)


def unpin_user_pages_all(mm: MmStruct) -> None:
    """Drop every pin and plain reference ``mm`` holds (at exit)."""
    for folio, _ in mm.pins.elements():
        folio_unpin(folio)
    mm.pins.clear()
    for folio, _ in mm.gup_refs:
        folio.gup_refs -= 1
        folio_put(folio)
    mm.gup_refs.clear()


def dma_write(folio: Folio, page: int, value: int) -> None:
    """A device writes ``value`` into page ``page`` of ``folio`` through its pin.

    The device does not look at page tables: whichever process still maps this page sees
    the write; one that CoW-replaced it does not (the fork-vs-GUP data-loss story).
    """
    if folio.pins <= 0:
        raise KernelBug(f"dma_write: {folio!r} is not pinned")
    folio.pages[page].data = value


# --- looking pages up through the page tables (get_user_pages / pin_user_pages) -------------

FOLL_WRITE = "FOLL_WRITE"
FOLL_GET = "FOLL_GET"
FOLL_PIN = "FOLL_PIN"
FOLL_LONGTERM = "FOLL_LONGTERM"
GupFlags = frozenset[str]


def gup_must_unshare(vma: Vma | None, flags: GupFlags, folio: Folio, index: int) -> bool:
    """Must GUP unshare this page (behind a read-only PTE) before pinning it?

    Mirrors: mm/internal.h gup_must_unshare(), v6.8 .. v6.17: only R/O FOLL_PIN.  A
    non-anon page (the zero page, a page-cache page) under FOLL_LONGTERM must become an
    exclusive anon page first in a COW mapping -- else a later write would CoW away from
    the pinned page and the pin would stop seeing the process's memory; without the
    VMA (GUP-fast) that cannot be decided, so GUP-fast refuses.  An anon page must be
    AnonExclusive.
    """
    if FOLL_WRITE in flags or FOLL_PIN not in flags:
        return False
    if not folio_test_anon(folio):
        if FOLL_LONGTERM not in flags:
            return False
        return vma is None or is_cow_mapping(vma.vm_flags)
    return not folio.pages[index].anon_exclusive


def check_vma_flags(vma: Vma, flags: GupFlags) -> int:
    """Mirrors: mm/gup.c check_vma_flags(): 0 or -EFAULT (PFN maps, a write to a
    read-only VMA, a long-term write pin of a shared file mapping that needs dirty
    tracking -- writable_file_mapping_allowed())."""
    if vma.vm_flags & VM_PFNMAP:
        return -errno.EFAULT
    if FOLL_WRITE in flags:
        if not vma.vm_flags & VM_WRITE:
            return -errno.EFAULT
        if FOLL_LONGTERM in flags and vma.backing == "file" and vma.vm_flags & VM_SHARED:
            return -errno.EFAULT
    return 0


def follow_page(vma: Vma, addr: int, flags: GupFlags) -> tuple[Folio, int] | str:
    """The page GUP may take at ``addr``, or why it needs a fault first: ``"fault"``
    (nothing present, or FOLL_WRITE on a read-only entry) or ``"unshare"``.

    Mirrors: mm/gup.c follow_page_pte() / follow_huge_pmd(), v6.8 .. v6.17.
    """
    mm = vma.vm_mm
    pmd = pmdp_get(mm, addr)
    if vma.hugetlb_kb:                           # hugetlb_follow_page_mask()
        hpte = huge_ptep_get(mm, addr & ~((vma.hugetlb_kb << 10) - 1))
        if hpte is None or not hpte.present:
            return "fault"
        write = hpte.write
        found = hugetlb_page(vma, addr)
    elif pmd is not None:
        write = pmd.write
        found = mm.machine.pfn_folio(pmd.pfn + pte_index(addr))
    else:
        pte = ptep_get(mm, addr)
        if pte is None or not pte.present or pte.protnone:
            return "fault"
        write = pte.write
        found = mm.machine.pfn_folio(pte.pfn)
    if FOLL_WRITE in flags and not write:      # can_follow_write_pte()
        return "fault"
    if found is None:
        raise KernelBug(f"follow_page: {addr:#x} maps no struct page")
    folio, i = found
    if not write and gup_must_unshare(vma, flags, folio, i):
        return "unshare"
    return folio, i


def gup_fast_refuses(mm: MmStruct, addr: int, flags: GupFlags) -> str:
    """Why the lockless walk cannot take the page at ``addr`` ("" when it can); GUP then
    takes the slow path, which faults.

    Mirrors: mm/gup.c gup_fast_pte_range() / gup_fast_pmd_leaf() and
    gup_fast_folio_allowed(), v6.8 .. v6.17.
    """
    pmd = pmdp_get(mm, addr)
    pte = None if pmd is not None else ptep_get(mm, addr)
    if pmd is None and (pte is None or not pte.present):
        return "nothing present"
    if pte is not None and pte.protnone:
        return "NUMA-hinting entry"
    write = pmd.write if pmd is not None else pte is not None and pte.write
    if FOLL_WRITE in flags and not write:
        return "read-only entry for a write pin"
    if pte is not None and pte.special:
        return "special PTE (zero page / PFN map)"
    found = mm.machine.pfn_folio((pmd.pfn + pte_index(addr)) if pmd is not None
                                 else pte.pfn if pte is not None else 0)
    if found is None:
        return "no struct page"
    folio, i = found
    if {FOLL_PIN, FOLL_LONGTERM, FOLL_WRITE} <= flags and folio.kind == "file":
        return "long-term write pin of a file page (needs dirty tracking)"
    if not write and gup_must_unshare(None, flags, folio, i):
        return "must unshare (no VMA to ask)"
    return ""


def get_user_pages(mm: MmStruct, start: int, nr: int, flags: GupFlags,
                   kernel: KernelVersion, faults: list[FaultResult],
                   fast: bool = False) -> list[tuple[Folio, int]] | int:
    """Look up ``nr`` pages from ``start`` through ``mm``'s page tables, faulting where
    needed, and grab each (FOLL_PIN: a pin, FOLL_GET: a reference).  Returns the pages,
    or a negative errno (nothing is held then).  ``faults`` collects the faults taken;
    with ``fast`` the lockless walk goes first and the slow path takes over at the first
    page it refuses (the refusal is noted as a "gup_fast" entry).

    Mirrors: mm/gup.c __get_user_pages() -> follow_page_mask() / faultin_page()
    (FAULT_FLAG_WRITE for FOLL_WRITE, FAULT_FLAG_UNSHARE on -EMLINK), and
    gup_fast_fallback() for pin_user_pages_fast(); v6.8 .. v6.17.
    """
    pages: list[tuple[Folio, int]] = []
    slow = not fast
    if FOLL_PIN in flags:
        mm.has_pinned = True            # mm_set_has_pinned_flag(), before the walk
    k = 0
    while k < nr:
        addr = start + k * PAGE_SIZE
        vma = mm.find_vma(addr)
        if vma is None or (err := check_vma_flags(vma, flags)):
            _release(mm, pages, flags)
            return -errno.EFAULT if vma is None else err
        if not slow and (why := gup_fast_refuses(mm, addr, flags)):
            fr = FaultResult(addr, FOLL_WRITE in flags)
            fr.note("gup_fast", "fallback", f"GUP-fast cannot take {addr:#x}: {why}; the "
                    "slow path takes over from here")
            faults.append(fr)
            slow = True
        while isinstance(got := follow_page(vma, addr, flags), str):
            fr = FaultResult(addr, FOLL_WRITE in flags)
            faults.append(fr)
            # faultin_page(): a write fault stores nothing (value None), it only makes
            # the entry writable; an unshare fault leaves it read-only
            handle_mm_fault(mm, addr, FOLL_WRITE in flags, kernel, fr,
                            unshare=got == "unshare")
        folio, i = got
        # kernel: follow_page_mask() reports the huge leaf's page_mask, and the pages
        # after this one in the same PMD / hugetlb entry are taken without another walk
        n = _leaf_pages_left(vma, addr, nr - k)
        _grab(mm, folio, i, flags, n)
        pages.extend((folio, i + j) for j in range(n))
        k += n
    return pages


def _leaf_pages_left(vma: Vma, addr: int, want: int) -> int:
    """1, or -- inside a PMD or hugetlb mapping -- how many of the next ``want`` pages
    that same entry maps (``page_increm`` of __get_user_pages())."""
    if vma.hugetlb_kb:
        size = vma.hugetlb_kb << 10
    elif pmdp_get(vma.vm_mm, addr) is not None:
        size = PMD_SIZE
    else:
        return 1
    return min(want, (size - addr % size) // PAGE_SIZE)


def _grab(mm: MmStruct, folio: Folio, i: int, flags: GupFlags, nr: int = 1) -> None:
    """try_grab_folio(folio, nr, flags) for pages ``i .. i + nr - 1``: pins, or plain
    references owned by the caller; the zero folio is not counted."""
    if folio.kind in ("zero", "huge_zero"):
        return
    if FOLL_PIN in flags:
        pin_user_page(mm, folio, i, nr)
    else:
        folio_ref_add(folio, nr)
        folio.gup_refs += nr


def put_user_page(folio: Folio) -> None:
    """Drop a FOLL_GET reference taken by get_user_pages() (``put_page``)."""
    if folio.kind in ("zero", "huge_zero"):
        return
    folio.gup_refs -= 1
    folio_put(folio)


def _release(mm: MmStruct, pages: list[tuple[Folio, int]], flags: GupFlags) -> None:
    for folio, i in pages:
        if folio.kind in ("zero", "huge_zero"):
            continue
        if FOLL_PIN in flags:
            unpin_user_page(mm, folio, i)
        else:
            put_user_page(folio)
