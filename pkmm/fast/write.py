"""The vectorised engine's second half: write the planned slices from their measured effects.

Simulator concept.  :func:`apply` writes what :func:`pkmm.fast.vector.plan` planned and kept
-- the child's entries, the parent's entries, page mapcounts and AnonExclusive, folio
refcounts, new pages (eager copies, at the pfns the engine hands out in address order),
swap counts, rss -- and adds up the fork's counters: each class's ``a + b * nr`` counts,
copy_pte_range's own counts per slice (tables.loop), and its lock-break checks, counted
from the loop's named progress constants (:data:`pkmm.memory.PROGRESS_BREAK` and friends),
the one part of the loop's shape the engine reproduces itself.
Taught in: notebooks/08-cost.ipynb
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ..memory import PROGRESS_BREAK, PROGRESS_ENTRY, PROGRESS_NONE
from . import tables
from .layout import NP, Bulk, BulkMM
from .vector import Plan


@dataclass
class Counts:
    """The fork counters the vectorised slices add."""

    ops: Counter[str] = field(default_factory=Counter)
    steps: Counter[tuple[str, str]] = field(default_factory=Counter)
    rss: Counter[str] = field(default_factory=Counter)
    copies: int = 0
    passes: int = 0
    flags: tuple[bool, bool] = (False, False)
    sizes: Counter[int] = field(default_factory=Counter)   # ForkContext.batch_sizes


def allocations(p: Plan) -> np.ndarray:
    """New pages each planned slice allocates (eager copies), per slice."""
    out = np.zeros(len(p.slices), np.int64)
    if not len(p.starts):
        return out
    a = np.array([eff.counts.get("alloc", (0, 0))[0] for eff in p.effects], np.int64)
    bb = np.array([eff.counts.get("alloc", (0, 0))[1] for eff in p.effects], np.int64)
    per = a[p.step_class] + bb[p.step_class] * p.nr
    np.add.at(out, p.sl[p.starts], per)
    return out


def apply(p: Plan, b: Bulk, child: BulkMM, alloc_base: np.ndarray) -> Counts:
    """Write the kept slices: child entries, parent entries, pages, folios, counters.
    ``alloc_base``: per slice, the pfn its first new page gets."""
    keep = np.ones(len(p.slices), bool)
    keep[list(p.refused)] = False
    out = Counts()
    ok = keep[p.sl]
    _apply_steps(p, b, child, keep, ok, alloc_base, out)
    _apply_nonpresent(p, b, child, ok, out)
    _loop_counts(p, keep, ok, out)
    for k, v in out.rss.items():
        child.rss[k] = child.rss.get(k, 0) + v
    child.on_mmlist |= out.flags[0]
    child.huge_zero_ref |= out.flags[1]
    return out


def _affine(effects: list[tables.StepEffect], cls: np.ndarray, nr: np.ndarray,
            out: Counts) -> None:
    """Add every class's counters: a per step plus b per PTE."""
    cnt = np.bincount(cls, minlength=len(effects))
    snr = np.bincount(cls, weights=nr, minlength=len(effects)).astype(np.int64)
    # the batch-size histogram: one count at its length per step of a class whose probe
    # step counted there
    sized = np.array([eff.sized for eff in effects], bool)[cls]
    if sized.any():
        lengths, times = np.unique(nr[sized], return_counts=True)
        out.sizes.update(dict(zip(lengths.tolist(), times.tolist(), strict=True)))
    for k, eff in enumerate(effects):
        if not cnt[k]:
            continue
        out.steps[eff.step] += int(cnt[k])
        for name, (a, bb) in eff.counts.items():
            v = a * int(cnt[k]) + bb * int(snr[k])
            if not v or name in ("ref", "alloc"):
                continue
            if name.startswith("ops:"):
                out.ops[name[4:]] += v
            elif name.startswith("rss:"):
                out.rss[name[4:]] += v
            elif name == "copies":
                out.copies += v


