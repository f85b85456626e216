"""Decoding pagemap entries the way fs/proc/task_mmu.c encodes them, on synthetic entries:
present/swap/marker kinds, zero and huge zero pages, PMD-mapped folios, and how runs are
cut (new folio, same folio with other bits, a change of kind)."""

from __future__ import annotations

import numpy as np

from pkmm.realkernel import pages as pg
from pkmm.realkernel import procpid as pp
from pkmm.realkernel.runs import encode_vma

START = 0x7F0000000000          # 2 MiB aligned


def entries(*bits: int) -> np.ndarray:
    return np.array(bits, dtype=np.uint64)


def classify(e: np.ndarray, scan: np.ndarray | None = None, **kw: object) -> pg.Pages:
    opts = {"pfnmap": False, "kpages": None, "swap_configured": True, **kw}
    return pg.classify(START, e, np.zeros(len(e), np.uint64) if scan is None else scan,
                       **opts)  # type: ignore[arg-type]


P, S, F, X = pp.PM_PRESENT, pp.PM_SWAP, pp.PM_FILE, pp.PM_MMAP_EXCLUSIVE


def test_kinds_from_the_pagemap_bits() -> None:
    p = classify(entries(0, P | X, P | F, P, S, S | pp.PM_GUARD_REGION, S | pp.PM_UFFD_WP))
    assert [pg.KINDS[k] for k in p.kind] == ["none", "anon", "pagecache", "anon", "swap",
                                            "marker", "swap"]
    # without a swap device an uffd-wp swap-type entry can only be the uffd-wp marker
    q = classify(entries(S | pp.PM_UFFD_WP), swap_configured=False)
    assert pg.KINDS[q.kind[0]] == "marker"
    # AnonExclusive without kpageflags: taken from bit 56 (mapped once)
    assert p.ae.tolist() == [False, True, False, False, False, False, False]


def test_zero_pages_and_pmd_mappings_come_from_pagemap_scan() -> None:
    n = 1024
    scan = pg.scan_masks([(START, START + 4096, pp.PAGE_IS_PFNZERO),
                          (START + 0x200000, START + 0x400000,
                           pp.PAGE_IS_HUGE | pp.PAGE_IS_PFNZERO)], START, n)
    p = classify(np.full(n, P, np.uint64), scan)
    assert pg.KINDS[p.kind[0]] == "zero" and pg.KINDS[p.kind[1]] == "anon"
    assert {pg.KINDS[k] for k in p.kind[512:]} == {"huge_zero"}
    assert p.pmd[512:].all() and not p.pmd[:512].any()
    assert p.order[512:].tolist() == [9] * 512 and p.index[512:].tolist() == list(range(512))


def test_raw_pfn_maps() -> None:
    p = classify(entries(P, P), pfnmap=True)
    assert {pg.KINDS[k] for k in p.kind} == {"pfn"}


class Ctx:
    """The few members of the snapshot context that encoding uses."""

    kp = None
    last_folio = None

    def __init__(self) -> None:
        self.orders: dict[int, int] = {}
        self.open_folios: dict = {}
        self.raw = 0x400

    def continues(self, p: pg.Pages, i: int) -> bool:
        return False

    def raw_pfns(self, n: int) -> int:
        self.raw += n
        return self.raw - n


def test_runs_cut_where_kind_bits_or_folios_change() -> None:
    import collections
    n = 40
    p = classify(np.full(n, P | X, np.uint64))
    p.order[:32] = 4                          # two 64K folios, then 8 4K pages
    p.index[:32] = np.tile(np.arange(16), 2)
    p.head[:32] = np.repeat([0x1000, 0x2000], 16)
    p.ae[20:] = False                        # the second folio loses AE at page 4
    ctx = Ctx()
    ctx.orders = collections.Counter()
    out: dict = {"runs": []}
    encode_vma(p, {"backing": "anon", "write": True}, ctx, out)
    runs = out["runs"]
    assert [(r["npages"], r.get("order", 0), r.get("continue", False)) for r in runs] == \
        [(20, 4, False), (12, 4, True), (8, 0, False)]
    assert runs[0]["write"] and not runs[1]["write"]     # AE -> writable, else R/O
    assert ctx.orders == {4: 2, 0: 8}


def test_a_folio_one_copied_page_interrupts_stays_one_folio() -> None:
    """pages 0-5 of a 64K folio, the process's own 4K copy of page 6, pages 7-15: the
    kernel has one 64K folio and one 4K page; the encoded runs build exactly that."""
    import collections

    from pkmm.scenario import Scenario
    n = 16
    p = classify(np.full(n, P | X, np.uint64))
    p.order[:] = 4
    p.index[:] = np.arange(16)
    p.head[:] = 0x1000
    p.order[6], p.index[6], p.head[6] = 0, 0, 0x5000     # the CoW copy of page 6
    ctx = Ctx()
    ctx.orders = collections.Counter()
    out: dict = {"runs": []}
    encode_vma(p, {"backing": "anon", "write": True}, ctx, out)
    assert [(r["npages"], r.get("order", 0), r.get("continue", False), r.get("page"))
            for r in out["runs"]] == [(6, 4, False, None), (1, 0, False, None),
                                       (9, 4, True, 7)]
    assert ctx.orders == {4: 1, 0: 1}
    sc = Scenario.from_dict({"vmas": [{"start": p.start, "npages": n, "anon_vma": True}],
                             "runs": out["runs"]})
    proc, _ = sc.build()
    f0, _ = proc.page_at(p.start)
    f15, i15 = proc.page_at(p.start + 15 * 4096)
    assert f15 is f0 and i15 == 15 and f0.large_mapcount == 15
