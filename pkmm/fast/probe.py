"""Probes: tiny page tables forked by the traced model, to measure what one entry does.

Simulator concept.  A :class:`Fixture` is a probe bulk mm -- one PTE table (or one PMD
leaf) holding a few entries in a VMA pair of a :data:`Context`, and the folios they map --
and :func:`run_fixture` forks it through :class:`~pkmm.fast.hard.SliceModel`, the same
bridge the engine uses for hard slices, with the variant's ``copy_present`` hook measured
on its first call (later calls only end the slice, so one step is seen alone).  The
tables in :mod:`pkmm.fast.tables` are built from these runs.
Taught in: notebooks/08-cost.ipynb
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..context import ForkContext, KernelVersion, Prealloc
from ..pte import PAGE_SHIFT, PTRS_PER_PTE, Pte
from ..vma import Vma
from .hard import Slice, SliceModel
from .layout import (
    FOLIO_KINDS,
    NP,
    Bulk,
    BulkMachine,
    BulkMM,
    BulkVma,
    P,
    swp_kind,
)

#: A probe context: (kernel, ablations, MMF_HAS_PINNED, parent VMA, child VMA), the VMAs
#: as (flags, backing, anon_vma, uffd_fork).
Context = tuple[KernelVersion, frozenset[str], bool, tuple[int, str, bool, bool],
                tuple[int, str, bool, bool]]
FIXTURE_PMD = 1                 # the PMD index probe tables live at
FIXTURE_ORDER = 4               # order of a large probe folio (room for every geometry)


#: A pattern is ``code | page_class << PAGE_CLASS_SHIFT``; page class 0: no folio.
PAGE_CLASS_SHIFT = 16
#: How the next entry's pfn relates to a step's last PTE.
NO_RELATION, NEXT_SAME, NEXT_OTHER, GAP_SAME, GAP_OTHER = range(5)


def page_class(kind: Any, large: Any, ae: Any) -> Any:
    """The page class of a page of folio kind ``kind`` (a FOLIO_KINDS index): one bit
    each for "has a folio", large and AnonExclusive, two for the kind, so that the OR and
    AND of a step's patterns are patterns too.  Works on ints and on numpy arrays.

    >>> page_class(0, True, True)
    25
    """
    return 1 | kind << 1 | (large * 1) << 3 | (ae * 1) << 4


def unpack_page_class(pclass: int) -> tuple[str, bool, bool]:
    """(folio kind, large, AnonExclusive) of a page class other than 0."""
    return FOLIO_KINDS[pclass >> 1 & 3], bool(pclass >> 3 & 1), bool(pclass >> 4 & 1)


def _ae(pat: int) -> bool:
    """The AnonExclusive of a present pattern's page (False without a folio)."""
    pclass = pat >> PAGE_CLASS_SHIFT
    return bool(pclass) and unpack_page_class(pclass)[2]


# --- fixtures ------------------------------------------------------------------------

