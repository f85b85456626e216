"""hugetlb VMAs: huge pages from a reserved pool, one huge PTE each -- faults, CoW, fork,
unmap.

Mirrors: mm/hugetlb.c hugetlb_fault() -> hugetlb_no_page() / hugetlb_wp(),
copy_hugetlb_page_range() with hugetlb_install_folio(), __unmap_hugepage_range(),
hugetlb_change_protection(); v6.8 .. v6.17.  The rmap side (hugetlb_add_new_anon_rmap()
and friends) is in :mod:`pkmm.rmap`.
Simplified: the pool never runs dry (no reservations, no SIGBUS for a CoW without a free
page); no PMD sharing; hugetlb memory is not counted in the rss counters (the kernel
counts it in HugetlbPages).
Taught in: notebooks/04-pinned-pages.ipynb

What differs from ordinary memory at fork and on a write: the whole huge page is shared
or copied, never split; a pinned AnonExclusive huge page is copied for the child at fork
(as copy_present_page() does for a small page); and a write fault reuses the page when
this mapping is its only one -- judged by the mapcount, not the refcount, so extra
references (vmsplice) do not force a copy ("there can still be leaks between processes,
for example, with FOLL_GET users" -- the hugetlb vmsplice cases cow.c expects to fail).
"""

from __future__ import annotations

from .context import FaultResult, ForkContext
from .errors import KernelBug
from .folio import Folio, folio_get, folio_put, folio_ref_add, folio_test_anon
from .pgtable import huge_ptep_get, huge_ptep_get_and_clear, set_huge_pte_at
from .pte import PAGE_SIZE, Pte, pte_clear_uffd_wp, pte_mkwrite, pte_wrprotect
from .rmap import (
    hugetlb_add_file_rmap,
    hugetlb_add_new_anon_rmap,
    hugetlb_remove_rmap,
    hugetlb_try_dup_anon_rmap,
)
from .vma import VM_MAYSHARE, VM_SHARED, VM_WRITE, AnonVma, Vma, is_cow_mapping, userfaultfd_wp

__all__ = ["copy_hugetlb_page_range", "hugetlb_change_protection", "hugetlb_fault",
           "hugetlb_page", "hugetlb_wp_can_reuse", "huge_page_order", "unmap_hugepage_range"]


