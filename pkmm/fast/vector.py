"""The vectorised engine: many PTE-table slices at once with numpy, from measured tables.

Simulator concept.  What it knows is the shape of copy_pte_range(): the loop visits the
slots of a slice in order; a none slot is skipped, a non-present entry is copied alone,
and a present PTE starts a *step* that may take the PTEs after it that map the next pages
of the same folio.  Everything a version decides -- whether a step goes on, what the
child's entry is, which parent bits are cleared, what happens to the folio, the pages and
the rss, the operations and the step recorded -- is read from :mod:`pkmm.fast.tables`,
which measured it on the variant's own code.  Only the lock-break progress count uses the
loop's named constants (:data:`pkmm.memory.PROGRESS_BREAK` and friends).

:func:`plan` classifies every slot and step without changing anything and refuses the
slices it cannot do exactly (a class whose probe failed, a folio that might test pinned,
hwpoisoned or KSM pages); :func:`pkmm.fast.write.apply` then writes the slices it kept.
Taught in: notebooks/08-cost.ipynb
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..folio import GUP_PIN_COUNTING_BIAS
from ..pte import PTRS_PER_PTE
from . import tables
from .hard import Slice
from .layout import KIND_SHIFT, NP, SWP_KINDS, Bulk, BulkMachine, P
from .probe import (
    GAP_OTHER,
    GAP_SAME,
    NEXT_OTHER,
    NEXT_SAME,
    NO_RELATION,
    PAGE_CLASS_SHIFT,
    Context,
    page_class,
)

#: The entry kinds (SWP_KINDS indexes) of migration entries: they stand for a page.
MIGRATION_KINDS = [k for k, name in enumerate(SWP_KINDS) if name.startswith("migration")]


@dataclass
class Plan:
    """The slots and steps of the slices the engine takes, with their measured effects."""

    slices: list[Slice]
    ctxs: list[Context]             # per VMA
    first: np.ndarray               # position of each slice's first slot
    refused: set[int]               # indexes into ``slices`` that must run traced
    at: np.ndarray                  # mm slot of every planned slot
    sl: np.ndarray                  # slice index of every planned slot
    code: np.ndarray
    pfn: np.ndarray
    page: np.ndarray                # page index (pfn - base) of present slots, else 0
    fol: np.ndarray                 # folio row of present slots, -1 without a folio
    starts: np.ndarray              # slot position of every step's first PTE
    nr: np.ndarray                  # PTEs per step
    step_class: np.ndarray          # per step, index into ``effects``
    effects: list[tables.StepEffect] = field(default_factory=list)
    np_class: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    np_effects: list[tables.EntryEffect] = field(default_factory=list)


def _slots(slices: list[Slice]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every slot of the slices (mm slot numbers), its slice index, and slice bounds."""
    lo = np.array([s.row * PTRS_PER_PTE + s.lo for s in slices], np.int64)
    n = np.array([s.hi - s.lo for s in slices], np.int64)
    first = np.concatenate([[0], np.cumsum(n)[:-1]])
    at = np.repeat(lo - first, n) + np.arange(int(n.sum()))
    return at, np.repeat(np.arange(len(slices)), n), first


def may_test_pinned(small: np.ndarray, refcount: np.ndarray, head_mapcount: np.ndarray,
                    pincount: np.ndarray) -> np.ndarray:
    """Per folio: it might test maybe-pinned at some point of this fork.  Conservative on
    purpose: the exact test (folio_maybe_dma_pinned: a large folio by its pincount, a small
    one by a refcount of at least GUP_PIN_COUNTING_BIAS, which this fork's own references
    -- at most one per mapping -- could reach) runs in the traced path on any slice that
    maps such a folio."""
    return np.where(small, refcount + head_mapcount >= GUP_PIN_COUNTING_BIAS, pincount > 0)


