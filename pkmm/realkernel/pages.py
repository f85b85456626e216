"""Classify the pages of one VMA of another process: what each PTE maps, in which folio.

Kernel interfaces: the pagemap entries, PAGEMAP_SCAN categories and kpageflags/kpagecount
read by :mod:`pkmm.realkernel.procpid`; the rules for reading them are those of
fs/proc/task_mmu.c (pte_to_pagemap_entry: bit 61 is set for a page-cache page, bit 56 when
that page is mapped exactly once, neither for the zero page, which has no struct page) and
fs/proc/page.c (stable_page_flags: a large folio's head has KPF_COMPOUND_HEAD, its other
pages KPF_COMPOUND_TAIL; KPF_ZERO_PAGE marks both zero pages; KPF_OWNER_2 is the folio's
PG_anon_exclusive).
Taught in: notebooks/10-real-process.ipynb

Simulator concept: the result is one code per page (:data:`KINDS`) plus the folio each
present page sits in (order and index), as numpy arrays, for :mod:`pkmm.realkernel.snapshot`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .procpid import (
    KPF,
    PAGE_IS_HUGE,
    PAGE_IS_PFNZERO,
    PM_FILE,
    PM_GUARD_REGION,
    PM_MMAP_EXCLUSIVE,
    PM_PFN_MASK,
    PM_PRESENT,
    PM_SOFT_DIRTY,
    PM_SWAP,
    PM_UFFD_WP,
    KPages,
)

#: Page kinds, by code: what the page-table slot holds.
KINDS = ("none", "anon", "pagecache", "zero", "huge_zero", "swap", "marker", "pfn")
NONE, ANON, PAGECACHE, ZERO, HUGE_ZERO, SWAP, MARKER, PFN = range(len(KINDS))


@dataclass
class Pages:
    """Per-page arrays of one VMA (index i is the page at ``start + i * 4096``)."""

    start: int
    kind: Any          # uint8 code of KINDS
    order: Any         # int8 folio order (0 where not known or not a folio)
    index: Any         # int32 page index inside its folio
    head: Any          # int64 head pfn (0 when PFNs are hidden)
    pmd: Any           # bool: mapped by a PMD (PAGE_IS_HUGE)
    excl: Any          # bool: pagemap bit 56
    shared: Any        # bool: anon page mapped by another mm too (kpagecount > 1)
    ae: Any            # bool: PG_anon_exclusive (the folio head's, from kpageflags)
    dirty: Any         # bool: folio dirty (kpageflags), for page-cache pages
    uffd_wp: Any       # bool: pagemap bit 57
    soft_dirty: Any    # bool: pagemap bit 55
    guard: Any         # bool: pagemap bit 58 (a guard-region marker)


def scan_masks(regions: list[tuple[int, int, int]] | None, start: int, n: int) -> Any:
    """Per-page PAGE_IS_* bits from PAGEMAP_SCAN regions (zeros when there were none).

    >>> scan_masks([(0x2000, 0x4000, 32)], 0x1000, 4).tolist()
    [0, 32, 32, 0]
    """
    import numpy as np
    out = np.zeros(n, np.uint64)
    for lo, hi, cat in regions or ():
        out[max(lo - start, 0) >> 12:min(hi - start, n << 12) >> 12] |= np.uint64(cat)
    return out


def classify(start: int, entries: Any, scan: Any, *, pfnmap: bool, kpages: KPages | None,
             swap_configured: bool) -> Pages:
    """Turn pagemap entries (and PAGEMAP_SCAN bits) of one VMA into :class:`Pages`."""
    import numpy as np
    e = entries
    n = len(e)

    def bit(mask: int) -> Any:
        return (e & np.uint64(mask)) != 0
    present, swapped, file = bit(PM_PRESENT), bit(PM_SWAP) & ~bit(PM_PRESENT), bit(PM_FILE)
    uffd, guard = bit(PM_UFFD_WP), bit(PM_GUARD_REGION)
    pfn = (e & np.uint64(PM_PFN_MASK)).astype(np.int64)
    pfn[~present] = 0
    huge = (scan & np.uint64(PAGE_IS_HUGE)) != 0
    zero = present & ((scan & np.uint64(PAGE_IS_PFNZERO)) != 0)
    kind = np.zeros(n, np.uint8)
    # kernel: a PTE marker is a swap-type entry (PM_SWAP set); without a swap device
    # an uffd-wp entry that is not present can only be the uffd-wp marker
    kind[swapped] = SWAP
    kind[swapped & (guard | (uffd & ~np.bool_(swap_configured)))] = MARKER
    kind[present] = np.where(file[present], PAGECACHE, ANON)
    pages = Pages(start, kind, np.zeros(n, np.int8), np.zeros(n, np.int32),
                  np.zeros(n, np.int64), present & huge, bit(PM_MMAP_EXCLUSIVE) & present,
                  np.zeros(n, bool), np.zeros(n, bool), np.zeros(n, bool), uffd,
                  bit(PM_SOFT_DIRTY), guard & swapped)
    if kpages is not None and (pfn > 0).any():
        _read_folios(pages, pfn, kpages, zero)
    else:
        pages.ae = pages.excl & (kind == ANON)
    kind[zero] = np.where(huge[zero], HUGE_ZERO, ZERO)
    if pfnmap:
        kind[present] = PFN
    _pmd_folios(pages)
    return pages


def _read_folios(pages: Pages, pfn: Any, kp: KPages, zero: Any) -> None:
    """Folio head, order and index, AE and sharing of every present page (root only)."""
    import numpy as np
    have = pfn > 0
    uniq = np.unique(pfn[have])
    flags = kp.read(kp.flags_fd, uniq)
    count = kp.read(kp.count_fd, uniq)
    at = np.searchsorted(uniq, pfn[have])
    f, c = flags[at], count[at]

    def kbit(name: str) -> Any:
        return (f >> np.uint64(KPF[name])) & np.uint64(1) != 0
    zero[have] |= kbit("zero")
    large = kbit("head") | kbit("tail")
    idx = np.flatnonzero(have)
    heads = pfn[idx].copy()
    orders = np.zeros(len(idx), np.int8)
    cache: dict[int, list[tuple[int, int]]] = {}
    for j in np.flatnonzero(large & ~kbit("huge")).tolist():
        heads[j], orders[j] = _folio_of(kp, int(pfn[idx[j]]), cache)
    pages.head[idx], pages.order[idx] = heads, orders
    pages.index[idx] = (pfn[idx] - heads).astype(np.int32)
    anon = kbit("anon")
    pages.ae[idx] = anon & kbit("anon_exclusive") & (c == 1)
    pages.shared[idx] = anon & (c > 1)
    pages.dirty[idx] = kbit("dirty")


def _folio_of(kp: KPages, pfn: int,
              cache: dict[int, list[tuple[int, int]]]) -> tuple[int, int]:
    """(head pfn, order) of the large folio holding ``pfn``: the head is the last
    COMPOUND_HEAD at or below it, the folio ends at the first pfn that is not a tail.
    A folio of order <= 9 is naturally aligned, so it never crosses a 512-pfn window:
    ``cache`` keeps each window's heads, sorted, and a page finds its head by bisection
    (a scan of every cached head per page made a 512 MiB layout of 64K folios take
    minutes)."""
    import bisect

    import numpy as np
    base = pfn & ~511
    heads = cache.get(base)
    if heads is None:
        w = kp.window(base, 1024)
        head = (w >> np.uint64(KPF["head"])) & np.uint64(1) != 0
        tail = (w >> np.uint64(KPF["tail"])) & np.uint64(1) != 0
        heads = []
        for h in np.flatnonzero(head[:512]).tolist():
            nr = 1
            while h + nr < len(w) and tail[h + nr] and not head[h + nr]:
                nr += 1
            heads.append((base + h, max(nr.bit_length() - 1, 0)))
        cache[base] = heads
    i = bisect.bisect_right(heads, (pfn, 1 << 30)) - 1      # the last head at or below pfn
    if i < 0:
        return pfn, 0      # pkmm: a tail whose head is out of reach: counted as 4K
    head_pfn, order = heads[i]
    return (head_pfn, order) if pfn < head_pfn + (1 << order) else (pfn, 0)


def _pmd_folios(pages: Pages) -> None:
    """A PMD mapping maps one order-9 folio: with PFNs hidden, that is still known."""
    import numpy as np
    if not pages.pmd.any():
        return
    off = (np.arange(len(pages.pmd)) + (pages.start >> 12)) & 511
    pages.order[pages.pmd] = 9
    pages.index[pages.pmd] = off[pages.pmd]
