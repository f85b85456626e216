"""The kernel's CoW selftest (tools/testing/selftests/mm/cow.c), every case of its matrix,
on every kernel variant, with cow.c's own assertions -- and compared case by case with what
the live Linux 6.18 kernel gave (pkmm/data/cowc-6.18.json).

Negative controls show that the assertions bite: with a copy-on-write rule switched off
(pkmm.ABLATIONS) or a GUP / swap / hugetlb rule replaced, the cases that test it fail.
"""

from __future__ import annotations

import pytest

import pkmm
from pkmm.cowc.matrix import cases
from pkmm.cowc.model import missing_api, needs, run_case
from pkmm.cowc.report import CaseRow, build_rows, load_live, render, summary

LIVE = load_live()
BY_NAME = {c.name: c for c in cases()}


def case(family: str, config: str = "base page"):
    """A cow.c case by its [RUN] text."""
    return BY_NAME[family if config == "" else f"{family} ... with {config}"]
VMSPLICE = {"test_vmsplice_in_child", "test_vmsplice_in_child_mprotect",
            "test_vmsplice_before_fork", "test_vmsplice_after_fork"}


def expected(c) -> str:
    """cow.c's expectation: its hugetlb vmsplice cases are "expected failures"
    (do_test_cow_in_parent / do_test_vmsplice_in_parent with xfail = is_hugetlb)."""
    return "xfail" if c.config == "hugetlb" and c.func in VMSPLICE else "pass"


def test_every_case_is_expressible() -> None:
    assert [c.name for c in cases() if missing_api(c)] == []
    assert "Process.pin_user_pages" in needs(case("R/O GUP pin on R/O-mapped shared page"))


@pytest.mark.parametrize("kernel", pkmm.KERNELS)
def test_the_whole_matrix_passes_as_cow_c_expects_and_agrees_with_the_live_kernel(
        kernel: str) -> None:
    rows = build_rows(LIVE, (kernel,))
    wrong = [(r.case.n, r.case.name, r.model[kernel].result) for r in rows
             if r.model[kernel].result != expected(r.case)]
    assert wrong == []
    disagree = [(r.case.n, r.case.name, r.live, r.model[kernel].result) for r in rows
                if r.agrees(kernel) is False]
    assert disagree == []
    ran = [r for r in rows if r.agrees(kernel)]
    assert len(ran) == sum(r.live != "skip" for r in rows) == 442


BASIC, IOURING = "Basic COW after fork()", "fork() with an iouring fixed buffer"


@pytest.mark.parametrize("family,config,rule", [
    (BASIC, "base page", "cow-wrprotect"),
    (BASIC, "THP (2048 kB)", "cow-wrprotect"),
    (BASIC, "PTE-mapped THP (2048 kB)", "cow-wrprotect"),
    (BASIC, "hugetlb (2048 kB)", "cow-wrprotect"),      # shared write-protected too
    ("vmsplice() + unmap in child", "base page", "cow-wrprotect"),
    (IOURING, "base page", "pinned-copy"),
    (IOURING, "THP (2048 kB)", "pinned-copy"),
    (IOURING, "hugetlb (2048 kB)", "pinned-copy"),      # copy_hugetlb_page_range copies
])
def test_switching_a_fork_rule_off_makes_its_cases_fail(family, config, rule) -> None:
    c = case(family, config)
    assert run_case(c, "v6.17", without=frozenset({rule})).result == "fail", c.name


def test_without_gup_unsharing_a_ro_pin_stops_seeing_memory(monkeypatch) -> None:
    # mm/internal.h gup_must_unshare() replaced by "never": the R/O pin lands on a page a
    # later write CoWs away from -- cow.c's "Longterm R/O pin is reliable" must fail
    import pkmm.gup
    monkeypatch.setattr(pkmm.gup, "gup_must_unshare", lambda *a: False)
    for c in (case("R/O GUP pin on R/O-mapped shared page"),
              case("R/O longterm GUP pin", "shared zeropage"),
              case("R/O longterm GUP-fast pin", "memfd"),
              case("R/O longterm GUP pin", "tmpfile")):
        assert run_case(c, "v6.17").result == "fail", c.name


def test_without_the_mprotect_upgrade_rule_mprotect_leaks(monkeypatch) -> None:
    # mm/mprotect.c can_change_pte_writable() replaced by "always": after fork the
    # mprotect() optimization maps a shared page writable, a parent write leaks
    import pkmm.mprotect
    monkeypatch.setattr(pkmm.mprotect, "can_change_pte_writable", lambda *a: True)
    c = case("Basic COW after fork() with mprotect() optimization")
    assert run_case(c, "v6.17").result == "fail"


def test_swapped_out_cases_depend_on_the_swap_exclusive_bit(monkeypatch) -> None:
    # mm/memory.c copy_nonpresent_pte() clears the exclusive bit of a duplicated swap
    # entry; keep it (and do_swap_page() maps the page exclusive and writable in both)
    import pkmm.memory
    monkeypatch.setattr(pkmm.memory, "pte_swp_clear_exclusive", lambda pte: pte)
    assert run_case(case(BASIC, "swapped out base page"), "v6.17").result == "fail"


def test_hugetlb_reuse_by_mapcount_is_what_cow_c_expects_to_fail(monkeypatch) -> None:
    # mm/hugetlb.c hugetlb_wp() judges reuse by mapcount: the vmsplice case xfails; had
    # it looked at the refcount (as do_wp_page does), the pipe's reference would force
    # a copy and the case would pass -- then cow.c's xfail would be wrong for the model
    c = case("vmsplice() + unmap in child", "hugetlb (2048 kB)")
    assert run_case(c, "v6.17").result == "xfail"
    import pkmm.hugetlb
    monkeypatch.setattr(pkmm.hugetlb, "hugetlb_wp_can_reuse",
                        lambda folio: folio.kind == "anon" and folio.refcount == 1)
    assert run_case(c, "v6.17").result == "pass"


def test_report_summary_and_render() -> None:
    a, b = case(BASIC), case(BASIC, "swapped out base page")
    rows = [CaseRow(a, "pass", ("pass",)), CaseRow(b, "skip", ("skip",))]
    rows[0].model = {"v6.17": run_case(a, "v6.17")}
    rows[1].model = {"v6.17": run_case(b, "v6.17")}
    lines = summary(rows, ("v6.17",))
    assert lines[0] == "cow.c cases: 2; expressible in pkmm: 2/2"
    assert lines[-1].split() == ["v6.17", "2", "0", "0", "0", "1", "1"]
    assert "#1" not in render(rows, ("v6.17",))      # nothing to flag
