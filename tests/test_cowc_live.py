"""The live cow.c runner: TAP parsing, merging runs, and putting global settings back.

Nothing here changes this machine's settings: the restore logic runs on temporary sysfs
look-alikes.  The stored results are checked for what the runner promises to record.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pkmm.realkernel import cowc, sysconf

DATA = Path(__file__).resolve().parent.parent / "pkmm" / "data" / "cowc-6.18.json"

TAP = """TAP version 13
# [INFO] detected PMD size: 2048 KiB
1..5
# [INFO] Anonymous memory tests in private mappings
# [RUN] Basic COW after fork() ... with base page
ok 1 No leak from parent into child
# [RUN] Basic COW after fork() ... with swapped out base page
ok 2 # SKIP MADV_PAGEOUT did not work, is swap enabled?
# [RUN] vmsplice() + unmap in child ... with hugetlb (2048 kB)
ok 3 # XFAIL Leak from parent into child
# [RUN] Basic COW after fork() when collapsing before fork()
not ok 4 No leak from parent into child
# [RUN] Non-anonymous memory tests in private mappings
# [RUN] Basic COW ... with shared zeropage
ok 5 Other mapping not modified
# Totals: pass:2 fail:1 xfail:1 xpass:0 skip:1 error:0
"""


def test_parse_tap_pairs_each_result_with_its_run_line() -> None:
    cases = cowc.parse_tap(TAP)
    assert [(c.n, c.case, c.result) for c in cases] == [
        (1, "Basic COW after fork() ... with base page", "pass"),
        (2, "Basic COW after fork() ... with swapped out base page", "skip"),
        (3, "vmsplice() + unmap in child ... with hugetlb (2048 kB)", "xfail"),
        (4, "Basic COW after fork() when collapsing before fork()", "fail"),
        (5, "Basic COW ... with shared zeropage", "pass"),   # the section header is dropped
    ]
    assert cases[1].message == "MADV_PAGEOUT did not work, is swap enabled?"
    assert cases[1].as_json()["why"].startswith("no swap space")
    assert cowc.totals(cases) == {"pass": 2, "fail": 1, "xfail": 1, "skip": 1, "error": 0}


def test_parse_tap_refuses_a_result_without_a_case() -> None:
    with pytest.raises(cowc.CowcUnavailable, match="no \\[RUN\\] line"):
        cowc.parse_tap("ok 1 something\n")


def test_merge_runs_marks_disagreeing_cases() -> None:
    a = cowc.parse_tap(TAP)
    b = cowc.parse_tap(TAP.replace("ok 3 # XFAIL Leak", "ok 3 No leak"))
    merged = cowc.merge_runs([a, b])
    assert [c["result"] for c in merged] == ["pass", "skip", "varies", "fail", "pass"]
    assert merged[2]["seen"] == ["pass", "xfail"]
    with pytest.raises(cowc.CowcUnavailable, match="different case lists"):
        cowc.merge_runs([a, a[:-1]])


def test_knobs_and_hugetlb_pools_are_restored(tmp_path, monkeypatch) -> None:
    thp_dir = tmp_path / "thp"
    (thp_dir / "khugepaged").mkdir(parents=True)
    (thp_dir / "hugepages-64kB").mkdir()
    (thp_dir / "defrag").write_text("always defer [madvise] never\n")
    (thp_dir / "khugepaged" / "pages_to_scan").write_text("4096\n")
    (thp_dir / "hugepages-64kB" / "shmem_enabled").write_text("always [never]\n")
    monkeypatch.setattr(cowc.thp, "THP_DIR", thp_dir)
    saved = cowc.save_extra_knobs()
    assert saved == {"defrag": "madvise", "khugepaged/pages_to_scan": "4096",
                     "hugepages-64kB/shmem_enabled": "never"}
    (thp_dir / "defrag").write_text("[always] defer madvise never\n")   # what cow.c may do
    (thp_dir / "khugepaged" / "pages_to_scan").write_text("8\n")
    assert cowc.restore_knobs(saved) == []
    assert (thp_dir / "defrag").read_text() == "madvise"
    assert (thp_dir / "khugepaged" / "pages_to_scan").read_text() == "4096"

    pools = tmp_path / "hugepages"
    (pools / "hugepages-2048kB").mkdir(parents=True)
    (pools / "hugepages-2048kB" / "nr_hugepages").write_text("1\n")
    monkeypatch.setattr(sysconf, "HUGEPAGES", pools)
    with pytest.raises(RuntimeError), sysconf.hugetlb_reserved({2048: 4, 1048576: 2}) as got:
        assert got == {"2048kB": 4}        # the 1 GiB pool does not exist here
        raise RuntimeError("cow.c crashed")
    assert (pools / "hugepages-2048kB" / "nr_hugepages").read_text() == "1"


def test_stored_results_record_kernel_setup_and_every_case() -> None:
    data = json.loads(DATA.read_text())
    assert data["kernel"].startswith("6.18") and data["config"]["CONFIG_GUP_TEST"] == "n"
    cases = data["cases"]
    assert [c["n"] for c in cases] == list(range(1, len(cases) + 1)) and len(cases) == 778
    assert len({c["case"] for c in cases}) == len(cases)
    assert data["setup"]["swap_mib"] > 0 and data["setup"]["hugetlb_pages"]
    for run in data["totals"]:
        assert sum(run.values()) == len(cases) and run["fail"] == 0
    # every skip has a reason; with swap and hugetlb set up only the GUP test is missing
    assert {c["why"] for c in cases if c["result"] == "skip"} == {
        cowc.SKIP_WHY["gup_test not available"]}
    assert all("GUP" in c["case"] for c in cases if c["result"] == "skip")
