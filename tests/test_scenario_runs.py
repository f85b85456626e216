"""Scenario sections for real processes: runs (fresh folios, partial and continued folios,
PMD runs, pinned runs), page ranges for zero pages, swap, markers and raw PFN maps, and the
approximations/source fields -- built exactly, and refused with the field named."""

from __future__ import annotations

import pytest

from pkmm.errors import ScenarioError
from pkmm.scenario import Scenario

A = 0x400000


def build(**sections: object) -> tuple:
    d = {"vmas": [{"start": A, "npages": 2048, "anon_vma": True}], **sections}
    return Scenario.from_dict(d).build()


def test_a_run_maps_consecutive_fresh_folios() -> None:
    p, _ = build(runs=[{"addr": A, "npages": 40, "order": 4, "page": 8}])
    # pages 8..15 of a first folio, then a whole folio, then 16 pages of a third
    folios = [p.page_at(A + i * 4096) for i in range(40)]
    assert [f.order for f, _ in folios] == [4] * 40
    assert [i for _, i in folios[:9]] == list(range(8, 16)) + [0]
    assert len({id(f) for f, _ in folios}) == 3
    assert p.pte(A).write and folios[0][0].pages[8].anon_exclusive


def test_continue_goes_on_with_the_same_folio_with_other_bits() -> None:
    p, _ = build(runs=[{"addr": A, "npages": 6, "order": 4},
                       {"addr": A + 6 * 4096, "npages": 10, "order": 4, "continue": True,
                        "write": False, "anon_exclusive": False}])
    f0, i0 = p.page_at(A)
    f1, i1 = p.page_at(A + 6 * 4096)
    assert f0 is f1 and (i0, i1) == (0, 6)
    assert p.pte(A).write and not p.pte(A + 6 * 4096).write


def test_continue_with_page_resumes_a_folio_an_other_page_interrupted() -> None:
    # a real process: pages 0-5 of a 64K folio, one 4K page (its CoW copy of page 6), then
    # pages 7-15 of the same folio, which a run without 'page' could not say
    p, _ = build(runs=[{"addr": A, "npages": 6, "order": 4},
                       {"addr": A + 6 * 4096, "npages": 1},
                       {"addr": A + 7 * 4096, "npages": 9, "order": 4, "continue": True,
                        "page": 7}])
    f0, _ = p.page_at(A)
    f7, i7 = p.page_at(A + 7 * 4096)
    copy, _ = p.page_at(A + 6 * 4096)
    assert f7 is f0 and i7 == 7 and copy is not f0 and copy.order == 0
    assert f0.large_mapcount == 15 and f0.refcount == 15
    # the folio is finished: a further 'continue' with a page has nothing to go on with
    with pytest.raises(ScenarioError, match="runs\\[1\\].*unfinished"):
        build(runs=[{"addr": A, "npages": 16, "order": 4},
                    {"addr": A + 16 * 4096, "npages": 1, "order": 4, "continue": True,
                     "page": 3}])
    # a page already passed cannot be mapped again by going back
    with pytest.raises(ScenarioError, match="runs\\[2\\].*page 6 or later"):
        build(runs=[{"addr": A, "npages": 6, "order": 4},
                    {"addr": A + 6 * 4096, "npages": 1},
                    {"addr": A + 7 * 4096, "npages": 2, "order": 4, "continue": True,
                     "page": 2}])


def test_pmd_and_pinned_runs() -> None:
    p, _ = build(runs=[{"addr": A, "npages": 512, "order": 9, "pmd": True},
                       {"addr": A + 0x200000, "npages": 4, "pinned": True}])
    assert p.pmd(A) is not None
    f, _ = p.page_at(A + 0x200000)
    assert f.pins == 1 and p.has_pinned


def test_ranges_of_zero_swap_markers_and_pfns() -> None:
    d = {"vmas": [{"start": A, "npages": 64, "anon_vma": True},
                  {"start": A + 0x200000, "npages": 4, "pfnmap": True}],
         "zero": [{"addr": A, "npages": 8}, A + 8 * 4096],
         "swap": [{"addr": A + 16 * 4096, "npages": 3}],
         "markers": [{"addr": A + 24 * 4096, "npages": 2, "markers": ["guard"]}],
         "pfnmaps": [{"addr": A + 0x200000, "npages": 4, "pfn": 0x400}],
         "approximations": ["a guess"], "source": {"pid": 1}}
    sc = Scenario.from_dict(d)
    p, _ = sc.build()
    assert all(p.pte(A + i * 4096).special for i in range(9))
    assert sum(1 for i in range(16, 19) if p.pte(A + i * 4096).swp is not None) == 3
    assert p.pte(A + 0x200000 + 3 * 4096).pfn == 0x403
    assert Scenario.from_dict(sc.to_dict()).to_dict() == sc.to_dict()
    assert sc.approximations == ["a guess"] and sc.source == {"pid": 1}


@pytest.mark.parametrize("sections, where", [
    ({"runs": [{"addr": A, "npages": 4, "continue": True}]}, "runs[0]"),
    ({"runs": [{"addr": A, "npages": 16, "order": 4},
               {"addr": A + 64 * 4096, "npages": 4, "continue": True}]}, "runs[1]"),
    ({"runs": [{"addr": A, "npages": 100, "order": 9, "pmd": True}]}, "runs[0]"),
    ({"runs": [{"addr": A, "npages": 4, "order": 2, "page": 4}]}, "runs[0]"),
    ({"runs": [{"addr": A, "npages": 4, "order": 12}]}, "runs[0]"),
    ({"runs": [{"addr": A, "npages": 0}]}, "runs[0]"),
    ({"runs": [{"addr": A + (4096 << 11), "npages": 4}]}, "runs[0]"),
    ({"runs": [{"addr": A, "npages": 4, "colour": "red"}]}, "runs[0]"),
    ({"zero": [{"addr": A, "npages": 0}]}, "zero[0]"),
    ({"markers": [{"addr": A, "npages": 2}]}, "markers[0]"),
    ({"source": [1, 2]}, "source"),
])
def test_bad_runs_and_ranges_name_the_entry(sections: dict, where: str) -> None:
    with pytest.raises(ScenarioError, match=rf"^{where.replace('[', '.').replace(']', '.')}"):
        build(**sections)
