"""Folios and their pages: refcount, mapcounts, AnonExclusive, pins, contents.

Mirrors: include/linux/mm.h and include/linux/mm_types.h (struct folio / struct page),
include/linux/page_ref.h (folio_ref_*), mm.h ``folio_maybe_dma_pinned``.
Simplified: one int of data per 4 KiB page; no LRU, memcg or locking state.
Taught in: notebooks/01-ptes-folios-vmas.ipynb

Counting rules (as in the kernel):
* every page-table mapping of a page holds one folio reference (a PMD mapping one);
* a page-cache folio holds ``nr_pages`` references for the cache itself;
* a FOLL_PIN adds ``GUP_PIN_COUNTING_BIAS`` (1024) to a small folio's refcount, and
  1 to a large folio's refcount plus 1 to its ``pincount``;
* a folio under migration holds one reference for the migration (migrate_pages()
  isolated it), however many migration entries name it; the entries themselves hold none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from .errors import KernelBug, LayoutError

if TYPE_CHECKING:  # pragma: no cover
    from .machine import Machine

__all__ = ["Folio", "FolioKind", "GUP_PIN_COUNTING_BIAS", "Page", "folio_get",
           "folio_maybe_dma_pinned", "folio_pin", "folio_put", "folio_put_refs", "folio_ref_add",
           "folio_ref_sub", "folio_test_anon", "folio_test_large", "folio_test_swapbacked",
           "folio_restore", "folio_touched", "folio_unpin", "migration_entry_add",
           "migration_entry_remove", "page_restore"]

GUP_PIN_COUNTING_BIAS = 1024
FolioKind = Literal["anon", "file", "shmem", "zero", "huge_zero"]


class Page:
    """One 4 KiB page of a folio (``struct page``)."""

    __slots__ = ("folio", "index", "_mapcount", "anon_exclusive", "data", "hwpoison")

    def __init__(self, folio: Folio, index: int) -> None:
        self.folio = folio
        self.index = index
        self._mapcount = 0          # PTE mappings of this page (logical, not -1 based)
        self.anon_exclusive = False  # PG_anon_exclusive
        self.data = 0               # the page contents, as one int
        self.hwpoison = False       # an uncorrectable memory error sits in this page

    @property
    def pfn(self) -> int:
        """``page_to_pfn``."""
        return self.folio.pfn + self.index

    @property
    def mapcount(self) -> int:
        """``page_mapcount``: PTE mappings of this page plus PMD mappings of its folio."""
        return self._mapcount + self.folio.entire_mapcount

    @property
    def pte_mapcount(self) -> int:
        """PTE mappings of this page only (``page->_mapcount + 1``); rmap.py changes it."""
        return self._mapcount

    def __repr__(self) -> str:
        return (f"Page(pfn={self.pfn:#x} mapcount={self.mapcount}"
                f"{' AE' if self.anon_exclusive else ''})")


class Folio:
    """A physically contiguous, naturally aligned group of ``2**order`` pages."""

    __slots__ = ("order", "pfn", "kind", "refcount", "_pincount", "pins", "gup_refs",
                 "entire_mapcount", "pages", "mm_mapcount", "ksm", "machine",
                 "fresh", "freed", "uid", "total_mapcount", "mm_ids", "mm_id_mapcount",
                 "mm_ids_shared", "swap", "hugetlb", "migration_entries")

    def __init__(self, machine: Machine, order: int, pfn: int, kind: FolioKind,
                 uid: int) -> None:
        self.machine = machine
        self.order = order
        self.pfn = pfn
        self.kind: FolioKind = kind
        self.refcount = 0
        self._pincount = 0          # large folios only (folio->_pincount)
        self.pins = 0               # pkmm bookkeeping: FOLL_PIN references held
        self.gup_refs = 0           # plain FOLL_GET references (vmsplice, O_DIRECT, ...)
        self.entire_mapcount = 0    # PMD mappings
        self.pages = [Page(self, i) for i in range(1 << order)] if order else [Page(self, 0)]
        self.total_mapcount = 0     # folio_mapcount(), kept by rmap.py
        self.swap: int | None = None   # folio->swap: its swap slot while in the swap cache
        self.hugetlb = False        # folio_test_hugetlb(): from the hugetlb pool
        # pkmm: migration entries naming this folio (while > 0 the migration holds its
        # reference; pkmm completes a migration entry by entry, when a fault waits for it)
        self.migration_entries = 0
        # CONFIG_MM_ID (include/linux/mm_types.h): two mm ids with their mapcounts and
        # the "maybe mapped shared" bit of a large folio
        self.mm_ids: list[int | None] = [None, None]
        self.mm_id_mapcount = [0, 0]
        self.mm_ids_shared = False
        # pkmm: exact mappings per mm (for pkmm's own checks, never for a kernel rule)
        self.mm_mapcount: dict[int, int] = {}
        self.ksm = False
        self.fresh = True           # allocated, never mapped yet
        self.freed = False
        self.uid = uid              # allocation number, stable across runs

    # -- geometry ---------------------------------------------------------------------
    @property
    def nr_pages(self) -> int:
        """``folio_nr_pages``."""
        return 1 << self.order

    def page(self, i: int) -> Page:
        """Page ``i`` of the folio (0-based)."""
        if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < self.nr_pages:
            raise LayoutError(f"page={i}: folio of order {self.order} has pages "
                              f"0..{self.nr_pages - 1}")
        return self.pages[i]

    # -- counters ---------------------------------------------------------------------
    @property
    def mapcount(self) -> int:
        """``folio_mapcount``: all PTE mappings of its pages plus its PMD mappings."""
        return self.total_mapcount

    @property
    def large_mapcount(self) -> int:
        """``folio_large_mapcount`` (v6.11+): same total, kept for large folios."""
        return self.mapcount

    @property
    def pincount(self) -> int:
        """FOLL_PIN count: ``folio->_pincount`` for large folios, pkmm's count for small."""
        return self._pincount if self.order else self.pins

    @property
    def maybe_mapped_shared(self) -> bool:
        """``folio_maybe_mapped_shared`` (v6.15+): a small folio mapped more than once; a
        large one mapped more than once with a page mapped twice (or a PMD), or whose
        MM-id tracking says "maybe mapped shared"."""
        if not self.order:
            return self.total_mapcount > 1
        if self.total_mapcount <= 1:
            return False
        if self.entire_mapcount or self.total_mapcount > self.nr_pages:
            return True
        return self.mm_ids_shared

    def __repr__(self) -> str:
        return (f"Folio({self.kind} order={self.order} pfn={self.pfn:#x} "
                f"ref={self.refcount} map={self.mapcount}"
                f"{' pin=' + str(self.pincount) if self.pincount else ''})")


