"""A scenario straight into the bulk form (:mod:`pkmm.fast`), fast for real-sized layouts.

Simulator concept (no kernel file).  :meth:`pkmm.scenario.Scenario.build` maps every folio
through :class:`pkmm.Process` -- one Python object per folio and page, about 100 us per
folio -- and :func:`pkmm.fast.from_process` then reads them all back: 1 GiB of 4K pages
is tens of seconds.  Here the model builds each long run of identical anonymous folios
*once* (its first folio, through ``Process.map`` like any other entry), and the bulk form
is extended with as many copies of that folio's state as the run has: the same entry
codes at the following addresses, the same page and folio counters at the following pfns
of the bump allocator.  No rule is restated: every value written is one the model wrote
for the template folio.  Everything else in the scenario is built the ordinary way.
Taught in: notebooks/10-real-process.ipynb

>>> from pkmm.scenario import Scenario
>>> sc = Scenario.from_dict({"vmas": [{"start": 0x40000000, "npages": 4096}],
...     "runs": [{"addr": 0x40000000, "npages": 4096, "order": 4}]})
>>> b = bulk_of(sc)
>>> len(b.machine.folio_pfn), int(b.mm.rss["MM_ANONPAGES"]), len(b.mm.tables)
(256, 4096, 8)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .fast import Bulk, from_process
from .pte import PAGE_SHIFT, PMD_SHIFT, PTRS_PER_PTE
from .scenario import Scenario

__all__ = ["bulk_of", "tileable"]


def tileable(run: dict[str, Any]) -> bool:
    """Whether ``run`` is a stretch of at least two whole, fresh, identical anonymous
    folios (the case worth copying in bulk).

    >>> tileable({"addr": 0, "npages": 64, "order": 4}), tileable({"addr": 0, "npages": 16})
    (True, True)
    >>> tileable({"addr": 0, "npages": 64, "order": 4, "pinned": True})
    False
    """
    nr = 1 << run.get("order", 0)
    return (run.get("backing", "anon") == "anon" and not run.get("pmd")
            and not run.get("continue") and not run.get("page") and not run.get("pinned")
            and run["npages"] % nr == 0 and run["npages"] >= 2 * nr)


def bulk_of(sc: Scenario) -> Bulk:
    """The bulk form of ``sc``'s process, as ``from_process(sc.build()[0])`` would give
    but for the pfns of the copies: they follow everything the ordinary build allocated,
    not the template folio.  Forking either counts the same operations, steps and batch
    sizes; only a stop *reason* can read "pfn-gap" where the ordinary build, whose
    folios are physically consecutive, reads "folio-end" (v6.9, between a run's first
    folio and the next)."""
    long_runs = [(k, r) for k, r in enumerate(sc.runs) if tileable(r)]
    small = Scenario.from_dict({**sc.to_dict(), "runs": [
        {**r, "npages": 1 << r.get("order", 0)} if tileable(r) else r for r in sc.runs]})
    p, _ = small.build()
    b = from_process(p)
    for _, r in long_runs:
        _tile(b, r)
    return b


def _slots(b: Bulk, addrs: np.ndarray) -> np.ndarray:
    """The slots of ``addrs``, adding the PTE tables (empty rows) they need."""
    mm = b.mm
    pmds = addrs >> PMD_SHIFT
    missing = np.setdiff1d(np.unique(pmds), mm.tables)
    if len(missing):
        tables = np.concatenate([mm.tables, missing])
        order = np.argsort(tables, kind="stable")
        rows = (order[:, None] * PTRS_PER_PTE + np.arange(PTRS_PER_PTE)).ravel()
        grow = len(missing) * PTRS_PER_PTE
        mm.pfn = np.concatenate([mm.pfn, np.zeros(grow, mm.pfn.dtype)])[rows]
        mm.bits = np.concatenate([mm.bits, np.zeros(grow, mm.bits.dtype)])[rows]
        mm.tables = tables[order]
    row = np.searchsorted(mm.tables, pmds)
    return row * PTRS_PER_PTE + ((addrs >> PAGE_SHIFT) & (PTRS_PER_PTE - 1))


def _tile(b: Bulk, r: dict[str, Any]) -> None:
    """Extend ``b`` by the folios of run ``r`` after its first (the template)."""
    m, mm = b.machine, b.mm
    order = r.get("order", 0)
    nr = 1 << order
    count = r["npages"] // nr - 1
    first = _slots(b, r["addr"] + (np.arange(nr, dtype=np.int64) << PAGE_SHIFT))
    head = int(mm.pfn[first[0]])
    row = int(m.page_folio[head - m.base])
    codes, lo = mm.bits[first].copy(), head - m.base
    start = (m.next_pfn + nr - 1) & ~(nr - 1)        # the bump allocator's next folios
    pfns = start + (np.arange(count, dtype=np.int64) << order)
    m.add_folios(pfns, order, "anon", int(m.refcount[row]),
                 np.tile(m.mapcount[lo:lo + nr], count), np.tile(m.ae[lo:lo + nr], count),
                 int(m.entire[row]))
    m.next_pfn = int(start + (count << order))
    addrs = r["addr"] + (np.arange(nr, r["npages"], dtype=np.int64) << PAGE_SHIFT)
    slots = _slots(b, addrs)
    mm.bits[slots] = np.tile(codes, count)
    mm.pfn[slots] = (pfns[:, None] + np.arange(nr)).ravel()
    mm.rss["MM_ANONPAGES"] = mm.rss.get("MM_ANONPAGES", 0) + count * nr
