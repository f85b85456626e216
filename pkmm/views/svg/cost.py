"""Per-page cost of fork: the per-PTE part plus the per-batch part spread over n pages.

Simulator concept (views layer).  For each batch size n the model forks 512 PTEs mapped
by folios of n pages and counts its operations (PTE writes, copy calls -- one set_ptes()
with its folio refcount update --, batch scans, and the struct pages it touches cold:
:func:`pkmm.costmodel.cold_struct_pages`); the fitted per-operation costs of
:mod:`pkmm.costmodel` turn the counts into nanoseconds per page: ``a`` per PTE, plus
``(b + c) / n`` per batch of n > 1 pages (a batch of one page runs no scan: ``a + b``),
plus ``m * min(n, K) / n`` for the first K struct pages of each folio that miss the cache.
Taught in: notebooks/08-cost.ipynb
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache

from ...errors import LayoutError
from ...fork import fork
from ...kernels import DEFAULT_KERNEL
from ...process import Process
from .core import Canvas, Picture
from .scene import need_kernel

NPTES = 512


@lru_cache(maxsize=32)
def ops_per_page(kernel: str, n: int) -> tuple[float, float, float]:
    """(PTE writes, copy calls, batch scans) per page, forking 512 PTEs mapped by
    folios of ``n`` pages (n a power of two, 1..512) under ``kernel``."""
    ops = _fork_512(kernel, n).ops
    return (ops["pte_writes"] / NPTES, ops["set_ptes_calls"] / NPTES,
            ops["batch_scans"] / NPTES)


@lru_cache(maxsize=32)
def cold_per_page(kernel: str, n: int) -> float:
    """Struct pages touched cold per page (:func:`pkmm.costmodel.cold_struct_pages`) in
    the same fork as :func:`ops_per_page`; needs numpy (the bulk form)."""
    from ...costmodel import cold_struct_pages
    from ...fast import from_process
    return cold_struct_pages(from_process(_fork_512(kernel, n).child)) / NPTES


@lru_cache(maxsize=32)
def _fork_512(kernel: str, n: int):  # type: ignore[no-untyped-def]
    p = Process()
    p.mmap(0x200000, NPTES)
    order = n.bit_length() - 1
    for i in range(NPTES // n):
        p.map(0x200000 + i * n * 4096, p.alloc_folio(order))
    return fork(p, kernel=kernel, detail=False)


@lru_cache(maxsize=1)
def _fitted() -> tuple[tuple[str, float], ...]:
    from ...costmodel import fit
    return tuple(sorted(fit().params.items()))


def per_page_cost(kernel: str = DEFAULT_KERNEL, sizes: Sequence[int] = (1, 4, 16, 512), *,
                  params: Mapping[str, float] | None = None) -> Picture:
    """Stacked bars: ns per page = per-PTE part + per-batch part, for batch sizes ``sizes``.

    ``params`` are the per-operation costs (``ns_per_pte``, ``ns_per_copy_call``,
    ``ns_per_batch_scan``, and optionally ``ns_per_cold_struct_page``: then a third part,
    the cold struct pages, which needs numpy); by default the fit of
    :func:`pkmm.costmodel.fit` (numpy).

    >>> pic = per_page_cost("v6.17", params={"ns_per_pte": 40, "ns_per_copy_call": 30,
    ...                                       "ns_per_batch_scan": 60})
    >>> pic.data["per_page_ns"]
    {1: 70.0, 4: 62.5, 16: 45.625, 512: 40.17578125}
    """
    need_kernel(kernel, "per_page_cost")
    bad = [n for n in sizes if not isinstance(n, int) or n < 1 or n > NPTES or n & (n - 1)]
    if bad or not sizes:
        raise LayoutError(f"sizes={list(sizes)!r}: batch sizes are powers of two 1..512")
    if params is None:
        try:
            params = dict(_fitted())
        except ImportError as e:
            raise LayoutError(f"per_page_cost: the fitted costs need numpy ({e}); pass "
                              "params={'ns_per_pte': .., 'ns_per_copy_call': .., "
                              "'ns_per_batch_scan': ..}") from None
    need = ("ns_per_pte", "ns_per_copy_call", "ns_per_batch_scan")
    missing = [k for k in need if not isinstance(params.get(k), (int, float))]
    if missing:
        raise LayoutError(f"params: missing number(s) for {missing}")
    a, b, cc = (float(params[k]) for k in need)
    m = float(params.get("ns_per_cold_struct_page", 0.0))
    if m:
        try:
            cold = {n: cold_per_page(kernel, n) for n in sizes}
        except ImportError as e:
            raise LayoutError(f"per_page_cost: the cold struct pages are counted on the bulk "
                              f"form, which needs numpy ({e}); leave "
                              "'ns_per_cold_struct_page' out of params") from None
    else:
        cold = dict.fromkeys(sizes, 0.0)
    rows = []
    for n in sizes:
        writes, calls, scans = ops_per_page(kernel, n)
        rows.append((n, a * writes, b * calls + cc * scans, writes, calls, scans,
                     m * cold[n], cold[n]))
    top = max(row[1] + row[2] + row[6] for row in rows)
    c = Canvas(760)
    c.text(8, 14, f"{kernel}: fork cost per page, folios of n pages (ns, fitted costs)",
           "pk-h")
    x0, span = 150, 480       # room right of the longest bar for its parts in words
    for i, (n, pte, batch, writes, calls, scans, miss, cold_n) in enumerate(rows):
        y = 30 + i * 40
        kib = n * 4      # the folio's size, so a reader can tie n to notebook 08's sizes
        c.text(8, y + 18, f"n = {n} ({kib}K)" if kib < 1024 else f"n = {n} ({kib // 1024}M-pte)",
               "pk-t")
        w1 = span * pte / top
        w2 = span * batch / top
        c.rect(x0, y, w1, 26, "anon", rx=0, tip=f"per-PTE part: {a:.1f} ns x "
               f"{writes:g} PTE write(s) per page = {pte:.1f} ns")
        # each part says its value: the reader compares the parts, not only the totals
        beside = []
        label = f"per PTE {pte:.1f}"
        if len(label) * 6.6 + 8 <= w1:
            c.text(x0 + 4, y + 17, label, "pk-t2")
        else:
            beside.append(f"per PTE {pte:.1f}")
        c.rect(x0 + w1, y, max(w2, 0.5), 26, "hot", rx=0, tip=(
            f"per-batch part: ({b:.1f} ns per copy call x {calls:.3g} + {cc:.1f} ns scan x "
            f"{scans:.3g}) per page = {batch:.1f} ns"))
        c.hatch(x0 + w1, y, max(w2, 0.5), 26, "per-batch part")
        # a 4K page is its own call: no batch scan (see the formula below the bars)
        label = f"{'per call' if n == 1 else 'per call + scan'} {batch:.1f}"
        if len(label) * 6.6 + 8 <= w2:
            # on the hatching: a background box keeps the label legible
            c.text(x0 + w1 + 4, y + 17, label, "pk-t2", halo=True)
        else:
            beside.append(label)
        w3 = span * miss / top
        if miss:
            c.rect(x0 + w1 + w2, y, w3, 26, "lit", rx=0, tip=(
                f"cold struct pages: {m:.1f} ns x {cold_n:.3g} per page = {miss:.1f} ns"))
            label = f"cold struct pages {miss:.1f}"
            if len(label) * 6.6 + 8 <= w3:
                c.text(x0 + w1 + w2 + 4, y + 17, label, "pk-t2")
            else:
                beside.append(label)
        total = f"{pte + batch + miss:.1f} ns" + (f" ({' + '.join(beside)})" if beside else "")
        c.text(x0 + w1 + w2 + w3 + 6, y + 17, total, "pk-t")
    y = 30 + len(rows) * 40 + 8
    c.text(8, y, f"a = {a:.1f} ns per PTE written; per batch: b = {b:.1f} ns copy "
           f"call + c = {cc:.1f} ns batch scan", "pk-t2")
    # The scan only runs for a large folio (a batch of one page needs none), so the two
    # cases have different formulas; the bars above come from counted operations.
    c.text(8, y + 16, "cost per page = a + (b + c) / n when n > 1; a single page "
           "(n = 1) costs a + b (no batch scan)", "pk-t2")
    if m:
        from ...costmodel import MEMMAP_RAMP
        c.text(8, y + 32, f"plus m = {m:.1f} ns for each of the first {MEMMAP_RAMP} struct "
               "pages of a folio, read before the prefetcher caught up: m x min(n, "
               f"{MEMMAP_RAMP}) / n", "pk-t2")
    data = {row[0]: row[1] + row[2] + row[6] for row in rows}
    desc = f"{kernel}: " + ", ".join(f"n={n}: {v:.1f} ns/page" for n, v in data.items())
    return c.picture("per-page-cost", "fork cost per page", desc,
                     data={"per_page_ns": data})
