"""Swap: paging an anon folio out (MADV_PAGEOUT), the swap cache, and freeing slots.

Mirrors: mm/madvise.c madvise_cold_or_pageout_pte_range() -> mm/vmscan.c
reclaim_pages() -> shrink_folio_list() (add_to_swap(), try_to_unmap(), pageout());
mm/rmap.c try_to_unmap_one() for an anon page; mm/swap_state.c add_to_swap_cache(),
swap_cache_get_folio(), read_swap_cache_async(); mm/swapfile.c folio_free_swap(),
free_swap_and_cache_nr(); v6.8 .. v6.17.
Simplified, as on the live machine the stored results come from: the swap device takes
order-0 entries only (a rotational swapfile), so reclaim splits a large folio first;
swap readahead is off (vm.page-cluster 0); a paged-out folio stays in the swap cache
until a fault or an unmap frees it (no memory pressure evicts it); file pages are not
paged out.
Taught in: notebooks/07-after-fork.ipynb

Why it matters for copy-on-write: a swap entry that fork duplicated is not exclusive any
more, so the page a later fault reads back is shared through the swap cache with the
other process's entry -- it comes back read-only, and a write copies it while that other
entry still refers to the slot.
"""

from __future__ import annotations

from .folio import (
    Folio,
    folio_maybe_dma_pinned,
    folio_put,
    folio_put_refs,
    folio_ref_add,
    folio_test_anon,
)
from .huge_memory import __split_huge_pmd, pmd_folio, split_folio
from .machine import Machine
from .mm import MM_ANONPAGES, MM_SWAPENTS
from .pgtable import pmd_addr_end, pmdp_get, pte_index, pte_offset_map
from .pte import PAGE_SIZE, PMD_SIZE, Pte, mk_swap_pte
from .rmap import folio_remove_rmap_ptes
from .vma import Vma

__all__ = ["add_to_swap", "folio_free_swap", "folio_test_swapcache", "free_swap_and_cache",
           "madvise_pageout", "read_swap_cache_async", "swap_cache_get_folio"]


def folio_test_swapcache(folio: Folio) -> bool:
    """PG_swapcache: the folio is in the swap cache."""
    return folio.swap is not None


def add_to_swap(folio: Folio) -> int:
    """Give an order-0 anon folio a swap slot and put it in the swap cache (which holds
    one reference per page); returns the slot.  Mirrors: mm/swap_state.c add_to_swap()
    -> folio_alloc_swap() + add_to_swap_cache()."""
    machine = folio.machine
    off = machine.swap_alloc(folio.pages[0].data, count=0)
    machine.swap[off].cache = folio
    folio.swap = off
    folio_ref_add(folio, folio.nr_pages)
    return off


def swap_cache_get_folio(machine: Machine, offset: int) -> Folio | None:
    """The folio the swap cache holds for ``offset`` (mm/swap_state.c)."""
    slot = machine.swap.get(offset)
    return None if slot is None else slot.cache


def read_swap_cache_async(machine: Machine, offset: int) -> Folio:
    """Read slot ``offset`` into a new order-0 folio in the swap cache (a major fault).

    Mirrors: mm/swap_state.c read_swap_cache_async() / __read_swap_cache_async().
    """
    slot = machine.swap[offset]
    folio = machine.alloc_folio(0, "anon")
    folio.pages[0].data = slot.data
    slot.cache = folio
    folio.swap = offset
    folio_ref_add(folio, 1)             # the swap cache's reference
    return folio


def folio_free_swap(folio: Folio) -> bool:
    """Drop the folio from the swap cache if no swap PTE refers to its slot any more.

    Mirrors: mm/swapfile.c folio_free_swap(): "if (folio_swapped(folio)) return false;"
    then delete_from_swap_cache(); the slot is free once nothing refers to it.
    """
    if folio.swap is None:
        return False
    machine = folio.machine
    slot = machine.swap[folio.swap]
    if slot.count:
        return False
    del machine.swap[folio.swap]
    folio.swap = None
    folio_put_refs(folio, folio.nr_pages)
    return True


