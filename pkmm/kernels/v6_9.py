"""v6.9: batch PTEs of one large folio with folio_pte_batch() (spec version C).

Mirrors: mm/memory.c copy_present_ptes(), __copy_present_ptes() and mm/internal.h
folio_pte_batch() at torvalds/linux c6ec76a2ebc5 (David Hildenbrand's "mm/memory:
optimize fork() with PTE-mapped THP", merged for v6.9).
Simplified: generic arch, ``pte_batch_hint() == 1`` (no arm64 contpte skipping).
Taught in: notebooks/06-upstream-batching.ipynb
"""

from __future__ import annotations

from ..context import ForkContext, KernelVersion, Prealloc
from ..errors import KernelBug
from ..folio import (
    Folio,
    folio_get,
    folio_ref_add,
    folio_ref_sub,
    folio_test_anon,
    folio_test_large,
)
from ..memory import EAGAIN, vm_normal_page
from ..mm import MM_ANONPAGES, mm_counter_file
from ..pgtable import pte_index, pte_offset_map
from ..pte import (
    Pte,
    pte_advance_pfn,
    pte_clear_soft_dirty,
    pte_mkclean,
    pte_mkold,
    pte_mkwrite,
    pte_wrprotect,
)
from ..vma import VM_SHARED, Vma, vma_soft_dirty_enabled
from .common import (
    __copy_present_ptes,
    copy_for_child,
    dup_file,
    pte_diff,
    stop_words,
    try_dup_anon,
)

__all__ = ["FPB_IGNORE_DIRTY", "FPB_IGNORE_SOFT_DIRTY", "KERNEL", "NAME",
           "__pte_batch_clear_ignored", "copy_present_ptes", "folio_pte_batch"]

NAME = "v6.9"
FPB_IGNORE_DIRTY = "FPB_IGNORE_DIRTY"
FPB_IGNORE_SOFT_DIRTY = "FPB_IGNORE_SOFT_DIRTY"


def __pte_batch_clear_ignored(pte: Pte, flags: frozenset[str]) -> Pte:
    """Mask the bits a batch may differ in: always young and write, dirty/soft-dirty by flag.

    Mirrors: mm/internal.h __pte_batch_clear_ignored(), v6.9.
    """
    if FPB_IGNORE_DIRTY in flags:
        pte = pte_mkclean(pte)
    if FPB_IGNORE_SOFT_DIRTY in flags:
        pte = pte_clear_soft_dirty(pte)
    return pte_wrprotect(pte_mkold(pte))


def folio_pte_batch(fc: ForkContext, folio: Folio, addr: int, src_vma: Vma, pte: Pte,
                    max_nr: int, flags: frozenset[str]) -> tuple[int, bool, str]:
    """Count consecutive PTEs from ``addr`` that map consecutive pages of ``folio``.

    Mirrors: mm/internal.h folio_pte_batch(), v6.9.  Every bit not masked must be equal
    (uffd-wp always; dirty in private mappings; soft-dirty when tracked).  The folio-end
    test runs *after* the equality test.  Returns (nr, any_writable, stop reason);
    ``any_writable`` looks only at PTEs after the first.
    """
    fc.ops["batch_scans"] += 1
    folio_end_pfn = folio.pfn + folio.nr_pages
    table = pte_offset_map(src_vma.vm_mm, addr)
    if table is None:
        raise KernelBug(f"folio_pte_batch: no PTE table at {addr:#x}")
    base = pte_index(addr)
    any_writable = False
    nr = 1  # pte_batch_hint(): generic arch
    expected = __pte_batch_clear_ignored(pte_advance_pfn(pte, nr), flags)
    stop = "range-end"
    while nr < max_nr:
        p = table.ptes[base + nr]
        fc.ops["pte_reads"] += 1
        masked = None if p is None else __pte_batch_clear_ignored(p, flags)
        if masked != expected:
            stop = pte_diff(expected, masked)
            break
        if p is None:   # pte_none() never equals a present expected value
            raise KernelBug("folio_pte_batch: empty slot passed the batch compare")
        # kernel: "Stop immediately once we reached the end of the folio."
        if p.pfn >= folio_end_pfn:
            stop = "folio-end"
            break
        any_writable |= p.write
        expected = pte_advance_pfn(expected, 1)
        nr += 1
    # Bounded by the page table and VMA only: a scan that reached its folio's last page
    # without meeting max_nr has read the entry after the folio (v6.17 caps max_nr there).
    read_past = stop != "range-end" and pte.pfn + nr == folio_end_pfn
    fc.emit("folio_pte_batch", f"stop:{stop}", f"batch of {nr}: {stop_words(stop)}"
            + ("; a later PTE is writable" if any_writable else "")
            + ("; read the entry after the folio" if read_past else ""), addr, nr,
            flags=",".join(sorted(flags)) or "none", read_past=read_past)
    return min(nr, max_nr), any_writable, stop


