"""What each class of entry does at fork, measured by running the traced model on probes.

Simulator concept.  The vectorised engine (:mod:`pkmm.fast.vector`) knows the *shape* of
copy_pte_range -- a walk over slots, where a present PTE starts a step that covers it and
possibly the following PTEs of the same folio -- and none of any version's rules.  It reads
them from the tables here, built per :data:`~pkmm.fast.probe.Context` by running the
variant's own code on probes (:mod:`pkmm.fast.probe`), once per class that occurs:

* :func:`continues` -- does a step that reached PTE ``a`` take the next PTE ``b`` (same
  folio, next page)?
* :func:`step` -- everything one step of a class does: its length, the child's entry,
  the parent bits it clears, what it does to the pages, the folio and the rss, its
  operation counts and the step it records.  Counters are measured at two step lengths
  and used as ``a + b * nr``; classes of length 1 and 2 are measured exactly.
* :func:`nonpresent`, :func:`leaf` -- one swap / migration / marker entry; one PMD leaf.
* :func:`loop` -- copy_pte_range's own counts per slice, per none slot, per present step.

A class whose probe the engine could not reproduce exactly (a batch of another length, a
page copied for a pin, a split PMD, a new THP ...) gets ``ok=False``, and the slices that
hold it go through the traced path instead.  Entries of a class are the *pattern* of a
slot: its entry code, and (for a present PTE) the class of the page it maps.
Taught in: notebooks/08-cost.ipynb
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace

import numpy as np

from ..machine import HUGE_ZERO_PFN
from ..pgtable import Pmd
from .layout import P, pmd_code, swp_kind
from .probe import (
    FIXTURE_ORDER,
    NO_RELATION,
    Context,
    Fixture,
    Run,
    page_class,
    run_fixture,
    step_fixture,
    unpack_page_class,
)

Affine = dict[str, tuple[int, int]]     # counter -> (a, b): the value is a + b * nr


@dataclass(frozen=True)
class StepEffect:
    """One step of a class (see :func:`step`)."""

    ok: bool
    child: tuple[int, ...] = (0,)  # the child's entry code per position, or one for all
    shared: bool = True           # the child maps the parent's pfn (else a new page each)
    clear: int = 0                # parent code bits the step clears
    map_delta: int = 0            # per page
    ae_keep: bool = True          # AnonExclusive survives (else cleared)
    counts: Affine = field(default_factory=dict)   # ref, copies, alloc, ops:*, rss:*
    step: tuple[str, str] = ("", "")
    new_page: tuple[int, int, bool] = (0, 0, False)   # refcount, mapcount, AE of a copy
    sized: bool = False           # the step counts in ForkContext.batch_sizes at its length


@dataclass(frozen=True)
class EntryEffect:
    """One non-present entry or PMD leaf of a class (see :func:`nonpresent`, :func:`leaf`)."""

    ok: bool
    child: int = -1               # the child's entry code (-1: the child gets none)
    parent: int = 0               # the parent's entry code afterwards
    counts: dict[str, int] = field(default_factory=dict)  # ops:*, rss:*, swap, ref, entire
    step: tuple[str, str] | None = None
    flags: tuple[bool, bool] = (False, False)     # child on_mmlist, huge_zero_ref
    deposited: bool = False       # (leaf) the child got a deposited table
    ae_head: bool | None = None   # (leaf) the head page's AnonExclusive afterwards
    sizes: tuple[tuple[int, int], ...] = ()      # ForkContext.batch_sizes it adds


_CONT: dict[tuple[object, ...], bool] = {}
_STEP: dict[tuple[object, ...], StepEffect] = {}
_ENTRY: dict[tuple[object, ...], EntryEffect] = {}
_LOOP: dict[Context, dict[str, Counter[str]]] = {}


# --- present PTEs --------------------------------------------------------------------

def continues(ctx: Context, a: int, b: int) -> bool:
    """Does a step that reached a PTE of pattern ``a`` go on to the next PTE, of pattern
    ``b``, mapping the next page of the same folio?"""
    key = (ctx, a, b)
    if key not in _CONT:
        fx, n = step_fixture(ctx, [a, b], True, False, 0, NO_RELATION)
        r = run_fixture(fx, n)
        _CONT[key] = r is not None and r.ret == 2
    return _CONT[key]


def step(ctx: Context, first: int, orp: int, andp: int, n: int, at_slice_end: bool,
         at_folio_end: bool, nxt: int, relation: int) -> StepEffect:
    """What a step does that covers ``n`` PTEs (3 meaning three or more) from a first of
    pattern ``first``, whose patterns OR / AND to ``orp`` / ``andp``, ending as said."""
    key = (ctx, first, orp, andp, n, at_slice_end, at_folio_end, nxt, relation)
    if key not in _STEP:
        if n == 1:
            sizes = [[first]]
        elif n == 2:
            sizes = [[first, (first & andp) | (~first & orp)]]
        else:
            sizes = [[first, orp, andp], [first, orp, andp, andp]]
        runs = []
        for pats in sizes:
            fx, length = step_fixture(ctx, pats, at_slice_end, at_folio_end, nxt, relation)
            runs.append((len(pats), run_fixture(fx, length)))
        flags = (False, False)
        if nxt and not nxt & P and not at_slice_end:   # what the next entry does itself
            target = page_class(0, False, False) if swp_kind(nxt).startswith("migration") \
                else 0
            flags = nonpresent(ctx, nxt, target).flags
        _STEP[key] = _step_effect(runs, flags)
    return _STEP[key]


def _step_effect(runs: list[tuple[int, Run | None]], flags: tuple[bool, bool]) -> StepEffect:
    values: list[tuple[int, dict[str, int]]] = []
    shape = None
    for n, r in runs:
        if r is None or r.ret != n or any(r.counters[1:]) or sum(r.steps.values()) != 1:
            return StepEffect(False)
        got = _step_state(r, n, flags)
        if got is None:
            return StepEffect(False)
        counts, this = got
        if len(runs) > 1:               # measured at two lengths: one child entry for all
            if len(set(this.child)) != 1:
                return StepEffect(False)
            this = replace(this, child=this.child[:1])
        if shape is not None and this != shape:
            return StepEffect(False)
        shape = this
        values.append((n, counts))
    assert shape is not None
    if len(values) == 1:
        affine = {k: (v, 0) for k, v in values[0][1].items()}
    else:
        (n1, c1), (n2, c2) = values
        keys = set(c1) | set(c2)
        affine = {}
        for k in keys:
            b = (c2.get(k, 0) - c1.get(k, 0)) // (n2 - n1)
            affine[k] = (c1.get(k, 0) - b * n1, b)
    return StepEffect(True, shape.child, shape.shared, shape.clear, shape.map_delta,
                      shape.ae_keep, affine, shape.step, shape.new_page, shape.sized)


@dataclass(frozen=True)
class _Shape:
    """What a probe's step did to each slot, page and new page (its counters apart)."""

    child: tuple[int, ...]
    shared: bool
    clear: int
    map_delta: int
    ae_keep: bool
    new_page: tuple[int, int, bool]
    step: tuple[str, str]
    sized: bool


