"""The vectorised path of the bulk fork: whole PMD slices at once with numpy.

Mirrors: copy_pte_range() with each version's present-PTE copy (v6.8 copy_present_pte,
batch-v3 folio_nr_pages_cont_mapped, v6.9 folio_pte_batch, v6.17 folio_pte_batch_flags,
xv6 uvmcopy) and copy_huge_pmd(), for slices where no anon dup can fail (no AE page of a
maybe-pinned folio), with no non-present entry and no lock break: then every present
PTE is shared (or copied, eager-copy), and a batch is a maximal run of PTEs that map
consecutive pages of one folio with equal compared bits inside one slice.  Stop
reasons, ``ops`` and lock-break checks are computed exactly, as the traced model counts.
Taught in: notebooks/08-cost.ipynb
"""

from __future__ import annotations

import numpy as np

from ..mm import MM_ANONPAGES
from ..vma import VM_SOFTDIRTY
from .forkbulk import PMD_A, PMD_UW, PMD_W, PMD_ZERO, Slices
from .layout import SP, P
from .run import Run


def plan_vectorised(r: Run, sl: Slices) -> np.ndarray:
    """Which slices the vectorised path may take (the rest go per entry, in order)."""
    m, mm = r.machine, r.parent
    n = len(sl.lo)
    if r.need_resched:
        return np.zeros(n, bool)
    ok = np.ones(n, bool)
    if mm.nonpresent:
        s = np.fromiter(mm.nonpresent, np.int64)
        k = np.searchsorted(sl.lo, s, "right") - 1
        ok[k[(k >= 0) & (s < sl.hi[np.maximum(k, 0)])]] = False
    if mm.has_pinned and not r.ignore_pins:   # eager-copy too: copy_huge_pmd splits
        small = m.folio_order == 0
        pinned = np.where(small, m.refcount >= 1024, m.pincount > 0)
        nslots = len(mm.bits)
        if (small & (m.refcount < 1024) & (m.refcount >= 1024 - nslots)).any():
            return np.zeros(n, bool)   # pkmm: a refcount may cross 1024 during this fork
        bad = _slots_of_pinned_ae(r, pinned)
        cs = np.concatenate([[0], np.cumsum(bad)])
        ok &= (cs[sl.hi] - cs[sl.lo]) == 0
    if r.version == "eager-copy":
        # PMD leaves of anon THPs are copied whole (uvmcopy_pmd), in address order
        zero = (mm.pmd_bits & PMD_ZERO) != 0
        if (~zero).any():
            ok &= ~np.isin(sl.pmd, mm.pmd_idx[~zero]) | (sl.kind != 2)
    if r.version == "eager-copy" and not ok.all():
        return np.zeros(n, bool)   # pkmm: keeps the copies' pfns in address order
    return ok


def _slots_of_pinned_ae(r: Run, pinned: np.ndarray) -> np.ndarray:
    """Slots (and PMD leaves' first slots) whose page is AnonExclusive in a pinned folio."""
    m, mm = r.machine, r.parent
    bits = mm.bits
    normal = ((bits & P) != 0) & ((bits & SP) == 0)
    page = np.where(normal, mm.pfn - m.base, 0)
    fol = m.page_folio[page]
    bad = normal & m.ae[page] & pinned[fol]
    for k, pfn in zip(mm.pmd_idx.tolist(), mm.pmd_pfn.tolist(), strict=True):
        head = pfn - m.base
        if 0 <= head < len(m.page_folio) and m.ae[head] and pinned[m.page_folio[head]]:
            s = _pmd_first_slot(r, k)
            if s is not None:
                bad[s] = True
    return bad


def _pmd_first_slot(r: Run, pmd: int) -> int | None:
    for v in r.parent.vmas:
        a = max(v.start, pmd << 21)
        if v.start <= a < v.end:
            return v.slot0 + ((a - v.start) >> 12)
    return None


def run_vectorised(r: Run, sl: Slices, vec: np.ndarray) -> None:
    """Fork every slice marked in ``vec``: PMD leaves, then PTE tables."""
    dst_uffd = np.array([r.dst_uffd(k) for k in range(len(r.child.vmas))], bool)
    _huge_pmds(r, sl, vec & (sl.kind == 2), dst_uffd)
    k = np.flatnonzero(vec & (sl.kind == 1))
    if not len(k):
        return
    lo, hi = sl.lo[k], sl.hi[k]
    n = len(r.bits)
    if lo[0] == 0 and hi[-1] == n and (lo[1:] == hi[:-1]).all():
        _ptes(r, slice(0, n), lo, hi, sl.vma[k])
        return
    lens = hi - lo
    idx = np.repeat(lo - np.concatenate([[0], np.cumsum(lens)[:-1]]), lens) + np.arange(lens.sum())
    blo = np.concatenate([[0], np.cumsum(lens)[:-1]])
    _ptes(r, idx, blo, blo + lens, sl.vma[k])


def _huge_pmds(r: Run, sl: Slices, sel: np.ndarray, dst_uffd: np.ndarray) -> None:
    """copy_huge_pmd() for every shared PMD leaf at once (no split: checked by the plan)."""
    z = np.zeros(0, np.int64)
    r.vec_pmds = (z, z, z)
    if not sel.any():
        return
    mm, m = r.parent, r.machine
    j = np.searchsorted(mm.pmd_idx, sl.pmd[sel])
    bits = mm.pmd_bits[j].astype(np.int64)
    real = (bits & PMD_ZERO) == 0
    head = mm.pmd_pfn[j][real] - m.base
    fol = m.page_folio[head]
    np.add.at(m.refcount, fol, 1)
    np.add.at(m.entire, fol, 1)
    m.ae[head] = False
    nreal = int(real.sum())
    r.ops["refcount_ops"] += nreal
    if nreal:
        r.child.rss[MM_ANONPAGES] = r.child.rss.get(MM_ANONPAGES, 0) + 512 * nreal
    if not real.all():
        r.child.huge_zero_ref = True
    if not r.no_wrprotect:
        bits &= ~PMD_W
        mm.pmd_bits[j] = bits
        r.ops["wrprotect_calls"] += len(j)
    cbits = np.where(dst_uffd[sl.vma[sel]], bits, bits & ~PMD_UW) & ~PMD_A
    r.ops["pmd_copies"] += len(j)
    r.vec_pmds = (sl.pmd[sel], mm.pmd_pfn[j], cbits)


def _ptes(r: Run, at: slice | np.ndarray, blo: np.ndarray, bhi: np.ndarray,
          bvma: np.ndarray) -> None:
    """Fork the PTE slices whose slots are ``at`` (slice bounds ``blo``/``bhi`` within)."""
    from .vecptes import fork_ptes
    pfn, bits = r.pfn[at], r.bits[at]
    cpfn, cbits = fork_ptes(r, pfn, bits, blo, bhi, bvma)
    r.bits[at] = bits
    r.cpfn[at] = cpfn
    r.cbits[at] = cbits
    r.passes += len(blo)
    r.ops["rss_updates"] += len(blo)


def soft_dirty_ignored(r: Run, bvma: np.ndarray) -> np.ndarray:
    """Per slice: the VMA has soft-dirty tracking off (VM_SOFTDIRTY set)."""
    f = np.array([bool(v.flags & VM_SOFTDIRTY) for v in r.parent.vmas], bool)
    return f[bvma]

