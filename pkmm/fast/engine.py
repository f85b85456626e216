"""fork() of a bulk process: dup_mmap -> copy_page_range -> copy_pmd_range over PMD slices.

Simulator concept.  :func:`fork_bulk` asks the model what dup_mmap() and
vma_needs_copy() decide for each VMA (:func:`pkmm.fast.convert.dup_vmas`), cuts the VMAs
that are copied into PMD slices, lets the vectorised engine (:mod:`pkmm.fast.vector`) take
every slice it can do exactly, and runs the traced copy path on the others
(:mod:`pkmm.fast.hard`), in address order.  Both leave the state and counts
:func:`pkmm.fork` leaves.
Taught in: notebooks/08-cost.ipynb
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ..context import ForkCounts, KernelVersion, check_ablations
from ..errors import ForkError, LayoutError
from ..kernels import DEFAULT_KERNEL, get_kernel
from ..pgtable import Pmd, PteTable
from ..pte import PAGE_SHIFT, PMD_SHIFT, PTRS_PER_PTE
from ..rmap import large_mapcount_add
from . import huge, periodic, vector, write
from .convert import dup_vmas
from .hard import Slice, SliceModel, table_codes
from .layout import Bulk, BulkMachine, BulkMM, BulkVma, pmd_code
from .probe import Context


@dataclass(kw_only=True)
class FastForkResult(ForkCounts):
    """What a bulk fork did: the counters of :class:`pkmm.context.ForkCounts`, the same
    fields :class:`pkmm.ForkResult` has (no event list), and how many slices each engine
    took."""

    parent: Bulk
    child: Bulk
    kernel: str
    vectorised_slices: int = 0
    hard_slices: int = 0


def slices_of(mm: BulkMM, copied: list[bool]) -> list[Slice]:
    """copy_page_range() + copy_pmd_range(): the PMD slices that hold a PTE table or a
    PMD leaf, of every VMA whose page tables fork copies, in address order."""
    out: list[Slice] = []
    pmd_size = 1 << PMD_SHIFT
    for k, v in enumerate(mm.vmas):
        if not copied[k]:
            continue
        first, last = v.start >> PMD_SHIFT, (v.end - 1) >> PMD_SHIFT
        r0, r1 = np.searchsorted(mm.tables, [first, last + 1]).tolist()
        j0, j1 = np.searchsorted(mm.pmd_idx, [first, last + 1]).tolist()
        entries = [(pmd, row, False) for row, pmd in enumerate(mm.tables[r0:r1].tolist(), r0)]
        if j1 > j0:
            entries = sorted(entries + [(pmd, j, True) for j, pmd in
                                        enumerate(mm.pmd_idx[j0:j1].tolist(), j0)])
        for pmd, row, leaf in entries:
            start = max(v.start, pmd * pmd_size)
            end = min(v.end, (pmd + 1) * pmd_size)
            lo = (start >> PAGE_SHIFT) & (PTRS_PER_PTE - 1)
            out.append(Slice(k, pmd, start, end, leaf, row, lo,
                             lo + ((end - start) >> PAGE_SHIFT)))
    return out


def _check(b: object, without: Iterable[str], need_resched: object,
           fail_prealloc: object) -> frozenset[str]:
    if not isinstance(b, Bulk):
        raise LayoutError(f"fork_bulk: b={b!r} is not a pkmm.fast.Bulk; build one with "
                          "build_region() or from_process()")
    w = check_ablations(without)
    if not isinstance(need_resched, bool):
        raise LayoutError(f"need_resched={need_resched!r}: True or False")
    if not isinstance(fail_prealloc, (bool, int)) or fail_prealloc < 0:
        raise LayoutError(f"fail_prealloc={fail_prealloc!r}: False, True or a count >= 1")
    return w


def fork_bulk(b: Bulk, kernel: str = DEFAULT_KERNEL, without: Iterable[str] = frozenset(), *,
              need_resched: bool = False, fail_prealloc: int | bool = False,
              vectorise: bool = True) -> FastForkResult:
    """Fork the bulk process ``b`` the way ``kernel`` does, changing ``b`` in place (parent
    write-protect, folio counters) and returning the child.  Same arguments and the same
    answer as :func:`pkmm.fork`; ``vectorise=False`` runs the traced path on every slice
    (for checking).  Raises :class:`pkmm.ForkError` when fork fails (ENOMEM).
    """
    version = get_kernel(kernel)
    w = _check(b, without, need_resched, fail_prealloc)
    child_vmas, copied = dup_vmas(b, version.name, w)
    mm = b.mm
    mapped0 = folio_mapcounts(b.machine, large_only=True)
    child = BulkMM([c for c in child_vmas if c is not None], mm.tables.copy(),
                   np.zeros(len(mm.pfn), np.int64), np.zeros(len(mm.bits), np.uint16))
    slices = slices_of(mm, copied)
    ctxs = [_context(version, w, mm.has_pinned, v, c) for v, c in zip(mm.vmas, child_vmas,
                                                                       strict=True)]
    # pkmm: the traced path takes everything when lock breaks reshape the passes, when
    # allocations may fail, or when asked to
    everything = not vectorise or b.machine.fail_alloc > 0
    take = not everything and not need_resched
    at = np.array([k for k, s in enumerate(slices) if take and not s.leaf], np.int64)
    ptes = [slices[k] for k in at.tolist()]      # the PTE-table slices and their places
    al = periodic.plan_alike(b, ptes, ctxs)
    bad = None if al or everything else vector.pinned_folios(b)
    p = vector.plan(b, [] if al else ptes, ctxs, bad)
    keep = np.ones(len(ptes), bool)
    keep[list(p.refused) if not al else []] = False
    lp = huge.plan(b, [] if everything else [s for s in slices if s.leaf], ctxs, bad)
    done = {id(s) for s, k in zip(ptes, keep, strict=True) if k} | lp.ids()
    hard = [(k, s) for k, s in enumerate(slices) if id(s) not in done]
    run = _Run(b, child, child_vmas, version, w, need_resched, fail_prealloc)
    per = np.where(keep, al.allocs if al else write.allocations(p), 0)
    base = _alloc_bases(run, at, per, hard, len(slices), b.machine.next_pfn)
    counts = periodic.write_alike(al, b, child, base) if al else write.apply(p, b, child, base)
    lc = huge.apply(b, child, lp)
    run.tables[np.array([s.row for s in ptes], np.int64)[keep]] = True
    (eagain, copies, wasted, passes, breaks), ops, steps = run.counters()
    ops = Counter(ops)
    ops.update(counts.ops)
    ops.update(lc.ops)
    steps = Counter(steps)
    steps.update(counts.steps)
    sizes = run.batch_sizes()
    sizes.update(counts.sizes)
    sizes.update(lc.sizes)
    run.leaves += lc.leaves
    run.deposited += lc.deposited
    _finish(mm, child, run.tables, run.split, run.child_split, run.leaves, run.deposited)
    child.mm_id = b.machine.next_mm_id          # the id pkmm.fork's child mm gets
    _child_mm_ids(b, mapped0, run.model.mapped_after if run.model else {}, child.mm_id)
    b.machine.next_mm_id += 1
    return FastForkResult(parent=b, child=Bulk(child, b.machine, version.name),
                          kernel=version.name, eagain=eagain, copies=copies + counts.copies,
                          wasted=wasted, passes=passes + counts.passes, lock_breaks=breaks,
                          ops=+ops, step_counts=+steps,
                          vectorised_slices=int(keep.sum()) + len(lp.slices),
                          hard_slices=len(hard), batch_sizes=+sizes)


def _alloc_bases(run: _Run, at: np.ndarray, per: np.ndarray, hard: list[tuple[int, Slice]],
                 nslices: int, cursor: int) -> np.ndarray:
    """Run the hard slices in address order, and give each vectorised slice the pfn its
    first new page gets (``at``: the vectorised slices' places among all slices, ``per``:
    their new pages): the allocator hands out pfns in address order, whichever engine
    forks a slice."""
    before = np.cumsum(per) - per           # new pages of earlier vectorised slices
    base = np.zeros(len(per), np.int64)
    done = 0                                # vectorised slices placed so far
    stops: list[tuple[int, Slice | None]] = [*hard, (nslices, None)]
    for place, s in stops:
        upto = int(np.searchsorted(at, place))
        if upto > done:
            base[done:upto] = cursor + before[done:upto] - before[done]
            cursor += int(per[done:upto].sum())
            done = upto
        if s is not None:
            cursor = run.hard(s, cursor)
    run.finish_hard(cursor)
    return base


def folio_mapcounts(m: BulkMachine, large_only: bool = False) -> np.ndarray:
    """Per folio row: its mapcount (``folio_mapcount``: PTE mappings of its pages plus
    its PMD mappings).  ``large_only``: count only large folios (small ones read their
    PMD mappings alone, i.e. 0), which is all the MM-id slots need.

    A folio's pages are consecutive pfns, so a running sum of the per-page mapcounts gives
    each folio's total as one difference (no per-page weighted count)."""
    n = len(m.folio_pfn)
    per = np.zeros(n, np.int64)
    if n and not (large_only and not m.folio_order.any()):
        start = m.folio_pfn.astype(np.int64) - m.base
        size = np.left_shift(1, m.folio_order.astype(np.int64))
        inside = (start >= 0) & (start + size <= len(m.page_folio))
        if large_only:
            inside &= m.folio_order > 0
        if inside.any():
            run = np.empty(len(m.mapcount) + 1, np.int64)
            run[0] = 0
            np.cumsum(m.mapcount, out=run[1:])
            first = start[inside]
            per[inside] = run[first + size[inside]] - run[first]
    total: np.ndarray = per + m.entire
    return total