def _step_state(r: Run, n: int, flags: tuple[bool, bool]
                ) -> tuple[dict[str, int], _Shape] | None:
    """The counters of the probe's first step, and the shape of its per-slot effect."""
    pm, cm, mach, old = r.b.mm, r.child, r.b.machine, r.before.machine
    child = tuple(int(c) for c in cm.bits[:n])
    shared = bool((cm.pfn[:n] == pm.pfn[:n]).all())
    before, after = r.before.mm.bits[:n].astype(int), pm.bits[:n].astype(int)
    following = r.before.mm.bits[n]
    if ((after & ~before) != 0).any() or (following & P and pm.bits[n] != following):
        return None
    clear = int(np.bitwise_or.reduce(before & ~after))
    if ((before & ~clear) != after).any():
        return None
    folio, new = -1, []
    if not shared:
        new = cm.pfn[:n].tolist()
        if new != list(range(new[0], new[0] + n)):
            return None
    counts = {f"ops:{k}": v for k, v in r.ops.items()}
    counts.update({f"rss:{k}": v for k, v in r.rss.items()})
    counts["copies"] = r.counters[0]
    counts["alloc"] = len(mach.folio_pfn) - len(old.folio_pfn)
    deltas = mach.refcount[:len(old.refcount)] - old.refcount
    pages = pm.pfn[:n] - mach.base
    fol = mach.page_folio[pages] if (pages >= 0).all() and (pages < len(old.page_folio)).all() \
        else np.full(n, -1)
    if (fol >= 0).any():
        folio = int(fol[0])
        counts["ref"] = int(deltas[folio])
        deltas[folio] = 0
    if deltas.any() or (mach.entire[:len(old.entire)] != old.entire).any() or \
            (mach.migration[:len(old.migration)] != old.migration).any():
        return None
    md, ae_keep = 0, True
    if folio >= 0:
        d = mach.mapcount[pages] - old.mapcount[pages]
        if len(set(d.tolist())) != 1:
            return None
        md = int(d[0])
        was, now = old.ae[pages], mach.ae[pages]
        if (now & ~was).any() or (was & ~now).any() and (was & now).any():
            return None
        ae_keep = not (was & ~now).any()
    new_page = (0, 0, False)
    if new:
        i = int(mach.page_folio[new[0] - mach.base])
        new_page = (int(mach.refcount[i]), int(mach.mapcount[new[0] - mach.base]),
                    bool(mach.ae[new[0] - mach.base]))
        if counts["alloc"] != n or int(mach.folio_order[i]):
            return None
    if (r.child.on_mmlist, r.child.huge_zero_ref) != flags:
        return None
    # the batch-size histogram: the step either counts once at its own length or not at
    # all (what ForkContext.step did in the probe; any other shape is not reproducible)
    sized = r.sizes == Counter({n: 1})
    if r.sizes and not sized:
        return None
    st = next(iter(r.steps))
    return counts, _Shape(child, shared, clear, md, ae_keep, new_page, st, sized)