def copy_present_ptes(fc: ForkContext, dst_vma: Vma, src_vma: Vma, pte: Pte, addr: int,
                      max_nr: int, rss: dict[str, int], prealloc: Prealloc) -> int:
    """Copy one present PTE, batching the following PTEs that map the same large folio.

    Mirrors: mm/memory.c copy_present_ptes(), v6.9.
    Returns -EAGAIN when a preallocated page is needed for the next PTE, else the number
    of PTEs copied (>= 1).  The batch path is all-or-nothing: if any page of the batch
    must be copied, nothing is changed and -EAGAIN sends the first PTE down the per-PTE
    path on the retry.
    """
    f = "copy_present_ptes"
    page = vm_normal_page(fc, src_vma, addr, pte)
    if page is None:
        __copy_present_ptes(fc, dst_vma, src_vma, pte, addr, 1)
        fc.step(addr, 1, "raw", "no struct page (zero page / raw PFN): copied by value", f,
                "no-page")
        return 1
    folio = page.folio
    # kernel: "If we likely have to copy, just don't bother with batching. Make sure that
    # the common "small folio" case is as fast as possible by keeping the batching logic
    # separate."
    if prealloc.folio is None and folio_test_large(folio) and max_nr != 1:
        flags = set()
        if src_vma.vm_flags & VM_SHARED:
            flags.add(FPB_IGNORE_DIRTY)
        if not vma_soft_dirty_enabled(src_vma):
            flags.add(FPB_IGNORE_SOFT_DIRTY)
        nr, any_writable, stop = folio_pte_batch(fc, folio, addr, src_vma, pte, max_nr,
                                                 frozenset(flags))
        folio_ref_add(folio, nr)
        fc.ops["refcount_ops"] += 1
        if folio_test_anon(folio):
            if try_dup_anon(fc, "folio_try_dup_anon_rmap_ptes", folio, page, nr, dst_vma,
                            src_vma, addr):
                folio_ref_sub(folio, nr)
                fc.step(addr, 0, "eagain", f"batch of {nr} needs a copy: nothing changed, "
                        "retry per PTE with a preallocated page", f, "anon-dup-failed")
                return -EAGAIN
            rss[MM_ANONPAGES] += nr
        else:
            dup_file(fc, "folio_dup_file_rmap_ptes", folio, page, nr, dst_vma, addr)
            rss[mm_counter_file(folio)] += nr
        fc.ops["rss_updates"] += 1
        if any_writable:
            pte = pte_mkwrite(pte)
        __copy_present_ptes(fc, dst_vma, src_vma, pte, addr, nr)
        fc.step(addr, nr, "share", f"batch of {nr} mapped, not copied: {stop_words(stop)}", f, stop)
        return nr
    why = ("prealloc-held" if prealloc.folio is not None else
           "small-folio" if not folio_test_large(folio) else "max_nr-1")
    folio_get(folio)
    fc.ops["refcount_ops"] += 1
    if folio_test_anon(folio):
        if try_dup_anon(fc, "folio_try_dup_anon_rmap_pte", folio, page, 1, dst_vma, src_vma,
                        addr):
            folio_ref_sub(folio, 1)
            return copy_for_child(fc, f, dst_vma, src_vma, pte, addr, rss, prealloc, page,
                                  why)
        rss[MM_ANONPAGES] += 1
    else:
        dup_file(fc, "folio_dup_file_rmap_pte", folio, page, 1, dst_vma, addr)
        rss[mm_counter_file(folio)] += 1
    fc.ops["rss_updates"] += 1
    __copy_present_ptes(fc, dst_vma, src_vma, pte, addr, 1)
    fc.step(addr, 1, "share", f"one PTE mapped, not copied: {stop_words(why)}", f, why)
    return 1


KERNEL = KernelVersion(
    name=NAME, spec="C", title="v6.9: folio_pte_batch",
    present_func="copy_present_ptes", batch_func="folio_pte_batch",
    copy_present=copy_present_ptes, guard_markers=False, wp_large_folio="never",
    huge_zero_wp_thp=False, hwpoison_copy=False, since=(6, 9), folio_end="after-compare",
    anon_dup="all-or-nothing", prealloc_func="folio_prealloc",
    merged_bits=frozenset({"write"}))
