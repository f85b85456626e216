"""Vectorised copy_pte_range over many PTE slices: batches, stop reasons, state, counts.

Mirrors: copy_pte_range() + copy_present_pte(s) of each version (see :mod:`pkmm.fast.vec`
for when this path applies).  A batch starts at every present PTE that does not
continue the previous one; it continues when the PTE maps the next page of the same
folio with equal compared bits in the same slice (v6.9/v6.17: all bits but young and
write, soft-dirty only while tracked; batch-v3: protnone, and uffd-wp for a uffd-wp child).
Taught in: notebooks/08-cost.ipynb
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from ..mm import MM_ANONPAGES
from .layout import NP, PN, SD, SP, UW, A, D, P, W
from .run import Run

STOPS = ("range-end", "folio-end", "pte-none", "not-present", "pfn-gap", "bit:dirty",
         "bit:soft_dirty", "bit:uffd_wp", "bit:protnone", "bit:special")
_DIFF_ORDER = {"cow": ((D, 5), (SD, 6), (UW, 7), (PN, 8), (SP, 9)),   # pte_diff(), W/A masked
               "v3": ((PN, 8), (UW, 7))}
_NOT_W = 0xFFFF ^ W


def _clear(b: np.ndarray, bit: int) -> np.ndarray:
    """``b`` with ``bit`` cleared (uint16-safe ``b & ~bit``)."""
    return b & np.uint16(0xFFFF ^ bit)
RAW = "no struct page (zero page / raw PFN): copied by value"


def _per_slot(flag: np.ndarray, blo: np.ndarray, bhi: np.ndarray) -> np.ndarray | bool:
    """A per-slice flag as a scalar when uniform, else one value per slot."""
    if flag.all() or not flag.any():
        return bool(flag[0])
    return np.repeat(flag, bhi - blo)


def _masks(r: Run, bvma: np.ndarray, blo: np.ndarray, bhi: np.ndarray
           ) -> tuple[np.ndarray | int, np.ndarray | bool]:
    """The compared-bits mask per slot (or scalar) and the child-is-uffd-wp flag."""
    from .vec import soft_dirty_ignored
    per_vma = np.array([r.dst_uffd(k) for k in range(len(r.child.vmas))], bool)
    uffd = _per_slot(per_vma[bvma], blo, bhi)
    if r.version == "batch-v3":
        return P | PN | np.where(uffd, UW, 0) if not isinstance(uffd, bool) \
            else P | PN | (UW if uffd else 0), uffd
    sd = _per_slot(soft_dirty_ignored(r, bvma), blo, bhi)
    full = 0xFFFF & ~(W | A)
    if isinstance(sd, bool):
        return (full & ~SD) if sd else full, uffd
    return np.where(sd, full & ~SD, full), uffd


def fork_ptes(r: Run, pfn: np.ndarray, bits: np.ndarray, blo: np.ndarray, bhi: np.ndarray,
              bvma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fork slots ``pfn``/``bits`` (slices [blo, bhi)); ``bits`` is write-protected in
    place; returns the child's (pfn, bits)."""
    m, v, n = r.machine, r.version, len(bits)
    present = (bits & P).astype(bool)
    allp = bool(present.all())
    special = (bits & SP) != 0
    anysp = bool(special.any())
    normal = present & ~special if anysp else present
    page = pfn - m.base if allp and not anysp else np.where(normal, pfn - m.base, 0)
    fol = m.page_folio[page]
    orders = m.folio_order
    if len(orders) and orders.min() == orders.max():
        large = normal if orders[0] > 0 else np.zeros(n, bool)
    else:
        large = normal & (orders[fol] > 0)
    mask, uffd = _masks(r, bvma, blo, bhi)
    c = None
    if v in ("v6.9", "v6.17", "batch-v3") and large.any():
        mb = bits & mask
        c = np.zeros(n, bool)
        c[1:] = (large[1:] & normal[:-1] & (pfn[1:] == pfn[:-1] + 1) & (mb[1:] == mb[:-1])
                 & (fol[1:] == fol[:-1]))
        c[blo] = False
        if not c.any():
            c = None
    st = present if c is None else present & ~c
    starts = np.flatnonzero(st) if not allp or c is not None else None
    if c is None:
        nr = None
    else:
        f = np.flatnonzero(~c)
        nr = (np.append(f[1:], n) - f)[st[f]]
    steps = _Steps(r, pfn, bits, starts, nr, normal, large, blo, bhi, mask, fol)
    child = _child_bits(r, bits, steps, uffd)
    cpfn = _share_or_copy(r, pfn, bits, present, normal, fol, page, steps, child)
    _lockbreak_checks(r, steps, present, blo, bhi)
    return cpfn, child