def huge_page_order(vma: Vma) -> int:
    """``huge_page_order(hstate_vma(vma))``."""
    return (vma.hugetlb_kb // 4).bit_length() - 1


def _haddr(vma: Vma, addr: int) -> int:
    return addr & ~((vma.hugetlb_kb << 10) - 1)


def hugetlb_page(vma: Vma, addr: int) -> tuple[Folio, int] | None:
    """The (huge folio, page index) mapped at ``addr``, or None."""
    pte = huge_ptep_get(vma.vm_mm, _haddr(vma, addr))
    if pte is None or not pte.present:
        return None
    found = vma.vm_mm.machine.pfn_folio(pte.pfn)
    if found is None:
        raise KernelBug(f"hugetlb_page: {pte!r} maps a freed pfn")
    return found[0], (addr - _haddr(vma, addr)) // PAGE_SIZE


def make_huge_pte(folio: Folio, writable: bool) -> Pte:
    """Mirrors: mm/hugetlb.c make_huge_pte(): young, and dirty + writable if asked."""
    return Pte(pfn=folio.pfn, write=writable, dirty=writable, soft_dirty=writable,
               young=True)     # huge_pte_mkdirty() is pte_mkdirty() on x86


# --- faults ------------------------------------------------------------------------------------

def hugetlb_fault(vma: Vma, addr: int, write: bool, unshare: bool, fr: FaultResult) -> None:
    """A fault in a hugetlb VMA: map the huge page (hugetlb_no_page), or -- writing to /
    unsharing a read-only one -- reuse or copy it (hugetlb_wp).

    Mirrors: mm/hugetlb.c hugetlb_fault(), v6.8 .. v6.17.
    """
    haddr = _haddr(vma, addr)
    pte = huge_ptep_get(vma.vm_mm, haddr)
    if pte is None:
        hugetlb_no_page(vma, haddr, write, fr)
        return
    if (write or unshare) and not pte.write:
        hugetlb_wp(vma, haddr, pte, unshare, fr)


def hugetlb_no_page(vma: Vma, haddr: int, write: bool, fr: FaultResult) -> None:
    """Mirrors: mm/hugetlb.c hugetlb_no_page(): a shared mapping maps the file's page
    (allocating it into the page cache if needed); a private one maps the file's page
    read-only when there is one, else a new zeroed anon page -- and a write then goes
    straight on to hugetlb_wp() ("do the COW without a second fault")."""
    mm = vma.vm_mm
    file = vma.vm_file
    shared = bool(vma.vm_flags & VM_MAYSHARE)
    off = vma.linear_page_index(haddr)
    page = file.cache.get(off) if file is not None else None
    if page is not None and not page.folio.freed:
        folio = page.folio
        hugetlb_add_file_rmap(folio, vma)
        what = "the file's huge page"
    else:
        folio = mm.machine.alloc_hugetlb_folio(huge_page_order(vma),
                                               "file" if shared else "anon")
        if shared and file is not None:
            folio_ref_add(folio, folio.nr_pages)    # the page cache's references
            file.cache[off] = folio.pages[0]
            hugetlb_add_file_rmap(folio, vma)
        else:
            if vma.anon_vma is None:
                vma.anon_vma = AnonVma()            # vmf_anon_prepare()
            hugetlb_add_new_anon_rmap(folio, vma)
        what = "a new zeroed huge page"
    folio_get(folio)
    writable = bool(vma.vm_flags & VM_WRITE) and shared
    set_huge_pte_at(mm, haddr, make_huge_pte(folio, writable))
    fr.kind = "hugetlb"
    fr.note("hugetlb_no_page", "map", f"map {what} {folio.pfn:#x} "
            f"({vma.hugetlb_kb} KiB) with one huge PTE" + ("" if writable else ", read-only"))
    if write and not shared:
        pte = huge_ptep_get(mm, haddr)
        assert pte is not None
        hugetlb_wp(vma, haddr, pte, False, fr)


def hugetlb_wp_can_reuse(folio: Folio) -> bool:
    """hugetlb_wp()'s reuse test: "If no-one else is actually using this page, we're the
    exclusive owner" -- an anon page whose mapcount is 1 (extra references do not count)."""
    return folio.mapcount == 1 and folio_test_anon(folio)


def hugetlb_wp(vma: Vma, haddr: int, pte: Pte, unshare: bool, fr: FaultResult) -> None:
    """Write to (or unshare) a read-only huge PTE: a shared mapping just becomes
    writable; a private anon page mapped only here is reused; anything else is copied
    whole into a new exclusive huge page.

    Mirrors: mm/hugetlb.c hugetlb_wp(), v6.8 .. v6.17: "If no-one else is actually using
    this page, we're the exclusive owner and can reuse this page" -- folio_mapcount() ==
    1, not the refcount.
    """
    f = "hugetlb_wp"
    mm = vma.vm_mm
    if vma.vm_flags & VM_MAYSHARE:
        set_huge_pte_at(mm, haddr, pte_mkwrite(pte))
        fr.kind = "hugetlb-shared"
        fr.note(f, "make-writable", "shared hugetlb mapping: just make the huge PTE writable")
        return
    found = mm.machine.pfn_folio(pte.pfn)
    if found is None:
        raise KernelBug(f"hugetlb_wp: {pte!r} maps a freed pfn")
    old = found[0]
    if hugetlb_wp_can_reuse(old):
        old.pages[0].anon_exclusive = True
        if not unshare:
            set_huge_pte_at(mm, haddr, make_huge_pte(old, bool(vma.vm_flags & VM_WRITE)))
        fr.kind = "hugetlb-reuse"
        fr.note(f, "reuse", "this mapping is the huge page's only one (mapcount 1, whatever "
                f"the refcount {old.refcount}): reuse it" + (" (unshare)" if unshare else ""))
        return
    if vma.anon_vma is None:
        vma.anon_vma = AnonVma()
    new = mm.machine.alloc_hugetlb_folio(old.order, "anon")
    for src, dst in zip(old.pages, new.pages, strict=True):    # copy_user_large_folio()
        dst.data = src.data
    hugetlb_add_new_anon_rmap(new, vma)
    folio_get(new)
    writable = bool(vma.vm_flags & VM_WRITE) and not unshare
    set_huge_pte_at(mm, haddr, make_huge_pte(new, writable))
    hugetlb_remove_rmap(old, mm)
    folio_put(old)
    fr.kind = "hugetlb-copy"
    fr.note(f, "copy", f"huge page {old.pfn:#x} has {old.mapcount + 1} mapping(s): copy all "
            f"{vma.hugetlb_kb} KiB into new exclusive huge page {new.pfn:#x}"
            + ("; mapped read-only (unshare)" if unshare else ""))


# --- fork --------------------------------------------------------------------------------------

def copy_hugetlb_page_range(fc: ForkContext, dst_vma: Vma, src_vma: Vma) -> int:
    """Share every huge page of ``src_vma`` with the child (write-protected in both in a
    COW mapping) -- or, for a maybe-pinned AnonExclusive one, give the child a copy.

    Mirrors: mm/hugetlb.c copy_hugetlb_page_range(), v6.8 .. v6.17.  Returns 0.
    """
    f = "copy_hugetlb_page_range"
    src_mm, dst_mm = src_vma.vm_mm, dst_vma.vm_mm
    cow = is_cow_mapping(src_vma.vm_flags)
    size = src_vma.hugetlb_kb << 10
    for haddr in range(src_vma.vm_start, src_vma.vm_end, size):
        entry = huge_ptep_get(src_mm, haddr)
        if entry is None:
            continue
        found = src_mm.machine.pfn_folio(entry.pfn)
        if found is None:
            raise KernelBug(f"{f}: {entry!r} maps a freed pfn")
        folio = found[0]
        folio_get(folio)
        if not folio_test_anon(folio):
            hugetlb_add_file_rmap(folio, dst_vma)
        elif hugetlb_try_dup_anon_rmap(folio, src_vma, dst_vma,
                                       ignore_pins=fc.ablated("pinned-copy")):
            folio_put(folio)
            new = src_mm.machine.alloc_hugetlb_folio(folio.order, "anon")
            for src, dst in zip(folio.pages, new.pages, strict=True):
                dst.data = src.data
            hugetlb_add_new_anon_rmap(new, dst_vma)        # hugetlb_install_folio()
            folio_get(new)
            child = make_huge_pte(new, True)
            if userfaultfd_wp(dst_vma) and entry.uffd_wp:
                child = child._replace(uffd_wp=True, write=False)
            set_huge_pte_at(dst_mm, haddr, child)
            fc.copies += 1
            fc.emit(f, "copy:pinned", "huge page may be pinned and is AnonExclusive: the "
                    f"child gets a copy of all {src_vma.hugetlb_kb} KiB", haddr)
            continue
        if cow and entry.write and not fc.ablated("cow-wrprotect"):
            set_huge_pte_at(src_mm, haddr, pte_wrprotect(entry))
            entry = pte_wrprotect(entry)
        if not userfaultfd_wp(dst_vma):
            entry = pte_clear_uffd_wp(entry)
        set_huge_pte_at(dst_mm, haddr, entry)
        fc.emit(f, "share", "huge page shared with the child"
                + (" (write-protected in both)" if cow else ""), haddr)
    return 0


# --- unmap and protection ---------------------------------------------------------------------

def unmap_hugepage_range(vma: Vma, start: int, end: int) -> None:
    """Drop the huge pages of [start, end).  Mirrors: mm/hugetlb.c __unmap_hugepage_range()."""
    mm = vma.vm_mm
    size = vma.hugetlb_kb << 10
    for haddr in range(start, end, size):
        pte = huge_ptep_get_and_clear(mm, haddr)
        if pte is None or not pte.present:
            continue
        found = mm.machine.pfn_folio(pte.pfn)
        if found is None:
            raise KernelBug(f"unmap_hugepage_range: {pte!r} maps a freed pfn")
        hugetlb_remove_rmap(found[0], mm)
        folio_put(found[0])


def hugetlb_change_protection(vma: Vma, start: int, end: int) -> None:
    """mprotect() of a hugetlb range: a huge PTE keeps write only in a shared writable
    mapping; no write upgrade (the next write goes through hugetlb_wp()).

    Mirrors: mm/hugetlb.c hugetlb_change_protection() (huge_pte_modify()).
    """
    mm = vma.vm_mm
    size = vma.hugetlb_kb << 10
    keep = bool(vma.vm_flags & VM_WRITE) and bool(vma.vm_flags & VM_SHARED)
    for haddr in range(start, end, size):
        pte = huge_ptep_get(mm, haddr)
        if pte is not None and pte.present:
            set_huge_pte_at(mm, haddr, pte_mkwrite(pte) if keep else pte_wrprotect(pte))