# --- non-present entries and PMD leaves ----------------------------------------------

def nonpresent(ctx: Context, code: int, target: int) -> EntryEffect:
    """What one non-present entry of ``code`` does (``target``: for a migration entry,
    the page class of the page it stands for)."""
    key = (ctx, code, target)
    if key not in _ENTRY:
        fx = Fixture(ctx)
        pfn = 0 if swp_kind(code) == "marker" else 1     # a marker has no offset
        if target:
            kind, large, _ = unpack_page_class(target)
            pfn = fx.folio(FIXTURE_ORDER if large else 0, kind)
        fx.slot(code, pfn)
        r = run_fixture(fx, 1, measure=False)
        _ENTRY[key] = _entry_effect(ctx, r)
    return _ENTRY[key]


def _entry_effect(ctx: Context, r: Run | None) -> EntryEffect:
    if r is None or r.fork[:3] != (0, 0, 0) or r.fork[4]:
        return EntryEffect(False)
    base = loop(ctx)["slice"]
    ops = Counter(r.total_ops)
    ops.subtract(base)
    mach, old = r.b.machine, r.before.machine
    if (mach.refcount != old.refcount).any() or (mach.mapcount != old.mapcount[:len(
            mach.mapcount)]).any() or len(mach.folio_pfn) != len(old.folio_pfn) or \
            (mach.migration != old.migration).any():
        return EntryEffect(False)     # (a migration entry's count: the traced path)
    child = int(r.child.bits[0])
    same = int(r.before.mm.pfn[0])
    if (child and int(r.child.pfn[0]) != same) or int(r.b.mm.pfn[0]) != same:
        return EntryEffect(False)     # the entry's offset changed: not reproducible

    counts = {f"ops:{k}": v for k, v in ops.items() if v}
    counts.update({f"rss:{k}": v for k, v in r.child.rss.items() if v})
    counts["swap"] = int((mach.swap_count - old.swap_count).sum())
    steps = r.total_steps
    st = next(iter(steps)) if sum(steps.values()) == 1 else None
    return EntryEffect(True, child if child else -1, int(r.b.mm.bits[0]), counts, st,
                       (r.child.on_mmlist, r.child.huge_zero_ref),
                       sizes=tuple(sorted(r.total_sizes.items())))