class _Steps:
    """Per step (one copy_present_pte(s) call): start, nr, kind, stop; and counts."""

    def __init__(self, r: Run, pfn: np.ndarray, bits: np.ndarray, starts: np.ndarray | None,
                 nr: np.ndarray | None, normal: np.ndarray, large: np.ndarray,
                 blo: np.ndarray, bhi: np.ndarray, mask: np.ndarray | int,
                 fol: np.ndarray) -> None:
        self.n = len(bits)
        self.starts, self.nr = starts, nr
        s = slice(None) if starts is None else starts
        self.b0 = bits[s]
        self.normal, self.large = normal[s], large[s]
        self.nst = len(self.b0)
        self.counts: Counter[tuple[str, str]] = Counter()
        self.scan_reads = self.nbatch = 0
        self.anyw = self._any(bits, W)
        self.anyd = self._any(bits, D) if r.version == "batch-v3" else None
        if r.version in ("v6.9", "v6.17", "batch-v3") and self.large.any():
            self._stops(r, pfn, bits, blo, bhi, mask, fol)
        else:
            self._no_batches(r)

    def _any(self, bits: np.ndarray, bit: int) -> np.ndarray:
        """Whether any PTE of each step has ``bit`` (the merged write / dirty bit)."""
        if self.nr is None:
            return (self.b0 & bit) != 0
        # pkmm: OR from each start to the next also covers the none slots between
        # batches, whose bits are 0
        assert self.starts is not None
        return (np.bitwise_or.reduceat(bits, self.starts) & bit) != 0

    def _no_batches(self, r: Run) -> None:
        nraw = self.nst - int(np.count_nonzero(self.normal))
        norm = self.nst - nraw
        key = {"v6.8": "anon page shared with the child", "v6.9": "small-folio",
               "v6.17": "small-folio", "batch-v3": "small-folio",
               "eager-copy": "private page copied eagerly (no copy-on-write)"}[r.version]
        action = "copy" if r.version == "eager-copy" else "share"
        raw = RAW if r.version in ("v6.8", "eager-copy") else "no-page"
        self.counts.update({(action, key): norm, ("raw", raw): nraw})

    def _stops(self, r: Run, pfn: np.ndarray, bits: np.ndarray, blo: np.ndarray,
               bhi: np.ndarray, mask: np.ndarray | int, fol: np.ndarray) -> None:
        """Stop reason and scan reads of every batch-path step (folio_pte_batch*)."""
        m, v = r.machine, r.version
        starts = np.arange(self.n) if self.starts is None else self.starts
        nr = np.ones(self.nst, np.int64) if self.nr is None else self.nr
        li = np.flatnonzero(self.large)
        sb, nb = starts[li], nr[li]
        maxnr = bhi[np.searchsorted(blo, sb, "right") - 1] - sb
        single = (maxnr == 1) if v != "batch-v3" else np.zeros(len(sb), bool)
        sb, nb, maxnr = sb[~single], nb[~single], maxnr[~single]
        fb = fol[sb]
        tofe = m.folio_pfn[fb] + (np.int64(1) << m.folio_order[fb].astype(np.int64)) - pfn[sb]
        e = sb + nb
        if v == "v6.9":
            full = nb == maxnr
            limit = np.zeros(len(sb), np.int64)           # range-end
        else:
            full = nb == np.minimum(maxnr, tofe)
            limit = (tofe <= maxnr).astype(np.int64)      # folio-end / range-end
        code = limit.copy()
        d = np.flatnonzero(~full)
        code[d] = _diff(bits, pfn, sb[d], e[d], nb[d], mask, "v3" if v == "batch-v3" else "cow")
        self.scan_reads = int((nb - 1).sum()) + len(d)
        self.nbatch = len(sb)
        small_norm = int(np.count_nonzero(self.normal)) - len(li)
        nraw = self.nst - int(np.count_nonzero(self.normal))
        self.counts.update({("share", "small-folio"): small_norm, ("raw", "no-page"): nraw,
                            ("share", "max_nr-1"): int(single.sum())})
        for k, cnt in enumerate(np.bincount(code, minlength=len(STOPS)).tolist()):
            if cnt:
                self.counts[("share", STOPS[k])] += cnt


