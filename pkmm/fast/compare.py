"""Canonical snapshots of a process's fork-relevant state, from the model or the bulk form.

Simulator concept: two snapshots are equal exactly when every PTE and PMD of the mm,
its rss, nr_ptes and mm flags, and every anon folio's refcount, pincount, entire
mapcount and per-page mapcount / AnonExclusive agree (plus the allocator and swap
counts).  Used by tests/test_fast.py to prove the bulk fork gives the traced answer.
"""

from __future__ import annotations

from typing import Any

from ..pgtable import Pmd, PteTable
from ..pte import PAGE_SHIFT, PAGE_SIZE, PMD_SHIFT
from .layout import NP, PMD_BIT, Bulk, BulkMM, bits_pte

Snapshot = dict[str, Any]


def snapshot_process(p: object) -> Snapshot:
    """The snapshot of a :class:`pkmm.Process` and its machine."""
    from ..process import Process
    assert isinstance(p, Process)
    mm, m = p.mm, p.machine
    ptes = {}
    for v in mm.vmas:
        for a in range(v.vm_start, v.vm_end, PAGE_SIZE):
            t = mm.pmds.get(a >> PMD_SHIFT)
            if isinstance(t, PteTable) and t.ptes[(a >> PAGE_SHIFT) & 511] is not None:
                ptes[a] = t.ptes[(a >> PAGE_SHIFT) & 511]
    folios = {f.pfn: (f.order, f.refcount, f.pincount, f.entire_mapcount,
                      tuple(pg._mapcount for pg in f.pages),
                      tuple(pg.anon_exclusive for pg in f.pages))
              for f in m.folios.values() if f.kind == "anon"}
    return {"vmas": [(v.vm_start, v.vm_end, int(v.vm_flags), v.anon_vma is not None)
                     for v in mm.vmas],
            "ptes": ptes,
            "pmds": {i: t for i, t in mm.pmds.items() if isinstance(t, Pmd)},
            "rss": {k: v for k, v in mm.rss.items() if v},
            "nr_ptes": mm.nr_ptes, "has_pinned": mm.has_pinned,
            "huge_zero_ref": mm.huge_zero_ref, "on_mmlist": mm.on_mmlist,
            "folios": folios, "next_pfn": m._next_pfn,
            "swap": {off: s.count for off, s in m.swap.items()}}


def _mm_snapshot(bm: BulkMM) -> Snapshot:
    ptes = {}
    for v in bm.vmas:
        for k in range(v.npages):
            s = v.slot0 + k
            b = int(bm.bits[s])
            if b:
                ptes[v.start + k * PAGE_SIZE] = (bm.nonpresent[s] if b & NP
                                                 else bits_pte(int(bm.pfn[s]), b))
    pmds = {i: Pmd(pfn, **{n: bool(bits & f) for n, f in PMD_BIT.items()})
            for i, pfn, bits in zip(bm.pmd_idx.tolist(), bm.pmd_pfn.tolist(),
                                    bm.pmd_bits.tolist(), strict=True)}
    return {"vmas": [(v.start, v.end, v.flags, v.anon_vma) for v in bm.vmas],
            "ptes": ptes, "pmds": pmds, "rss": {k: v for k, v in bm.rss.items() if v},
            "nr_ptes": bm.nr_ptes, "has_pinned": bm.has_pinned,
            "huge_zero_ref": bm.huge_zero_ref, "on_mmlist": bm.on_mmlist}


def snapshot_bulk(b: Bulk) -> Snapshot:
    """The snapshot of a bulk process (same keys as :func:`snapshot_process`)."""
    m = b.machine
    snap = _mm_snapshot(b.mm)
    folios = {}
    for i, pfn in enumerate(m.folio_pfn.tolist()):
        nr, lo = 1 << int(m.folio_order[i]), pfn - m.base
        folios[pfn] = (int(m.folio_order[i]), int(m.refcount[i]), int(m.pincount[i]),
                       int(m.entire[i]), tuple(m.mapcount[lo:lo + nr].tolist()),
                       tuple(m.ae[lo:lo + nr].tolist()))
    for first, n in m.copies:
        for pfn in range(first, first + n):
            folios[pfn] = (0, 1, 0, 0, (1,), (True,))
    for pfn in m.thp_copies:
        folios[pfn] = (9, 1, 0, 1, (0,) * 512, (True,) + (False,) * 511)
    snap.update(folios=folios, next_pfn=m.next_pfn, swap={k: v for k, v in m.swap.items()})
    return snap