def pinned_folios(b: Bulk) -> np.ndarray:
    """Per folio: :func:`may_test_pinned`, or it holds pages the engine does not take
    (hwpoison, KSM)."""
    m = b.machine
    heads = m.folio_pfn - m.base
    bad: np.ndarray = may_test_pinned(m.folio_order == 0, m.refcount,
                          m.mapcount[heads] if len(heads) else heads, m.pincount) | m.ksm
    if m.hwpoison.any():
        bad |= np.bincount(m.page_folio[m.hwpoison & (m.page_folio >= 0)],
                           minlength=len(bad)).astype(bool)
    return bad


def few_unique(key: np.ndarray, limit: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(key, return_inverse=True)``, without sorting when ``key`` holds at most
    ``limit`` distinct values (the common case: a few classes over many slots)."""
    if not len(key):
        return key[:0], np.zeros(0, np.int64)
    inv = np.zeros(len(key), np.int64)
    seen: list[int] = []
    rest = None
    for k in range(limit):
        v = key[0] if rest is None else key[int(np.argmax(rest))]
        seen.append(int(v))
        hit = key == v
        if k:
            inv[hit] = k
        rest = ~hit if rest is None else rest & ~hit
        if not rest.any():
            order = np.argsort(seen)
            rank = np.empty(len(seen), np.int64)
            rank[order] = np.arange(len(seen))
            return np.array(seen, key.dtype)[order], rank[inv]
    uniq, inv = np.unique(key, return_inverse=True)
    return uniq, inv.ravel()


def plan(b: Bulk, slices: list[Slice], ctxs: list[Context],
         bad: np.ndarray | None = None) -> Plan:
    """Classify the slots and steps of ``slices`` (``ctxs``: one per VMA; ``bad``:
    :func:`pinned_folios`, computed here when not given)."""
    mm, m = b.mm, b.machine
    if not slices:
        z = np.zeros(0, np.int64)
        return Plan([], ctxs, z, set(), z, z, z, z, z, z, z, z, z)
    at, sl, first = _slots(slices)
    span: np.ndarray | slice = at
    if len(at) and at[-1] - at[0] == len(at) - 1:
        span = slice(int(at[0]), int(at[-1]) + 1)       # pkmm: one run, no fancy indexing
    code, pfn = mm.bits[span], mm.pfn[span]
    present = (code & P) != 0
    page, fol = slot_pages(m, pfn, present)
    real = fol >= 0
    cp = _compact(m, code, page, fol, real)
    vctx = _contexts(ctxs)
    ctx = np.array([vctx[s.vma] for s in slices], np.int64)[sl]
    refused: set[int] = set()
    if len(m.folio_pfn) and real.any():
        bad = pinned_folios(b) if bad is None else bad
        if bad.any():
            refused = set(np.unique(sl[real & bad[np.maximum(fol, 0)]]).tolist())
    c = _continues(cp, pfn, fol, present, ctx, first, ctxs)
    starts = np.flatnonzero(present & ~c)
    p = Plan(slices, ctxs, first, refused, at, sl, code, pfn, page, fol, starts,
             np.zeros(0, np.int64), np.zeros(0, np.int64))
    _steps(p, cp, present, ctx, m.folio_end())
    _nonpresent(p, b, ctx, ctxs)
    return p


def slot_pages(m: BulkMachine, pfn: np.ndarray, present: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray]:
    """Per slot: the page index (pfn - base) and the folio row (-1: no folio, or not a
    present PTE)."""
    n = len(pfn)
    if n and present.all() and pfn[-1] - pfn[0] == n - 1 and m.base <= pfn[0] \
            and pfn[-1] < m.base + len(m.page_folio) and (np.diff(pfn) == 1).all():
        lo = int(pfn[0]) - m.base
        return np.arange(lo, lo + n), m.page_folio[lo:lo + n].astype(np.int64)
    page = np.where(present, pfn - m.base, 0)
    inside = present & (page >= 0) & (page < len(m.page_folio))
    page = np.where(inside, page, 0)
    fol = np.where(inside, m.page_folio[page] if len(m.page_folio) else -1, -1)
    return page, fol.astype(np.int64)


def _compact(m: BulkMachine, code: np.ndarray, page: np.ndarray, fol: np.ndarray,
             real: np.ndarray) -> np.ndarray:
    """Per present slot its compact pattern: the low byte of its code and its page class
    from bit 8 (see probe.page_class); the code itself for other slots."""
    if not len(m.folio_pfn) or not real.any():
        return code.astype(np.int64)
    f = np.maximum(fol, 0)
    kinds, orders = m.folio_kind, m.folio_order
    if kinds.min() == kinds.max() and (orders.min() > 0) == (orders.max() > 0):
        cls = page_class(int(kinds[0]), bool(orders[0]), False)
    else:
        cls = page_class(kinds[f].astype(np.int64), orders[f] > 0, False)
    ae = m.ae[page]
    pc = (np.asarray(cls, np.int64) | (ae.astype(np.int64) << 4)) if ae.any() else \
        np.asarray(cls, np.int64)
    return np.where(real, (code & 0xFF).astype(np.int64) | (pc << 8), code.astype(np.int64))


def _pattern(cp: int) -> int:
    """The tables' pattern of a compact present pattern (0 or a non-present code: as is)."""
    return (cp & 0xFF) | (cp >> 8) << PAGE_CLASS_SHIFT if cp & P else cp


def _contexts(ctxs: list[Context]) -> list[int]:
    """Per VMA, the index of its context among the distinct ones (first VMA wins)."""
    ids: dict[Context, int] = {}
    out = []
    for k, c in enumerate(ctxs):
        out.append(ids.setdefault(c, k))
    return out


def _continues(cp: np.ndarray, pfn: np.ndarray, fol: np.ndarray, present: np.ndarray,
               ctx: np.ndarray, first: np.ndarray, ctxs: list[Context]) -> np.ndarray:
    """Per slot: it continues the step of the slot before (tables.continues)."""
    c = np.zeros(len(cp), bool)
    if len(cp) < 2:
        return c
    cand = (fol[1:] >= 0) & (fol[1:] == fol[:-1]) & present[1:] & present[:-1]
    cand[first[1:] - 1] = False           # a slice's first slot starts afresh
    if not cand.any():
        return c
    cand &= pfn[1:] == pfn[:-1] + 1
    idx = np.flatnonzero(cand) + 1
    if not len(idx):
        return c
    key = (ctx[idx] << 26) | (cp[idx - 1] << 13) | cp[idx]
    uniq, inv = few_unique(key)
    ok = np.array([tables.continues(ctxs[int(k >> 26)], _pattern(int(k >> 13) & 0x1FFF),
                                    _pattern(int(k) & 0x1FFF)) for k in uniq.tolist()], bool)
    c[idx] = ok[inv]
    return c


def _steps(p: Plan, cp: np.ndarray, present: np.ndarray, ctx: np.ndarray,
           folio_end: np.ndarray) -> None:
    """Each step's length, end and class, and its measured effect."""
    s = p.starts
    if not len(s):
        p.nr = p.step_class = np.zeros(0, np.int64)
        return
    n_all = len(cp)
    single = len(s) == int(present.sum())
    if single:                            # every step one PTE: no reductions needed
        nr = np.ones(len(s), np.int64)
        first = orp = andp = cp[s]
    else:
        nr = np.add.reduceat(present.astype(np.int64), s)
        first = cp[s]
        orp = np.bitwise_or.reduceat(np.where(present, cp, 0), s)
        andp = np.bitwise_and.reduceat(np.where(present, cp, -1), s)
    e = s + nr - 1
    ends = np.append(p.first[1:], n_all)
    ase = e + 1 == ends[p.sl[e]]
    fe = p.fol[e]
    afe = (fe >= 0) & (p.pfn[e] + 1 == folio_end[np.maximum(fe, 0)]) if len(folio_end) \
        else np.zeros(len(s), bool)
    n = np.minimum(e + 1, n_all - 1)
    npres = present[n] & ~ase
    same = (p.fol[n] == fe) & (fe >= 0)
    consec = p.pfn[n] == p.pfn[e] + 1
    rel = np.where(~npres, NO_RELATION, np.where(consec, np.where(same, NEXT_SAME, NEXT_OTHER),
                                                 np.where(same, GAP_SAME, GAP_OTHER)))
    nxt = np.where(ase, 0, cp[n])
    nxt_u, nxt_d = few_unique(nxt, 8)
    key = (first | orp << 13 | andp << 26 | np.minimum(nr, 3) << 39 | ase.astype(np.int64) << 41
           | afe.astype(np.int64) << 42 | rel.astype(np.int64) << 43 | nxt_d << 46
           | ctx[s] << 54) if len(nxt_u) < 256 and len(p.ctxs) < 512 else None
    if key is not None:
        uniq, inv = few_unique(key, 6)
        cols = [(int(k >> 54), int(k) & 0x1FFF, int(k >> 13) & 0x1FFF, int(k >> 26) & 0x1FFF,
                 int(k >> 39) & 3, bool(k >> 41 & 1), bool(k >> 42 & 1),
                 int(nxt_u[int(k >> 46) & 0xFF]), int(k >> 43) & 7) for k in uniq.tolist()]
    else:
        stack = np.stack([ctx[s], first, orp, andp, np.minimum(nr, 3), ase, afe, nxt, rel])
        uq, inv = np.unique(stack, axis=1, return_inverse=True)
        cols = [tuple(int(x) for x in k) for k in uq.T]      # type: ignore[misc]
    p.effects = [tables.step(p.ctxs[c[0]], _pattern(c[1]), _pattern(c[2]), _pattern(c[3]),
                             c[4], bool(c[5]), bool(c[6]), _pattern(c[7]), c[8])
                 for c in cols]
    p.nr, p.step_class = nr, inv.ravel()
    bad = np.array([not eff.ok for eff in p.effects], bool)
    if bad.any():
        p.refused |= set(np.unique(p.sl[s[bad[p.step_class]]]).tolist())


def _nonpresent(p: Plan, b: Bulk, ctx: np.ndarray, ctxs: list[Context]) -> None:
    """The class and measured effect of every non-present entry."""
    idx = np.flatnonzero(p.code & NP)
    if not len(idx):
        return
    code = p.code[idx].astype(np.int64)
    kind = (code >> KIND_SHIFT) & 7
    target = np.zeros(len(idx), np.int64)
    mig = np.isin(kind, MIGRATION_KINDS)
    if mig.any():
        target[mig] = _page_classes(b, p.pfn[idx][mig])
    uniq, inv = few_unique(ctx[idx] << 40 | code << 20 | target, 8)
    p.np_effects = [tables.nonpresent(ctxs[int(k >> 40)], int(k >> 20) & 0xFFFFF,
                                      int(k) & 0xFFFFF) for k in uniq.tolist()]
    p.np_class = np.full(len(p.code), -1, np.int64)
    p.np_class[idx] = inv
    bad = np.array([not eff.ok for eff in p.np_effects], bool)
    if bad.any():
        p.refused |= set(np.unique(p.sl[idx[bad[inv]]]).tolist())


def _page_classes(b: Bulk, pfn: np.ndarray) -> np.ndarray:
    """The page class of the page at each pfn (0: no folio there)."""
    m = b.machine
    page = pfn - m.base
    inside = (page >= 0) & (page < len(m.page_folio))
    page = np.where(inside, page, 0)
    fol = np.where(inside, m.page_folio[page] if len(m.page_folio) else -1, -1)
    f = np.maximum(fol, 0)
    if not len(m.folio_pfn):
        return np.zeros(len(pfn), np.int64)
    cls = page_class(m.folio_kind[f].astype(np.int64), m.folio_order[f] > 0, m.ae[page])
    return np.where(fol >= 0, cls, 0).astype(np.int64)