def leaf(ctx: Context, code: int, pclass: int, deposited: bool) -> EntryEffect:
    """What one PMD leaf of bits ``code`` does (``pclass``: its folio's page class with
    the head page's AnonExclusive; 0 for the huge zero page)."""
    key = (ctx, code, pclass, deposited)
    if key not in _ENTRY:
        fx = Fixture(ctx)
        pfn = HUGE_ZERO_PFN
        if pclass:
            kind, _, ae = unpack_page_class(pclass)
            pfn = fx.folio(9, kind)
            fx.ae[pfn] = ae
        r = run_fixture(fx, 0, measure=False, leaf=True, leaf_code=code, leaf_pfn=pfn,
                        deposited=deposited)
        _ENTRY[key] = _leaf_effect(r, pfn, bool(pclass))
    return _ENTRY[key]


def _leaf_effect(r: Run | None, pfn: int, folio: bool) -> EntryEffect:
    if r is None or r.leaf is None or any(r.fork):
        return EntryEffect(False)
    parent, child, dep = r.leaf
    if not isinstance(parent, Pmd) or (child is not None and (
            not isinstance(child, Pmd) or child.pfn != pfn)):
        return EntryEffect(False)     # split into PTEs, or a new folio for the child
    mach, old = r.b.machine, r.before.machine
    if len(mach.folio_pfn) != len(old.folio_pfn) or (mach.mapcount != old.mapcount).any() or \
            (mach.migration != old.migration).any():
        return EntryEffect(False)
    counts = {f"ops:{k}": v for k, v in r.total_ops.items() if v}
    counts.update({f"rss:{k}": v for k, v in r.child.rss.items() if v})
    counts["ref"] = int((mach.refcount - old.refcount).sum())
    counts["entire"] = int((mach.entire - old.entire).sum())
    ae_head = bool(mach.ae[pfn - mach.base]) if folio else None
    return EntryEffect(True, -1 if child is None else pmd_code(child), pmd_code(parent), counts,
                       None, (r.child.on_mmlist, r.child.huge_zero_ref), dep, ae_head,
                       tuple(sorted(r.total_sizes.items())))


# --- copy_pte_range itself -----------------------------------------------------------

def loop(ctx: Context) -> dict[str, Counter[str]]:
    """copy_pte_range()'s own counts: per slice ("slice": its pass, rss fold ...), per none
    slot ("none") and per present step ("present"), measured on raw PTEs."""
    if ctx not in _LOOP:
        raw = P
        runs = []
        for codes in ([raw], [0, raw], [raw, raw]):
            fx = Fixture(ctx)
            for k, c in enumerate(codes):
                fx.slot(c, fx.next_pfn + 0x100 + 2 * k if c else 0)
            r = run_fixture(fx, len(codes))
            assert r is not None
            ops = Counter(r.total_ops)
            ops.subtract(r.ops)
            ops["passes"], ops["lock_breaks"] = r.fork[3], r.fork[4]
            runs.append(ops)
        one, none_first, two = runs
        present = Counter(two)
        present.subtract(one)
        none = Counter(none_first)
        none.subtract(one)
        per_slice = Counter(one)
        per_slice.subtract(present)
        _LOOP[ctx] = {"slice": per_slice, "none": none, "present": present}
    return _LOOP[ctx]

