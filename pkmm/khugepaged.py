"""MADV_COLLAPSE: gather the 512 PTEs of a 2 MiB range into one new PMD-mapped THP.

Mirrors: mm/khugepaged.c madvise_collapse() -> hpage_collapse_scan_pmd() ->
collapse_huge_page() (__collapse_huge_page_isolate(), __collapse_huge_page_copy()) with
is_refcount_suitable(), for anonymous memory, v6.8 .. v6.17.  MADV_COLLAPSE is not
khugepaged: no max_ptes_none / max_ptes_swap / max_ptes_shared limits apply.
Simplified: swapped-out PTEs fail the collapse (-EAGAIN) instead of being swapped in
first; no file/shmem collapse.
Taught in: notebooks/07-after-fork.ipynb

The collapse always copies: a new exclusive THP replaces this process's PTEs, and pages
another process still maps stay its own (so a collapse after fork cannot leak writes).
"""

from __future__ import annotations

import errno

from .folio import Folio, folio_put, folio_test_anon
from .mm import MM_ANONPAGES, MmStruct
from .pgtable import (
    Pmd,
    pgtable_trans_huge_deposit,
    pmdp_collapse_flush,
    pmdp_get,
    pte_offset_map,
    ptep_get_and_clear,
    set_pmd_at,
)
from .pte import HPAGE_PMD_NR, HPAGE_PMD_ORDER, PMD_SIZE
from .rmap import alloc_new_anon_page, folio_remove_rmap_ptes
from .vma import VM_NOHUGEPAGE, VM_SHARED, VM_WRITE, Vma, userfaultfd_wp

__all__ = ["collapse_huge_page", "is_refcount_suitable", "madvise_collapse"]


def is_refcount_suitable(folio: Folio) -> bool:
    """Mirrors: mm/khugepaged.c is_refcount_suitable(): no references beyond the
    mappings (and the swap cache) -- no pin, no pipe, nothing a collapse would strand."""
    expected = folio.mapcount + (folio.nr_pages if folio.swap is not None else 0)
    return folio.refcount == expected


def _scan(vma: Vma, haddr: int) -> tuple[list[int], list[tuple[Folio, int] | None]] | int:
    """hpage_collapse_scan_pmd() + __collapse_huge_page_isolate(): the contents of the 512
    pages (0 for none and zero-page PTEs) and what maps them, or a negative errno."""
    mm = vma.vm_mm
    table = pte_offset_map(mm, haddr)
    if table is None:
        return -errno.EINVAL
    data: list[int] = []
    pages: list[tuple[Folio, int] | None] = []
    for pte in table.ptes:
        if pte is None or (pte.present and pte.special):
            data.append(0)
            pages.append(None)
            continue
        if not pte.present:
            return -errno.EAGAIN            # swap/migration entry (pkmm: not swapped in)
        if pte.uffd_wp and userfaultfd_wp(vma):
            return -errno.EINVAL            # SCAN_PTE_UFFD_WP
        found = mm.machine.pfn_folio(pte.pfn)
        if found is None or not folio_test_anon(found[0]):
            return -errno.EINVAL
        folio, i = found
        if not is_refcount_suitable(folio):
            return -errno.EAGAIN            # SCAN_PAGE_COUNT: "has any GUP pins"
        data.append(folio.pages[i].data)
        pages.append(found)
    return data, pages


def collapse_huge_page(vma: Vma, haddr: int) -> int:
    """Copy the 2 MiB at ``haddr`` into a new THP and map it with one PMD in place of the
    PTEs (whose table becomes the deposited one).  0 or a negative errno."""
    mm = vma.vm_mm
    scanned = _scan(vma, haddr)
    if isinstance(scanned, int):
        return scanned
    data, pages = scanned
    new = alloc_new_anon_page(vma, data, order=HPAGE_PMD_ORDER)
    if new is None:
        return -errno.ENOMEM
    table = pte_offset_map(mm, haddr)
    assert table is not None
    for i, found in enumerate(pages):
        ptep_get_and_clear(table, i)
        if found is not None:
            folio, idx = found
            folio_remove_rmap_ptes(folio, idx, 1, mm)
            mm.add_mm_counter(MM_ANONPAGES, -1)
            folio_put(folio)
    # kernel: the emptied PTE table is deposited with the new PMD
    pmdp_collapse_flush(mm, haddr)
    set_pmd_at(mm, haddr, Pmd(pfn=new.pfn, write=bool(vma.vm_flags & VM_WRITE),
                              dirty=True, soft_dirty=True, young=True))
    pgtable_trans_huge_deposit(mm, haddr)
    mm.add_mm_counter(MM_ANONPAGES, HPAGE_PMD_NR)
    return 0


def madvise_collapse(mm: MmStruct, start: int, end: int) -> int:
    """MADV_COLLAPSE of [start, end): collapse every whole 2 MiB range inside it.

    Mirrors: mm/khugepaged.c madvise_collapse(): -EINVAL where THP is not allowed (not
    private anonymous, MADV_NOHUGEPAGE) -- the sysfs "enabled" setting does not matter;
    an already PMD-mapped range counts as collapsed.
    """
    hstart = (start + PMD_SIZE - 1) & ~(PMD_SIZE - 1)
    hend = end & ~(PMD_SIZE - 1)
    for haddr in range(hstart, hend, PMD_SIZE):
        vma = mm.find_vma(haddr)
        if vma is None or haddr + PMD_SIZE > vma.vm_end or vma.backing != "anon" or \
                vma.vm_flags & (VM_SHARED | VM_NOHUGEPAGE) or vma.hugetlb_kb:
            return -errno.EINVAL
        if pmdp_get(mm, haddr) is not None:
            continue                        # SCAN_PMD_MAPPED
        ret = collapse_huge_page(vma, haddr)
        if ret:
            return ret
    return 0
