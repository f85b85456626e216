"""Reverse-mapping counters: mapcounts, PageAnonExclusive, and their duplication at fork.

Mirrors: include/linux/rmap.h (__folio_try_dup_anon_rmap, folio_try_dup_anon_rmap_pte(s),
folio_try_dup_anon_rmap_pmd, folio_dup_file_rmap_pte(s); v6.8 .. v6.17, and the
v6.7-era page_try_dup_anon_rmap / page_dup_file_rmap the seed patch calls) and
mm/rmap.c (folio_add_new_anon_rmap, folio_add_*_rmap_*, folio_remove_rmap_*); and the
new-anonymous-page sequence every anonymous allocation shares (alloc_new_anon_page).
Simplified: mapcounts are logical (no -1 bias); the anon_vma tree is not modelled;
CONFIG_MM_ID per-mm mapcounts are exact (the kernel tracks two mm ids and a sticky bit).
Taught in: notebooks/04-pinned-pages.ipynb
"""

from __future__ import annotations

import errno
from collections.abc import Iterable

from .errors import KernelBug
from .folio import (
    Folio,
    Page,
    folio_get,
    folio_maybe_dma_pinned,
    folio_test_anon,
    folio_touched,
)
from .mm import MmStruct
from .pte import HPAGE_PMD_ORDER
from .vma import Vma

__all__ = ["hugetlb_add_file_rmap", "hugetlb_add_new_anon_rmap", "hugetlb_remove_rmap",
           "hugetlb_try_dup_anon_rmap", "EBUSY", "large_mapcount_add", "SetPageAnonExclusive",
           "__folio_try_dup_anon_rmap", "alloc_new_anon_page",
           "folio_add_anon_rmap_ptes",
           "folio_add_file_rmap_ptes", "folio_add_new_anon_rmap", "folio_add_rmap_pmd",
           "folio_dup_file_rmap_pte", "folio_dup_file_rmap_ptes", "folio_needs_cow_for_dma",
           "folio_remove_rmap_pmd", "folio_remove_rmap_ptes", "folio_try_dup_anon_rmap_pmd",
           "folio_try_dup_anon_rmap_pte", "folio_try_dup_anon_rmap_ptes",
           "page_dup_file_rmap", "page_try_dup_anon_rmap"]

EBUSY = errno.EBUSY


def _mm_track(folio: Folio, mm: MmStruct, delta: int) -> None:
    """Count ``delta`` more (or fewer) mappings of ``folio`` in ``mm``: the folio's total
    (``folio_large_mapcount``), the kernel's two MM-id slots of a large folio, and pkmm's
    exact per-mm count (which only pkmm's own checks read).

    Every rmap change ends here, so this is also where a recorder learns of it.
    """
    folio_touched(folio)
    folio.total_mapcount += delta
    if folio.order:
        if delta > 0:
            folio_add_return_large_mapcount(folio, delta, mm.mm_id)
        else:
            folio_sub_return_large_mapcount(folio, -delta, mm.mm_id)
    c = folio.mm_mapcount.get(mm.mm_id, 0) + delta
    if c:
        folio.mm_mapcount[mm.mm_id] = c
    else:
        folio.mm_mapcount.pop(mm.mm_id, None)


def folio_add_return_large_mapcount(folio: Folio, diff: int, mm_id: int) -> None:
    """``diff`` new mappings of a large folio by ``mm_id``: count them in that mm's slot,
    or take a free slot -- and if other mappings exist, or the second slot is taken,
    the folio is "maybe mapped shared".  With both slots owned by other mms nothing but
    the total changes (the kernel tracks two mms, not all of them).

    Mirrors: include/linux/rmap.h folio_add_return_large_mapcount(), CONFIG_MM_ID (v6.15+;
    counts here are logical, the kernel's start at -1).
    """
    folio.mm_ids_shared = large_mapcount_add(folio.mm_ids, folio.mm_id_mapcount,
                                             folio.mm_ids_shared, folio.total_mapcount,
                                             diff, mm_id)