def _apply_steps(p: Plan, b: Bulk, child: BulkMM, keep: np.ndarray, ok: np.ndarray,
                 alloc_base: np.ndarray, out: Counts) -> None:
    if not len(p.starts):
        return
    mm, m = b.mm, b.machine
    good = keep[p.sl[p.starts]]
    starts, nr, cls = p.starts[good], p.nr[good], p.step_class[good]
    if not len(starts):
        return
    effects = p.effects
    _affine(effects, cls, nr, out)
    off = np.concatenate([[0], np.cumsum(nr)[:-1]])
    total = int(nr.sum())
    pos = np.arange(total) - np.repeat(off, nr)
    slot = np.repeat(starts, nr) + pos
    scls = np.repeat(cls, nr)
    childtab = np.array([[e.child[0], e.child[min(1, len(e.child) - 1)]] for e in effects],
                        np.int64)
    clear = np.array([e.clear for e in effects], np.int64)
    at = p.at[slot]
    code = p.code[slot].astype(np.int64)
    child.bits[at] = childtab[scls, np.minimum(pos, 1)]
    child.pfn[at] = p.pfn[slot]
    mm.bits[at] = code & ~clear[scls]
    fol = p.fol[slot]
    real = fol >= 0
    if real.any():
        md = np.array([e.map_delta for e in effects], np.int64)[scls]
        pg = p.page[slot][real]
        np.add.at(m.mapcount, pg, md[real].astype(np.int32))
        keep_ae = np.array([e.ae_keep for e in effects], bool)[scls][real]
        m.ae[pg] &= keep_ae
        ra = np.array([e.counts.get("ref", (0, 0))[0] for e in effects], np.int64)
        rb = np.array([e.counts.get("ref", (0, 0))[1] for e in effects], np.int64)
        sf = p.fol[starts]
        has = sf >= 0
        np.add.at(m.refcount, sf[has], (ra[cls] + rb[cls] * nr)[has])
    _new_pages(p, b, child, starts, nr, cls, slot, at, alloc_base)


def _new_pages(p: Plan, b: Bulk, child: BulkMM, starts: np.ndarray, nr: np.ndarray,
               cls: np.ndarray, slot: np.ndarray, at: np.ndarray,
               alloc_base: np.ndarray) -> None:
    """Steps whose child gets new pages (eager copies): pfns in address order."""
    effects = p.effects
    copying = np.array([not e.shared for e in effects], bool)
    if not copying[cls].any():
        return
    per_step = np.where(copying[cls], nr, 0)
    ssl = p.sl[starts]
    csum = np.cumsum(per_step) - per_step            # new pages before each step ...
    idx = np.flatnonzero(np.r_[True, ssl[1:] != ssl[:-1]])
    slice_off = np.zeros(len(p.slices), np.int64)
    slice_off[ssl[idx]] = csum[idx]                   # ... and before the step's slice
    step_base = alloc_base[ssl] + csum - slice_off[ssl]
    sc = np.repeat(cls, nr)
    new = copying[sc]
    pos = slot - np.repeat(starts, nr)
    pfns = (np.repeat(step_base, nr) + pos)[new]
    child.pfn[at[new]] = pfns
    ref = np.array([e.new_page[0] for e in effects], np.int64)[sc[new]]
    mapc = np.array([e.new_page[1] for e in effects], np.int32)[sc[new]]
    ae = np.array([e.new_page[2] for e in effects], bool)[sc[new]]
    order = np.argsort(pfns, kind="stable")
    for r in np.unique(ref).tolist():
        sel = order[ref[order] == r]
        b.machine.add_folios(pfns[sel], 0, "anon", r, mapc[sel], ae[sel])


