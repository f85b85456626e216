"""PMD-mapped THPs at fork and on write faults, and splitting a PMD into PTEs.

Mirrors: mm/huge_memory.c copy_huge_pmd(), __split_huge_pmd_locked(),
do_huge_pmd_wp_page(), do_huge_zero_wp_pmd() (v6.8 .. v6.17).
Simplified: no THP migration entries at PMD level, no huge PFN maps (v6.17's special
PMD branch), no DAX; the deposited page table is a counter.
Taught in: notebooks/07-after-fork.ipynb
"""

from __future__ import annotations

import errno
from dataclasses import replace
from typing import TYPE_CHECKING

from .folio import folio_get, folio_put
from .mm import MM_ANONPAGES
from .pgtable import Pmd, PteTable, pmd_clear_uffd_wp, pmd_index, pmd_mkold, pmd_wrprotect
from .pte import HPAGE_PMD_ORDER, PMD_SIZE, Pte
from .rmap import folio_add_anon_rmap_ptes, folio_remove_rmap_pmd, folio_try_dup_anon_rmap_pmd
from .vma import Vma, userfaultfd_wp, vma_is_anonymous

if TYPE_CHECKING:  # pragma: no cover
    from .context import ForkContext
    from .mm import MmStruct

EAGAIN = errno.EAGAIN
HPAGE_PMD_NR = 1 << HPAGE_PMD_ORDER


def copy_huge_pmd(fc: ForkContext, dst_vma: Vma, src_vma: Vma, addr: int) -> int:
    """Share a PMD-mapped THP with the child, or split it when it may be pinned.

    Mirrors: mm/huge_memory.c copy_huge_pmd(), v6.8 .. v6.17.
    Returns 0 (done: shared, or nothing to copy), -EAGAIN (the parent's PMD was split;
    the caller copies the 512 PTEs), or -ENOMEM.
    """
    f = "copy_huge_pmd"
    src_mm, dst_mm = src_vma.vm_mm, dst_vma.vm_mm
    haddr = addr & ~(PMD_SIZE - 1)
    pmd = src_mm.pmds[pmd_index(haddr)]
    assert isinstance(pmd, Pmd)
    if not vma_is_anonymous(dst_vma):
        # kernel: "Skip if it can be refilled on fault" (file and shmem THPs)
        fc.emit(f, "skip:file-thp", "file/shmem THP at PMD level is never copied: the child "
                "PMD stays empty and refaults from the page cache", haddr)
        return 0
    if pmd.huge_zero:
        dst_mm.huge_zero_ref = True
        fc.emit(f, "huge-zero", "huge zero PMD: the child takes its mm-level reference; "
                "no rss, no folio refcount", haddr)
    else:
        found = src_mm.machine.pfn_folio(pmd.pfn)
        assert found is not None
        folio = found[0]
        folio_get(folio)
        fc.ops["refcount_ops"] += 1
        if folio_try_dup_anon_rmap_pmd(folio, dst_vma, src_vma,
                                       ignore_pins=fc.ablated("pinned-copy")):
            folio.refcount -= 1
            fc.emit(f, "split:pinned", "head page is AnonExclusive and the folio may be "
                    "pinned: split the parent's PMD into 512 PTEs and copy per page",
                    haddr, nr=HPAGE_PMD_NR)
            __split_huge_pmd(src_mm, src_vma, haddr)
            return -EAGAIN
        dst_mm.add_mm_counter(MM_ANONPAGES, HPAGE_PMD_NR)
        fc.emit(f, "share", "PMD shared: head page loses AnonExclusive, entire_mapcount + 1, "
                "child rss ANON + 512", haddr, nr=HPAGE_PMD_NR)
    dst_mm.nr_ptes += 1
    dst_mm.deposited[pmd_index(haddr)] = True
    if not fc.ablated("cow-wrprotect"):
        src_mm.pmds[pmd_index(haddr)] = pmd_wrprotect(pmd)
        pmd = pmd_wrprotect(pmd)
        fc.ops["wrprotect_calls"] += 1
    if not userfaultfd_wp(dst_vma):
        pmd = pmd_clear_uffd_wp(pmd)
    dst_mm.pmds[pmd_index(haddr)] = pmd_mkold(pmd)
    fc.ops["pmd_copies"] += 1
    fc.emit(f, "set-pmd", "parent PMD write-protected (always: only private anon VMAs get "
            "here); child PMD read-only and old, dirty kept", haddr)
    return 0


def __split_huge_pmd(mm: MmStruct, vma: Vma, haddr: int) -> None:
    """Replace one process's PMD mapping by 512 PTEs mapping the same (still large) folio.

    Mirrors: mm/huge_memory.c __split_huge_pmd_locked(), v6.8 .. v6.17: each PTE inherits
    W/D/A/SD/UW from the PMD; every subpage becomes AnonExclusive iff the head page was;
    the deposited page table becomes the PTE table (nr_ptes unchanged).
    """
    pmd = mm.pmds[pmd_index(haddr)]
    assert isinstance(pmd, Pmd)
    table = PteTable()
    base = Pte(pfn=pmd.pfn, write=pmd.write, dirty=pmd.dirty, young=pmd.young,
               soft_dirty=pmd.soft_dirty, uffd_wp=pmd.uffd_wp)
    if pmd.huge_zero:
        zero = mm.machine.zero_folio.pfn
        base = Pte(pfn=zero, special=True, young=pmd.young)
        table.ptes = [base] * 512
    else:
        table.ptes = [replace(base, pfn=pmd.pfn + i) for i in range(HPAGE_PMD_NR)]
        found = mm.machine.pfn_folio(pmd.pfn)
        assert found is not None
        folio = found[0]
        ae = folio.pages[0].anon_exclusive
        # kernel: the PMD mapping becomes 512 PTE mappings of the same folio, each subpage
        # AnonExclusive iff the head was; one reference per new mapping
        folio_remove_rmap_pmd(folio, mm)
        folio_add_anon_rmap_ptes(folio, 0, HPAGE_PMD_NR, vma, exclusive=ae)
        folio.refcount += HPAGE_PMD_NR - 1
    mm.pmds[pmd_index(haddr)] = table
    if not mm.deposited.pop(pmd_index(haddr), False):
        mm.nr_ptes += 1


def zap_huge_pmd(mm: MmStruct, haddr: int) -> None:
    """Remove one PMD mapping (unmap/exit): rmap, reference, rss, deposited table."""
    from .mm import mm_counter
    from .rmap import folio_remove_rmap_pmd
    pmd = mm.pmds.pop(pmd_index(haddr))
    assert isinstance(pmd, Pmd)
    if mm.deposited.pop(pmd_index(haddr), False):
        mm.nr_ptes -= 1
    if pmd.huge_zero:
        return
    found = mm.machine.pfn_folio(pmd.pfn)
    assert found is not None
    folio = found[0]
    folio_remove_rmap_pmd(folio, mm)
    mm.add_mm_counter(mm_counter(folio), -HPAGE_PMD_NR)
    folio_put(folio)