def large_mapcount_add(ids: list[int | None], counts: list[int], shared: bool, total: int,
                       diff: int, mm_id: int) -> bool:
    """The state change of :func:`folio_add_return_large_mapcount` on bare values: ``ids``
    and ``counts`` (the two slots) change in place, ``total`` is the folio's mapcount
    with the ``diff`` new mappings; returns the "maybe mapped shared" bit.  (pkmm: the
    bulk fork runs it once per distinct folio state.)"""
    if ids[0] == mm_id:
        counts[0] += diff
    elif ids[1] == mm_id:
        counts[1] += diff
    elif ids[0] is None:
        ids[0], counts[0] = mm_id, diff
        if total != diff:                     # kernel: "We might have other mappings"
            shared = True
    elif ids[1] is None:
        ids[1], counts[1] = mm_id, diff
        shared = True                         # kernel: "Slot 0 certainly has mappings"
    return shared


def folio_sub_return_large_mapcount(folio: Folio, diff: int, mm_id: int) -> None:
    """``diff`` mappings of a large folio by ``mm_id`` gone: a slot that drops to none is
    freed, and only then (or when ``mm_id`` owns no slot) is "mapped shared" cleared --
    if one slot now holds every mapping.

    Mirrors: include/linux/rmap.h folio_sub_return_large_mapcount(), CONFIG_MM_ID.
    """
    ids, counts = folio.mm_ids, folio.mm_id_mapcount
    for slot in (0, 1):
        if ids[slot] == mm_id:
            counts[slot] -= diff
            if counts[slot] > 0:
                return                        # kernel: "goto out"
            ids[slot], counts[slot] = None, 0
            break
    # kernel: "If one MM slot owns all mappings, the folio is mapped exclusively."
    if folio.total_mapcount in (counts[0], counts[1]):
        folio.mm_ids_shared = False


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


def folio_add_new_anon_rmap(folio: Folio, vma: Vma, exclusive: bool = True) -> None:
    """Map a folio fresh from the allocator, whole: by PTEs (order-0 and mTHP folios) or,
    PMD-sized, by one PMD.

    Mirrors: mm/rmap.c folio_add_new_anon_rmap(), v6.8 .. v6.17 (RMAP_EXCLUSIVE: every
    page is AnonExclusive -- nobody else can map it yet).
    """
    if not folio.fresh:
        raise KernelBug(f"folio_add_new_anon_rmap: {folio!r} is not fresh from the allocator")
    if folio.order == HPAGE_PMD_ORDER:
        folio_add_rmap_pmd(folio, vma, exclusive)
    else:
        folio_add_anon_rmap_ptes(folio, 0, folio.nr_pages, vma, exclusive)


def SetPageAnonExclusive(page: Page) -> None:
    """Mark an anon page exclusive to the one mm mapping it (a write fault reusing it).

    Mirrors: include/linux/page-flags.h SetPageAnonExclusive().
    """
    page.anon_exclusive = True
    folio_touched(page.folio)


def alloc_new_anon_page(vma: Vma, contents: Iterable[int] = (), *,
                        folio: Folio | None = None, order: int = 0) -> Folio | None:
    """A new exclusive anon folio for ``vma``: ``folio`` (a preallocated one) or a fresh
    allocation (None when it fails), filled with ``contents`` page by page, mapped in
    the rmap and holding the reference of the mapping the caller writes.

    Mirrors the sequence every anonymous allocation in mm/memory.c and
    mm/huge_memory.c runs: folio_prealloc() / vma_alloc_folio() (unless preallocated),
    copy_user_highpage() or zeroing, folio_add_new_anon_rmap(); the folio's first
    reference is the new mapping's.  The caller writes the PTE or PMD and counts rss.
    """
    if folio is None:
        folio = vma.vm_mm.machine.try_alloc_folio(order, "anon")
        if folio is None:
            return None
    for page, data in zip(folio.pages, contents, strict=False):
        page.data = data
    folio_add_new_anon_rmap(folio, vma, exclusive=True)
    folio_get(folio)
    return folio

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


