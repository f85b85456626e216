"""Unmapping: the whole address space at exit, or a range (munmap, MADV_DONTNEED), and the
VMA splits and merges that every range operation starts and ends with.

Mirrors: mm/mmap.c exit_mmap() -> unmap_vmas() -> zap_pte_range() (mm/memory.c) /
zap_huge_pmd() (mm/huge_memory.c) -> free_pgtables(); mm/vma.c __split_vma(),
vma_modify(), vma_merge_existing_range(), do_vmi_munmap(); mm/memory.c
zap_page_range_single(); v6.8 .. v6.17.
Simplified: no maple tree, locks or TLB batching; at exit the pins and plain references
taken through this mm are dropped here, as closing the pinner's files would.
Taught in: notebooks/07-after-fork.ipynb
"""

from __future__ import annotations

from dataclasses import replace

from .errors import KernelBug
from .folio import folio_put, migration_entry_remove
from .gup import unpin_user_pages_all
from .huge_memory import __split_huge_pmd, zap_huge_pmd
from .hugetlb import unmap_hugepage_range
from .mm import MM_SWAPENTS, MmStruct, mm_counter, mm_dec_nr_ptes
from .pgtable import (
    PteTable,
    free_pgtables,
    free_pte_table,
    pgtable_trans_huge_withdraw,
    pmd_addr_end,
    pmdp_get,
    pte_index,
    pte_offset_map,
    ptep_get_and_clear,
)
from .pte import (
    PAGE_SIZE,
    PMD_SHIFT,
    PMD_SIZE,
    PTRS_PER_PTE,
    Pte,
    is_migration_entry,
    is_swap_entry,
)
from .rmap import folio_remove_rmap_ptes
from .swap import folio_free_swap, free_swap_and_cache
from .vma import VM_SOFTDIRTY, Vma

__all__ = ["do_munmap", "exit_mmap", "free_unused_pgtables", "split_vma", "vma_merge_around",
           "vma_modify", "zap_page_range_single", "zap_pte", "zap_pte_range"]


def exit_mmap(mm: MmStruct) -> None:
    """Unmap every mapping of ``mm``, drop its pins and references, free its tables, and
    take it off the machine's list of live mms."""
    for vma in mm.vmas:
        if vma.hugetlb_kb:
            unmap_hugepage_range(vma, vma.vm_start, vma.vm_end)
    for idx in sorted(mm.pmds):
        ent = mm.pmds[idx]
        if isinstance(ent, PteTable):
            zap_pte_range(mm, ent)
        else:
            zap_huge_pmd(mm, idx << PMD_SHIFT)
    free_pgtables(mm)
    unpin_user_pages_all(mm)
    if mm in mm.machine.mms:
        mm.machine.mms.remove(mm)


def zap_pte_range(mm: MmStruct, table: PteTable) -> None:
    """Clear every slot of one PTE table, dropping what each held."""
    for i in range(PTRS_PER_PTE):
        pte = ptep_get_and_clear(table, i)
        if pte is not None:
            zap_pte(mm, pte)


def zap_pte(mm: MmStruct, pte: Pte) -> None:
    """Drop whatever one PTE held: a mapping and reference, a swap slot, an rss count."""
    if pte.present:
        found = None if pte.special else mm.machine.pfn_folio(pte.pfn)
        if found is None or found[0].kind in ("zero", "huge_zero"):
            return
        folio, i = found
        folio_remove_rmap_ptes(folio, i, 1, mm)
        mm.add_mm_counter(mm_counter(folio), -1)
        if folio.swap is not None and not folio.mapcount:
            folio_free_swap(folio)      # free_swap_cache(): the last mapping went away
        folio_put(folio)
    elif is_swap_entry(pte) and pte.swp is not None:
        free_swap_and_cache(mm.machine, pte.swp.offset)
        mm.add_mm_counter(MM_SWAPENTS, -1)
    elif is_migration_entry(pte) and pte.swp is not None:
        found = mm.machine.pfn_folio(pte.swp.offset)
        if found is None:
            raise KernelBug(f"zap_pte: migration entry {pte!r} names a freed page")
        mm.add_mm_counter(mm_counter(found[0]), -1)
        migration_entry_remove(found[0])


# --- VMA splitting and merging (mm/vma.c) ---------------------------------------------------

def split_vma(vma: Vma, addr: int) -> Vma:
    """Cut ``vma`` at ``addr``: it keeps [vm_start, addr), the returned new VMA gets
    [addr, vm_end) with the same flags, file offset, anon_vma and uffd context.

    Mirrors: mm/vma.c __split_vma(), v6.8 .. v6.17 (vma_adjust_trans_huge() first splits
    a PMD-mapped THP that the cut goes through).
    """
    if not vma.vm_start < addr < vma.vm_end or addr % PAGE_SIZE:
        raise KernelBug(f"split_vma: {addr:#x} is not inside {vma!r}")
    if addr % PMD_SIZE and pmdp_get(vma.vm_mm, addr) is not None:
        __split_huge_pmd(vma.vm_mm, vma, addr & ~(PMD_SIZE - 1))
    new = replace(vma, vm_start=addr, vm_pgoff=vma.linear_page_index(addr))
    vma.vm_end = addr
    vma.vm_mm.insert_vma(new)
    return new