@dataclass
class Fixture:
    """A probe: one PTE table (or one PMD leaf) of slots, the folios behind them."""

    ctx: Context
    codes: list[int] = field(default_factory=list)      # entry code per slot
    pfns: list[int] = field(default_factory=list)
    folios: list[tuple[int, int, str]] = field(default_factory=list)  # (pfn, order, kind)
    ae: dict[int, bool] = field(default_factory=dict)    # pfn -> AnonExclusive
    swap: list[int] = field(default_factory=list)        # swap offsets in use
    next_pfn: int = 0x1000

    def folio(self, order: int, kind: str, gap: int = 0) -> int:
        """Allocate a probe folio after the last one (``gap`` pages between); its pfn."""
        pfn = (self.next_pfn + gap + (1 << order) - 1) & ~((1 << order) - 1)
        self.folios.append((pfn, order, kind))
        self.next_pfn = pfn + (1 << order)
        return pfn

    def slot(self, code: int, pfn: int = 0, ae: bool = False) -> None:
        self.codes.append(code)
        self.pfns.append(pfn)
        if code & P:
            self.ae[pfn] = ae
        elif code & NP and swp_kind(code) == "swap":
            self.swap.append(pfn)

    def bulk(self) -> tuple[Bulk, list[BulkVma | None]]:
        """The fixture as a bulk mm and machine, and the child's VMA."""
        kernel, without, has_pinned, src, dst = self.ctx
        base = 0x1000
        top = max([self.next_pfn, base] + [p + 1 for p in self.pfns])
        npg = top - base
        mach = BulkMachine(base, np.full(npg, -1, np.int32), np.zeros(npg, np.int32),
                           np.zeros(npg, bool), np.array([f[0] for f in self.folios], np.int64),
                           np.array([f[1] for f in self.folios], np.int8),
                           np.zeros(len(self.folios), np.int64),
                           np.zeros(len(self.folios), np.int64),
                           np.zeros(len(self.folios), np.int32), self.next_pfn,
                           folio_kind=np.array([FOLIO_KINDS.index(f[2]) for f in self.folios],
                                               np.uint8))
        for i, (pfn, order, kind) in enumerate(self.folios):
            mach.page_folio[pfn - base:pfn - base + (1 << order)] = i
            mach.refcount[i] = 0 if kind == "anon" else 1 << order   # the page cache's
        for c, pfn in zip(self.codes, self.pfns, strict=True):
            page = pfn - base
            if c & P and 0 <= page < npg and mach.page_folio[page] >= 0:
                mach.refcount[mach.page_folio[page]] += 1
                mach.mapcount[page] += 1
                mach.ae[page] = self.ae[pfn]
        mach.swap_offset = np.array(sorted(set(self.swap)), np.int64)
        mach.swap_count = np.ones(len(mach.swap_offset), np.int64)
        mach.swap_data = np.zeros(len(mach.swap_offset), np.int64)
        mach.swap_anon = np.ones(len(mach.swap_offset), bool)
        mach.swap_cache = np.full(len(mach.swap_offset), -1, np.int64)
        slots = np.zeros(PTRS_PER_PTE, np.uint16)
        pfns = np.zeros(PTRS_PER_PTE, np.int64)
        slots[:len(self.codes)] = self.codes
        pfns[:len(self.pfns)] = self.pfns
        start = FIXTURE_PMD << (PAGE_SHIFT + 9)
        end = start + (PTRS_PER_PTE << PAGE_SHIFT)
        v = BulkVma(start, end, src[0], src[1], -1, 0, src[2], src[3])
        cv = BulkVma(start, end, dst[0], dst[1], -1, 0, dst[2], dst[3])
        mm = BulkMM([v], np.array([FIXTURE_PMD], np.int64), pfns, slots)
        mm.has_pinned = has_pinned
        return Bulk(mm, mach, kernel.name), [cv]


@dataclass
class Run:
    """What a probe did: the first present-copy call, and the state afterwards."""

    b: Bulk
    child: BulkMM
    before: Bulk
    ret: int = 0
    ops: Counter[str] = field(default_factory=Counter)
    steps: Counter[tuple[str, str]] = field(default_factory=Counter)
    rss: dict[str, int] = field(default_factory=dict)
    counters: tuple[int, ...] = ()      # copies, eagain, wasted inside the first call
    total_ops: Counter[str] = field(default_factory=Counter)
    total_steps: Counter[tuple[str, str]] = field(default_factory=Counter)
    fork: tuple[int, ...] = ()          # eagain, copies, wasted, passes, lock_breaks
    sizes: Counter[int] = field(default_factory=Counter)        # batch_sizes, first call
    total_sizes: Counter[int] = field(default_factory=Counter)  # batch_sizes, whole fork
    leaf: tuple[Any, Any, bool] | None = None   # parent entry, child entry, deposited


def _measuring(kernel: KernelVersion, rec: dict[str, Any]) -> KernelVersion:
    """``kernel`` with its copy_present hook measured on its first call; later calls
    do nothing but end the slice (pkmm probe: only the first step is of interest)."""
    inner = kernel.copy_present

    def copy_present(fc: ForkContext, dst_vma: Vma, src_vma: Vma, pte: Pte, addr: int,
                     max_nr: int, rss: dict[str, int], prealloc: Prealloc) -> int:
        if "ret" in rec:
            return max_nr
        ops, steps, r = Counter(fc.ops), Counter(fc.step_counts), dict(rss)
        sizes = Counter(fc.batch_sizes)
        c = (fc.copies, fc.eagain, fc.wasted)
        ret = inner(fc, dst_vma, src_vma, pte, addr, max_nr, rss, prealloc)
        rec.update(ret=ret, ops=fc.ops - ops, steps=fc.step_counts - steps,
                   sizes=fc.batch_sizes - sizes,
                   rss={k: v - r.get(k, 0) for k, v in rss.items() if v != r.get(k, 0)},
                   counters=(fc.copies - c[0], fc.eagain - c[1], fc.wasted - c[2]))
        return ret

    return replace(kernel, copy_present=copy_present)


