"""THPs: which sizes a fault may allocate, PMD-mapped THPs at fork, on faults and at unmap,
and splitting a PMD into PTEs.

Mirrors: mm/huge_memory.c __thp_vma_allowable_orders(), do_huge_pmd_anonymous_page(),
copy_huge_pmd(), __split_huge_pmd_locked(), zap_huge_pmd(), do_huge_pmd_wp_page(),
do_huge_zero_wp_pmd(); include/linux/huge_mm.h thp_vma_suitable_order(s) (v6.8 .. v6.17).
Simplified: no THP migration entries at PMD level, no huge PFN maps (v6.17's special
PMD branch), no DAX; the deposited page table is a flag.
Taught in: notebooks/07-after-fork.ipynb
"""

from __future__ import annotations

import errno

from .context import FaultResult, ForkContext, KernelVersion
from .errors import KernelBug
from .folio import (
    Folio,
    folio_get,
    folio_put,
    folio_ref_add,
    folio_ref_sub,
    folio_test_anon,
    folio_touched,
)
from .mm import MM_ANONPAGES, MmStruct, mm_counter, mm_dec_nr_ptes, mm_inc_nr_ptes
from .pgtable import (
    Pmd,
    PteTable,
    pgtable_trans_huge_deposit,
    pgtable_trans_huge_withdraw,
    pmd_clear_uffd_wp,
    pmd_mkdirty,
    pmd_mkold,
    pmd_mkwrite,
    pmd_mkyoung,
    pmd_populate,
    pmd_wrprotect,
    pmdp_get,
    pmdp_huge_get_and_clear,
    pmdp_set_wrprotect,
    set_pmd_at,
)
from .pte import HPAGE_PMD_NR, HPAGE_PMD_ORDER, PAGE_SIZE, PMD_SIZE, Pte, pte_advance_pfn
from .rmap import (
    SetPageAnonExclusive,
    alloc_new_anon_page,
    folio_add_anon_rmap_ptes,
    folio_remove_rmap_pmd,
    folio_try_dup_anon_rmap_pmd,
)
from .vma import (
    VM_HUGEPAGE,
    VM_NOHUGEPAGE,
    VM_WRITE,
    AnonVma,
    Vma,
    userfaultfd_wp,
    vma_is_anonymous,
)

__all__ = ["__split_huge_pmd", "copy_huge_pmd", "do_huge_pmd_anonymous_page",
           "do_huge_pmd_wp_page", "do_huge_zero_wp_pmd", "pmd_folio", "split_folio",
           "split_huge_pmd",
           "thp_vma_allowable_orders", "thp_vma_suitable_order", "zap_huge_pmd"]

EAGAIN = errno.EAGAIN


# --- which THP sizes a fault may allocate ---------------------------------------------------

def thp_vma_allowable_orders(vma: Vma, orders: range) -> list[int]:
    """The folio orders in ``orders`` that the THP settings allow in ``vma``, highest first.

    Mirrors: mm/huge_memory.c __thp_vma_allowable_orders() for a page fault
    (TVA_IN_PF | TVA_ENFORCE_SYSFS), v6.8 .. v6.17: anonymous private VMAs only, never
    with MADV_NOHUGEPAGE or an armed userfaultfd, and each order as its sysfs knob says.
    Simplified: no shmem/file THP at fault, no MMF_DISABLE_THP (prctl).
    """
    if not vma_is_anonymous(vma) or vma.vm_flags & VM_NOHUGEPAGE or userfaultfd_wp(vma):
        return []
    thp = vma.vm_mm.machine.thp
    hinted = bool(vma.vm_flags & VM_HUGEPAGE)
    return [o for o in sorted(orders, reverse=True) if thp.order_enabled(o, hinted)]


def thp_vma_suitable_order(vma: Vma, addr: int, order: int) -> bool:
    """Mirrors: include/linux/huge_mm.h thp_vma_suitable_order(): the naturally aligned
    range of ``2**order`` pages around ``addr`` lies inside the VMA."""
    size = PAGE_SIZE << order
    start = addr & ~(size - 1)
    return start >= vma.vm_start and start + size <= vma.vm_end


