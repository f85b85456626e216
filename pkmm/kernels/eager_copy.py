"""eager-copy: every present private page is copied at fork; no copy-on-write.

Mirrors: xv6-riscv kernel/vm.c uvmcopy() -- the naive baseline that makes copy-on-write
easy to appreciate -- grafted onto the v6.8 walk (same VMA skips, same shared-mapping
handling) so that every variant shows a process the same data.
Simplified: the copy is allocated inline (xv6 ``kalloc``); a failed allocation fails fork.
pkmm: xv6 has no huge pages; a PMD-mapped anon THP is copied whole into a new order-9
folio mapped by the child's PMD (a file THP or the huge zero page is handled as v6.8 does).
Taught in: notebooks/00-start-here.ipynb, notebooks/08-cost.ipynb
"""

from __future__ import annotations

import errno

from ..context import ForkContext, KernelVersion, Prealloc
from ..errors import KernelBug
from ..folio import folio_test_anon
from ..huge_memory import copy_huge_pmd, pmd_folio
from ..memory import vm_normal_page
from ..mm import MM_ANONPAGES
from ..pgtable import Pmd, pgtable_trans_huge_deposit, pmdp_get, set_pmd_at, set_pte_at
from ..pte import HPAGE_PMD_ORDER, PMD_SIZE, Pte, pte_clear_uffd_wp
from ..rmap import alloc_new_anon_page
from ..vma import VM_WRITE, Vma, is_cow_mapping, userfaultfd_wp, vma_is_anonymous
from .v6_8 import copy_present_pte as share_present_pte

__all__ = ["KERNEL", "NAME", "uvmcopy_pmd", "uvmcopy_pte"]

NAME = "eager-copy"


def uvmcopy_pte(fc: ForkContext, dst_vma: Vma, src_vma: Vma, pte: Pte, addr: int,
                max_nr: int, rss: dict[str, int], prealloc: Prealloc) -> int:
    """Copy the page behind one PTE of a private mapping into a new page for the child.

    Mirrors: xv6 uvmcopy() (``kalloc``; ``memmove``; ``mappages`` with the parent's flags).
    Shared mappings and pages without a struct page are shared exactly as v6.8 does.
    Returns 1, or -ENOMEM when the allocation fails.
    """
    f = "uvmcopy_pte"
    page = vm_normal_page(fc, src_vma, addr, pte)
    if page is None or not is_cow_mapping(src_vma.vm_flags):
        return share_present_pte(fc, dst_vma, src_vma, pte, addr, max_nr, rss, prealloc)
    new = alloc_new_anon_page(dst_vma, [page.data])     # xv6: kalloc(); memmove()
    if new is None:
        fc.emit(f, "alloc-failed", "kalloc failed: fork fails with ENOMEM", addr)
        return -errno.ENOMEM
    rss[MM_ANONPAGES] += 1
    # counted as v6.8 counts its per-page rss[] increment, so rss_updates means the same
    # thing in every variant (xv6 itself keeps no RSS counters)
    fc.ops["rss_updates"] += 1
    # xv6 keeps the parent's flags; the child's page is its own, so it may stay writable
    child = Pte(pfn=new.pfn, write=pte.write and bool(dst_vma.vm_flags & VM_WRITE),
                dirty=pte.dirty, young=pte.young, soft_dirty=pte.soft_dirty,
                uffd_wp=pte.uffd_wp, protnone=pte.protnone)
    if not userfaultfd_wp(dst_vma):
        child = pte_clear_uffd_wp(child)
    set_pte_at(dst_vma.vm_mm, addr, child)
    fc.copies += 1
    fc.ops["page_copies"] += 1
    fc.ops["pte_writes"] += 1
    fc.emit(f, "copied", "eager copy: the child gets its own page now; the parent's PTE "
            f"is untouched ({'anon' if folio_test_anon(page.folio) else 'file'} page)",
            addr, 1, new_pfn=new.pfn)
    fc.step(addr, 1, "copy", "private page copied eagerly (no copy-on-write)", f)
    return 1


def uvmcopy_pmd(fc: ForkContext, dst_vma: Vma, src_vma: Vma, addr: int) -> int:
    """Copy a PMD-mapped anon THP into a new order-9 folio for the child, eagerly.

    Mirrors: xv6 uvmcopy() applied to a 2 MiB page.  Returns 0, or -ENOMEM when the
    allocation fails.  File THPs and the huge zero page go through copy_huge_pmd().
    """
    f = "uvmcopy_pmd"
    haddr = addr & ~(PMD_SIZE - 1)
    src_mm, dst_mm = src_vma.vm_mm, dst_vma.vm_mm
    pmd = pmdp_get(src_mm, haddr)
    if pmd is None:
        raise KernelBug(f"uvmcopy_pmd: no PMD leaf at {haddr:#x}")
    if pmd.huge_zero or not vma_is_anonymous(dst_vma):
        return copy_huge_pmd(fc, dst_vma, src_vma, addr)
    old = pmd_folio(src_mm, pmd)
    new = alloc_new_anon_page(dst_vma, [pg.data for pg in old.pages], order=HPAGE_PMD_ORDER)
    if new is None:
        fc.emit(f, "alloc-failed", "kalloc of a 2 MiB copy failed: fork fails with ENOMEM",
                haddr)
        return -errno.ENOMEM
    set_pmd_at(dst_mm, haddr, Pmd(
        pfn=new.pfn, write=pmd.write and bool(dst_vma.vm_flags & VM_WRITE), dirty=pmd.dirty,
        young=pmd.young, soft_dirty=pmd.soft_dirty,
        uffd_wp=pmd.uffd_wp and userfaultfd_wp(dst_vma)))
    pgtable_trans_huge_deposit(dst_mm, haddr)
    dst_mm.add_mm_counter(MM_ANONPAGES, new.nr_pages)
    fc.copies += new.nr_pages
    fc.ops["page_copies"] += new.nr_pages
    fc.ops["pmd_copies"] += 1
    fc.emit(f, "copied", "eager copy of a PMD-mapped THP: the child gets its own 2 MiB "
            "folio now; the parent's PMD is untouched", haddr, new.nr_pages, new_pfn=new.pfn)
    return 0


KERNEL = KernelVersion(
    name=NAME, spec="-", title="eager copy (xv6 uvmcopy baseline)",
    present_func="uvmcopy_pte", batch_func="", copy_present=uvmcopy_pte,
    guard_markers=False, wp_large_folio="as-small", huge_zero_wp_thp=False,
    hwpoison_copy=False, copy_huge=uvmcopy_pmd, copy_on_write=False)
