"""fork() of a bulk process: dup_mmap -> copy_page_range -> copy_pmd_range over PMD slices.

Mirrors: dup_mmap(), vma_needs_copy(), copy_pmd_range(), copy_huge_pmd() (v6.8 .. v6.17),
as :mod:`pkmm.fork` / :mod:`pkmm.memory` / :mod:`pkmm.huge_memory` do, on the bulk form.
Slices without pins at stake, non-present entries or lock breaks go through the
vectorised path (:mod:`pkmm.fast.vec`); the others, in address order, through the
per-entry path (:mod:`pkmm.fast.seq`).  Both leave the same state and counts.
Taught in: notebooks/08-cost.ipynb
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from ..context import ABLATIONS
from ..errors import ForkError, LayoutError
from ..kernels import DEFAULT_KERNEL, get_kernel
from ..mm import MM_ANONPAGES
from ..pte import PAGE_SHIFT, PMD_SHIFT
from ..vma import VM_DONTCOPY, VM_WIPEONFORK
from .layout import PMD_BIT, Bulk, BulkMM
from .present import COPY_PRESENT
from .run import Run
from .seq import copy_pte_range

PMD_W, PMD_A, PMD_UW, PMD_ZERO = (PMD_BIT[k] for k in ("write", "young", "uffd_wp",
                                                        "huge_zero"))


@dataclass
class FastForkResult:
    """What a bulk fork did: the same counters as :class:`pkmm.ForkResult` (no event list)."""

    parent: Bulk
    child: Bulk
    kernel: str
    eagain: int
    copies: int
    wasted: int
    passes: int
    lock_breaks: int
    ops: Counter[str] = field(default_factory=Counter)
    step_counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    vectorised_slices: int = 0
    sequential_slices: int = 0

    def actions(self) -> Counter[str]:
        """Step counts per action."""
        c: Counter[str] = Counter()
        for (action, _), n in self.step_counts.items():
            c[action] += n
        return c


@dataclass
class Slices:
    """The PMD slices fork walks: slots [lo, hi), PMD index, VMA index, kind."""

    lo: np.ndarray
    hi: np.ndarray
    pmd: np.ndarray
    vma: np.ndarray
    kind: np.ndarray   # 0: nothing mapped (skipped), 1: PTE table, 2: PMD leaf


def slices_of(mm: BulkMM, dst_uffd: list[bool]) -> Slices:
    """copy_page_range() + copy_pmd_range(): the slices of every VMA that needs copying."""
    parts = []
    for k, v in enumerate(mm.vmas):
        if not (dst_uffd[k] or v.anon_vma):   # vma_needs_copy(): faults refill the rest
            continue
        idx = np.arange(v.start >> PMD_SHIFT, ((v.end - 1) >> PMD_SHIFT) + 1, dtype=np.int64)
        lo = np.maximum(idx << PMD_SHIFT, v.start)
        hi = np.minimum((idx + 1) << PMD_SHIFT, v.end)
        kind = np.where(np.isin(idx, mm.pmd_idx), 2, np.where(np.isin(idx, mm.tables), 1, 0))
        parts.append((v.slot0 + ((lo - v.start) >> PAGE_SHIFT),
                      v.slot0 + ((hi - v.start) >> PAGE_SHIFT), idx,
                      np.full(len(idx), k), kind))
    if not parts:
        z = np.zeros(0, np.int64)
        return Slices(z, z, z, z, z)
    cols = [np.concatenate([p[i] for p in parts]) for i in range(5)]
    return Slices(*cols)


def _check(b: Bulk, kernel: str, without: Iterable[str]) -> tuple[str, frozenset[str]]:
    version = get_kernel(kernel).name
    w = frozenset({without} if isinstance(without, str) else without)
    if w - set(ABLATIONS):
        raise LayoutError(f"without={sorted(w)!r}: unknown ablation(s); known: "
                          + ", ".join(sorted(ABLATIONS)))
    for v in b.mm.vmas:
        if v.flags & (VM_DONTCOPY | VM_WIPEONFORK):
            raise LayoutError("fork_bulk: MADV_DONTFORK / MADV_WIPEONFORK VMAs are not in "
                              "the bulk form; use pkmm.fork")
    return version, w


def fork_bulk(b: Bulk, kernel: str = DEFAULT_KERNEL, without: Iterable[str] = frozenset(), *,
              need_resched: bool = False, fail_prealloc: int | bool = False,
              vectorise: bool = True) -> FastForkResult:
    """Fork the bulk process ``b`` the way ``kernel`` does, changing ``b`` in place (parent
    write-protect, folio counters) and returning the child.  Same arguments and the
    same answer as :func:`pkmm.fork`; ``vectorise=False`` takes the per-entry path
    everywhere (for checking).  Raises :class:`pkmm.ForkError` when fork fails (ENOMEM).
    """
    from .vec import plan_vectorised, run_vectorised
    version, w = _check(b, kernel, without)
    r = Run(b.mm, b.machine, version, w, need_resched, fail_prealloc)
    r.copy_present = COPY_PRESENT[version]
    sl = slices_of(b.mm, [r.dst_uffd(k) for k in range(len(b.mm.vmas))])
    vec = plan_vectorised(r, sl) if vectorise else np.zeros(len(sl.lo), bool)
    run_vectorised(r, sl, vec)
    leaves = {int(i): k for k, i in enumerate(b.mm.pmd_idx.tolist())}
    child_tables, child_dep, child_pmds, split = [], [], [], []
    for k in np.flatnonzero(~vec & (sl.kind > 0)).tolist():
        i, lo, hi, vma = int(sl.pmd[k]), int(sl.lo[k]), int(sl.hi[k]), int(sl.vma[k])
        if sl.kind[k] == 2:
            if copy_huge_pmd(r, leaves[i], lo, vma, child_pmds) == 0:
                child_dep.append(i)
                continue
            split.append(i)
        child_tables.append(i)
        if copy_pte_range(r, lo, hi, vma):
            raise ForkError(f"fork with {version} failed with ENOMEM; the partial child "
                            "was discarded", None)
    _finish(r, sl, vec, child_tables, child_dep, child_pmds, split)
    return FastForkResult(b, Bulk(r.child, b.machine), version, r.eagain, r.copies, r.wasted,
                          r.passes, r.lock_breaks, r.ops, r.step_counts,
                          int(vec.sum()), int((~vec & (sl.kind > 0)).sum()))


def copy_huge_pmd(r: Run, j: int, lo: int, vma: int, child_pmds: list[tuple[int, int, int]]
                  ) -> int:
    """Mirrors: mm/huge_memory.c copy_huge_pmd(), v6.8 .. v6.17 (pkmm.huge_memory).

    Returns 0 (shared) or -EAGAIN after splitting the parent's PMD into slots [lo, lo+512).
    """
    mm, m = r.parent, r.machine
    pfn, bits = int(mm.pmd_pfn[j]), int(mm.pmd_bits[j])
    if r.version == "eager-copy" and not bits & PMD_ZERO:
        # xv6 uvmcopy of a 2 MiB page (pkmm.kernels.eager_copy.uvmcopy_pmd)
        new = m.alloc_thp_copy()
        if not r.dst_write(vma):
            bits &= ~PMD_W
        if not r.dst_uffd(vma):
            bits &= ~PMD_UW
        child_pmds.append((int(mm.pmd_idx[j]), new, bits))
        r.child.rss[MM_ANONPAGES] = r.child.rss.get(MM_ANONPAGES, 0) + 512
        r.copies += 512
        r.ops["page_copies"] += 512
        r.ops["pmd_copies"] += 1
        return 0
    if bits & PMD_ZERO:
        r.child.huge_zero_ref = True
    else:
        head = pfn - m.base
        folio = int(m.page_folio[head])
        m.refcount[folio] += 1
        r.ops["refcount_ops"] += 1
        if m.ae[head]:
            if not r.ignore_pins and mm.has_pinned and m.pincount[folio] > 0:
                m.refcount[folio] -= 1
                __split_huge_pmd(r, j, lo, folio)
                return -11   # -EAGAIN
            m.ae[head] = False
        m.entire[folio] += 1
        r.child.rss[MM_ANONPAGES] = r.child.rss.get(MM_ANONPAGES, 0) + 512
    if not r.no_wrprotect:
        mm.pmd_bits[j] = bits = bits & ~PMD_W
        r.ops["wrprotect_calls"] += 1
    if not r.dst_uffd(vma):
        bits &= ~PMD_UW
    child_pmds.append((int(mm.pmd_idx[j]), pfn, bits & ~PMD_A))
    r.ops["pmd_copies"] += 1
    return 0


def __split_huge_pmd(r: Run, j: int, lo: int, folio: int) -> None:
    """Mirrors: __split_huge_pmd_locked(): 512 PTEs with the PMD's bits, same folio."""
    from .layout import SD, UW, A, D, P, W
    mm, m = r.parent, r.machine
    pfn, bits = int(mm.pmd_pfn[j]), int(mm.pmd_bits[j])
    pte = P | sum(pb for pb, flag in ((W, PMD_W), (D, 2), (A, PMD_A), (SD, 8), (UW, PMD_UW))
                  if bits & flag)
    mm.pfn[lo:lo + 512] = np.arange(pfn, pfn + 512)
    mm.bits[lo:lo + 512] = pte
    head = pfn - m.base
    m.entire[folio] -= 1
    m.mapcount[head:head + 512] += 1
    m.ae[head:head + 512] = m.ae[head]
    m.refcount[folio] += 511
    mm.pmd_bits[j] = 255   # pkmm: marks the leaf as gone; dropped in _finish


