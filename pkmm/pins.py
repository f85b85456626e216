"""Handles on pages taken through a process's page tables: long-term pins, and pipes
whose vmsplice() references outlive the process that took them.

Simulator concept: :class:`UserPin` is what a driver keeps after ``pin_user_pages()``
(an io_uring fixed buffer, gup_test's PIN_LONGTERM_TEST_START); :class:`Pipe` is a pipe
whose buffers hold the pages vmsplice() put there -- as in the kernel they are plain
references that stay valid after the process unmaps the range or exits.  Both read the
pages themselves, so they see what the device or the pipe would see.  The lookups are
:func:`pkmm.gup.get_user_pages` (mm/gup.c) and fs/splice.c vmsplice_to_pipe().
Taught in: notebooks/04-pinned-pages.ipynb
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import FaultError, LayoutError, need
from .folio import Folio
from .gup import (
    FOLL_GET,
    FOLL_LONGTERM,
    FOLL_PIN,
    FOLL_WRITE,
    get_user_pages,
    put_user_page,
    unpin_user_page,
)
from .vma import check_range

if TYPE_CHECKING:  # pragma: no cover
    from .process import Process

__all__ = ["PIPE_DEF_BUFFERS", "Pipe", "UserPin", "pin_user_pages"]

#: A fresh pipe has 16 buffers of one page each (include/linux/pipe_fs_i.h).
PIPE_DEF_BUFFERS = 16


class UserPin:
    """A long-term FOLL_PIN on a range of pages (R/O or R/W), as a device holds it."""

    def __init__(self, proc: Process, pages: list[tuple[Folio, int]], write: bool) -> None:
        self.proc, self.pages, self.write = proc, pages, write
        self.released = False

    def read(self) -> list[int]:
        """What the device reads through the pin, page by page (the zero page reads 0)."""
        need(not self.released, "UserPin.read: the pin was released")
        return [0 if f.kind in ("zero", "huge_zero") else f.pages[i].data
                for f, i in self.pages]

    def dma_write(self, i: int, value: int) -> None:
        """The device writes ``value`` into the ``i``-th pinned page (a R/W pin only)."""
        need(not self.released, "UserPin.dma_write: the pin was released")
        need(self.write, "dma_write: this pin is read-only (FOLL_WRITE was not set); pin "
             "with write=True to let the device write")
        need(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < len(self.pages),
             f"dma_write: i={i!r}: the pin holds pages 0..{len(self.pages) - 1}")
        need(isinstance(value, int) and not isinstance(value, bool),
             f"dma_write: value={value!r}: pages hold ints")
        folio, idx = self.pages[i]
        folio.pages[idx].data = value

    def unpin(self) -> None:
        """unpin_user_pages(): drop every pin (MMF_HAS_PINNED stays set)."""
        need(not self.released, "UserPin.unpin: the pin was already released")
        self.released = True
        mm = self.proc.mm
        held = [(f, i) for f, i in self.pages
                if f.kind not in ("zero", "huge_zero") and (f, i) in mm.pins]
        # consecutive pages of one folio are dropped together (gup_put_folio(folio, refs))
        k = 0
        while k < len(held):
            folio, first = held[k]
            n = 1
            while k + n < len(held) and held[k + n][0] is folio and held[k + n][1] == first + n:
                n += 1
            unpin_user_page(mm, folio, first, n)
            k += n


def pin_user_pages(proc: Process, addr: int, npages: int, *, write: bool,
                   fast: bool) -> UserPin:
    """``pin_user_pages(_fast)(addr, npages, FOLL_LONGTERM [| FOLL_WRITE])`` for ``proc``."""
    flags = frozenset({FOLL_PIN, FOLL_LONGTERM} | ({FOLL_WRITE} if write else set()))
    got = get_user_pages(proc.mm, addr, npages, flags, proc.version, proc.faults, fast)
    if isinstance(got, int):
        raise FaultError(f"pin_user_pages: {addr:#x}..+{npages} pages cannot be pinned "
                         f"(errno {-got}: a PFN map, a write pin of a read-only range, or "
                         "a long-term write pin of a shared file mapping)", "EFAULT")
    return UserPin(proc, got, write)


class Pipe:
    """A pipe with ``PIPE_DEF_BUFFERS`` page-sized buffers, filled by vmsplice()."""

    def __init__(self) -> None:
        self.buffers: list[tuple[Folio, int]] = []

    def vmsplice(self, proc: Process, addr: int, npages: int) -> int:
        """vmsplice() ``npages`` from ``addr`` into the pipe: each buffer takes a plain
        (FOLL_GET) reference on its page, faulting it in first if needed.  Returns how
        many pages went in (a full pipe takes no more: vmsplice returns short)."""
        proc._alive("vmsplice")
        check_range("vmsplice", addr, npages)
        n = min(npages, PIPE_DEF_BUFFERS - len(self.buffers))
        if n == 0:
            return 0
        got = get_user_pages(proc.mm, addr, n, frozenset({FOLL_GET}), proc.version,
                             proc.faults)
        if isinstance(got, int):
            raise LayoutError(f"vmsplice: {addr:#x} is not mapped readable in "
                              f"{proc.name!r} (errno {-got})")
        self.buffers.extend(got)
        return n

    def read(self) -> list[int]:
        """Read every buffer (the pages' contents now) and release them."""
        out = [0 if f.kind in ("zero", "huge_zero") else f.pages[i].data
               for f, i in self.buffers]
        self.close()
        return out

    def close(self) -> None:
        """Drop the references of the unread buffers."""
        for folio, _ in self.buffers:
            put_user_page(folio)
        self.buffers.clear()