def do_huge_pmd_anonymous_page(vma: Vma, addr: int, write: bool, fr: FaultResult) -> bool:
    """First touch of an empty PMD range in a THP-enabled VMA: map a whole THP with one
    PMD, or the huge zero page on a read.  False: fall back to the PTE path.

    Mirrors: mm/huge_memory.c do_huge_pmd_anonymous_page() and
    __do_huge_pmd_anonymous_page(), v6.8 .. v6.17 (the anon_vma is prepared first, also
    for the huge zero page; a failed THP allocation falls back to 4 KiB pages).
    """
    f = "do_huge_pmd_anonymous_page"
    haddr = addr & ~(PMD_SIZE - 1)
    if not thp_vma_suitable_order(vma, haddr, HPAGE_PMD_ORDER):
        return False
    mm = vma.vm_mm
    if vma.anon_vma is None:
        vma.anon_vma = AnonVma()            # vmf_anon_prepare()
    if not write and mm.machine.thp.use_zero_page:
        set_pmd_at(mm, haddr, Pmd(pfn=mm.machine.huge_zero_folio.pfn, young=True,
                                  huge_zero=True))
        pgtable_trans_huge_deposit(mm, haddr)
        mm.huge_zero_ref = True
        fr.kind = "huge-zero"
        fr.note(f, "huge-zero", "read of an empty THP range: map the huge zero page with a "
                "read-only PMD")
        return True
    new = alloc_new_anon_page(vma, order=HPAGE_PMD_ORDER)
    if new is None:
        fr.note(f, "fallback", "no THP could be allocated: fall back to 4 KiB pages")
        return False
    set_pmd_at(mm, haddr, Pmd(pfn=new.pfn, write=bool(vma.vm_flags & VM_WRITE),
                              dirty=True, soft_dirty=True, young=True))
    pgtable_trans_huge_deposit(mm, haddr)
    mm.add_mm_counter(MM_ANONPAGES, HPAGE_PMD_NR)
    fr.kind = "thp"
    fr.note(f, "new-thp", f"first touch of a THP-enabled range: new zeroed exclusive 2 MiB "
            f"THP {new.pfn:#x} mapped by one PMD")
    return True


def split_folio(folio: Folio, mm: MmStruct) -> list[Folio] | None:
    """Split a PTE-mapped large anon folio, mapped by ``mm`` alone, into order-0 folios;
    the pages nobody maps are freed.  None (nothing changed) when the folio cannot be
    split: extra references -- a pin, a pipe -- besides its mappings.

    Mirrors: mm/huge_memory.c split_huge_page_to_list_to_order(folio, list, 0) with
    can_split_folio(), v6.8 .. v6.17 (what reclaim does with a large folio the swap
    device cannot take whole).
    Simplified: only folios one mm maps (what reclaim's callers here hand it).
    """
    if folio.entire_mapcount or folio.refcount != folio.mapcount or folio.swap is not None:
        return None
    news = mm.machine.split_folio_pages(folio)
    for new in news:
        page = new.pages[0]
        n = page.pte_mapcount
        new.refcount = new.total_mapcount = n
        if n:
            new.mm_mapcount[mm.mm_id] = n
        else:
            page.anon_exclusive = False
            mm.machine.free_folio(new)
        folio_touched(new)
    return [n for n in news if not n.freed]


def pmd_folio(mm: MmStruct, pmd: Pmd) -> Folio:
    """The folio a (non-zero) PMD leaf maps (``pmd_folio``)."""
    found = mm.machine.pfn_folio(pmd.pfn)
    if found is None:
        raise KernelBug(f"pmd_folio: {pmd!r} maps a freed pfn")
    return found[0]


