"""Regions whose PMD slices are all alike: fork one, repeat the result for the others.

Simulator concept.  When consecutive full PTE tables of one VMA hold one entry code,
map consecutive pfns that fill whole folios of one order and kind from a folio
boundary, with one AnonExclusive value and no folio that might test pinned, every slice
is the same problem shifted by a whole number of folios: the same steps, classes and
effects.  :func:`fork_alike` then runs the general vectorised engine on the first slice
alone (a one-table copy of the bulk mm) and writes its result, shifted, to every slice.
This is what makes a populated region as cheap as the arrays it writes.
Taught in: notebooks/08-cost.ipynb
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..pte import PTRS_PER_PTE
from . import vector, write
from .hard import Slice
from .layout import Bulk, BulkMachine, BulkMM
from .probe import Context


def alike(b: Bulk, slices: list[Slice], ctxs: list[Context]) -> tuple[int, int, int] | None:
    """(first table row, first folio row, folio order) when every slice is alike, else
    None.  The checks look at each slot once or twice; none of them is a kernel rule."""
    mm, m = b.mm, b.machine
    if len(slices) < 2 or any(s.lo or s.hi != PTRS_PER_PTE for s in slices):
        return None
    row0 = slices[0].row
    if any(s.row != row0 + k or ctxs[s.vma] != ctxs[slices[0].vma]
           for k, s in enumerate(slices)):
        return None
    lo, n = row0 * PTRS_PER_PTE, len(slices) * PTRS_PER_PTE
    code, pfn = mm.bits[lo:lo + n], mm.pfn[lo:lo + n]
    if code.min() != code.max() or not code[0] & 1:
        return None
    p0 = int(pfn[0]) - m.base
    if p0 < 0 or p0 + n > len(m.page_folio) or pfn[-1] - pfn[0] != n - 1 \
            or not (np.diff(pfn) == 1).all():
        return None
    f0, f1 = int(m.page_folio[p0]), int(m.page_folio[p0 + n - 1])
    if f0 < 0 or f1 < f0:
        return None
    order = int(m.folio_order[f0])
    nf = n >> order
    rows = slice(f0, f0 + nf)
    if f1 != f0 + nf - 1 or m.folio_pfn[f0] != pfn[0] or \
            (m.folio_order[rows] != order).any() or \
            not (np.diff(m.folio_pfn[rows]) == 1 << order).all() or \
            (m.folio_kind[rows] != m.folio_kind[f0]).any():
        return None
    ae = m.ae[p0:p0 + n]
    if ae.min() != ae.max() or m.hwpoison[p0:p0 + n].any() or m.ksm[rows].any() or \
            vector.may_test_pinned(np.array(order == 0), m.refcount[rows],
                                   m.mapcount[p0:p0 + n:1 << order], m.pincount[rows]).any():
        return None
    return row0, f0, order


def _template(b: Bulk, row0: int, f0: int, order: int) -> tuple[Bulk, int]:
    """A bulk mm of the first slice's table alone, with the folios it maps."""
    mm, m = b.mm, b.machine
    lo = row0 * PTRS_PER_PTE
    nf = PTRS_PER_PTE >> order
    p0 = int(mm.pfn[lo]) - m.base
    rows, pages = slice(f0, f0 + nf), slice(p0, p0 + PTRS_PER_PTE)
    base = int(mm.pfn[lo])
    mach = replace(m, base=base, page_folio=m.page_folio[pages] - f0,
                   mapcount=m.mapcount[pages].copy(), ae=m.ae[pages].copy(),
                   hwpoison=m.hwpoison[pages].copy(), folio_pfn=m.folio_pfn[rows].copy(),
                   folio_order=m.folio_order[rows].copy(), refcount=m.refcount[rows].copy(),
                   pincount=m.pincount[rows].copy(), entire=m.entire[rows].copy(),
                   folio_kind=m.folio_kind[rows].copy(), pins=m.pins[rows].copy(),
                   gup_refs=m.gup_refs[rows].copy(), ksm=m.ksm[rows].copy(),
                   migration=m.migration[rows].copy(), swapcache=m.swapcache[rows].copy(),
                   mm_ids=m.mm_ids[rows].copy(), mm_counts=m.mm_counts[rows].copy(),
                   mm_shared=m.mm_shared[rows].copy(),
                   next_pfn=base + PTRS_PER_PTE, files=[])
    t = BulkMM(mm.vmas, mm.tables[row0:row0 + 1].copy(), mm.pfn[lo:lo + PTRS_PER_PTE].copy(),
               mm.bits[lo:lo + PTRS_PER_PTE].copy(), has_pinned=mm.has_pinned)
    return Bulk(t, mach, b.kernel), base + PTRS_PER_PTE


@dataclass
class Alike:
    """The first of alike slices, forked alone (see :func:`plan_alike`)."""

    slices: list[Slice]
    row0: int
    f0: int
    order: int
    t: Bulk                     # the template after its fork
    tchild: BulkMM
    before: BulkMachine         # the template's machine before it
    t_next: int                 # the template allocator's first pfn
    counts: write.Counts
    allocs: np.ndarray          # new pages per slice