def _finish(r: Run, sl: Slices, vec: np.ndarray, tables: list[int], dep: list[int],
            pmds: list[tuple[int, int, int]], split: list[int]) -> None:
    """Write the child's tables and PMD leaves; drop the parent's split leaves."""
    child, mm = r.child, r.parent
    vk = vec & (sl.kind == 1)
    vp = vec & (sl.kind == 2)
    child.tables = np.unique(np.concatenate([sl.pmd[vk], np.array(tables, np.int64)]))
    child.deposited = np.unique(np.concatenate([sl.pmd[vp], np.array(dep, np.int64)]))
    if pmds or vp.any():
        seq = np.array(pmds, np.int64).reshape(-1, 3)
        ci = np.concatenate([r.vec_pmds[0], seq[:, 0]])
        order = np.argsort(ci, kind="stable")
        child.pmd_idx = ci[order]
        child.pmd_pfn = np.concatenate([r.vec_pmds[1], seq[:, 1]])[order]
        child.pmd_bits = np.concatenate([r.vec_pmds[2], seq[:, 2]])[order].astype(np.uint8)
    if split:
        keep = ~np.isin(mm.pmd_idx, split)
        mm.pmd_idx, mm.pmd_pfn, mm.pmd_bits = mm.pmd_idx[keep], mm.pmd_pfn[keep], \
            mm.pmd_bits[keep]
        mm.tables = np.union1d(mm.tables, np.array(split, np.int64))
        mm.deposited = np.setdiff1d(mm.deposited, np.array(split, np.int64))
