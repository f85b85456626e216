"""Encode classified pages as scenario entries: runs of folios, zero pages, swap, markers.

Simulator concept (no kernel file).  A *run* is a stretch of consecutive pages of one VMA
that map consecutive pages of consecutive folios of one order with equal PTE bits; a run
marked ``continue`` goes on with the folio the previous run ended in (a folio that spans
two VMAs, or whose PTE bits change part-way), or, with a ``page``, with the last folio of its
order left unfinished (a folio one CoW-copied page interrupts).
See :mod:`pkmm.scenario` for the format.
Taught in: notebooks/10-real-process.ipynb
"""

from __future__ import annotations

from typing import Any

from .pages import ANON, HUGE_ZERO, MARKER, PAGECACHE, PFN, SWAP, ZERO, Pages

__all__ = ["encode_vma", "stretches"]


def stretches(mask: Any, key: Any) -> list[tuple[int, int]]:
    """[lo, hi) index ranges where ``mask`` holds and ``key`` does not change.

    >>> import numpy as np
    >>> stretches(np.array([1, 1, 0, 1, 1, 1], bool), np.array([0, 0, 0, 0, 1, 1]))
    [(0, 2), (3, 4), (4, 6)]
    """
    import numpy as np
    n = len(mask)
    if not n:
        return []
    edge = np.ones(n + 1, bool)
    edge[1:n] = (mask[1:] != mask[:-1]) | (key[1:] != key[:-1])
    cuts = np.flatnonzero(edge).tolist()
    return [(lo, hi) for lo, hi in zip(cuts[:-1], cuts[1:], strict=True) if mask[lo]]


def _folio_bits(p: Pages, vma: dict[str, Any], kp: bool) -> tuple[Any, Any, Any]:
    """(write, dirty, anon_exclusive) per page, as far as they can be inferred."""
    import numpy as np
    anon = p.kind == ANON
    vw = bool(vma.get("write", True))
    ae = anon & p.ae & ~p.shared
    if vma.get("shared"):
        # shared page-cache pages: writable once written (dirty), shmem needs no write-notify
        cache_w = p.dirty if kp else np.full(len(anon), vma["backing"] == "shmem")
        write = np.where(anon, ae, cache_w) & vw
    else:
        write = ae & vw          # kernel: private page-cache pages are always mapped R/O
    dirty = np.where(anon, True, p.dirty)
    return write, dirty, ae


def encode_vma(p: Pages, vma: dict[str, Any], ctx: Any, out: dict[str, Any]) -> None:
    """Append the entries for the pages ``p`` of ``vma`` to the scenario dict ``out``."""
    import numpy as np
    n = len(p.kind)
    folio = (p.kind == ANON) | (p.kind == PAGECACHE)
    write, dirty, ae = _folio_bits(p, vma, ctx.kp is not None)
    sig = (p.kind.astype(np.int64) | p.order.astype(np.int64) << 3 | write << 7
           | dirty << 8 | ae << 9 | p.uffd_wp << 10 | p.soft_dirty << 11 | p.pmd << 12)
    same = np.zeros(n, bool)     # page i continues page i-1's folio
    new = np.zeros(n, bool)      # page i starts the folio after page i-1's last page
    if n > 1:
        same[1:] = (p.order[1:] > 0) & (p.order[1:] == p.order[:-1]) & \
            (p.head[1:] == p.head[:-1]) & (p.index[1:] == p.index[:-1] + 1)
        new[1:] = (p.index[1:] == 0) & (p.order[1:] == p.order[:-1]) & \
            (p.index[:-1] == (1 << p.order[:-1].astype(np.int64)) - 1)
    brk = np.ones(n, bool)
    brk[1:] = (sig[1:] != sig[:-1]) | ~(same[1:] | new[1:])
    key = np.cumsum(brk)
    for lo, hi in stretches(folio, key):
        cont = bool(same[lo]) if lo else ctx.continues(p, lo)
        _run(p, vma, ctx, out, lo, hi, cont, not cont and _resumes(p, vma, ctx, lo),
             write, dirty, ae)
    _simple(p, out, ctx)


def _backing(p: Pages, vma: dict[str, Any], i: int) -> str:
    return "anon" if p.kind[i] == ANON else str(vma["backing"])


