"""Reverse-mapping counters: mapcounts, PageAnonExclusive, and their duplication at fork.

Mirrors: include/linux/rmap.h (__folio_try_dup_anon_rmap, folio_try_dup_anon_rmap_pte(s),
folio_try_dup_anon_rmap_pmd, folio_dup_file_rmap_pte(s); v6.8 .. v6.17, and the
v6.7-era page_try_dup_anon_rmap / page_dup_file_rmap the seed patch calls) and
mm/rmap.c (folio_add_*_rmap_*, folio_remove_rmap_*).
Simplified: mapcounts are logical (no -1 bias); the anon_vma tree is not modelled;
CONFIG_MM_ID per-mm mapcounts are exact (the kernel tracks two mm ids and a sticky bit).
Taught in: notebooks/04-pinned-pages.ipynb
"""

from __future__ import annotations

import errno

from .folio import Folio, folio_maybe_dma_pinned, folio_test_anon, folio_touched
from .mm import MmStruct
from .vma import Vma

EBUSY = errno.EBUSY


def _mm_track(folio: Folio, mm: MmStruct, delta: int) -> None:
    """CONFIG_MM_ID: per-mm mapcount of the folio (drives "maybe mapped shared").

    Every rmap change ends here, so this is also where a recorder learns of it.
    """
    folio_touched(folio)
    c = folio.mm_mapcount.get(mm.mm_id, 0) + delta
    if c:
        folio.mm_mapcount[mm.mm_id] = c
    else:
        folio.mm_mapcount.pop(mm.mm_id, None)


# --- adding and removing mappings -------------------------------------------------------

def folio_add_anon_rmap_ptes(folio: Folio, first: int, nr: int, vma: Vma,
                             exclusive: bool) -> None:
    """Map pages [first, first+nr) of an anon folio; ``exclusive`` sets AnonExclusive."""
    for p in folio.pages[first:first + nr]:
        p._mapcount += 1
        if exclusive:
            p.anon_exclusive = True
    _mm_track(folio, vma.vm_mm, nr)
    folio.fresh = False


def folio_add_file_rmap_ptes(folio: Folio, first: int, nr: int, vma: Vma) -> None:
    """Map pages [first, first+nr) of a page-cache folio."""
    for p in folio.pages[first:first + nr]:
        p._mapcount += 1
    _mm_track(folio, vma.vm_mm, nr)
    folio.fresh = False


def folio_add_rmap_pmd(folio: Folio, vma: Vma, exclusive: bool) -> None:
    """Map the whole folio with one PMD (entire_mapcount); AE lives on the head page."""
    folio.entire_mapcount += 1
    if exclusive and folio_test_anon(folio):
        folio.pages[0].anon_exclusive = True
    _mm_track(folio, vma.vm_mm, 1)
    folio.fresh = False


def folio_remove_rmap_ptes(folio: Folio, first: int, nr: int, mm: MmStruct) -> None:
    """Unmap pages [first, first+nr); a page that is no longer mapped loses AE."""
    for p in folio.pages[first:first + nr]:
        p._mapcount -= 1
        if p.mapcount == 0:
            p.anon_exclusive = False
    _mm_track(folio, mm, -nr)


def folio_remove_rmap_pmd(folio: Folio, mm: MmStruct) -> None:
    """Remove one PMD mapping."""
    folio.entire_mapcount -= 1
    if folio.mapcount == 0:
        for p in folio.pages:
            p.anon_exclusive = False
    _mm_track(folio, mm, -1)


# --- duplication at fork ------------------------------------------------------------------

def folio_needs_cow_for_dma(src_vma: Vma, folio: Folio) -> bool:
    """Mirrors include/linux/mm.h folio_needs_cow_for_dma() (v6.8+; v6.7 page_needs_cow_for_dma).

    Only an mm that ever pinned (MMF_HAS_PINNED) pays for the pin check.
    """
    if not src_vma.vm_mm.has_pinned:
        return False
    return folio_maybe_dma_pinned(folio)


def __folio_try_dup_anon_rmap(folio: Folio, first: int, nr: int, dst_vma: Vma,
                              src_vma: Vma, ignore_pins: bool = False) -> int:
    """Duplicate the anon mappings of pages [first, first+nr) for the child, all or nothing.

    Mirrors: include/linux/rmap.h __folio_try_dup_anon_rmap(), RMAP_LEVEL_PTE, v6.9/v6.17
    (with nr=1 it is v6.8 folio_try_dup_anon_rmap_pte() and v6.7 page_try_dup_anon_rmap()).
    Returns -EBUSY, changing nothing, if the folio may be pinned and any of the pages is
    AnonExclusive: the caller must give the child a copy instead.  ``ignore_pins`` is the
    pkmm ablation "pinned-copy".
    """
    pages = folio.pages[first:first + nr]
    maybe_pinned = not ignore_pins and folio_needs_cow_for_dma(src_vma, folio)
    if maybe_pinned and any(p.anon_exclusive for p in pages):
        return -EBUSY
    for p in pages:
        p.anon_exclusive = False
        p._mapcount += 1
    _mm_track(folio, dst_vma.vm_mm, nr)
    return 0


def folio_try_dup_anon_rmap_pmd(folio: Folio, dst_vma: Vma, src_vma: Vma,
                                ignore_pins: bool = False) -> int:
    """PMD level: AE is tested and cleared on the head page only; entire_mapcount + 1.

    Mirrors: include/linux/rmap.h __folio_try_dup_anon_rmap(), RMAP_LEVEL_PMD, v6.8..v6.17.
    """
    head = folio.pages[0]
    if head.anon_exclusive:
        if not ignore_pins and folio_needs_cow_for_dma(src_vma, folio):
            return -EBUSY
        head.anon_exclusive = False
    folio.entire_mapcount += 1
    _mm_track(folio, dst_vma.vm_mm, 1)
    return 0


def folio_dup_file_rmap_ptes(folio: Folio, first: int, nr: int, dst_vma: Vma) -> None:
    """Mirrors: include/linux/rmap.h folio_dup_file_rmap_ptes() (v6.9; v6.17 adds dst_vma).

    File (page-cache) mappings can always be duplicated: no exclusivity to give up.
    """
    for p in folio.pages[first:first + nr]:
        p._mapcount += 1
    _mm_track(folio, dst_vma.vm_mm, nr)