def copy_huge_pmd(fc: ForkContext, dst_vma: Vma, src_vma: Vma, addr: int) -> int:
    """Share a PMD-mapped THP with the child, or split it when it may be pinned.

    Mirrors: mm/huge_memory.c copy_huge_pmd(), v6.8 .. v6.17.
    Returns 0 (done: shared, or nothing to copy), -EAGAIN (the parent's PMD was split;
    the caller copies the 512 PTEs), or -ENOMEM.
    """
    f = "copy_huge_pmd"
    src_mm, dst_mm = src_vma.vm_mm, dst_vma.vm_mm
    haddr = addr & ~(PMD_SIZE - 1)
    pmd = pmdp_get(src_mm, haddr)
    if pmd is None:
        raise KernelBug(f"copy_huge_pmd: no PMD leaf at {haddr:#x}")
    if not vma_is_anonymous(dst_vma):
        # kernel: "Skip if it can be refilled on fault" (file and shmem THPs)
        fc.emit(f, "skip:file-thp", "file/shmem THP at PMD level is never copied: the child "
                "PMD stays empty and refaults from the page cache", haddr)
        return 0
    if pmd.huge_zero:
        dst_mm.huge_zero_ref = True
        fc.emit(f, "huge-zero", "huge zero PMD: the child takes its mm-level reference; "
                "no rss, no folio refcount", haddr, nr=HPAGE_PMD_NR)
    else:
        folio = pmd_folio(src_mm, pmd)
        folio_get(folio)
        fc.ops["refcount_ops"] += 1
        if folio_try_dup_anon_rmap_pmd(folio, dst_vma, src_vma,
                                       ignore_pins=fc.ablated("pinned-copy")):
            folio_ref_sub(folio, 1)
            __split_huge_pmd(src_mm, src_vma, haddr)
            fc.emit(f, "split:pinned", "head page is AnonExclusive and the folio may be "
                    "pinned: split the parent's PMD into 512 PTEs and copy per page",
                    haddr, nr=HPAGE_PMD_NR)
            return -EAGAIN
        dst_mm.add_mm_counter(MM_ANONPAGES, HPAGE_PMD_NR)
        fc.emit(f, "share", "PMD shared: head page loses AnonExclusive, entire_mapcount + 1, "
                "child rss ANON + 512", haddr, nr=HPAGE_PMD_NR)
    pgtable_trans_huge_deposit(dst_mm, haddr)
    if not fc.ablated("cow-wrprotect"):
        pmdp_set_wrprotect(src_mm, haddr)
        pmd = pmd_wrprotect(pmd)
        fc.ops["wrprotect_calls"] += 1
    if not userfaultfd_wp(dst_vma):
        pmd = pmd_clear_uffd_wp(pmd)
    set_pmd_at(dst_mm, haddr, pmd_mkold(pmd))
    fc.ops["pmd_copies"] += 1
    fc.emit(f, "set-pmd", "parent PMD write-protected (always: only private anon VMAs get "
            "here); child PMD read-only and old, dirty kept", haddr, nr=HPAGE_PMD_NR)
    return 0


def __split_huge_pmd(mm: MmStruct, vma: Vma, haddr: int) -> None:
    """Replace one process's PMD mapping by 512 PTEs mapping the same (still large) folio.

    Mirrors: mm/huge_memory.c __split_huge_pmd_locked(), v6.8 .. v6.17: each PTE inherits
    W/D/A/SD/UW from the PMD; every subpage becomes AnonExclusive iff the head page was;
    the deposited page table becomes the PTE table (nr_ptes unchanged).
    """
    pmd = pmdp_huge_get_and_clear(mm, haddr)
    table = PteTable()
    if pmd.huge_zero:
        # kernel: __split_huge_zero_page_pmd(): pfn_pte(my_zero_pfn(), vm_page_prot) --
        # on x86 vm_page_prot has _PAGE_ACCESSED, so every zero-page PTE is young
        base = Pte(pfn=mm.machine.zero_folio.pfn, special=True, young=True,
                   uffd_wp=pmd.uffd_wp)
        table.ptes = [base] * HPAGE_PMD_NR
    else:
        base = Pte(pfn=pmd.pfn, write=pmd.write, dirty=pmd.dirty, young=pmd.young,
                   soft_dirty=pmd.soft_dirty, uffd_wp=pmd.uffd_wp)
        table.ptes = [pte_advance_pfn(base, i) for i in range(HPAGE_PMD_NR)]
        folio = pmd_folio(mm, pmd)
        ae = folio.pages[0].anon_exclusive
        # kernel: the PMD mapping becomes 512 PTE mappings of the same folio, each subpage
        # AnonExclusive iff the head was; one reference per new mapping
        folio_remove_rmap_pmd(folio, mm)
        folio_add_anon_rmap_ptes(folio, 0, HPAGE_PMD_NR, vma, exclusive=ae)
        folio_ref_add(folio, HPAGE_PMD_NR - 1)
    if not pgtable_trans_huge_withdraw(mm, haddr):
        mm_inc_nr_ptes(mm)          # no deposited table (file THP): a new one
    pmd_populate(mm, haddr, table)


def split_huge_pmd(vma: Vma, haddr: int) -> None:
    """Mirrors: include/linux/huge_mm.h split_huge_pmd(): split if a PMD leaf is there."""
    if pmdp_get(vma.vm_mm, haddr) is not None:
        __split_huge_pmd(vma.vm_mm, vma, haddr)


