"""Pinning user pages: FOLL_PIN pins, plain FOLL_GET references, and a device writing
through its pin.

Mirrors: mm/gup.c pin_user_pages() / unpin_user_page() (FOLL_PIN | FOLL_LONGTERM, what
io_uring fixed buffers and RDMA take) and get_user_pages() (FOLL_GET, what vmsplice()
into a pipe holds), v6.8 .. v6.17; include/linux/mm.h mm_set_has_pinned_flag().
Simplified: the page is named by its folio and index, not looked up through a virtual
address (the caller, :class:`pkmm.Process`, checked that the pinning mm maps it and that
it is AnonExclusive, as GUP's unsharing fault would make it); the references belong to
the mm and are dropped by :func:`pkmm.mmap.exit_mmap`, as closing the pinner's files at
exit would.
Taught in: notebooks/04-pinned-pages.ipynb
"""

from __future__ import annotations

from .errors import KernelBug
from .folio import Folio, folio_pin, folio_put, folio_ref_add, folio_unpin
from .mm import MmStruct

__all__ = ["dma_write", "get_user_page_refs", "pin_user_page", "unpin_user_page",
           "unpin_user_pages_all"]


def pin_user_page(mm: MmStruct, folio: Folio, page: int) -> None:
    """Take one FOLL_PIN reference on page ``page`` of ``folio`` through ``mm``.

    The first pin marks the mm for good (kernel, sched/coredump.h: MMF_HAS_PINNED "FOLL_PIN
    has run, never cleared"), and only such mms pay for fork's pin check.
    """
    folio_pin(folio)
    mm.has_pinned = True            # mm_set_has_pinned_flag()
    mm.pins.append((folio, page))


def unpin_user_page(mm: MmStruct, folio: Folio, page: int) -> None:
    """Drop a pin ``mm`` took with :func:`pin_user_page` (MMF_HAS_PINNED stays set)."""
    if (folio, page) not in mm.pins:
        raise KernelBug(f"unpin_user_page: {mm.owner!r} holds no pin on page {page} of "
                        f"{folio!r}")
    mm.pins.remove((folio, page))
    folio_unpin(folio)


def get_user_page_refs(mm: MmStruct, folio: Folio, page: int, refs: int) -> None:
    """Hold ``refs`` plain (FOLL_GET) references, as vmsplice() into a pipe does.

    Unlike a pin this leaves MMF_HAS_PINNED alone, yet 1024 of them make a small folio
    look pinned to folio_maybe_dma_pinned() (its refcount test is fuzzy).
    """
    folio_ref_add(folio, refs)
    folio.gup_refs += refs
    mm.gup_refs.extend([(folio, page)] * refs)


def unpin_user_pages_all(mm: MmStruct) -> None:
    """Drop every pin and plain reference ``mm`` holds (at exit)."""
    for folio, _ in mm.pins:
        folio_unpin(folio)
    mm.pins.clear()
    for folio, _ in mm.gup_refs:
        folio.gup_refs -= 1
        folio_put(folio)
    mm.gup_refs.clear()


def dma_write(folio: Folio, page: int, value: int) -> None:
    """A device writes ``value`` into page ``page`` of ``folio`` through its pin.

    The device does not look at page tables: whichever process still maps this page sees
    the write; one that CoW-replaced it does not (the fork-vs-GUP data-loss story).
    """
    if folio.pins <= 0:
        raise KernelBug(f"dma_write: {folio!r} is not pinned")
    folio.pages[page].data = value