def _diff(bits: np.ndarray, pfn: np.ndarray, s: np.ndarray, e: np.ndarray, nr: np.ndarray,
          mask: np.ndarray | int, order: str) -> np.ndarray:
    """pte_diff() of slot ``e`` against the batch at ``s``: a STOPS code per batch."""
    be = bits[e].astype(np.int64)
    code = np.ones(len(e), np.int64)                   # same: folio-end (v6.9)
    x = (be ^ bits[s]) & (mask if isinstance(mask, int) else mask[s])
    for bit, k in reversed(_DIFF_ORDER[order]):
        code = np.where(x & bit, k, code)
    code = np.where(pfn[e] != pfn[s] + nr, 4, code)
    code = np.where(be & NP, 3, code)
    return np.where(be == 0, 2, code)


def _child_bits(r: Run, bits: np.ndarray, st: _Steps, uffd: np.ndarray | bool) -> np.ndarray:
    """The child's PTE bits (before pfns): the first PTE's value per batch, transformed."""
    v, b0, wp = r.version, st.b0, not r.no_wrprotect
    if v in ("v6.9", "v6.17"):
        cv = _clear(b0, W | A)
        if not wp:
            cv = cv | np.where(st.anyw, W, 0)
    elif v == "batch-v3":
        assert st.anyd is not None
        cv = _clear(b0 | np.where(st.anyd, D, 0).astype(np.uint16), A | SD)
        if wp:
            cv = np.where(st.anyw, _clear(cv, W), cv)
    else:   # v6.8, and eager-copy (its raw PTEs; copies get their bits below)
        cv = _clear(b0, W | A) if wp else _clear(b0, A)
        if v == "eager-copy":
            cv = np.where(st.normal, P | (b0 & (W | D | A | SD | UW | PN)), cv)
    cv = cv.astype(np.uint16)
    child = np.zeros(st.n, np.uint16)
    if st.starts is None:
        child[:] = cv
    elif st.nr is None:
        child[st.starts] = cv
    else:
        child[bits & P != 0] = np.repeat(cv, st.nr)
    if uffd is not True:
        child &= np.where(uffd, 0xFFFF, 0xFFFF ^ UW).astype(np.uint16) \
            if not isinstance(uffd, bool) else np.uint16(0xFFFF ^ UW)
    return child


