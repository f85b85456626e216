"""Tearing an address space down at exit: every mapping, swap slot and reference dropped.

Mirrors: mm/mmap.c exit_mmap() -> unmap_vmas() -> zap_pte_range() (mm/memory.c) /
zap_huge_pmd() (mm/huge_memory.c) -> free_pgtables(), v6.8 .. v6.17.
Simplified: the whole mm at once (no munmap of a range); the pins and plain references
taken through this mm are dropped here, as closing the pinner's files would.
Taught in: notebooks/07-after-fork.ipynb
"""

from __future__ import annotations

from .folio import folio_put
from .gup import unpin_user_pages_all
from .huge_memory import zap_huge_pmd
from .mm import MM_SWAPENTS, MmStruct, mm_counter
from .pgtable import PteTable, free_pgtables, ptep_get_and_clear
from .pte import PMD_SHIFT, PTRS_PER_PTE, Pte, is_migration_entry, is_swap_entry
from .rmap import folio_remove_rmap_ptes

__all__ = ["exit_mmap", "zap_pte", "zap_pte_range"]


def exit_mmap(mm: MmStruct) -> None:
    """Unmap every mapping of ``mm``, drop its pins and references, free its tables, and
    take it off the machine's list of live mms."""
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
        folio_put(folio)
    elif is_swap_entry(pte) and pte.swp is not None:
        mm.machine.swap_free(pte.swp.offset)
        mm.add_mm_counter(MM_SWAPENTS, -1)
    elif is_migration_entry(pte) and pte.swp is not None:
        found = mm.machine.pfn_folio(pte.swp.offset)
        if found is not None:
            mm.add_mm_counter(mm_counter(found[0]), -1)
