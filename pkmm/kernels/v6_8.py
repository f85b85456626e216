"""v6.8: copy one present PTE at a time (the last release before batching; spec version A).

Mirrors: mm/memory.c copy_present_pte() at torvalds/linux 08e7795e2444 (v6.8 merge
window; identical in behaviour to v6.7, only the rmap helper names changed).
Taught in: notebooks/02-fork-one-pte-at-a-time.ipynb
"""

from __future__ import annotations

from ..context import ForkContext, KernelVersion, Prealloc
from ..folio import folio_get, folio_ref_sub, folio_test_anon
from ..memory import vm_normal_page
from ..mm import MM_ANONPAGES, mm_counter_file
from ..pgtable import ptep_set_wrprotect, set_pte_at
from ..pte import Pte, pte_clear_uffd_wp, pte_mkclean, pte_mkold, pte_wrprotect
from ..vma import VM_SHARED, Vma, is_cow_mapping, userfaultfd_wp
from .common import copy_for_child, dup_file, try_dup_anon

__all__ = ["KERNEL", "NAME", "copy_present_pte"]

NAME = "v6.8"


def copy_present_pte(fc: ForkContext, dst_vma: Vma, src_vma: Vma, pte: Pte, addr: int,
                     max_nr: int, rss: dict[str, int], prealloc: Prealloc) -> int:
    """Copy one present PTE: share its page with the child, or copy a maybe-pinned one.

    Mirrors: mm/memory.c copy_present_pte(), v6.8.
    Returns 1 (pkmm: the kernel returns 0 for "one PTE done") or -EAGAIN when a
    preallocated page is needed.  ``max_nr`` is unused: v6.8 never batches.
    """
    f = "copy_present_pte"
    src_mm = src_vma.vm_mm
    vm_flags = src_vma.vm_flags
    page = vm_normal_page(fc, src_vma, addr, pte)
    if page is not None and folio_test_anon(page.folio):
        folio = page.folio
        folio_get(folio)
        fc.ops["refcount_ops"] += 1
        # kernel: "If this page may have been pinned by the parent process, copy the page
        # immediately for the child so that we'll always guarantee the pinned page won't be
        # randomly replaced in the future."
        if try_dup_anon(fc, "folio_try_dup_anon_rmap_pte", folio, page, 1, dst_vma, src_vma,
                        addr):
            folio_ref_sub(folio, 1)
            return copy_for_child(fc, f, dst_vma, src_vma, pte, addr, rss, prealloc, page)
        rss[MM_ANONPAGES] += 1
        reason = "anon page mapped by both parent and child"
    elif page is not None:
        folio = page.folio
        folio_get(folio)
        fc.ops["refcount_ops"] += 1
        dup_file(fc, "folio_dup_file_rmap_pte", folio, page, 1, dst_vma, addr)
        rss[mm_counter_file(folio)] += 1
        reason = "page-cache page mapped by both parent and child"
    else:
        reason = "no struct page (zero page / raw PFN): copied by value"
    fc.ops["rss_updates"] += page is not None
    # kernel: "If it's a COW mapping, write protect it both in the parent and the child"
    if is_cow_mapping(vm_flags) and pte.write and not fc.ablated("cow-wrprotect"):
        ptep_set_wrprotect(src_mm, addr)
        pte = pte_wrprotect(pte)
        fc.ops["wrprotect_calls"] += 1
        fc.emit(f, "cow-wrprotect", "COW mapping: parent PTE write-protected; the child's "
                "copy is read-only too, so the first write in either process faults", addr, 1)
    # kernel: "If it's a shared mapping, mark it clean in the child"
    if vm_flags & VM_SHARED:
        pte = pte_mkclean(pte)
    pte = pte_mkold(pte)
    # Say "uffd-wp cleared" only when there was a uffd-wp bit to clear.
    uffd_cleared = pte.uffd_wp and not userfaultfd_wp(dst_vma)
    if not userfaultfd_wp(dst_vma):
        pte = pte_clear_uffd_wp(pte)
    set_pte_at(dst_vma.vm_mm, addr, pte)
    fc.ops["pte_writes"] += 1
    fc.ops["set_ptes_calls"] += 1
    fc.emit(f, "set-pte", "child PTE written: old" + (", clean (shared)" if vm_flags & VM_SHARED
            else "") + (", uffd-wp cleared (child not uffd-wp registered)" if uffd_cleared
                        else ""), addr, 1,
            child=pte)
    fc.step(addr, 1, "share" if page is not None else "raw", reason, f)
    return 1


KERNEL = KernelVersion(
    name=NAME, spec="A", title="v6.8: one PTE at a time",
    present_func="copy_present_pte", batch_func="", copy_present=copy_present_pte,
    guard_markers=False, wp_large_folio="as-small", huge_zero_wp_thp=False,
    hwpoison_copy=False, since=(6, 8))