# --- predicates (include/linux/mm.h, page-flags.h) --------------------------------------

def folio_test_large(folio: Folio) -> bool:
    """More than one page."""
    return folio.order > 0


def folio_test_anon(folio: Folio) -> bool:
    """Anonymous memory (including KSM); zero pages are not anon."""
    return folio.kind == "anon"


def folio_test_swapbacked(folio: Folio) -> bool:
    """Anon or shmem: counts as MM_SHMEMPAGES when mapped from a file mapping."""
    return folio.kind in ("anon", "shmem")


def folio_maybe_dma_pinned(folio: Folio) -> bool:
    """Mirrors include/linux/mm.h folio_maybe_dma_pinned() (v6.8..v6.17).

    Large folios keep an exact ``pincount``; small folios use the fuzzy refcount test
    (a FOLL_PIN adds 1024), so 1024 plain references look pinned too.
    """
    if folio_test_large(folio):
        return folio._pincount > 0
    return folio.refcount >= GUP_PIN_COUNTING_BIAS


def folio_touched(folio: Folio) -> None:
    """pkmm: note that a counter of ``folio`` changed, for a recorder (pkmm.replay).

    Every helper that changes a refcount, mapcount, AnonExclusive bit or pin calls it.
    """
    watch = folio.machine.watch
    if watch is not None:
        watch.add(folio.pfn)


# --- references (include/linux/page_ref.h, mm/swap.c) -----------------------------------

def folio_ref_add(folio: Folio, nr: int) -> None:
    """Take ``nr`` references."""
    folio.refcount += nr
    folio_touched(folio)


def folio_get(folio: Folio) -> None:
    """Take one reference."""
    folio_ref_add(folio, 1)


def folio_ref_sub(folio: Folio, nr: int) -> None:
    """Drop ``nr`` references without freeing (the caller still holds one)."""
    folio.refcount -= nr
    folio_touched(folio)
    if folio.refcount < 0:
        raise KernelBug(f"folio_ref_sub: refcount of {folio!r} went negative")


def folio_put_refs(folio: Folio, nr: int) -> None:
    """Drop ``nr`` references; the last one frees the folio."""
    folio_ref_sub(folio, nr)
    if folio.refcount == 0 and folio.kind not in ("zero", "huge_zero"):
        folio.machine.free_folio(folio)


