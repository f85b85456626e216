"""pkmm.scenario_bulk: a scenario built straight into the bulk form forks, under every
variant, with the counts of the ordinary build (Process, then from_process)."""

from __future__ import annotations

import pytest

from pkmm.fast import fork_bulk, from_process
from pkmm.kernels import KERNELS
from pkmm.scenario import Scenario
from pkmm.scenario_bulk import bulk_of, tileable

A = 1 << 30
LAYOUTS = {
    "4K and shared 64K": {
        "vmas": [{"start": A, "npages": 8192, "anon_vma": True}],
        "runs": [{"addr": A, "npages": 1000},
                 {"addr": A + 1000 * 4096, "npages": 4096, "order": 4, "write": False,
                  "anon_exclusive": False}]},
    "across tables, with zero pages and a file VMA": {
        "vmas": [{"start": A + 4096 * 100, "npages": 3000, "anon_vma": True},
                 {"start": A + (64 << 20), "npages": 64, "backing": "file", "anon_vma": True}],
        "runs": [{"addr": A + 4096 * 100, "npages": 1536, "order": 3},
                 {"addr": A + 4096 * 1636, "npages": 8, "order": 3, "page": 0},
                 {"addr": A + (64 << 20), "npages": 60, "backing": "file", "write": False}],
        "zero": [{"addr": A + 4096 * 2000, "npages": 30}]},
    "a pinned run stays ordinary": {
        "vmas": [{"start": A, "npages": 1024, "anon_vma": True}],
        "runs": [{"addr": A, "npages": 64, "order": 2, "pinned": True},
                 {"addr": A + 64 * 4096, "npages": 512, "order": 9},
                 {"addr": A + 576 * 4096, "npages": 64}]},
}


@pytest.mark.parametrize("name", LAYOUTS)
@pytest.mark.parametrize("kernel", KERNELS)
def test_bulk_build_forks_like_the_ordinary_build(name: str, kernel: str) -> None:
    sc = Scenario.from_dict(LAYOUTS[name])
    ref = fork_bulk(from_process(sc.build()[0]), kernel)
    got = fork_bulk(bulk_of(sc), kernel)
    assert got.ops == ref.ops
    assert got.actions() == ref.actions() and got.batch_sizes == ref.batch_sizes
    assert (got.copies, got.eagain) == (ref.copies, ref.eagain)
    assert got.child.mm.rss == ref.child.mm.rss
    assert got.child.mm.nr_ptes == ref.child.mm.nr_ptes
    assert got.parent.mm.rss == ref.parent.mm.rss


def test_only_long_runs_of_fresh_anon_folios_are_copied_in_bulk() -> None:
    sc = Scenario.from_dict(LAYOUTS["a pinned run stays ordinary"])
    assert [tileable(r) for r in sc.runs] == [False, False, True]
    b = bulk_of(sc)
    # 16 pinned order-2 folios, one PTE-mapped THP, 64 order-0 folios
    assert sorted(b.machine.folio_order.tolist()) == [0] * 64 + [2] * 16 + [9]