def run_fixture(fx: Fixture, length: int, measure: bool = True, leaf: bool = False,
                leaf_code: int = 0, leaf_pfn: int = 0, deposited: bool = False) -> Run | None:
    """Fork the fixture's slice of ``length`` slots (or its one leaf) with the traced
    path; None when fork failed."""
    b, child_vmas = fx.bulk()
    if leaf:
        b.mm.tables = np.zeros(0, np.int64)
        b.mm.pfn, b.mm.bits = np.zeros(0, np.int64), np.zeros(0, np.uint16)
        b.mm.pmd_idx = np.array([FIXTURE_PMD], np.int64)
        b.mm.pmd_pfn = np.array([leaf_pfn], np.int64)
        b.mm.pmd_bits = np.array([leaf_code], np.uint8)
        if deposited:
            b.mm.deposited = np.array([FIXTURE_PMD], np.int64)
        page = leaf_pfn - b.machine.base
        if 0 <= page < len(b.machine.page_folio):     # the PMD maps the whole folio
            i = b.machine.page_folio[page]
            b.machine.refcount[i] += 1
            b.machine.entire[i] += 1
            b.machine.ae[page] = fx.ae.get(leaf_pfn, False)
    before = b.copy()
    kernel, without = fx.ctx[0], fx.ctx[1]
    rec: dict[str, Any] = {}
    model = SliceModel(b, child_vmas, _measuring(kernel, rec) if measure else kernel,
                       without)
    start = b.mm.vmas[0].start
    s = Slice(0, FIXTURE_PMD, start, start + ((PTRS_PER_PTE if leaf else length) << PAGE_SHIFT),
              leaf, 0, 0, 0 if leaf else length)
    model.add([s])
    ret, nxt = model.run(s, b.machine.next_pfn)
    if ret:
        return None
    child = BulkMM([c for c in child_vmas if c is not None], b.mm.tables.copy(),
                   np.zeros(len(b.mm.pfn), np.int64), np.zeros(len(b.mm.bits), np.uint16))
    if not leaf:
        model.write_entries(s, child)
    b.machine.next_pfn = nxt
    model.write_counters(child)
    fork, ops, steps = model.counters()
    out = Run(b, child, before, total_ops=Counter(ops), total_steps=Counter(steps), fork=fork,
              total_sizes=model.batch_sizes())
    if leaf:
        out.leaf = model.leaf_result(s)
    elif "ret" in rec:
        out.ret, out.ops, out.steps = rec["ret"], rec["ops"], rec["steps"]
        out.sizes = rec["sizes"]
        out.rss, out.counters = rec["rss"], rec["counters"]
    return out


# --- the probe of one step ------------------------------------------------------

def step_fixture(ctx: Context, pats: list[int], at_slice_end: bool, at_folio_end: bool,
                  nxt: int, relation: int) -> tuple[Fixture, int]:
    """A probe slice: PTEs of ``pats`` on consecutive pages of one folio, then the next
    entry (pattern ``nxt``) unless the step ends the slice; returns it and its length."""
    fx = Fixture(ctx)
    pclass = pats[0] >> PAGE_CLASS_SHIFT
    n = len(pats)
    nclass = nxt >> PAGE_CLASS_SHIFT if nxt & P else 0
    order = 0
    if pclass:
        kind, large, _ = unpack_page_class(pclass)
        order = FIXTURE_ORDER if large else 0
        if relation == NEXT_OTHER and nclass and unpack_page_class(nclass)[1]:
            big = 1 << FIXTURE_ORDER          # the next folio must start right at our end
            fx.next_pfn = -(-(fx.next_pfn + (1 << order)) // big) * big - (1 << order)
        a = fx.folio(order, kind)
        first = a + ((1 << order) - n if at_folio_end else 0)
    else:
        first = fx.next_pfn + 0x100       # a pfn no folio holds (zero page, PFN map ...)
    for k, pat in enumerate(pats):
        fx.slot(pat & 0xFFFF, first + k, _ae(pat))
    if at_slice_end:
        return fx, n
    last = first + n - 1
    if not nxt:
        fx.slot(0)
    elif not nxt & P:
        pfn = 0 if swp_kind(nxt) == "marker" else 1
        if swp_kind(nxt).startswith("migration"):
            pfn = fx.folio(0, "anon", gap=1)
        fx.slot(nxt, pfn)
    else:
        pfn = _next_pfn(fx, last, relation, nclass, order, first)
        fx.slot(nxt & 0xFFFF, pfn, _ae(nxt))
    return fx, n + 1


def _next_pfn(fx: Fixture, last: int, relation: int, nclass: int, order: int,
              first: int) -> int:
    if relation == NEXT_SAME:
        return last + 1
    if relation == GAP_SAME:
        return last + 2 if last + 2 < first - (first % (1 << order)) + (1 << order) \
            else first - 1
    gap = 0 if relation == NEXT_OTHER else 3
    if not nclass:
        return fx.next_pfn + gap
    kind, large, _ = unpack_page_class(nclass)
    return fx.folio(FIXTURE_ORDER if large else 0, kind, gap)
