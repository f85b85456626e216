"""PMD leaves in the vectorised engine: every leaf of a class at once, from measured tables.

Simulator concept.  A PMD leaf's class is its bits, the page class of its folio (kind and
the head page's AnonExclusive; 0 for the huge zero page) and whether it has a deposited
table; :func:`pkmm.fast.tables.leaf` measured what copy_huge_pmd() (or the variant's
``copy_huge`` hook) does to one such leaf.  Leaves whose folio might test pinned, and
classes whose probe split the PMD or gave the child a new folio, are left to the traced
path.
Taught in: notebooks/08-cost.ipynb
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from . import tables
from .hard import Slice
from .layout import Bulk, BulkMM
from .probe import Context
from .vector import few_unique, pinned_folios


@dataclass
class LeafPlan:
    """The leaf slices the engine takes, with their class effects."""

    slices: list[Slice] = field(default_factory=list)
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    folio: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))   # -1: none
    cls: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    effects: list[tables.EntryEffect] = field(default_factory=list)

    def ids(self) -> set[int]:
        """``id()`` of every kept slice."""
        return {id(s) for s in self.slices}


@dataclass
class LeafCounts:
    """What the kept leaves add to the fork and the child."""

    ops: Counter[str] = field(default_factory=Counter)
    sizes: Counter[int] = field(default_factory=Counter)    # ForkContext.batch_sizes
    leaves: list[tuple[int, int, int]] = field(default_factory=list)
    deposited: list[int] = field(default_factory=list)


def plan(b: Bulk, slices: list[Slice], ctxs: list[Context],
         bad: np.ndarray | None = None) -> LeafPlan:
    """Classify the leaf ``slices`` and keep those the tables can do (``bad``: the
    engine's :func:`~pkmm.fast.vector.pinned_folios`, computed here when not given)."""
    if not slices:
        return LeafPlan()
    mm, m = b.mm, b.machine
    rows = np.array([s.row for s in slices], np.int64)
    pfn = mm.pmd_pfn[rows]
    page = pfn - m.base
    inside = (page >= 0) & (page < len(m.page_folio))
    fol = np.where(inside, m.page_folio[np.where(inside, page, 0)], -1)
    f = np.maximum(fol, 0)
    pclass = np.where(fol >= 0, 1 | (m.folio_kind[f].astype(np.int64) << 1) | 1 << 3
                      | (m.ae[np.where(inside, page, 0)].astype(np.int64) << 4), 0)
    dep = np.isin(mm.pmd_idx[rows], mm.deposited)
    vma = np.array([s.vma for s in slices], np.int64)
    key = vma << 20 | mm.pmd_bits[rows].astype(np.int64) << 12 | pclass << 1 | dep
    uniq, inv = few_unique(key, 6)
    effects = [tables.leaf(ctxs[int(k >> 20)], int(k >> 12) & 0xFF, int(k >> 1) & 0x7FF,
                           bool(k & 1)) for k in uniq.tolist()]
    ok = np.array([e.ok for e in effects], bool)[inv]
    if len(m.folio_pfn):
        bad = pinned_folios(b) if bad is None else bad
        ok &= ~((fol >= 0) & bad[f])
    keep = np.flatnonzero(ok)
    return LeafPlan([slices[k] for k in keep.tolist()], rows[keep], fol[keep], inv[keep],
                    effects)


def apply(b: Bulk, child: BulkMM, p: LeafPlan) -> LeafCounts:
    """Write the kept leaves: parent bits, the child's leaves, folio counters, counts."""
    out = LeafCounts()
    if not p.slices:
        return out
    mm, m = b.mm, b.machine
    effects = p.effects
    parent = np.array([e.parent for e in effects], np.int64)[p.cls]
    mm.pmd_bits[p.rows] = parent.astype(np.uint8)
    ccode = np.array([e.child for e in effects], np.int64)[p.cls]
    pmd = mm.pmd_idx[p.rows]
    has = ccode >= 0
    out.leaves = list(zip(pmd[has].tolist(), mm.pmd_pfn[p.rows][has].tolist(),
                          ccode[has].tolist(), strict=True))
    dep = np.array([e.deposited for e in effects], bool)[p.cls]
    out.deposited = pmd[dep].tolist()
    real = p.folio >= 0
    for name, arr in (("ref", m.refcount), ("entire", m.entire)):
        d = np.array([e.counts.get(name, 0) for e in effects], np.int64)[p.cls]
        np.add.at(arr, p.folio[real], d[real].astype(arr.dtype))
    head = mm.pmd_pfn[p.rows][real] - m.base
    ae = np.array([bool(e.ae_head) for e in effects], bool)[p.cls][real]
    m.ae[head] = ae
    cnt = np.bincount(p.cls, minlength=len(effects))
    for k, e in enumerate(effects):
        if not cnt[k]:
            continue
        for name, v in e.counts.items():
            if name.startswith("ops:"):
                out.ops[name[4:]] += v * int(cnt[k])
            elif name.startswith("rss:"):
                child.rss[name[4:]] = child.rss.get(name[4:], 0) + v * int(cnt[k])
        for length, times in e.sizes:
            out.sizes[length] += times * int(cnt[k])
        child.on_mmlist |= e.flags[0]
        child.huge_zero_ref |= e.flags[1]
    return out
