"""batch-v3: the seed patch, "[PATCH v3 01/15] mm: Batch-copy PTE ranges during fork()".

Mirrors: Ryan Roberts' v3 01/15 (Dec 2023, never merged; spec version B):
folio_nr_pages_cont_mapped() and copy_present_ptes() on top of the v6.7 tree.
Taught in: notebooks/03-seed-patch-batching.ipynb
"""

from __future__ import annotations

from ..context import ForkContext, KernelVersion, Prealloc
from ..errors import KernelBug
from ..folio import Folio, Page, folio_ref_add, folio_ref_sub, folio_test_anon, folio_test_large
from ..memory import vm_normal_page
from ..mm import MM_ANONPAGES, mm_counter_file
from ..pgtable import pte_index, pte_offset_map, set_ptes, wrprotect_ptes
from ..pte import (
    PAGE_SIZE,
    Pte,
    pte_clear_soft_dirty,
    pte_clear_uffd_wp,
    pte_mkclean,
    pte_mkdirty,
    pte_mkold,
    pte_wrprotect,
)
from ..vma import VM_SHARED, Vma, userfaultfd_wp
from .common import copy_for_child, dup_file, stop_words, try_dup_anon

__all__ = ["KERNEL", "NAME", "copy_present_ptes", "folio_nr_pages_cont_mapped"]

NAME = "batch-v3"


def folio_nr_pages_cont_mapped(fc: ForkContext, folio: Folio, page: Page, src_vma: Vma,
                               addr: int, end: int, ptent: Pte,
                               enforce_uffd_wp: bool) -> tuple[int, int, int, str]:
    """How many PTEs from ``addr`` map consecutive pages of ``folio``.

    Mirrors: folio_nr_pages_cont_mapped() of the seed patch (v3).  Only presence, pfn,
    protnone and (if the child is uffd-wp) uffd-wp must match; dirty and writable are
    *counted* over the whole scan.  Returns (nr, dirty_nr, writable_nr, stop reason).
    """
    dirty_nr, writable_nr = int(ptent.dirty), int(ptent.write)
    if not folio_test_large(folio):
        return 1, dirty_nr, writable_nr, "small-folio"
    fc.ops["batch_scans"] += 1
    # kernel: "Loop either to `end` or to end of folio if its contiguously mapped,
    # whichever is smaller."
    floops = (end - addr) // PAGE_SIZE
    to_folio_end = folio.pfn + folio.nr_pages - page.pfn
    floops = min(floops, to_folio_end)
    table = pte_offset_map(src_vma.vm_mm, addr)
    if table is None:
        raise KernelBug(f"folio_nr_pages_cont_mapped: no PTE table at {addr:#x}")
    base = pte_index(addr)
    pfn = page.pfn + 1
    i = 1
    stop = "folio-end" if floops == to_folio_end else "range-end"
    while i < floops:
        p = table.ptes[base + i]
        fc.ops["pte_reads"] += 1
        if p is None or not p.present:
            stop = "pte-none" if p is None else "not-present"
            break
        if p.pfn != pfn:
            stop = "pfn-gap"
            break
        if p.protnone != ptent.protnone:
            stop = "bit:protnone"
            break
        if enforce_uffd_wp and p.uffd_wp != ptent.uffd_wp:
            stop = "bit:uffd_wp"
            break
        dirty_nr += p.dirty
        writable_nr += p.write
        pfn += 1
        i += 1
    fc.emit("folio_nr_pages_cont_mapped", f"stop:{stop}",
            f"batch of {i}: {stop_words(stop)}; counted dirty={dirty_nr}, "
            f"writable={writable_nr} over the scan", addr, i, read_past=False)  # floops clamps
    return i, dirty_nr, writable_nr, stop