def folio_put(folio: Folio) -> None:
    """Drop one reference; the last one frees the folio."""
    folio_put_refs(folio, 1)


# --- FOLL_PIN (mm/gup.c) ------------------------------------------------------------------

def folio_pin(folio: Folio, refs: int = 1) -> None:
    """Take ``refs`` FOLL_PIN references (pages of one folio pinned in one go).

    Mirrors: mm/gup.c try_grab_folio(folio, refs, FOLL_PIN), v6.8 .. v6.17: a large folio
    gets ``refs`` references and ``_pincount + refs``; a small one ``refs *
    GUP_PIN_COUNTING_BIAS`` references (it has no room for a pincount).

    >>> from pkmm.machine import Machine
    >>> small, large = Machine().alloc_folio(0, "anon"), Machine().alloc_folio(2, "anon")
    >>> folio_pin(small); folio_pin(large, 4)
    >>> small.refcount, small.pincount, large.refcount, large.pincount
    (1024, 1, 4, 4)
    """
    folio.pins += refs
    if folio_test_large(folio):
        folio._pincount += refs
        folio_ref_add(folio, refs)
    else:
        folio_ref_add(folio, refs * GUP_PIN_COUNTING_BIAS)


def folio_unpin(folio: Folio, refs: int = 1) -> None:
    """Drop ``refs`` FOLL_PIN references (the last reference frees the folio).

    Mirrors: mm/gup.c gup_put_folio(folio, refs, FOLL_PIN), v6.8 .. v6.17.
    """
    if folio.pins < refs:
        raise KernelBug(f"folio_unpin: {folio!r} holds {folio.pins} pin(s), not {refs}")
    folio.pins -= refs
    if folio_test_large(folio):
        folio._pincount -= refs
        folio_put_refs(folio, refs)
    else:
        folio_put_refs(folio, refs * GUP_PIN_COUNTING_BIAS)


# --- a folio under migration (mm/migrate.c) -------------------------------------------------

def migration_entry_add(folio: Folio, nr: int = 1) -> None:
    """pkmm: ``nr`` more migration entries name ``folio``.  The first takes the
    migration's reference: migrate_pages() holds the folio it isolated until every
    mapping is restored, so the unmapped folio survives its mappers' exits."""
    if folio.migration_entries == 0:
        folio_get(folio)
    folio.migration_entries += nr


def migration_entry_remove(folio: Folio) -> None:
    """pkmm: one migration entry of ``folio`` is gone (restored by a fault or zapped);
    with the last one the migration ends and drops its reference (possibly the last)."""
    if folio.migration_entries <= 0:
        raise KernelBug(f"migration_entry_remove: {folio!r} has no migration entries")
    folio.migration_entries -= 1
    if folio.migration_entries == 0:
        folio_put(folio)


# --- rebuilding a recorded layout (pkmm only; no kernel path calls these) -----------------

def folio_restore(folio: Folio, *, refcount: int, pincount: int, pins: int, gup_refs: int,
                  entire_mapcount: int, ksm: bool = False, migration_entries: int = 0,
                  swap: int | None = None,
                  mm_ids: tuple[list[int | None], list[int], bool] | None = None) -> None:
    """pkmm: give a folio the counters of a recorded one (``pincount``: ``_pincount``, 0
    for a small folio; ``mm_ids``: the MM-id slots, their mapcounts and the shared bit).
    :mod:`pkmm.fast` rebuilds model objects from its arrays with it."""
    folio.total_mapcount += entire_mapcount - folio.entire_mapcount
    folio.refcount, folio._pincount, folio.pins = refcount, pincount, pins
    folio.gup_refs, folio.entire_mapcount, folio.ksm = gup_refs, entire_mapcount, ksm
    folio.migration_entries, folio.swap = migration_entries, swap
    if mm_ids is not None:
        folio.mm_ids, folio.mm_id_mapcount, folio.mm_ids_shared = \
            list(mm_ids[0]), list(mm_ids[1]), mm_ids[2]
    folio.fresh = False
    folio_touched(folio)


def page_restore(page: Page, *, mapcount: int, anon_exclusive: bool, hwpoison: bool) -> None:
    """pkmm: give a page a recorded state (``mapcount``: its :attr:`Page.pte_mapcount`)."""
    page.folio.total_mapcount += mapcount - page._mapcount
    page._mapcount, page.anon_exclusive, page.hwpoison = mapcount, anon_exclusive, hwpoison
    folio_touched(page.folio)
