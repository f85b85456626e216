"""The cow.c matrix in pkmm.cowc.matrix is the one the kernel ran: same cases, same order,
same names, and it changes with the machine the way cow.c's main() makes it change."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from pkmm.cowc.matrix import LINUX_6_18_X86_64, Machine, cases

DATA = Path(__file__).resolve().parent.parent / "pkmm" / "data" / "cowc-6.18.json"


def test_matrix_is_the_live_kernels_case_list() -> None:
    live = [(c["n"], c["case"]) for c in json.loads(DATA.read_text())["cases"]]
    assert [(c.n, c.name) for c in cases(LINUX_6_18_X86_64)] == live


def test_matrix_shape_follows_cow_c_main() -> None:
    # tests_per_anon_test_case(): 2 + hugetlb sizes + 6 per THP size + 2 for the PMD size
    m = Machine(thp_kb=(64, 2048), hugetlb_kb=(2048,))
    per_anon = 2 + 1 + 6 * 2 + 2
    got = Counter(c.func for c in cases(m))
    assert got["test_cow_in_parent"] == per_anon
    assert got["test_anon_thp_collapse_unshared"] == 1
    assert got["test_cow"] == 3 + 1 + 1          # zero, memfd, tmpfile, huge zero, hugetlb
    no_thp = Machine(thp_kb=(), hugetlb_kb=(), pmd_kb=0, liburing=False)
    funcs = Counter(c.func for c in cases(no_thp))
    assert "test_iouring_ro" not in funcs and "test_anon_thp_collapse_unshared" not in funcs
    assert funcs["test_cow_in_parent"] == 2 and funcs["test_cow"] == 3
    assert len(cases(no_thp)) == 12 * 2 + 3 * 3
