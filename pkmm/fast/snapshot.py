"""Canonical snapshots of a process's fork-relevant state, from the model or the bulk form.

Simulator concept: two snapshots are equal exactly when every PTE, PMD and PTE table of
the mm, its rss, nr_ptes and mm flags, every folio's counters and per-page mapcount and
AnonExclusive, the page caches of its files, its pins, the allocator and the swap counts
agree.  tests/test_fast.py uses them to show the bulk fork gives the traced answer.
Taught in: notebooks/08-cost.ipynb
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..pgtable import Pmd, PteTable
from ..process import Process
from ..pte import PAGE_SHIFT, PMD_SHIFT, Pte
from .layout import FOLIO_KINDS, Bulk, decode, pmd_decode

Snapshot = dict[str, Any]


def snapshot_process(p: Process) -> Snapshot:
    """The snapshot of a :class:`pkmm.Process` and its machine."""
    mm, m = p.mm, p.machine
    ptes = {}
    for i, t in mm.pmds.items():
        if isinstance(t, PteTable):
            for j, pte in enumerate(t.ptes):
                if pte is not None:
                    ptes[(i << PMD_SHIFT) + (j << PAGE_SHIFT)] = pte
    folios = {f.pfn: (f.kind, f.order, f.refcount, f.pincount, f.pins, f.gup_refs,
                      f.entire_mapcount, tuple(pg.pte_mapcount for pg in f.pages),
                      tuple(pg.anon_exclusive for pg in f.pages))
              for f in m.folios.values() if f.kind in FOLIO_KINDS}
    files = {}
    for v in mm.vmas:
        if v.vm_file is not None:
            files[v.vm_file.name] = {off: pg.pfn for off, pg in v.vm_file.cache.items()}
    return {"vmas": [(v.vm_start, v.vm_end, int(v.vm_flags), v.backing, v.vm_pgoff,
                      v.anon_vma is not None, v.uffd_fork) for v in mm.vmas],
            "ptes": ptes, "tables": sorted(i for i, t in mm.pmds.items()
                                           if isinstance(t, PteTable)),
            "pmds": {i: t for i, t in mm.pmds.items() if isinstance(t, Pmd)},
            "deposited": sorted(i for i, on in mm.deposited.items() if on),
            "rss": {k: v for k, v in mm.rss.items() if v}, "nr_ptes": mm.nr_ptes,
            "has_pinned": mm.has_pinned, "huge_zero_ref": mm.huge_zero_ref,
            "on_mmlist": mm.on_mmlist, "folios": folios, "files": files,
            "next_pfn": m.next_pfn,
            "swap": {off: s.count for off, s in m.swap.items()},
            "pins": sorted((f.pfn, i) for f, i in p.pins),
            "hwpoison": sorted(f.pfn + pg.index for f in m.folios.values()
                               if f.kind in FOLIO_KINDS for pg in f.pages if pg.hwpoison)}


def snapshot_bulk(b: Bulk) -> Snapshot:
    """The snapshot of a bulk process (same keys as :func:`snapshot_process`)."""
    bm, m = b.mm, b.machine
    ptes = {}
    addrs = bm.slot_addrs()
    for s in np.flatnonzero(bm.bits).tolist():
        ptes[int(addrs[s])] = decode(int(bm.bits[s]), int(bm.pfn[s]))
    folios = {}
    for i, pfn in enumerate(m.folio_pfn.tolist()):
        order = int(m.folio_order[i])
        nr, lo = 1 << order, pfn - m.base
        pin = int(m.pincount[i]) if order else int(m.pins[i])
        folios[pfn] = (FOLIO_KINDS[int(m.folio_kind[i])], order, int(m.refcount[i]), pin,
                       int(m.pins[i]), int(m.gup_refs[i]), int(m.entire[i]),
                       tuple(m.mapcount[lo:lo + nr].tolist()), tuple(m.ae[lo:lo + nr].tolist()))
    used = sorted({v.file for v in bm.vmas if v.file >= 0})
    return {"vmas": [(v.start, v.end, v.flags, v.backing, v.pgoff, v.anon_vma, v.uffd_fork)
                     for v in bm.vmas],
            "ptes": ptes, "tables": bm.tables.tolist(),
            "pmds": {i: pmd_decode(pfn, c) for i, pfn, c in
                     zip(bm.pmd_idx.tolist(), bm.pmd_pfn.tolist(), bm.pmd_bits.tolist(),
                         strict=True)},
            "deposited": bm.deposited.tolist(),
            "rss": {k: v for k, v in bm.rss.items() if v}, "nr_ptes": bm.nr_ptes,
            "has_pinned": bm.has_pinned, "huge_zero_ref": bm.huge_zero_ref,
            "on_mmlist": bm.on_mmlist, "folios": folios,
            "files": {m.files[i].name: dict(m.files[i].cache) for i in used},
            "next_pfn": m.next_pfn,
            "swap": {int(o): int(c) for o, c in zip(m.swap_offset, m.swap_count, strict=True)},
            "pins": sorted((int(m.folio_pfn[i]), pg) for i, pg in b.pins),
            "hwpoison": (np.flatnonzero(m.hwpoison) + m.base).tolist()}


def pte_of(b: Bulk, addr: int) -> Pte | None:
    """The entry at ``addr`` in the bulk form (None for an empty slot or no table)."""
    s = b.mm.slot_of(addr)
    return None if s is None else decode(int(b.mm.bits[s]), int(b.mm.pfn[s]))