def _apply_nonpresent(p: Plan, b: Bulk, child: BulkMM, ok: np.ndarray, out: Counts) -> None:
    if not len(p.np_effects):
        return
    idx = np.flatnonzero((p.np_class >= 0) & ok)
    if not len(idx):
        return
    cls = p.np_class[idx]
    effects = p.np_effects
    ctab = np.array([e.child for e in effects], np.int64)[cls]
    at = p.at[idx]
    has = ctab >= 0
    child.bits[at[has]] = ctab[has]
    child.pfn[at[has]] = p.pfn[idx][has]
    b.mm.bits[at] = np.array([e.parent for e in effects], np.int64)[cls]
    swap = np.array([e.counts.get("swap", 0) for e in effects], np.int64)[cls]
    if swap.any():
        m = b.machine
        rows = np.searchsorted(m.swap_offset, p.pfn[idx][swap != 0])
        np.add.at(m.swap_count, rows, swap[swap != 0])
    cnt = np.bincount(cls, minlength=len(effects))
    for k, e in enumerate(effects):
        if not cnt[k]:
            continue
        if e.step is not None:
            out.steps[e.step] += int(cnt[k])
        for length, times in e.sizes:
            out.sizes[length] += times * int(cnt[k])
        for name, v in e.counts.items():
            if name.startswith("ops:"):
                out.ops[name[4:]] += v * int(cnt[k])
            elif name.startswith("rss:"):
                out.rss[name[4:]] += v * int(cnt[k])
        out.flags = (out.flags[0] or e.flags[0], out.flags[1] or e.flags[1])


def _loop_counts(p: Plan, keep: np.ndarray, ok: np.ndarray, out: Counts) -> None:
    """copy_pte_range()'s own counts for every kept slice (tables.loop: per slice, per
    none slot, per present step), and its lock-break checks."""
    n = len(p.slices)
    none = np.bincount(p.sl[(p.code == 0) & ok], minlength=n)
    steps = np.bincount(p.sl[p.starts], minlength=n)
    vma = np.array([s.vma for s in p.slices], np.int64)
    for v in np.unique(vma[keep]).tolist():
        sel = keep & (vma == v)
        costs = tables.loop(p.ctxs[v])
        for part, count in (("slice", int(sel.sum())), ("none", int(none[sel].sum())),
                            ("present", int(steps[sel].sum()))):
            for name, val in costs[part].items():
                if name == "passes":
                    out.passes += val * count
                elif name != "lock_breaks" and val:
                    out.ops[name] += val * count
    inc = np.where(p.code == 0, PROGRESS_NONE, np.where(p.code & NP, PROGRESS_ENTRY, 0))
    inc[p.starts] = PROGRESS_ENTRY * p.nr
    out.ops["lockbreak_checks"] += _lock_break_checks(inc, p.first, keep)


def _lock_break_checks(inc: np.ndarray, first: np.ndarray, keep: np.ndarray) -> int:
    """How often copy_pte_range's ``progress`` reached PROGRESS_BREAK in the kept slices:
    ``inc`` is each loop iteration's progress (0 on slots a step covered), ``first`` each
    slice's first position."""
    if not len(inc):
        return 0
    it = inc > 0
    iters = np.add.reduceat(it.astype(np.int64), first)
    big = np.where(it, inc, 0)
    hi = np.maximum.reduceat(big, first)
    lo = np.minimum.reduceat(np.where(it, inc, np.iinfo(np.int64).max), first)
    uniform = keep & (hi == lo) & (iters > 0)
    q = -(-PROGRESS_BREAK // np.maximum(hi, 1))
    checks = int(((iters[uniform] - 1) // q[uniform]).sum())
    ends = np.append(first[1:], len(inc))
    for k in np.flatnonzero(keep & ~uniform & (iters > 0)).tolist():
        progress = 0
        for d in inc[first[k]:ends[k]][it[first[k]:ends[k]]].tolist():
            if progress >= PROGRESS_BREAK:
                checks += 1
                progress = 0
            progress += d
    return checks