def zap_huge_pmd(mm: MmStruct, haddr: int) -> None:
    """Remove one PMD mapping (unmap/exit): rmap, reference, rss, deposited table.

    Mirrors: mm/huge_memory.c zap_huge_pmd(), v6.8 .. v6.17.
    """
    pmd = pmdp_huge_get_and_clear(mm, haddr)
    if pgtable_trans_huge_withdraw(mm, haddr):
        mm_dec_nr_ptes(mm)          # pte_free() of the deposited table
    if pmd.huge_zero:
        return
    folio = pmd_folio(mm, pmd)
    folio_remove_rmap_pmd(folio, mm)
    mm.add_mm_counter(mm_counter(folio), -HPAGE_PMD_NR)
    folio_put(folio)


def do_huge_zero_wp_pmd(vma: Vma, haddr: int, fr: FaultResult) -> bool:
    """A write to the huge zero page: map a whole new zeroed THP in its place.

    Mirrors: mm/huge_memory.c do_huge_zero_wp_pmd(), v6.17.  False when no THP could be
    allocated (the caller splits instead, as the kernel falls back).
    """
    new = alloc_new_anon_page(vma, order=HPAGE_PMD_ORDER)
    if new is None:
        return False
    mm = vma.vm_mm
    pmdp_huge_get_and_clear(mm, haddr)
    set_pmd_at(mm, haddr, Pmd(pfn=new.pfn, write=True, dirty=True, soft_dirty=True,
                              young=True))
    mm.add_mm_counter(MM_ANONPAGES, HPAGE_PMD_NR)
    fr.kind = "huge-zero-thp"
    fr.note("do_huge_zero_wp_pmd", "new-thp", "write to the huge zero page: allocate and map "
            "a whole new zeroed 2 MiB THP")
    return True


def do_huge_pmd_wp_page(vma: Vma, addr: int, pmd: Pmd, kernel: KernelVersion,
                        fr: FaultResult, unshare: bool = False) -> bool:
    """Write to a read-only PMD mapping (or, with ``unshare``, make its THP exclusive for
    a R/O pin).  True when handled at PMD level, False when the PMD was split (or
    zapped) and the PTE path must finish the fault.

    Mirrors: mm/huge_memory.c do_huge_pmd_wp_page() and mm/memory.c wp_huge_pmd(),
    v6.8 .. v6.17.
    """
    f = "do_huge_pmd_wp_page"
    mm = vma.vm_mm
    haddr = addr & ~(PMD_SIZE - 1)
    if pmd.write:
        return True
    if pmd.huge_zero:
        if kernel.huge_zero_wp_thp and do_huge_zero_wp_pmd(vma, haddr, fr):
            return True
        __split_huge_pmd(mm, vma, haddr)
        fr.kind = "split-pmd"
        fr.note(f, "split-huge-zero", "write to the huge zero page: split it into 512 zero-"
                "page PTEs and fault one 4 KiB page")
        return False
    folio = pmd_folio(mm, pmd)
    if not folio_test_anon(folio):
        # kernel: wp_huge_pmd(): "COW or write-notify handled on pte level: split pmd"
        # (splitting a file PMD unmaps it)
        zap_huge_pmd(mm, haddr)
        fr.note(f, "zap-file-thp", "private file THP: drop the PMD and fault 4 KiB")
        return False
    head = folio.pages[0]
    if head.anon_exclusive or folio.refcount == 1:
        # kernel: reuse_huge_pmd: the only mapping of an exclusive folio
        SetPageAnonExclusive(head)
        if unshare:
            fr.kind = "unshare"
            fr.note(f, "unshare:exclusive", "FAULT_FLAG_UNSHARE: the THP is (now) "
                    "exclusive; the PMD stays read-only")
            return True
        set_pmd_at(mm, haddr, pmd_mkyoung(pmd_mkdirty(pmd_mkwrite(pmd))))
        fr.kind = "thp-reuse"
        fr.note(f, "reuse", "head page AnonExclusive (or refcount 1): reuse the whole PMD")
        return True
    found = folio.refcount          # what the reuse test saw, before the split adds refs
    __split_huge_pmd(mm, vma, haddr)
    fr.note(f, "split", f"THP shared (refcount {found}): split this process's PMD into "
            f"PTEs (refcount now {folio.refcount}); the PTE path copies one 4 KiB page")
    return False
