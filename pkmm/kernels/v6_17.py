"""v6.17: folio_pte_batch_flags() with FPB_RESPECT_* / FPB_MERGE_WRITE (spec version D).

Mirrors: mm/memory.c copy_present_ptes() and mm/internal.h folio_pte_batch_flags() at
torvalds/linux 7ae7e811f0a6 ("mm: folio_pte_batch() improvements", v6.17 merge window);
a live Linux 6.18 kernel behaves the same (notebooks/09-real-kernel-lab.ipynb,
``python -m pkmm realkernel``).
Versus v6.9: ``max_nr`` is clamped to the folio end before scanning (the XEN PV fix,
7b08b74f3d99, v6.15); the merged write bit is applied inside the batch function; rmap
dups take ``dst_vma`` (per-mm large-folio tracking); copy_present_page() can fail with
-EHWPOISON; GUARD markers are copied; write faults reuse exclusively mapped large folios.
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

__all__ = ["FPB_MERGE_WRITE", "FPB_RESPECT_DIRTY", "FPB_RESPECT_SOFT_DIRTY", "KERNEL", "NAME",
           "__pte_batch_clear_ignored", "copy_present_ptes", "folio_pte_batch_flags"]

NAME = "v6.17"
FPB_RESPECT_DIRTY = "FPB_RESPECT_DIRTY"
FPB_RESPECT_SOFT_DIRTY = "FPB_RESPECT_SOFT_DIRTY"
FPB_MERGE_WRITE = "FPB_MERGE_WRITE"


def __pte_batch_clear_ignored(pte: Pte, flags: frozenset[str]) -> Pte:
    """Mask young and write always; dirty / soft-dirty unless respected.

    Mirrors: mm/internal.h __pte_batch_clear_ignored(), v6.17 (FPB_RESPECT_*).
    """
    if FPB_RESPECT_DIRTY not in flags:
        pte = pte_mkclean(pte)
    if FPB_RESPECT_SOFT_DIRTY not in flags:
        pte = pte_clear_soft_dirty(pte)
    return pte_mkold(pte_wrprotect(pte))


def folio_pte_batch_flags(fc: ForkContext, folio: Folio, src_vma: Vma, addr: int,
                          ptent: Pte, max_nr: int,
                          flags: frozenset[str]) -> tuple[int, Pte, str]:
    """Count PTEs from ``addr`` mapping consecutive pages of ``folio``; merge the write bit.

    Mirrors: mm/internal.h folio_pte_batch_flags(), v6.17.  Returns (nr, the first PTE
    made writable if FPB_MERGE_WRITE and any later PTE was writable, stop reason).
    """
    fc.ops["batch_scans"] += 1
    # kernel: "Limit max_nr to the actual remaining PFNs in the folio we could batch."
    to_folio_end = folio.pfn + folio.nr_pages - ptent.pfn
    limit_stop = "folio-end" if to_folio_end <= max_nr else "range-end"
    max_nr = min(max_nr, to_folio_end)
    table = pte_offset_map(src_vma.vm_mm, addr)
    if table is None:
        raise KernelBug(f"folio_pte_batch_flags: no PTE table at {addr:#x}")
    base = pte_index(addr)
    any_writable = False
    nr = 1  # pte_batch_hint(): generic arch
    expected = __pte_batch_clear_ignored(pte_advance_pfn(ptent, nr), flags)
    stop = limit_stop
    while nr < max_nr:
        p = table.ptes[base + nr]
        fc.ops["pte_reads"] += 1
        masked = None if p is None else __pte_batch_clear_ignored(p, flags)
        if masked != expected:
            stop = pte_diff(expected, masked)
            break
        if p is None:   # pte_none() never equals a present expected value
            raise KernelBug("folio_pte_batch_flags: empty slot passed the batch compare")
        if FPB_MERGE_WRITE in flags:
            any_writable |= p.write
        expected = pte_advance_pfn(expected, 1)
        nr += 1
    if any_writable:
        ptent = pte_mkwrite(ptent)
    fc.emit("folio_pte_batch_flags", f"stop:{stop}", f"batch of {nr}: {stop_words(stop)}"
            + ("; FPB_MERGE_WRITE: a later PTE is writable" if any_writable else ""),
            addr, nr, flags=",".join(sorted(flags)), read_past=False)   # max_nr is capped
    return min(nr, max_nr), ptent, stop


def copy_present_ptes(fc: ForkContext, dst_vma: Vma, src_vma: Vma, pte: Pte, addr: int,
                      max_nr: int, rss: dict[str, int], prealloc: Prealloc) -> int:
    """Copy one present PTE, batching the following PTEs that map the same large folio.

    Mirrors: mm/memory.c copy_present_ptes(), v6.17.
    Returns -EAGAIN when a preallocated page is needed, -EHWPOISON when copying a
    pinned page hit a memory error, else the number of PTEs copied (>= 1).
    """
    f = "copy_present_ptes"
    page = vm_normal_page(fc, src_vma, addr, pte)
    if page is None:
        __copy_present_ptes(fc, dst_vma, src_vma, pte, addr, 1)
        fc.step(addr, 1, "raw", "no struct page (zero page / raw PFN): copied by value", f,
                "no-page")
        return 1
    folio = page.folio
    # kernel: "If we likely have to copy, just don't bother with batching."
    if prealloc.folio is None and folio_test_large(folio) and max_nr != 1:
        flags = {FPB_MERGE_WRITE}
        if not src_vma.vm_flags & VM_SHARED:
            flags.add(FPB_RESPECT_DIRTY)
        if vma_soft_dirty_enabled(src_vma):
            flags.add(FPB_RESPECT_SOFT_DIRTY)
        nr, pte, stop = folio_pte_batch_flags(fc, folio, src_vma, addr, pte, max_nr,
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
    name=NAME, spec="D", title="v6.17: folio_pte_batch_flags",
    present_func="copy_present_ptes", batch_func="folio_pte_batch_flags",
    copy_present=copy_present_ptes, guard_markers=True, wp_large_folio="exclusive",
    # since 6.15, not 6.17: fork behaves so from 6.15 on (the XEN PV fix caps max_nr at the
    # folio's end, large folios are reused after fork, CONFIG_MM_ID); 6.17's flag rework
    # changed no result.  The code mirrored is 6.17's.
    huge_zero_wp_thp=True, hwpoison_copy=True, since=(6, 15), checked=(6, 18),
    folio_end="clamp", anon_dup="all-or-nothing", prealloc_func="folio_prealloc",
    merged_bits=frozenset({"write"}))