def _resumes(p: Pages, vma: dict[str, Any], ctx: Any, lo: int) -> bool:
    """Whether page ``lo`` goes on with the last folio of its order a run left unfinished.

    A folio interrupted by another page (the process's CoW copy of one of its pages) is one
    folio in the kernel; without this it would be counted, and built, as two.
    """
    order, head = int(p.order[lo]), int(p.head[lo])
    got = ctx.open_folios.get((order, _backing(p, vma, lo)))
    return (order > 0 and head > 0 and got is not None and got[0] == head
            and int(p.index[lo]) >= got[1])


def _run(p: Pages, vma: dict[str, Any], ctx: Any, out: dict[str, Any], lo: int, hi: int,
         cont: bool, resume: bool, write: Any, dirty: Any, ae: Any) -> None:
    import numpy as np
    order = int(p.order[lo])
    run: dict[str, Any] = {"addr": p.start + (lo << 12), "npages": hi - lo}
    if order:
        run["order"] = order
    backing = _backing(p, vma, lo)
    if backing != "anon":
        run["backing"] = backing
    if cont and out.get("runs"):
        run["continue"] = True
    elif resume:
        run["continue"], run["page"] = True, int(p.index[lo])
    elif p.index[lo]:
        run["page"] = int(p.index[lo])
    for key, arr, default in (("pmd", p.pmd, False), ("write", write, None),
                              ("dirty", dirty, True), ("anon_exclusive", ae, None),
                              ("uffd_wp", p.uffd_wp, False), ("soft_dirty", p.soft_dirty,
                                                               False)):
        v = bool(arr[lo])
        if default is None or v != default:
            run[key] = v
    if backing != "anon":
        run.pop("anon_exclusive", None)
    out.setdefault("runs", []).append(run)
    starts = int(np.count_nonzero(p.index[lo + 1:hi] == 0)) + (not run.get("continue"))
    ctx.orders[order] += starts
    ctx.last_folio = (p.start + ((hi - 1) << 12), int(p.head[hi - 1]), int(p.index[hi - 1]),
                      order)
    # What pkmm.scenario's run builder remembers: the last unfinished folio per order and
    # backing, forgotten once a run maps its last page.
    last, head0 = int(p.index[hi - 1]), int(p.head[lo])
    opened = ctx.open_folios.get((order, backing))
    if order and opened is not None and opened[0] == head0 and (
            int(p.head[hi - 1]) != head0 or last == (1 << order) - 1):
        del ctx.open_folios[(order, backing)]
    if order and last < (1 << order) - 1:
        ctx.open_folios[(order, backing)] = (int(p.head[hi - 1]), last + 1)


def _simple(p: Pages, out: dict[str, Any], ctx: Any) -> None:
    """Zero pages, huge zero PMDs, swap entries, markers and raw PFN entries."""
    import numpy as np
    a = p.start

    def addr(i: int) -> int:
        return a + (i << 12)
    flat = np.zeros(len(p.kind), np.int64)
    for lo, hi in stretches(p.kind == ZERO, flat):
        out.setdefault("zero", []).append({"addr": addr(lo), "npages": hi - lo})
    for lo, hi in stretches(p.kind == HUGE_ZERO, flat):
        out.setdefault("huge_zero", []).extend(addr(i) for i in range(lo, hi, 512))
    bits = p.uffd_wp.astype(np.int64) | p.soft_dirty.astype(np.int64) << 1
    for lo, hi in stretches(p.kind == SWAP, bits):
        e: dict[str, Any] = {"addr": addr(lo), "npages": hi - lo}
        e.update({k: True for k, arr in (("uffd_wp", p.uffd_wp), ("soft_dirty",
                                                                  p.soft_dirty)) if arr[lo]})
        out.setdefault("swap", []).append(e)
    mk = p.guard.astype(np.int64) | p.uffd_wp.astype(np.int64) << 1
    for lo, hi in stretches(p.kind == MARKER, mk):
        names = [m for m, arr in (("guard", p.guard), ("uffd_wp", p.uffd_wp)) if arr[lo]]
        out.setdefault("markers", []).append({"addr": addr(lo), "npages": hi - lo,
                                              "markers": names or ["uffd_wp"]})
    for lo, hi in stretches(p.kind == PFN, flat):
        out.setdefault("pfnmaps", []).append({"addr": addr(lo), "npages": hi - lo,
                                              "pfn": ctx.raw_pfns(hi - lo), "write": False})