def folio_try_dup_anon_rmap_ptes(folio: Folio, page: Page, nr: int, dst_vma: Vma,
                                 src_vma: Vma, ignore_pins: bool = False) -> int:
    """Mirrors: include/linux/rmap.h folio_try_dup_anon_rmap_ptes(), v6.9 .. v6.17:
    pages [page, page+nr), all or nothing (0, or -EBUSY changing nothing)."""
    return __folio_try_dup_anon_rmap(folio, page.index, nr, dst_vma, src_vma, ignore_pins)


def folio_try_dup_anon_rmap_pte(folio: Folio, page: Page, dst_vma: Vma, src_vma: Vma,
                                ignore_pins: bool = False) -> int:
    """Mirrors: include/linux/rmap.h folio_try_dup_anon_rmap_pte(), v6.8 .. v6.17."""
    return __folio_try_dup_anon_rmap(folio, page.index, 1, dst_vma, src_vma, ignore_pins)


def page_try_dup_anon_rmap(page: Page, dst_vma: Vma, src_vma: Vma,
                           ignore_pins: bool = False) -> int:
    """Mirrors: include/linux/rmap.h page_try_dup_anon_rmap(page, false, src_vma), v6.7
    (the seed patch's tree; ``dst_vma`` only feeds pkmm's per-mm mapcounts)."""
    return __folio_try_dup_anon_rmap(page.folio, page.index, 1, dst_vma, src_vma, ignore_pins)


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


def folio_dup_file_rmap_ptes(folio: Folio, page: Page, nr: int, dst_vma: Vma) -> None:
    """Mirrors: include/linux/rmap.h folio_dup_file_rmap_ptes() (v6.9; v6.17 adds dst_vma).

    File (page-cache) mappings can always be duplicated: no exclusivity to give up.
    """
    for p in folio.pages[page.index:page.index + nr]:
        p._mapcount += 1
    _mm_track(folio, dst_vma.vm_mm, nr)


def folio_dup_file_rmap_pte(folio: Folio, page: Page, dst_vma: Vma) -> None:
    """Mirrors: include/linux/rmap.h folio_dup_file_rmap_pte(), v6.8 .. v6.17."""
    folio_dup_file_rmap_ptes(folio, page, 1, dst_vma)


def page_dup_file_rmap(page: Page, dst_vma: Vma) -> None:
    """Mirrors: include/linux/rmap.h page_dup_file_rmap(page, false), v6.7."""
    folio_dup_file_rmap_ptes(page.folio, page, 1, dst_vma)


# --- hugetlb: a huge page is mapped whole (entire mapcount) ------------------------------------

def hugetlb_add_new_anon_rmap(folio: Folio, vma: Vma) -> None:
    """Mirrors: include/linux/rmap.h hugetlb_add_new_anon_rmap(): entire mapcount 1, the
    head page AnonExclusive."""
    folio.entire_mapcount += 1
    folio.pages[0].anon_exclusive = True
    folio.fresh = False
    _mm_track(folio, vma.vm_mm, 1)


def hugetlb_add_file_rmap(folio: Folio, vma: Vma) -> None:
    """Mirrors: include/linux/rmap.h hugetlb_add_file_rmap()."""
    folio.entire_mapcount += 1
    folio.fresh = False
    _mm_track(folio, vma.vm_mm, 1)


def hugetlb_try_dup_anon_rmap(folio: Folio, src_vma: Vma, dst_vma: Vma,
                              ignore_pins: bool = False) -> int:
    """Mirrors: include/linux/rmap.h hugetlb_try_dup_anon_rmap(): -EBUSY (nothing changed)
    for an AnonExclusive page that may be pinned, else AE cleared and mapcount + 1."""
    head = folio.pages[0]
    if head.anon_exclusive:
        if not ignore_pins and folio_needs_cow_for_dma(src_vma, folio):
            return -errno.EBUSY
        head.anon_exclusive = False
    folio.entire_mapcount += 1
    _mm_track(folio, dst_vma.vm_mm, 1)
    return 0


def hugetlb_remove_rmap(folio: Folio, mm: MmStruct) -> None:
    """Mirrors: include/linux/rmap.h hugetlb_remove_rmap()."""
    folio.entire_mapcount -= 1
    if not folio.entire_mapcount:
        folio.pages[0].anon_exclusive = False
    _mm_track(folio, mm, -1)