def free_swap_and_cache(machine: Machine, offset: int) -> None:
    """One swap PTE fewer refers to ``offset``; if none does now, reclaim the swap-cache
    folio that nobody maps.  Mirrors: mm/swapfile.c free_swap_and_cache_nr()."""
    slot = machine.swap[offset]
    slot.count -= 1
    if slot.count:
        return
    if slot.cache is None:
        del machine.swap[offset]
    elif not slot.cache.mapcount:
        folio_free_swap(slot.cache)         # __try_to_reclaim_swap()


# --- MADV_PAGEOUT ----------------------------------------------------------------------------

def try_to_unmap_one(vma: Vma, addr: int, folio: Folio, off: int) -> None:
    """Replace the PTE mapping the swap-cache page ``folio`` by a swap entry: exclusive
    iff the page was AnonExclusive, soft-dirty and uffd-wp carried over.

    Mirrors: mm/rmap.c try_to_unmap_one() for an anon page, v6.8 .. v6.17.
    """
    mm = vma.vm_mm
    table = pte_offset_map(mm, addr)
    if table is None:
        return
    pte = table.ptes[pte_index(addr)]
    if pte is None:
        return
    swp = mk_swap_pte("swap", off, exclusive=folio.pages[0].anon_exclusive,
                      soft_dirty=pte.soft_dirty, uffd_wp=pte.uffd_wp)
    table.ptes[pte_index(addr)] = swp
    folio.machine.swap_duplicate(off)
    folio_remove_rmap_ptes(folio, 0, 1, mm)
    mm.add_mm_counter(MM_ANONPAGES, -1)
    mm.add_mm_counter(MM_SWAPENTS, 1)
    folio_put(folio)


def _reclaim(vma: Vma, addr: int, folio: Folio) -> None:
    """shrink_folio_list() for one unshared order-0 anon folio mapped at ``addr``."""
    if folio_maybe_dma_pinned(folio):
        return                           # kernel: "goto keep_locked"
    off = add_to_swap(folio)
    try_to_unmap_one(vma, addr, folio, off)
    folio.machine.swap[off].data = folio.pages[0].data      # pageout()


def _pageout_pte(vma: Vma, addr: int, pte: Pte) -> None:
    mm = vma.vm_mm
    found = None if pte.special or not pte.present else mm.machine.pfn_folio(pte.pfn)
    if found is None or not folio_test_anon(found[0]) or found[0].swap is not None:
        return
    folio = found[0]
    if folio.maybe_mapped_shared:
        return       # kernel: "Do not interfere with other mappings of this folio"
    if folio.order:
        # kernel: the swap device takes no large entry (or the folio is only partly in
        # range): split, then reclaim the pages one by one
        if split_folio(folio, mm) is None:
            return
        found = mm.machine.pfn_folio(pte.pfn)
        if found is None:
            return
        folio = found[0]
    _reclaim(vma, addr, folio)


def madvise_pageout(vma: Vma, start: int, end: int) -> None:
    """MADV_PAGEOUT: swap out the unshared anon pages of [start, end) now.

    Mirrors: mm/madvise.c madvise_pageout() -> madvise_cold_or_pageout_pte_range():
    a PMD-mapped THP is split first (reclaim's TTU_SPLIT_HUGE_PMD, then its folio split),
    a shared or pinned folio is skipped.
    """
    mm = vma.vm_mm
    addr = start
    while addr < end:
        nxt = pmd_addr_end(addr, end)
        pmd = pmdp_get(mm, addr)
        if pmd is not None:
            if pmd.huge_zero or pmd_folio(mm, pmd).maybe_mapped_shared:
                addr = nxt
                continue
            __split_huge_pmd(mm, vma, addr & ~(PMD_SIZE - 1))
        table = pte_offset_map(mm, addr)
        if table is not None:
            for a in range(addr, nxt, PAGE_SIZE):
                pte = table.ptes[pte_index(a)]
                if pte is not None:
                    _pageout_pte(vma, a, pte)
        addr = nxt
