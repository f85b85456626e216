"""Where a live kernel put a layout's pages: the struct-page streams its fork walks.

Kernel interfaces: ``/proc/PID/pagemap`` (Documentation/admin-guide/mm/pagemap.rst: bit 63
present, bits 0-54 the page frame number, which reads 0 without CAP_SYS_ADMIN).
Taught in: notebooks/08-cost.ipynb

Fork touches every copied page's struct page, in PTE order, and the prefetcher follows
a run of consecutive frames (:func:`pkmm.machine.struct_page_streams`).  A model layout
does not know where the allocator put its pages, so the cost model assumes every folio
apart from the last; a region populated on this machine is read back here instead, so
the fit and the check price the struct pages the kernel really touched cold.  Measured
on this machine (2026-12-02, 4K pages, REPEAT, under load): a 64 MiB region whose frames
were 12-19 % consecutive forked at 120-128 ns per PTE, a 1 GiB one at 50-71 % at 87-91.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..machine import struct_page_streams
from .procpid import PM_PFN_MASK, PM_PRESENT, Pagemap, SnapshotError

PAGE_SHIFT = 12

__all__ = ["region_streams"]


def region_streams(pid: int, ranges: Iterable[tuple[int, int]]) -> dict[int, int] | None:
    """The struct-page streams of the present pages of ``ranges`` ((start address,
    pages), ascending, not overlapping) of process ``pid``, read through
    :class:`pkmm.realkernel.procpid.Pagemap`;
    None where pagemap cannot be read or hides the frames (not root)."""
    import numpy as np
    try:
        pm = Pagemap(pid)
    except SnapshotError:
        return None
    vpns, pfns = [], []
    try:
        for start, n in ranges:
            if n <= 0:
                continue
            raw = pm.entries(start, n)
            here = (raw & np.uint64(PM_PRESENT)) != 0
            vpns.append(((start >> PAGE_SHIFT) + np.arange(raw.size, dtype=np.int64))[here])
            pfns.append((raw[here] & np.uint64(PM_PFN_MASK)).astype(np.int64))
    except (SnapshotError, OSError):
        return None
    finally:
        pm.close()
    if not vpns:
        return {}
    vpn, pfn = np.concatenate(vpns), np.concatenate(pfns)
    if vpn.size and not pfn.any():
        return None                     # frames hidden: no placement to read
    return struct_page_streams(vpn, pfn)