def vma_modify(vma: Vma, start: int, end: int) -> Vma:
    """The VMA covering exactly [start, end) of ``vma``, splitting off what lies outside.

    Mirrors: mm/vma.c vma_modify() (its split half; the merge half is vma_merge_around()).
    """
    if start > vma.vm_start:
        vma = split_vma(vma, start)
    if end < vma.vm_end:
        split_vma(vma, end)
    return vma


def _mergeable(a: Vma, b: Vma) -> bool:
    """Mirrors: mm/vma.c is_mergeable_vma() + is_mergeable_anon_vma(): adjacent, the same
    flags (VM_SOFTDIRTY aside), file and uffd context, a continuous file offset, and the
    same anon_vma (or none on one side)."""
    return (a.vm_end == b.vm_start and a.vm_mm is b.vm_mm
            and (a.vm_flags ^ b.vm_flags) & ~VM_SOFTDIRTY == 0
            and a.backing == b.backing and a.vm_file is b.vm_file
            and a.uffd_fork == b.uffd_fork
            and (a.vm_file is None or a.linear_page_index(a.vm_end) == b.vm_pgoff)
            and (a.anon_vma is None or b.anon_vma is None or a.anon_vma is b.anon_vma)
            and not a.hugetlb_kb and not b.hugetlb_kb)


def vma_merge_around(vma: Vma) -> Vma:
    """Merge ``vma`` with its neighbours where they are compatible; returns the result.

    Mirrors: mm/vma.c vma_merge_existing_range(), v6.8 .. v6.17 (vma_merge() before 6.12).
    """
    mm = vma.vm_mm
    after = mm.vma_neighbours(vma.vm_start)[1]
    prev = mm.vma_neighbours(vma.vm_start - 1)[0] if vma.vm_start else None
    if prev is not None and prev is not vma and _mergeable(prev, vma):
        _absorb(prev, vma)
        vma = prev
    if after is not None and _mergeable(vma, after):
        _absorb(vma, after)
    return vma


def _absorb(left: Vma, right: Vma) -> None:
    left.vm_mm.remove_vma(right)
    left.vm_end = right.vm_end
    left.anon_vma = left.anon_vma or right.anon_vma
    left.vm_flags |= right.vm_flags & VM_SOFTDIRTY


# --- unmapping a range: munmap() and MADV_DONTNEED --------------------------------------------

def zap_page_range_single(vma: Vma, start: int, end: int) -> None:
    """Drop every mapping of [start, end) in ``vma``: PTEs and their pages, swap entries,
    and PMD-mapped THPs (split first when the range covers only part of one).

    Mirrors: mm/memory.c zap_page_range_single() -> unmap_page_range() ->
    zap_pmd_range() / zap_pte_range(), v6.8 .. v6.17.
    """
    mm = vma.vm_mm
    if vma.hugetlb_kb:
        unmap_hugepage_range(vma, start, end)
        return
    addr = start
    while addr < end:
        nxt = pmd_addr_end(addr, end)
        if pmdp_get(mm, addr) is not None:
            if addr % PMD_SIZE == 0 and nxt - addr == PMD_SIZE:
                zap_huge_pmd(mm, addr)
                addr = nxt
                continue
            # kernel: zap_pmd_range: "if (next - addr != HPAGE_PMD_SIZE) __split_huge_pmd()"
            __split_huge_pmd(mm, vma, addr & ~(PMD_SIZE - 1))
        table = pte_offset_map(mm, addr)
        if table is not None:
            for i in range(pte_index(addr), pte_index(addr) + (nxt - addr) // PAGE_SIZE):
                pte = ptep_get_and_clear(table, i)
                if pte is not None:
                    zap_pte(mm, pte)
        addr = nxt


def free_unused_pgtables(mm: MmStruct, start: int, end: int) -> None:
    """Free the page tables of [start, end) that no VMA covers any more.

    Mirrors: mm/memory.c free_pgtables() -> free_pgd_range() for an unmapped range: a
    PTE table goes only when no VMA remains anywhere in its 2 MiB.
    """
    for idx in range(start >> PMD_SHIFT, ((end - 1) >> PMD_SHIFT) + 1):
        lo, hi = idx << PMD_SHIFT, (idx + 1) << PMD_SHIFT
        if idx in mm.pmds and not any(v.vm_start < hi and v.vm_end > lo for v in mm.vmas):
            if pgtable_trans_huge_withdraw(mm, lo):
                mm_dec_nr_ptes(mm)
            free_pte_table(mm, lo)


def do_munmap(mm: MmStruct, start: int, end: int) -> int:
    """Unmap [start, end): split the VMAs at the ends, zap and remove those inside, free
    the page tables left unused.  Returns the number of VMAs removed.

    Mirrors: mm/vma.c do_vmi_munmap() -> do_vmi_align_munmap() -> unmap_region(),
    v6.8 .. v6.17.
    """
    inside = [v for v in list(mm.vmas) if v.vm_start < end and v.vm_end > start]
    for v in inside:
        v = vma_modify(v, max(start, v.vm_start), min(end, v.vm_end))
        zap_page_range_single(v, v.vm_start, v.vm_end)
        mm.remove_vma(v)
    free_unused_pgtables(mm, start, end)
    return len(inside)