def _share_or_copy(r: Run, pfn: np.ndarray, bits: np.ndarray, present: np.ndarray,
                   normal: np.ndarray, fol: np.ndarray, page: np.ndarray, st: _Steps,
                   child: np.ndarray) -> np.ndarray:
    """Folio/page counters, the parent's write-protect and the op counts; child pfns."""
    m, v, wp = r.machine, r.version, not r.no_wrprotect
    allnormal = bool(normal.all())
    nnormal = st.n if allnormal else int(np.count_nonzero(normal))
    npres = st.n if allnormal else int(np.count_nonzero(present))
    _count_ops(r, st, nnormal, npres)
    r.step_counts.update({k: c for k, c in st.counts.items() if c})
    r.child.rss[MM_ANONPAGES] = r.child.rss.get(MM_ANONPAGES, 0) + nnormal
    cpfn = pfn.copy() if npres == st.n else np.where(present, pfn, 0)
    if v == "eager-copy":
        new = m.next_pfn
        cpfn[normal] = np.arange(new, new + nnormal)
        m.add_copies(new, nnormal)
        m.next_pfn += nnormal
        r.copies += nnormal
        if wp:
            bits[present & ~normal] &= _NOT_W
        return cpfn
    pg = page if allnormal else page[normal]
    m.refcount += np.bincount(fol if allnormal else fol[normal], minlength=len(m.refcount))
    if len(pg) and pg[-1] - pg[0] + 1 == len(pg) and (np.diff(pg) == 1).all():
        m.mapcount[pg[0]:pg[-1] + 1] += 1
        m.ae[pg[0]:pg[-1] + 1] = False
    else:
        np.add.at(m.mapcount, pg, 1)
        m.ae[pg] = False
    if wp:
        bits &= np.uint16(_NOT_W)
    return cpfn


def _count_ops(r: Run, st: _Steps, nnormal: int, npres: int) -> None:
    """The traced model's ``ops`` for these steps (see pkmm.kernels.*)."""
    v, ops = r.version, r.ops
    nnorm_st = int(np.count_nonzero(st.normal))
    nw = int(np.count_nonzero(st.anyw)) if not r.no_wrprotect else 0
    ops["pte_reads"] += st.nst + (st.n - npres) + st.scan_reads
    ops["pte_writes"] += npres
    if v == "eager-copy":
        ops["page_copies"] += nnormal
        ops["set_ptes_calls"] += st.nst - nnorm_st
        if nw:
            ops["wrprotect_calls"] += int(np.count_nonzero(st.anyw & ~st.normal))
        return
    per_page = v == "v6.8"
    ops["batch_scans"] += st.nbatch
    ops["refcount_ops"] += nnormal if per_page else nnorm_st
    ops["anon_dup_checks"] += nnormal if v in ("v6.8", "batch-v3") else nnorm_st
    ops["mapcount_ops"] += nnormal
    ops["rss_updates"] += nnormal if per_page else nnorm_st
    ops["wrprotect_calls"] += nw
    ops["set_ptes_calls"] += npres if per_page else st.nst


def _lockbreak_checks(r: Run, st: _Steps, present: np.ndarray, blo: np.ndarray,
                      bhi: np.ndarray) -> None:
    """copy_pte_range()'s ``progress >= 32`` checks: +1 per none slot, +8 per PTE done."""
    allp = bool(present.all())
    if allp and (st.nr is None or st.nr.min() == st.nr.max()):
        nr0 = 1 if st.nr is None else int(st.nr[0])
        k = -(-32 // (8 * nr0))
        r.ops["lockbreak_checks"] += int((((bhi - blo) // nr0 - 1) // k).sum())
        return
    inc = np.zeros(st.n, np.int64)
    inc[~present] = 1
    starts = np.arange(st.n) if st.starts is None else st.starts
    inc[starts] = 8 * (1 if st.nr is None else st.nr)
    it = inc > 0
    cnt = np.add.reduceat(it.astype(np.int64), blo)
    mx = np.maximum.reduceat(inc, blo)
    mn = np.minimum.reduceat(np.where(it, inc, 1 << 40), blo)
    uni = mn == mx
    checks = int(((cnt[uni] - 1) // -(-32 // mx[uni])).sum())
    for i in np.flatnonzero(~uni).tolist():
        progress = 0
        for d in inc[blo[i]:bhi[i]][it[blo[i]:bhi[i]]].tolist():
            if progress >= 32:
                checks += 1
                progress = 0
            progress += d
    r.ops["lockbreak_checks"] += checks