def copy_present_ptes(fc: ForkContext, dst_vma: Vma, src_vma: Vma, pte: Pte, addr: int,
                      max_nr: int, rss: dict[str, int], prealloc: Prealloc) -> int:
    """Copy a set of contiguous PTEs mapping one folio.

    Mirrors: copy_present_ptes() of the seed patch (v3).
    kernel: "Returns number of ptes copied if succeeded (always gte 1), or -EAGAIN if one
    preallocated page is required to copy the first pte."
    """
    f = "copy_present_ptes"
    src_mm = src_vma.vm_mm
    vm_flags = src_vma.vm_flags
    end = addr + max_nr * PAGE_SIZE
    nr = 1
    anon = False
    enforce_uffd_wp = userfaultfd_wp(dst_vma)
    nr_dirty, nr_writable = int(pte.dirty), int(pte.write)
    stop = "no-page"
    page = vm_normal_page(fc, src_vma, addr, pte)
    if page is not None:
        folio = page.folio
        anon = folio_test_anon(folio)
        nr, nr_dirty, nr_writable, stop = folio_nr_pages_cont_mapped(
            fc, folio, page, src_vma, addr, end, pte, enforce_uffd_wp)
        folio_ref_add(folio, nr)
        fc.ops["refcount_ops"] += 1
        i = 0
        while i < nr:
            pg = folio.pages[page.index + i]
            if anon:
                # kernel: "If this page may have been pinned by the parent process, copy
                # the page immediately for the child ..."
                if try_dup_anon(fc, "page_try_dup_anon_rmap", folio, pg, 1, dst_vma, src_vma,
                                addr + i * PAGE_SIZE):
                    if i != 0:
                        break
                    folio_ref_sub(folio, nr)
                    return copy_for_child(fc, f, dst_vma, src_vma, pte, addr, rss,
                                          prealloc, page)
                rss[MM_ANONPAGES] += 1
            else:
                dup_file(fc, "page_dup_file_rmap", folio, pg, 1, dst_vma, addr + i * PAGE_SIZE)
                rss[mm_counter_file(folio)] += 1
            i += 1
        if i < nr:
            folio_ref_sub(folio, nr - i)
            fc.emit(f, "truncate", f"anon dup failed at page {i} of the batch: commit the "
                    f"first {i} PTEs (dirty/writable counts still cover all {nr})", addr, i)
            nr = i
            stop = "anon-dup-failed"
        fc.ops["rss_updates"] += 1
    # kernel: "If it's a shared mapping, mark it clean and write protected in the child ...
    # If its a private (CoW) mapping, mark it dirty in the child if _any_ of the parent
    # mappings in the block were marked dirty ..."
    if vm_flags & VM_SHARED:
        pte = pte_mkclean(pte)
        if 0 < nr_writable < nr:
            pte = pte_wrprotect(pte)
            fc.emit(f, "shared-mixed-write", f"{nr_writable} of {nr} PTEs writable: child "
                    "batch made read-only (a write fault fixes it up)", addr, nr)
    else:
        if nr_dirty:
            pte = pte_mkdirty(pte)
            fc.emit(f, "private-dirty-merge", f"{nr_dirty} scanned PTE(s) dirty: the whole "
                    "child batch is marked dirty (in the value set_ptes() will write)", addr, nr,
                    value=pte)
        if nr_writable and not fc.ablated("cow-wrprotect"):
            wrprotect_ptes(src_mm, addr, nr)
            pte = pte_wrprotect(pte)
            fc.ops["wrprotect_calls"] += 1
            fc.emit(f, "cow-wrprotect", f"{nr_writable} scanned PTE(s) writable: write-protect "
                    f"all {nr} parent PTEs (ptep_set_wrprotects) and the value the child's batch "
                    "will be written from", addr, nr)
    pte = pte_mkold(pte)
    # Name a cleared bit only when the value about to be cleared has it: soft-dirty comes
    # from the parent's first PTE or from pte_mkdirty() above (x86 sets dirty and
    # soft-dirty together).
    cleared = [name for name, on in (("soft-dirty", pte.soft_dirty),
                                     ("uffd-wp", pte.uffd_wp and not enforce_uffd_wp)) if on]
    pte = pte_clear_soft_dirty(pte)
    if not enforce_uffd_wp:
        pte = pte_clear_uffd_wp(pte)
    set_ptes(dst_vma.vm_mm, addr, pte, nr)
    fc.ops["pte_writes"] += nr
    fc.ops["set_ptes_calls"] += 1
    fc.emit(f, "set-ptes", f"{nr} child PTE(s) from the first PTE's bits: old"
            + "".join(f", {name} cleared" for name in cleared), addr, nr, child=pte)
    if page is None:
        fc.step(addr, 1, "raw", "no struct page (zero page / raw PFN): copied by value", f,
                stop)
    else:
        fc.step(addr, nr, "share", f"batch of {nr} mapped, not copied: {stop_words(stop)}", f, stop)
    return nr


KERNEL = KernelVersion(
    name=NAME, spec="B", title="seed patch v3: folio_nr_pages_cont_mapped",
    present_func="copy_present_ptes", batch_func="folio_nr_pages_cont_mapped",
    copy_present=copy_present_ptes, guard_markers=False, wp_large_folio="as-small",
    huge_zero_wp_thp=False, hwpoison_copy=False, folio_end="clamp", anon_dup="truncate",
    counted_bits=frozenset({"dirty", "write"}))