def unique_rows(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(key, axis=0, return_inverse=True)``, fast: each column is coded on its
    own (1-D sorts) and the codes are joined into one integer per row, column by column.
    A row-wise unique sorts rows as byte strings, 10x slower on 16,384 rows.

    >>> u, inv = unique_rows(np.array([[1, 5], [0, 7], [1, 5]]))
    >>> u.tolist(), inv.tolist()
    ([[0, 7], [1, 5]], [1, 0, 1])
    """
    joined = np.zeros(len(key), np.int64)
    for col in key.T:
        values, code = np.unique(col, return_inverse=True)
        # recode after each column, so the joined code stays below len(key) ** 2
        _, joined = np.unique(joined * len(values) + code.reshape(-1), return_inverse=True)
        joined = joined.reshape(-1).astype(np.int64)
    _, first, inv = np.unique(joined, return_index=True, return_inverse=True)
    return key[first], inv.reshape(-1)


def _child_mm_ids(b: Bulk, mapped0: np.ndarray, traced: dict[int, int], child_id: int
                  ) -> None:
    """The MM-id slots of the large folios the vectorised engine gave the child mappings.

    Every mapping the engine adds is the child's, so a folio's slots change as one
    :func:`pkmm.rmap.large_mapcount_add` of all of them would change them (the first
    takes a slot, the rest count in it); the traced slices left theirs exact, from which
    the engine's mappings of the same folio go on.  Run once per distinct state.
    """
    m = b.machine
    n = len(mapped0)
    if not n:
        return
    after = folio_mapcounts(m, large_only=True)[:n]
    base = mapped0.copy()
    if traced:
        rows = np.array(list(traced), np.int64)
        base[rows] = np.array(list(traced.values()), np.int64)
    diff = after - base
    todo = np.flatnonzero((diff > 0) & (m.folio_order[:n] > 0))
    if not len(todo):
        return
    key = np.column_stack([m.mm_ids[todo], m.mm_counts[todo], m.mm_shared[todo],
                           after[todo], diff[todo]])
    if (key == key[0]).all():     # the usual case: every folio in the same state
        uniq, inv = key[:1], np.zeros(len(key), np.int64)
    else:
        uniq, inv = unique_rows(key)
    for u, row in enumerate(uniq.tolist()):
        ids: list[int | None] = [None if x < 0 else x for x in row[:2]]
        counts = row[2:4]
        shared = large_mapcount_add(ids, counts, bool(row[4]), row[5], row[6], child_id)
        sel = todo[inv == u]
        m.mm_ids[sel] = [-1 if x is None else x for x in ids]
        m.mm_counts[sel] = counts
        m.mm_shared[sel] = shared


def _context(version: KernelVersion, w: frozenset[str], has_pinned: bool, v: BulkVma,
             c: BulkVma | None) -> Context:
    ck = (0, "", False, False) if c is None else (c.flags, c.backing, c.anon_vma, c.uffd_fork)
    return (version, w, has_pinned, (v.flags, v.backing, v.anon_vma, v.uffd_fork), ck)


class _Run:
    """The traced part of one bulk fork: hard slices, in address order."""

    def __init__(self, b: Bulk, child: BulkMM, child_vmas: list[BulkVma | None],
                 version: KernelVersion, w: frozenset[str], need_resched: bool,
                 fail_prealloc: int | bool) -> None:
        self.b, self.child, self.version = b, child, version
        self.args = (child_vmas, version, w, need_resched, fail_prealloc)
        self.model: SliceModel | None = None     # made on the first hard slice
        self.tables = np.zeros(len(b.mm.tables), bool)
        self.split: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.child_split: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.leaves: list[tuple[int, int, int]] = []
        self.deposited: list[int] = []

    def hard(self, s: Slice, next_pfn: int) -> int:
        """Run slice ``s`` traced with the allocator at ``next_pfn``; the next pfn after."""
        if self.model is None:
            self.model = SliceModel(self.b, *self.args)
        self.model.add([s])
        ret, next_pfn = self.model.run(s, next_pfn)
        if ret:
            raise ForkError(f"fork with {self.version.name} failed with ENOMEM; the partial "
                            "child was discarded", None)
        if not s.leaf:
            self.model.write_entries(s, self.child)
            self.tables[s.row] = True
            return next_pfn
        parent_now, child_now, dep = self.model.leaf_result(s)
        if isinstance(parent_now, PteTable):
            self.split[s.pmd] = table_codes(parent_now)
        else:
            self.b.mm.pmd_bits[s.row] = pmd_code(parent_now)
        if isinstance(child_now, Pmd):
            self.leaves.append((s.pmd, child_now.pfn, pmd_code(child_now)))
        elif isinstance(child_now, PteTable):
            self.child_split[s.pmd] = table_codes(child_now)
        if dep:
            self.deposited.append(s.pmd)
        return next_pfn

    def finish_hard(self, next_pfn: int) -> None:
        """Counters of the traced slices; the allocator's position after the fork."""
        self.b.machine.next_pfn = next_pfn
        if self.model is not None:
            self.model.write_counters(self.child)

    def counters(self) -> tuple[tuple[int, int, int, int, int], Counter[str],
                                Counter[tuple[str, str]]]:
        """(eagain, copies, wasted, passes, lock_breaks), ops and steps of the traced slices."""
        if self.model is None:
            return (0, 0, 0, 0, 0), Counter(), Counter()
        return self.model.counters()

    def batch_sizes(self) -> Counter[int]:
        """The traced slices' batch-size histogram."""
        return Counter() if self.model is None else self.model.batch_sizes()


def _finish(mm: BulkMM, child: BulkMM, tables: np.ndarray,
            split: dict[int, tuple[np.ndarray, np.ndarray]],
            child_split: dict[int, tuple[np.ndarray, np.ndarray]],
            leaves: list[tuple[int, int, int]], deposited: list[int]) -> None:
    """The child's tables, leaves and deposited tables; the parent's split leaves."""
    if not tables.all():
        keep = np.repeat(tables, PTRS_PER_PTE)
        child.tables, child.pfn, child.bits = child.tables[tables], child.pfn[keep], \
            child.bits[keep]
    _insert_tables(child, child_split)
    lv = np.array(sorted(leaves), np.int64).reshape(-1, 3)
    child.pmd_idx, child.pmd_pfn = lv[:, 0].copy(), lv[:, 1].copy()
    child.pmd_bits = lv[:, 2].astype(np.uint8)
    child.deposited = np.array(sorted(deposited), np.int64)
    if split:
        gone = np.isin(mm.pmd_idx, list(split))
        mm.pmd_idx, mm.pmd_pfn, mm.pmd_bits = mm.pmd_idx[~gone], mm.pmd_pfn[~gone], \
            mm.pmd_bits[~gone]
        mm.deposited = np.setdiff1d(mm.deposited, np.array(list(split), np.int64))
        _insert_tables(mm, split)


def _insert_tables(mm: BulkMM, new: dict[int, tuple[np.ndarray, np.ndarray]]) -> None:
    """Add PTE tables (PMD index -> (pfn, bits) rows) to ``mm``, keeping rows sorted."""
    if not new:
        return
    idx = np.array(sorted(new), np.int64)
    pos = np.searchsorted(mm.tables, idx)
    at = np.repeat(pos * PTRS_PER_PTE, PTRS_PER_PTE)
    mm.pfn = np.insert(mm.pfn, at, np.concatenate([new[i][0] for i in idx.tolist()]))
    mm.bits = np.insert(mm.bits, at, np.concatenate([new[i][1] for i in idx.tolist()]))
    mm.tables = np.insert(mm.tables, pos, idx)