def plan_alike(b: Bulk, slices: list[Slice], ctxs: list[Context]) -> Alike | None:
    """Fork the first slice of ``slices`` alone when they are all alike; None when they
    are not (or the template itself needs the traced path)."""
    where = alike(b, slices, ctxs)
    if where is None:
        return None
    row0, f0, order = where
    t, t_next = _template(b, row0, f0, order)
    s0 = slices[0]
    p = vector.plan(t, [Slice(s0.vma, s0.pmd, s0.start, s0.end, False, 0, 0, PTRS_PER_PTE)],
                    ctxs, np.zeros(len(t.machine.folio_pfn), bool))
    if p.refused:
        return None
    tchild = BulkMM([], t.mm.tables.copy(), np.zeros(PTRS_PER_PTE, np.int64),
                    np.zeros(PTRS_PER_PTE, np.uint16))
    before = t.machine.copy()
    new = int(write.allocations(p)[0])
    counts = write.apply(p, t, tchild, np.array([t_next]))
    made = t.machine.folio_pfn[len(before.folio_pfn):]
    if len(made) != new or (t.machine.folio_order[len(before.folio_pfn):] != 0).any() or \
            len(set(t.machine.refcount[len(before.folio_pfn):].tolist())) > 1:
        return None
    return Alike(slices, row0, f0, order, t, tchild, before, t_next, counts,
                 np.full(len(slices), new, np.int64))


def write_alike(a: Alike, b: Bulk, child: BulkMM, alloc_base: np.ndarray) -> write.Counts:
    """Write the template's result to every slice, shifted; the fork's counts."""
    k = len(a.slices)
    _write(a, b, child, k)
    if a.allocs[0]:
        _new_folios(a, b, child, k, alloc_base)
    counts = a.counts
    counts.copies *= k
    counts.passes *= k
    for key in counts.ops:
        counts.ops[key] *= k
    for st in counts.steps:
        counts.steps[st] *= k
    for length in counts.sizes:
        counts.sizes[length] *= k
    for key, v in a.tchild.rss.items():
        child.rss[key] = child.rss.get(key, 0) + v * k
    child.on_mmlist |= a.tchild.on_mmlist
    child.huge_zero_ref |= a.tchild.huge_zero_ref
    return counts


def _write(a: Alike, b: Bulk, child: BulkMM, k: int) -> None:
    """Every slice gets the template's entries and page / folio changes, shifted."""
    mm, m, tm, before = b.mm, b.machine, a.t.machine, a.before
    lo, n = a.row0 * PTRS_PER_PTE, k * PTRS_PER_PTE
    span = slice(lo, lo + n)
    _tile(mm.bits, span, a.t.mm.bits, k)
    _tile(child.bits, span, a.tchild.bits, k)
    if (a.tchild.pfn == a.t.mm.pfn).all():
        child.pfn[span] = mm.pfn[span]
    p0 = int(mm.pfn[lo]) - m.base
    pages = slice(p0, p0 + n)
    d = tm.mapcount[:PTRS_PER_PTE] - before.mapcount[:PTRS_PER_PTE]
    if d.any():
        m.mapcount[pages] += np.tile(d, k) if d.min() != d.max() else d[0]
    _tile(m.ae, pages, tm.ae[:PTRS_PER_PTE], k)
    nf = PTRS_PER_PTE >> a.order
    rows = slice(a.f0, a.f0 + nf * k)
    for name in ("refcount", "entire"):
        d = getattr(tm, name)[:nf] - getattr(before, name)[:nf]
        if d.any():
            getattr(m, name)[rows] += np.tile(d, k) if d.min() != d.max() else d[0]


def _tile(dst: np.ndarray, span: slice, row: np.ndarray, k: int) -> None:
    if row.min() == row.max():
        dst[span] = row[0]
    else:
        dst[span] = np.tile(row, k)


def _new_folios(a: Alike, b: Bulk, child: BulkMM, k: int, alloc_base: np.ndarray) -> None:
    """Eager copies: each slice's new pages, from its own allocation base."""
    tm = a.t.machine
    first = len(a.before.folio_pfn)
    made = tm.folio_pfn[first:]
    pages = made - tm.base
    pfns = (alloc_base[:, None] + (made - a.t_next)[None, :]).ravel()
    b.machine.add_folios(pfns, 0, "anon", int(tm.refcount[first]),
                         np.tile(tm.mapcount[pages], k), np.tile(tm.ae[pages], k))
    lo = a.row0 * PTRS_PER_PTE
    new = a.tchild.pfn >= a.t_next
    rel = np.where(new, a.tchild.pfn - a.t_next, 0)
    shift = np.repeat(alloc_base, PTRS_PER_PTE)
    span = slice(lo, lo + k * PTRS_PER_PTE)
    child.pfn[span] = np.where(np.tile(new, k), shift + np.tile(rel, k), b.mm.pfn[span])
