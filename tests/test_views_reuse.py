"""07's table of large-folio reuse cases: each row is the model's own fault path."""

from __future__ import annotations

import pytest

from pkmm import LayoutError
from pkmm.views.reuse import CASES, counter_table, reuse_cases, reuse_table


def test_every_row_follows_the_v6_15_rule_and_covers_each_way_to_copy() -> None:
    rows = reuse_cases("v6.17")
    assert [r.name for r in rows] == list(CASES)
    for r in rows:
        # __wp_can_reuse_large_anon_folio(): more than one page mapped, not maybe mapped
        # shared, every reference a mapping
        rule = r.pages_mapped > 1 and not r.maybe_shared and r.large_mapcount == r.refcount
        assert r.kind == ("reuse" if rule else "cow-copy"), r
    copies = [r for r in rows if r.kind == "cow-copy"]
    assert any(r.maybe_shared for r in copies)
    assert any(not r.maybe_shared and r.refcount > r.large_mapcount for r in copies)
    assert any(not r.maybe_shared and r.pages_mapped == 1 for r in copies)
    assert any(r.kind == "reuse" for r in rows)


def test_a_third_process_the_folio_cannot_record_keeps_it_shared_until_it_unmaps() -> None:
    by = {r.name: r for r in reuse_cases("v6.17")}
    alive = by["grandchild alive, child exited"]
    assert alive.maybe_shared and alive.kind == "cow-copy"
    assert "could not record" in alive.reason and "16 of its 32" in alive.reason
    assert "could not record" not in by["both alive"].reason     # only the reason that holds
    gone = by["child and grandchild exited"]
    assert not gone.maybe_shared and gone.kind == "reuse"
    # the false "maybe": the grandchild alone maps the folio, every reference is its
    # mapping, yet it had no slot, so the bit set at the child's fork never cleared
    alone = by["parent and child exited"]
    assert alone.writer == "grandchild" and alone.mappers == "grandchild"
    assert alone.maybe_shared and alone.large_mapcount == alone.refcount == 16
    assert alone.kind == "cow-copy" and "could not record" in alone.reason
    assert alone.setup.endswith("parent exits; the grandchild writes")
    assert all(r.writer == "parent" for r in by.values() if r is not alone)


def test_before_v6_15_no_large_folio_page_is_reused() -> None:
    assert {r.kind for r in reuse_cases("v6.9")} == {"cow-copy"}


def test_table_prints_the_rows_and_fits_a_static_page() -> None:
    text = reuse_table("v6.17")
    assert max(len(ln) for ln in text.splitlines()) <= 88
    for r in reuse_cases("v6.17"):
        line = next(ln for ln in text.splitlines() if ln.startswith(r.name + " "))
        assert line.split()[-5:] == [str(r.pages_mapped), str(r.large_mapcount),
                                     str(r.refcount), "yes" if r.maybe_shared else "no",
                                     r.kind]
    with pytest.raises(LayoutError, match="kernel='v9'"):
        reuse_cases("v9")


BIG = {"name": "order-4 folio", "vmas": [{"start": "0x200000", "npages": 16}],
       "folios": {"F": {"order": 4}}, "ptes": [{"addr": "0x200000", "folio": "F"}]}


def test_setup_is_read_from_the_layout_and_the_story() -> None:
    by = {r.name: r for r in reuse_cases("v6.17")}
    assert by["child exited, writer maps 2 pages"].setup == \
        "parent maps 5-6 (0-4, 7-15 unmapped, as after a partial munmap()); fork; child exits"
    assert by["child exited, pipe holds a page"].setup.startswith(
        "parent maps 0-15; a pipe holds page 0 (vmsplice); fork")
    assert by["child and grandchild exited"].setup.endswith(
        "child forks grandchild; child exits; grandchild exits")
    text = reuse_table("v6.17")
    assert text.count("  setup: ") == len(by)


def test_counter_table_reads_the_three_counters_from_the_model() -> None:
    def values(text: str) -> list[int]:
        return [int(ln.split()[-1]) for ln in text.splitlines()[3::2]]
    # order-4 folio on 16 PTEs after fork: page 5 has one PTE per process; the folio 2 x 16
    assert values(counter_table(BIG)) == [2, 32, 32]
    # a PMD-mapped THP: each page counts both PMDs, the folio one mapping per PMD
    thp = {"name": "thp", "vmas": [{"start": "0x200000", "npages": 512}],
           "folios": {"H": {"order": 9}}, "pmds": [{"addr": "0x200000", "folio": "H"}]}
    assert values(counter_table(thp, folio="H", page=0)) == [2, 2, 2]
    # a pipe reference raises the refcount only
    piped = dict(BIG, vmsplice=[{"folio": "F", "page": 0}])
    assert values(counter_table(piped))[1:] == [32, 33]
    assert max(len(ln) for ln in counter_table(BIG).splitlines()) <= 88
    with pytest.raises(LayoutError, match="folio='G'"):
        counter_table(BIG, folio="G")
    with pytest.raises(LayoutError, match="page=16"):
        counter_table(BIG, page=16)
