"""What notebook 09 shows from the stored run: the report grouped by lesson, the rows that
plain copy-on-write does not predict, the steps table's marks, the (PMD) tag."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from pkmm.errors import StoredDataError
from pkmm.realkernel import lab
from pkmm.realkernel.calibrate import load as load_timing
from pkmm.realkernel.calibrate import pooled, records
from pkmm.realkernel.report import COLUMNS, _fork_text
from pkmm.realkernel.scenarios import BY_ID, SCENARIOS, TOPICS, WHY

ROWS = {r.id: r for r in lab.stored_rows()}


def _plain(sid: str) -> str:
    sc = BY_ID[sid]
    return "f" if sc.shared else "a" if sc.folio == "4K" else "c"


def test_topics_group_every_scenario_exactly_once() -> None:
    grouped = [i for _, _, ids in TOPICS for i in ids]
    assert sorted(grouped) == sorted(s.id for s in SCENARIOS)
    assert len(grouped) == len(set(grouped))


def test_every_row_that_differs_from_plain_memory_has_a_reason_and_no_other_does() -> None:
    odd = {i for i, r in ROWS.items() if lab.unexpected(r, ROWS[_plain(i)])}
    assert odd == set(WHY)
    # the reasons are words (names like g1 or w2 aside): the report's numbers come from
    # the run, never from the labels
    assert not [why for why in WHY.values() if re.search(r"(?<![\w])\d", why)]
    # a script page named in a reason is the scenario's own: g3 wrote w2 before fork
    assert f"page {BY_ID['g3'].w2} (the script's w2)" in lab.why_text("g3")
    assert all("{" not in lab.why_text(i) for i in WHY)


def test_unexpected_compares_kinds_not_counts_and_skips_absent_writes() -> None:
    a = ROWS["a"]
    assert lab.unexpected(a, a) == ()
    more = dataclasses.replace(a, outcome={**a.outcome, COLUMNS[0]: "shared 99"})
    assert lab.unexpected(more, a) == ()
    pinned = dataclasses.replace(a, outcome={**a.outcome, COLUMNS[0]: "shared 15, copied 1",
                                             "w2 child": "no fault"})
    assert lab.unexpected(pinned, a) == (COLUMNS[0], "w2 child")
    absent = dataclasses.replace(a, outcome={**a.outcome, "w3 parent": "-"})
    assert lab.unexpected(absent, a) == ()


def test_grouped_report_puts_unexpected_rows_first_outlined_with_their_reason() -> None:
    t = lab.report_by_topic()
    assert len(t.rows) == len(SCENARIOS) and len(t.sections) == len(TOPICS)
    starts = [i for i, _ in t.sections] + [len(t.rows)]
    reasons = dict(t.subrows)
    for lo, hi in zip(starts, starts[1:], strict=False):
        flagged = [i in reasons for i in range(lo, hi)]
        assert flagged == sorted(flagged, reverse=True)      # all flagged rows first
    for i, row in enumerate(t.rows):
        sid = row[0]
        cols = {j for (r, j) in t.marks if r == i}
        assert (i in reasons) == bool(cols) == (sid in WHY)
        if sid in WHY:
            assert lab.why_text(sid) in reasons[i]
            assert {t.head[j] for j in cols} == set(lab.unexpected(ROWS[sid],
                                                                   ROWS[_plain(sid)]))
    html = t._repr_html_()
    assert html.count("outline:2px") == len(t.marks)
    assert all(h in html for _, h in t.sections)
    assert str(len(WHY)) in t.caption and t.notes[-1] == "agree: 49/49"


def test_steps_table_outlines_the_page_each_step_touched_and_has_its_legend() -> None:
    t = lab.steps_table("c")
    sc = BY_ID["c"]
    pages = [int(h[2:]) for h in t.head if h.startswith("pg")]
    want = {(i, t.head.index(f"pg{p}")) for i, r in enumerate(t.rows)
            for p in pages if r[-1].startswith(("write pg", "read pg"))
            and r[-1].split(":")[0].split("pg")[1] == str(p)}
    assert t.marks == frozenset(want)
    written = {t.head[j] for _, j in t.marks}
    assert written == {f"pg{w}" for w in (sc.w1, sc.w2, sc.w3)}
    html = t._repr_html_()
    # the legend sits above the rows, and every colour a cell can get is in it
    assert html.index("white: an original page") < html.index("<thead>")
    colours = {lab._shade_token(c) for r in t.rows for c in r[2:-1]}
    names = {"#fff1b8": "yellow", "#dbe9ff": "blue", "": "white"}
    assert colours <= set(names) and all(f"{names[c]}: " in lab.STEPS_LEGEND for c in colours)
    assert "" in colours and lab._shade_token("orig x1 m1 ae0 A") == ""


def test_pmd_tag_follows_what_the_child_maps_with_one_pmd_entry() -> None:
    fork = {i: r.outcome[COLUMNS[0]] for i, r in ROWS.items()}
    for sid in ("e", "e2", "t1", "t2", "x1"):           # THP PMD, huge zero, hugetlb
        assert fork[sid].endswith("(PMD)"), sid
    for sid in ("c", "d2", "h3", "r2"):                 # PTE-mapped; h3's child: 4K copies
        assert "(PMD)" not in fork[sid], sid
    assert _fork_text(["zero x0 m0 ae0 Z"], 0) == "shared 1"
    assert _fork_text(["orig x0 m2 ae0 A·H·thp"], 2048) == "shared 1 (PMD)"
    assert _fork_text(["—", "— swp"], 0) == "swap entries 1"
    assert _fork_text(["—", "—"], 0) == "nothing present"
    assert _fork_text(["orig x0 m2 ae0 A", "— swp"], 0) == "shared 1, swap entries 1"


def test_child_after_fork_says_what_the_child_holds_not_what_fork_skipped() -> None:
    fork = {i: r.outcome[COLUMNS[0]] for i, r in ROWS.items()}
    assert fork["s1"] == "swap entries 16" and fork["s2"].startswith("swap entries")
    assert fork["i1"] == fork["i2"] == fork["b1"] == fork["k4"] == "nothing present"


def test_script_text_is_the_script_each_scenario_ran() -> None:
    for sc in SCENARIOS:
        words = lab.script_text(sc.id).split(" · ")
        assert words[0 if sc.pre_write is None else 1] == "fork", sc.id
        reads = [w for w in words if w.startswith(f"child reads {sc.w1} (")]
        assert bool(reads) == sc.child_reads, sc.id
        writes = [w for w in words if "writes" in w and "before fork" not in w]
        want = 2 * (sc.w1 is not None) + 2 * (sc.w2 is not None) + (sc.w3 is not None)
        assert len(writes) == want and "child exits" in words, sc.id
        if sc.w3 is not None:
            assert words[-1].endswith(f"writes {sc.w3}"), sc.id
    assert lab.script_text("j1").count("mprotect(RW)") == 2


def test_every_scenario_has_its_setup_in_words_under_its_row() -> None:
    from pkmm.realkernel.scenarios import ABOUT, LABELS
    assert set(ABOUT) == set(BY_ID)
    t = lab.report_by_topic()
    about = dict(t.about)
    ids = {LABELS.get(i, i): i for i in BY_ID}
    assert all(ABOUT[ids[r[0]]] in about[i] and lab.script_text(ids[r[0]]) in about[i]
               for i, r in enumerate(t.rows))


def test_report_group_and_overview_follow_the_topics() -> None:
    import pytest

    from pkmm.errors import ScenarioError
    from pkmm.realkernel.scenarios import label
    over = lab.report_overview()
    assert len(over.rows) == len(TOPICS)
    for n, (title, _, ids) in enumerate(TOPICS, 1):
        g = lab.report_group(n)
        assert sorted(r[0] for r in g.rows) == sorted(label(i) for i in ids)
        assert len(g.sections) == 1 and g.sections[0][1].startswith(title)
        line = over.rows[n - 1]
        assert line[2] == str(len(ids)) and line[4] == str(len(g.subrows))
        assert line[3] == f"{sum(ROWS[i].agrees for i in ids)}/{len(ids)}"
    for bad in (0, len(TOPICS) + 1, "1"):
        with pytest.raises(ScenarioError, match="report_group"):
            lab.report_group(bad)  # type: ignore[arg-type]


def test_fork_tokens_show_the_uwp_bits_the_k_rows_are_about() -> None:
    t = lab.fork_tokens(("k1", "k2", "k4"))
    k1, k2, k4 = t.rows
    assert all("uwp" in c for c in (k1[2], k1[3], k2[2], k2[3], k2[4]))
    assert "uwp" not in k1[4] and k4[4] == "—"


def test_timing_header_counts_sessions_in_words() -> None:
    lines = lab.stored_timing().splitlines()
    head = " ".join(lines[:3])
    assert " 1 sessions" not in head and "session" in head
    # the header is wrapped by the lab itself, never mid-word by the page
    assert max(len(x) for x in lines[:3]) <= 100


def test_a_displayed_label_never_reads_as_a_token_part() -> None:
    """A scenario's printed label is not the token part "exclusively mapped" (x1/x0) or
    AnonExclusive (ae0/ae1): the MADV_COLLAPSE row, stored as x1, prints as its label in
    the grouped report and in the text report."""
    import re

    from pkmm.realkernel.scenarios import label
    token_part = re.compile(r"^(x[01]|ae[01])$")
    shown = [r[0] for r in lab.report_by_topic().rows]
    assert not any(token_part.match(s) for s in shown)
    assert label("x1") in shown and "x1" not in shown
    assert not any(line.split()[:1] == ["x1"] for line in lab.stored_report().splitlines())


def test_group_without_rows_and_the_folded_answer_hold_them() -> None:
    """A predicted row leaves its group's table and comes back, folded, as the answer;
    the caption says all rows agree and how many are not plain copy-on-write."""
    import pytest

    from pkmm.errors import ScenarioError
    rest = lab.report_group(5, ("h5a", "h7"))
    assert {r[0] for r in rest.rows} == set(TOPICS[4][2]) - {"h5a", "h7"}
    ans = lab.report_answer(("h5a",))
    # the answer row, then the plain row it is judged against (a: 4K pages), not counted
    assert [r[0] for r in ans.rows] == ["h5a", "a"] and ans.subrows
    assert ans.sections[-1] == (1, "the plain row a, which the row above is judged against")
    two = lab.report_answer(("s1", "s2"))
    assert two.sections[-1][1].endswith("which the rows above are judged against")
    assert [r[0] for r in lab.report_answer(("s1", "s2")).rows] == ["s1", "s2", "a", "c"]
    assert [r[0] for r in lab.report_answer(("a", "h5a")).rows] == ["a", "h5a"]
    html = ans._repr_html_()
    assert html.startswith("<details><summary>") and html.endswith("</details>")
    assert not rest._repr_html_().startswith("<details")
    assert ("the model's row agrees with the kernel's; it is not as its plain row a predicts"
            in ans.caption)
    whole = lab.report_by_topic()
    assert f"all {len(whole.rows)} rows agree with the kernel; {len(whole.subrows)} of them" \
        in whole.caption and "differ" not in whole.caption
    for bad in (("a",), ["h5a"], ("nope",)):
        with pytest.raises(ScenarioError, match="without"):
            lab.report_group(5, bad)  # type: ignore[arg-type]
    for bad in ((), ("nope",), "h5a"):
        with pytest.raises(ScenarioError, match="report_answer"):
            lab.report_answer(bad)  # type: ignore[arg-type]


def test_uffd_rows_show_whether_the_child_kept_the_mark_and_lost_is_unexpected() -> None:
    # the group-7 table carries the uwp state it tests, from the stored tokens
    fork = {i: ROWS[i].outcome[COLUMNS[0]] for i in ("k1", "k2", "k3", "k4")}
    assert fork == {"k1": "shared 16, uwp cleared", "k2": "shared 16, uwp kept",
                    "k3": "shared 16, uwp kept", "k4": "nothing present"}
    # keeping the bit is what copying an entry does; losing it is not
    assert lab.unexpected(ROWS["k2"], ROWS["a"]) == ()
    assert lab.unexpected(ROWS["k1"], ROWS["a"]) == (COLUMNS[0],)
    assert "uwp" not in ROWS["a"].outcome[COLUMNS[0]]


def test_shared_mappings_are_judged_against_row_f_not_private_memory() -> None:
    shared = {s.id for s in SCENARIOS if s.shared}
    assert {"f", "k3", "k4", "p3", "t3"} <= shared and not shared & {"a", "c", "g1", "k1"}
    # k3 copies a shared mapping's entries (to carry uwp): unexpected against f
    assert lab.unexpected(ROWS["k3"], ROWS["f"]) == (COLUMNS[0],)
    # k4, p3, t3 do what f does: nothing copied at fork, no write copies
    assert all(lab.unexpected(ROWS[i], ROWS["f"]) == () for i in ("k4", "p3", "t3"))
    t = lab.report_group(7)
    reasons = dict(t.subrows)
    assert sorted(t.rows[i][0] for i in reasons) == ["k1", "k3"]
    assert all(reasons[i].startswith(f"not as in row {_plain(t.rows[i][0])}:")
               for i in reasons)


def test_a_write_before_fork_shows_its_fault_count_from_the_stored_run() -> None:
    from pkmm.realkernel.report import load_stored
    for sc in SCENARIOS:
        if sc.pre_write is None:
            continue
        pre = [s["op"]["faults"] for s in load_stored()["scenarios"][sc.id]["steps"]
               if s["name"] == "parent writes before fork"]
        n = pre[0]
        assert f"before fork ({n} fault{'' if n == 1 else 's'})" in lab.script_text(sc.id)
    assert "(0 faults)" in lab.script_text("mp1") and "(1 fault)" in lab.script_text("mp2")


def test_a_read_shows_its_fault_count_or_signal_from_the_stored_run() -> None:
    """No column shows a read, so the script line carries what it took: 0 faults where
    fork copied the entry, 1 where the child mapped the page itself, or the signal."""
    from pkmm.realkernel.report import load_stored
    for sc in SCENARIOS:
        for s in load_stored()["scenarios"][sc.id]["steps"]:
            if s["op"] and s["op"]["kind"] == "read":
                op = s["op"]
                said = op.get("signal") or \
                    f"{op['faults']} fault{'' if op['faults'] == 1 else 's'}"
                assert f"{s['who']} reads {op['page']} ({said})" in lab.script_text(sc.id)
    assert "child reads 0 (0 faults)" in lab.script_text("b3")
    assert "child reads 0 (1 fault)" in lab.script_text("b1")
    assert "child reads 0 (SIGSEGV)" in lab.script_text("i1")


def test_the_two_marks_look_different_and_each_key_names_its_own() -> None:
    """A row table's red outline (unlike the plain row) and a step table's dashed box (the
    page this step touched) are two meanings: each has its look, and each key its word."""
    rows = lab.report_group(4)
    steps = lab.steps_table("s1")
    assert rows.marks and steps.marks and rows.mark == "differs" and steps.mark == "access"
    rh, sh = rows._repr_html_(), steps._repr_html_()
    assert rh.count(lab.MARK_STYLE["differs"]) == len(rows.marks)
    assert sh.count(lab.MARK_STYLE["access"]) == len(steps.marks)
    assert lab.MARK_STYLE["access"] not in rh and lab.MARK_STYLE["differs"] not in sh
    assert "red outline" in rows.caption and "dashed box" in steps.legend
    assert "dashed box" in lab.swap_steps("s1").legend
    assert lab.swap_steps("s1").mark == "access"


def test_a_group_of_only_plain_rows_is_folded_and_no_other() -> None:
    from pkmm.realkernel.scenarios import TOPICS
    for n, (_, _, ids) in enumerate(TOPICS, 1):
        t = lab.report_group(n)
        plain = (not t.subrows and all(r.agrees for r in lab.stored_rows(ids))
                 and not {"a", "c", "f"} & set(ids))
        assert bool(t.fold) == plain, n
        assert (f"{len(ids)} rows" in t.fold) == plain
        assert ("<details>" in t._repr_html_()) == plain
    assert lab.report_group(2).fold and not lab.report_group(1).fold


def test_swap_in_label_says_copied_while_the_other_process_still_holds_the_slot() -> None:
    """A write on a swap entry is 'copied' exactly when the other (live) process's entry
    for that page is still a swap entry after it, else 'reused'; and a 'reused' page is
    never one the other process maps at that step (it would be shared, not the writer's)."""
    from pkmm.realkernel.report import _cells, load_stored, outcome
    data = load_stored()["scenarios"]
    seen = 0
    for sid in ("s1", "s2"):
        steps = data[sid]["steps"]
        out = outcome(BY_ID[sid], steps)
        last: dict[str, list[str]] = {}
        for s in steps:
            cells = _cells(s)
            if "after child exit" in s["name"]:
                last.pop("child", None)
            col = {"child writes w1 (first writer)": "w1 child",
                   "parent writes w1 (second writer)": "w1 parent",
                   "parent writes w2 (first writer)": "w2 parent",
                   "child writes w2 (second writer)": "w2 child",
                   "parent writes w3 after child exit": "w3 parent"}.get(s["name"])
            if col and s["op"] and last.get(s["who"], cells)[s["op"]["page"]] == "— swp":
                other = last.get("child" if s["who"] == "parent" else "parent")
                mine = cells[s["op"]["page"]].split()[0]
                held = other is not None and other[s["op"]["page"]] == "— swp"
                assert out[col] == ("swap-in, copied" if held else "swap-in, reused"), (sid, col)
                if other is not None and not held:
                    assert other[s["op"]["page"]].split()[0] != mine
                seen += 1
            last[s["who"]] = cells
    assert seen == 9      # s1: 4 writes on swap entries, s2: 5


def test_swap_steps_put_the_models_slot_between_the_kernels_tokens() -> None:
    t = lab.swap_steps("s1")
    rows = {r[0]: r for r in t.rows}
    # one row per step name: the two "after fork" records are one row
    assert [r[0] for r in t.rows].count("after fork") == 1
    assert rows["before fork"][3] == "(no child yet)"
    assert rows["after fork"][1] == rows["after fork"][3] == "— swp"
    assert rows["after fork"][2].startswith("slot named by: parent and child")
    # the child's read drops its own entry: only the parent still names the slot, and the
    # cache keeps the page the child now maps (the same label, from the model's own run)
    assert rows["child reads pg0"][2] == "slot named by: parent · swap cache: holds n1"
    assert rows["child reads pg0"][3].split()[0] == "n1"
    # the parent's write ends the slot: its entry was the last one
    assert rows["parent writes pg0 (second writer)"][2] == "slot freed · swap cache: nothing"
    assert rows["parent after child exit"][3] == "(exited)"
    # the outline is on the writer's column, only for steps that touch the page shown
    k = [r[0] for r in t.rows].index("parent writes pg0 (second writer)")
    assert (k, 1) in t.marks and (k, 3) not in t.marks
    assert not any(r == [r[0] for r in t.rows].index("parent writes pg1 (first writer)")
                   for r, _ in t.marks)
    # s2: the cache keeps a page nobody maps until the parent's write takes it; it gets its
    # name n2 only there, as no name appears before its page
    s2 = {r[0]: r for r in lab.swap_steps("s2").rows}
    assert s2["child writes pg3 (first writer)"][2].endswith("mapped by nobody")
    assert "n2" not in s2["child writes pg3 (first writer)"][2]
    assert s2["parent writes pg3 (second writer)"][1].split()[0] == "n2"


def test_swap_steps_refuse_a_page_that_was_not_swapped_out() -> None:
    import pytest

    from pkmm.errors import ScenarioError
    for bad, word in ((("a",), "not swapped out"), (("nope",), "sid="),
                      (("s1", 99), "page_no=99")):
        with pytest.raises(ScenarioError, match=word):
            lab.swap_steps(*bad)


def test_uffd_grid_axes_come_from_the_setups_and_cells_from_the_stored_tokens() -> None:
    g = lab.uffd_grid()
    assert g.head == ("memory", "no fork events", "fork events")
    cells = {(r[0], g.head[j]): v for r in g.rows for j, v in enumerate(r) if j}
    ids = {k: v.split(":")[0] for k, v in cells.items()}
    assert ids == {("private anonymous", "no fork events"): "k1",
                   ("private anonymous", "fork events"): "k2",
                   ("shmem", "no fork events"): "k4", ("shmem", "fork events"): "k3"}
    # a cell says what the stored child tokens hold, row by row
    from pkmm.realkernel.observe import unrle
    for (_, _), v in cells.items():
        sid = v.split(":")[0]
        child = [unrle(s["cells"]) for s in lab.load_stored()["scenarios"][sid]["steps"]
                 if s["name"] == "after fork" and s["who"] == "child"][0]
        present = [c for c in child if not c.startswith("—")]
        if not present:
            assert v.endswith("no entries (fork copied none)")
        else:
            assert v.endswith("uwp kept" if all("uwp" in c for c in present) else "uwp cleared")


def test_steps_legend_defines_every_word_of_the_access_column() -> None:
    accesses = {r[-1] for sid in ("s1", "c") for r in lab.steps_table(sid).rows if r[-1]}
    words = {w.split("=")[0] + "=" for a in accesses for w in a.split() if "=" in w}
    assert words == {"val=", "faults="}
    assert all(w in lab.STEPS_LEGEND for w in words)


def test_steps_legend_speaks_of_reads_only_where_a_step_reads() -> None:
    # s1's child reads a page: its key says what val= is; c only writes: its key does not
    assert any(r[-1].startswith("read") for r in lab.steps_table("s1").rows)
    s1 = lab.steps_table("s1").legend
    assert "val=" in s1 and "read or wrote" in s1
    c = lab.steps_table("c")
    assert not any(r[-1].startswith("read") for r in c.rows)
    assert "val=" not in c.legend and "read" not in c.legend and "faults=" in c.legend


def test_timing_plot_labels_the_2m_layouts_on_two_lines() -> None:
    import matplotlib
    matplotlib.use("Agg")
    fig = lab.plot_timing()
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert "2M-\npte" in labels and "2M-\npmd" in labels and "4K" in labels
    # each tick, its line break removed, is the layout's name as the timing table prints it
    gib = {r["folio"] for r in records(pooled(load_timing())) if r["size_bytes"] == 1 << 30}
    assert [x.replace("\n", "") for x in labels] == [f for f in lab.FOLIOS if f in gib]
    # every 4K point (the speed-ups' baseline) and every PMD point carries its value
    texts = {t.get_text() for t in fig.axes[0].texts}
    timed = [r for r in records(pooled(load_timing()))
             if r["size_bytes"] == 1 << 30 and r["folio"] in ("4K", "2M-pmd")]
    assert timed and {f"{r['ns_per_page']:.1f} ns" for r in timed} <= texts


def test_steps_table_stops_at_a_step_and_outlines_the_cell_the_text_is_about() -> None:
    """upto= cuts the steps (a picture must not show later steps); about= outlines one page
    of the last row; the colour follows the mapcount: x0 m1 (a PMD entry's head mapcount)
    is a page one process maps, white, as the key says."""
    import pytest

    from pkmm.errors import ScenarioError
    e = lab.steps_table("e", upto="parent view after child wrote w1", about=3)
    assert [r[0] for r in e.rows][-1] == "parent view after child wrote pg3" and len(e.rows) == 5
    assert e.rows[-1][4].startswith("orig x0 m1") and (4, 4) in e.marks
    html = e._repr_html_()
    cell = html.split("parent view after child wrote pg3")[1].split("</tr>")[0]
    assert "#dbe9ff\">orig x0 m2" in cell and "outline:2px" in cell
    assert '<td style="text-align:left;outline' in cell    # the x0 m1 cell: no fill
    for bad in ({"upto": "nope"}, {"about": 2}, {"pages": (999,)}):
        with pytest.raises(ScenarioError, match=next(iter(bad))):
            lab.steps_table("e", **bad)  # type: ignore[arg-type]


def test_pin_decisions_run_the_models_dup_rule_for_each_fact() -> None:
    t = lab.pin_decisions()
    # only the row with all three facts copies; a process never marked shares even a
    # pinned AnonExclusive page (fact 1), and a pinned page that is not AnonExclusive is
    # shared (fact 3); the columns run in the kernel's order, facts 1, 2, 3
    assert [h.split("(fact ")[1][0] for h in t.head[:3]] == ["1", "2", "3"]
    assert [r[-1] for r in t.rows] == ["shares"] * 3 + ["copies it for the child"]
    assert t.rows[0][:3] == ("no", "not asked", "not asked")
    assert t.rows[1][:3] == ("yes", "no", "not asked") and "not asked" in str(t)
    assert t.rows[2][:3] == ("yes", "yes", "no")
    assert t.rows[3][:3] == ("yes", "yes", "yes") and "<table" in t._repr_html_()


def test_token_key_names_only_the_parts_the_given_scenarios_show() -> None:
    import pytest

    from pkmm.errors import ScenarioError
    from pkmm.realkernel.observe import unrle
    data = lab.load_stored()["scenarios"]
    parts = {p for p, *_ in lab.TOKEN_KEY}
    full = {r[0] for r in lab.token_key().rows}
    assert full == parts        # the stored run shows every part the key knows
    c = {r[0] for r in lab.token_key(("c",)).rows}
    # c is private anonymous 64K folios: no zero page, swap, uffd-wp, hugetlb or file page
    assert not c & {"zero", "hzero", "— swp", "uwp", "huge", "Z", "F", "x0 m0", "x0 m1"}
    assert {"orig, n1, n2, …", "x1 / x0", "ae1 / ae0", "A", "H", "T", "thp"} <= c
    assert "huge" in {r[0] for r in lab.token_key(("c", "t1")).rows}
    # a part is kept exactly when some token of the scenario has it
    words = {lab._words(t) for st in data["k1"]["steps"] for t in unrle(st["cells"])}
    assert ("uwp" in {r[0] for r in lab.token_key(("k1",)).rows}) == any("uwp" in w
                                                                          for w in words)
    assert lab._words("orig x0 m2 ae0 uwp A·T·thp") == (
        "orig", "x0", "m2", "ae0", "uwp", "A", "T", "thp")
    with pytest.raises(ScenarioError, match="token_key"):
        lab.token_key(("nope",))


def test_swap_picture_is_titled_with_the_page_it_follows() -> None:
    t = lab.swap_steps("s1")
    assert t.caption.endswith(f"page {BY_ID['s1'].w1} (w1) at each step")


def test_a_speed_up_within_the_noise_of_its_own_difference_is_not_printed() -> None:
    from pkmm.realkernel.calibrate import render
    row = {"folio": "2M-pmd", "size_bytes": 1 << 28, "mode": "repeat", "net_ns": 60_000,
           "median_ns": -210_000, "ns_per_page": 0.9, "ns_per_folio": 481, "speedup": 72.05,
           "layout": "ok"}
    assert "noise" in render([row]) and "72.05x" not in render([row])
    assert "72.05x" in render([{**row, "median_ns": 70_000}])


def test_step_roles_are_kept_only_where_the_page_is_shared() -> None:
    """'first writer' only on a write to a page both processes still map (or hold a swap
    entry for); 'second writer' only after the other process's first write to that page."""
    from pkmm.realkernel.observe import unrle
    t1 = [r[0] for r in lab.steps_table("t1").rows]
    assert "child writes pg3 (first writer)" in t1 and "parent writes pg3 (second writer)" in t1
    # the child's copy of the whole hugetlb page leaves nobody sharing w2
    assert "parent writes pg5" in t1 and "child writes pg5" in t1
    c = [r[0] for r in lab.steps_table("c").rows]
    assert "parent writes pg5 (first writer)" in c and "child writes pg5 (second writer)" in c
    for sid in ("a", "c", "t1", "s1", "h7", "b1"):
        steps = lab.load_stored()["scenarios"][sid]["steps"]
        seen: dict[str, list[str]] = {}
        firsts: dict[int, str] = {}
        for s, row in zip(steps, lab.steps_table(sid).rows, strict=True):
            page = s["op"]["page"] if s["op"] else None
            if row[0].endswith("(first writer)"):
                views = [seen[w][page] for w in ("parent", "child")]
                assert len({v.split()[0] for v in views}) == 1 or "swp" in "".join(views)
                firsts[page] = s["who"]
            if row[0].endswith("(second writer)"):
                assert firsts[page] not in (s["who"], None)
            seen[s["who"]] = unrle(s["cells"])


def test_token_key_says_new_pages_are_counted_shown_or_not() -> None:
    # t1 shows n1, n4, n6, n8, n512: the numbers count the pages no column shows
    row = [r for r in lab.steps_table("t1").rows if r[0].startswith("child writes pg3")][0]
    assert [c.split()[0] for c in row[2:7]] == ["n1", "n4", "n6", "n8", "n512"]
    # said once, in the token key; each steps table's legend points to it
    assert "shown or not" not in lab.STEPS_LEGEND and "token key" in lab.STEPS_LEGEND
    assert "Pages a table does not show are numbered too" in dict(
        lab.token_key(("t1",)).rows)["orig, n1, n2, …"]


def test_token_key_speaks_of_the_swap_cache_only_where_a_token_is_swapped() -> None:
    from pkmm.realkernel.observe import unrle
    data = lab.load_stored()["scenarios"]
    swapped = [i for i in data if any("swp" in t for st in data[i]["steps"]
                                      for t in unrle(st["cells"]))]
    assert swapped and "c" not in swapped and "t1" not in swapped
    label = "orig, n1, n2, …"
    assert "swap cache" in dict(lab.token_key((swapped[0],)).rows)[label]
    assert "swap cache" not in dict(lab.token_key(("c", "t1")).rows)[label]


def _walk(flow: lab.PinFlow, answers: tuple[str, ...]) -> str:
    """Follow the picture with one row's answers: the first "no" ends it."""
    for q, a in enumerate(answers):
        if a == "no":
            return flow.on_no[q]
    return flow.on_yes


def test_pin_flow_ends_where_each_row_of_pin_decisions_ends() -> None:
    flow = lab.pin_flow()
    t = lab.pin_decisions()
    assert flow.questions == t.head[:3]            # the kernel's order: facts 1, 2, 3
    for row in t.rows:
        answers = tuple(a for a in row[:3] if a != lab.NOT_ASKED)
        assert _walk(flow, answers) == row[-1]
    html = flow._repr_html_()
    # drawn in order: each question before the next, the copy after the last question
    at = [html.index(q.replace("'", "&#x27;")) for q in flow.questions]
    assert at == sorted(at) and html.rindex("copies it for the child") > at[-1]
    assert html.count("fork shares") == 3 and "<svg" in html and "http" not in html
    assert str(flow).splitlines()[-1].endswith("fork copies it for the child")


def test_pin_flow_reads_the_rows_so_a_changed_rule_changes_the_picture(monkeypatch) -> None:
    import pytest

    from pkmm.errors import ScenarioError
    t = lab.pin_decisions()
    flipped = tuple((*r[:-1], "copies it for the child" if r[-1] == "shares" else "shares")
                    for r in t.rows)
    monkeypatch.setattr(lab, "pin_decisions", lambda: dataclasses.replace(t, rows=flipped))
    flow = lab.pin_flow()
    assert flow.on_no == ("copies it for the child",) * 3 and flow.on_yes == "shares"
    monkeypatch.setattr(lab, "pin_decisions", lambda: dataclasses.replace(t, rows=t.rows[1:]))
    with pytest.raises(ScenarioError, match="question 1"):
        lab.pin_flow()


def test_folio_strip_reads_h7s_set_up_from_the_model() -> None:
    strip = lab.folio_strip("h7")
    # the throwaway fork cleared every mark; the parent's rewrite of page 5 reused it and
    # marked it alone; the io_uring pin is on page 5, and the folio counts one pin
    assert strip.cells() == tuple("ae1 pin" if i == 5 else "ae0" for i in range(16))
    assert strip.pinned == {5} and strip.pincount == 1 and strip.first == 0
    html = strip._repr_html_()
    assert html.count("pg") == 16 and html.count("outline:3px") == 1 and "http" not in html
    assert "pg5:ae1 pin" in str(strip)
    # the next folio of h7 holds no pin; a set-up without a throwaway fork keeps every mark
    # (c), and h2's pin sits on its page 3 of folio 0
    nxt = lab.folio_strip("h7", 1)
    assert nxt.first == 16 and not nxt.pinned and nxt.pincount == 0 and not any(nxt.exclusive)
    assert all(lab.folio_strip("c").exclusive) and not lab.folio_strip("c").pinned
    assert lab.folio_strip("h2").pinned == {3}


def test_folio_strip_refuses_an_unknown_scenario_or_folio() -> None:
    import pytest

    from pkmm.errors import ScenarioError
    with pytest.raises(ScenarioError, match="sid='zz'.*use one of"):
        lab.folio_strip("zz")
    with pytest.raises(ScenarioError, match="folio=9.*use 0..3"):
        lab.folio_strip("h7", 9)


def test_step_names_follow_each_scenarios_own_script() -> None:
    """The probe names its steps after the generic script (w1, w2, w3); a table names the
    scenario's own pages, and the parent's view names a child's write only if there was
    one: c2's child writes nothing, and its one write is the parent's, to pg16."""
    c2 = [r[0] for r in lab.steps_table("c2").rows]
    assert c2[3] == "parent view, child still running"
    assert c2[-1] == "parent writes pg16 after child exit"
    assert not any("w1" in n or "w3" in n or "wrote" in n for n in c2)
    for sid in lab.BY_ID:
        for (name, who, *_cells), s in zip(lab.steps_table(sid).rows,
                                          lab.load_stored()["scenarios"][sid]["steps"],
                                          strict=True):
            if s["op"]:
                assert f"pg{s['op']['page']}" in name and who == s["who"]
            assert not any(f"w{k}" in name.split() for k in (1, 2, 3))


def test_a_differing_row_names_each_observable_that_differs() -> None:
    from pkmm.realkernel.report import Diff, Row
    r = Row("a", "t", diffs=[Diff("after fork", "child", "pg3", "n1", "orig", ""),
                             Diff("parent writes w1 (second writer)", "parent", "op", "1", "0",
                                  "")])
    text = lab.differ_text(r)
    assert text.startswith("DIFFER in 2 observables: ")
    assert "pg3 at 'after fork' [child]" in text and "the access (value, faults) at" in text


def test_rows_mp1_mp2_are_not_named_like_mapcounts_and_old_ids_still_load() -> None:
    """m1/m2 read like the token's mapcounts: the rows are mp1/mp2, and a results file saved
    with the old ids (the stored run is one) loads under the new ones."""
    import json

    from pkmm.realkernel.report import RENAMED, STORED
    raw = json.loads(STORED.read_text())["scenarios"]
    data = lab.load_stored()["scenarios"]
    assert {"mp1", "mp2"} <= set(data) and not {"m1", "m2"} & set(data)
    for old, new in RENAMED.items():
        assert new in lab.BY_ID and old not in lab.BY_ID
        if old in raw:
            assert data[new] == raw[old]
    assert {r.id for r in lab.stored_rows()} == set(lab.BY_ID)


def test_hugetlb_is_taught_in_notebook_09_and_new_there() -> None:
    """Group 9 (hugetlb) is taught in notebook 09 (t1): the reference page's overview says
    so, and notebook 09's own answer table calls it new in that notebook."""
    over = {r[0]: r[1] for r in lab.report_overview().rows}
    assert over["9. hugetlb pages"] == "notebook 09"
    assert over["6. MADV_DONTFORK and MADV_WIPEONFORK"] == "this page"
    assert "new in this notebook" in str(lab.report_answer(("t1",)))
    assert "taught in notebook 09" in str(lab.report_group(9))


def test_upto_takes_the_name_the_table_shows() -> None:
    shown = lab.steps_table("e", upto="parent writes pg3 (second writer)")
    stored = lab.steps_table("e", upto="parent writes w1 (second writer)")
    assert shown.rows == stored.rows and shown.rows[-1][0] == "parent writes pg3 (second writer)"
    assert len(shown.rows) < len(lab.steps_table("e").rows)


def test_hugetlb_flag_is_huge_not_ht_and_old_files_still_load(tmp_path: Path) -> None:
    """`HT` read like `H` (head) + `T` (tail): the hugetlb flag is `huge` (KPF_HUGE) in the
    key and every token, and a results file saved with `HT` loads with `huge`."""
    import json

    from pkmm.realkernel.observe import PageObs, unrle
    from pkmm.realkernel.report import STORED, load_stored
    assert PageObs(anon=True, head=True, hugetlb=True).flags() == "A·H·huge"
    t1 = {t for s in lab.load_stored()["scenarios"]["t1"]["steps"] for t in unrle(s["cells"])}
    assert all(t.split()[-1].split("·")[-1] == "huge" for t in t1)
    assert "huge" in {r[0] for r in lab.token_key(("t1",)).rows}
    raw = json.loads(STORED.read_text())
    old = json.loads(json.dumps(raw, ensure_ascii=False).replace("·huge\"", "·HT\""))
    assert old != raw
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    assert load_stored(path)["scenarios"]["t1"] == load_stored()["scenarios"]["t1"]


def test_folio_mappers_follows_both_processes_from_the_stored_tokens() -> None:
    """Scenario c's folio 0, step by step: each write by a process takes that page away
    from it (the other keeps the original), the child's exit takes all of its pages, and a
    row names the page its step wrote (outlined)."""
    import pytest

    from pkmm.errors import ScenarioError
    t = lab.folio_mappers("c")
    rows = {r[0]: r for r in t.rows}
    assert t.head[2:] == tuple(f"pg{i}" for i in range(16))
    assert rows["after fork"][2:] == ("P C",) * 16 and rows["after fork"][1] == "16 of 16"
    w1 = rows["child writes pg3 (first writer)"]
    assert w1[1] == "15 of 16" and w1[5] == "P" and w1[2:5] == ("P C",) * 3
    assert rows["parent writes pg3 (second writer)"][5] == "—"
    assert rows["parent writes pg5 (first writer)"][7] == "C"
    assert rows["child writes pg5 (second writer)"][1] == "14 of 16"
    gone = rows["parent after child exit"]
    assert gone[1] == "0 of 16" and set(gone[2:]) == {"P", "—"} and gone[5] == gone[7] == "—"
    assert len(t.rows) == len(rows)       # a view that changed nothing is not repeated
    last = len(t.rows) - 1
    assert (last, 2 + 7) in t.marks and (1, 2 + 3) in t.marks
    with pytest.raises(ScenarioError, match="no large folio"):
        lab.folio_mappers("a")
    with pytest.raises(ScenarioError, match="folio=9"):
        lab.folio_mappers("c", folio=9)


def test_folio_moments_draws_both_page_tables_from_the_stored_tokens() -> None:
    """The picture of section 2 of notebook 09: at each moment, each process's PTE maps the
    original page or its own copy, as the stored tokens say; the folio row is folio_mappers'
    row of that step; after the exit the child has no page table."""
    import pytest

    from pkmm.errors import ScenarioError
    from pkmm.realkernel.observe import unrle
    pic = lab.folio_moments("c")
    assert [m.step for m in pic.moments] == ["after fork", "child writes pg5 (second writer)",
                                            "parent after child exit"]
    fork, second, gone = pic.moments
    assert fork.parent == fork.child == ("orig",) * 16
    steps = lab.load_stored()["scenarios"]["c"]["steps"]
    child = [unrle(s["cells"]) for s in steps if s["who"] == "child"][-1]
    parent = [unrle(s["cells"]) for s in steps if s["name"] == "parent writes w2 (first writer)"][0]
    assert second.child == tuple(t.split()[0] for t in child[:16])
    assert second.parent == tuple(t.split()[0] for t in parent[:16])
    assert second.parent[3] != second.child[3] and second.parent[3].startswith("n")
    assert gone.child is None and gone.parent == second.parent
    rows = {r[0]: r[2:] for r in lab.folio_mappers("c").rows}
    assert all(m.folio == rows[m.step] for m in pic.moments)
    assert [i for i, w in enumerate(second.folio) if w == "—"] == [3, 5]
    html_ = pic._repr_html_()
    assert html_.count("exited") == 1 and "after fork" in str(pic) and ">n4<" in html_
    with pytest.raises(ScenarioError, match="'w9' names no step of c"):
        lab.folio_moments("c", ("w9",))
    with pytest.raises(ScenarioError, match="no large folio"):
        lab.folio_moments("a")


def test_a_group_with_an_example_keeps_that_row_open_and_folds_every_row() -> None:
    """report_group(n, example=...): the example row (with its outlines and its reason)
    shows before the <details>; every row of the group is inside it; a bad example is an
    error that names the argument."""
    import pytest

    from pkmm.errors import ScenarioError
    from pkmm.realkernel.scenarios import label
    for n, (_, _, ids) in enumerate(TOPICS, 1):
        ex = ids[-1]
        t = lab.report_group(n, example=ex)
        page = t._repr_html_()
        before, _, inside = page.partition("<details>")
        assert inside, n
        # exactly the example row open: its cells, its grey set-up line, its reason if any
        assert f">{label(ex)}<" in before and before.count("<tr>") == 1 + 1 + 1 + any(
            i == t.preview[0] for i, _ in t.subrows), n
        assert all(f">{label(i)}<" in inside for i in ids), n
        assert str(t) == str(lab.report_group(n)) and f"all {len(ids)} rows" in t.fold
    h2 = lab.report_group(5, example="h2")
    before = h2._repr_html_().partition("<details>")[0]
    assert "outline:2px" in before and "not as in row" in before       # its outline and reason
    assert ">h1<" not in before
    for bad in ("zz", "a", 3):
        with pytest.raises(ScenarioError, match="example"):
            lab.report_group(5, example=bad)  # type: ignore[arg-type]


def test_headline_counts_what_the_overview_counts() -> None:
    """The reference page's headline is the overview's columns summed, not typed in."""
    ov = lab.report_overview().rows
    rows = lab.stored_rows()
    agree = sum(int(r[3].split("/")[0]) for r in ov)
    odd = sum(int(r[4]) for r in ov)
    text = lab.headline()
    assert f"{agree} of {len(rows)} scenarios agree" in text and f"in {len(ov)} groups" in text
    assert f"\n{odd} of the {len(rows)} are not as their plain row" in text


def test_script_departures_are_the_scenarios_that_leave_the_usual_order() -> None:
    # expected from the scenario definitions, the table from the stored steps
    dep = dict(lab.script_departures().rows)
    for sc in SCENARIOS:
        odd = (None in (sc.w1, sc.w2, sc.w3) or sc.child_reads or sc.pre_write is not None
               or sc.writer_mprotect)
        assert (sc.id in dep) == bool(odd), sc.id
        if sc.id in dep:
            assert ("no w2 parent" in dep[sc.id]) == (sc.w2 is None), sc.id
            assert ("no w3 parent" in dep[sc.id]) == (sc.w3 is None), sc.id
            assert (f"adds: child reads {sc.w1}" in dep[sc.id]) == sc.child_reads, sc.id
            assert ("before fork" in dep[sc.id]) == (sc.pre_write is not None), sc.id
    assert lab.script_departures().caption.startswith(f"the {len(dep)} of {len(SCENARIOS)} ")


def test_a_group_can_show_the_plain_rows_its_red_lines_cite() -> None:
    """cited=True: every plain row a group's rows are judged against is in the table, and
    with an example it is open beside it (a red "not as in row a" line has row a in
    sight); the fold still counts only the group's own rows."""
    import pytest

    from pkmm.errors import ScenarioError
    from pkmm.realkernel.scenarios import label
    for n, (_, _, ids) in enumerate(TOPICS, 1):
        plain = {_plain(i) for i in ids}
        t = lab.report_group(n, cited=True)
        shown = [r[0] for r in t.rows]
        assert plain <= set(shown) and len(shown) == len(ids) + len(plain - set(ids))
        assert not plain - set(ids) or t.sections[-1][1].startswith("the plain row")
        ex = lab.report_group(n, example=ids[-1], cited=True)
        open_rows = {ex.rows[i][0] for i in ex.preview}
        assert open_rows == plain | {label(ids[-1])}
        assert f"all {len(ids)} rows of group {n}" in ex.fold
        html = ex._repr_html_()
        assert html.index("judged against") < html.index("<details>")
    # without cited the group holds its own rows only
    assert [r[0] for r in lab.report_group(4).rows] == ["g1", "g2", "g3", "g4", "f"]
    with pytest.raises(ScenarioError, match="cited"):
        lab.report_group(1, cited="yes")  # type: ignore[arg-type]


def test_plain_rows_are_the_rows_every_other_row_is_judged_against() -> None:
    t = lab.plain_rows()
    assert [r[0] for r in t.rows] == sorted({_plain(s.id) for s in SCENARIOS})
    assert not t.subrows and not t.fold and t.caption.endswith("all 3 agree with the kernel")


def test_headline_names_the_build_where_the_reader_first_meets_it() -> None:
    first, note = lab.headline().splitlines()[:2]
    build = first.split("Linux ", 1)[1].split(",", 1)[0]
    assert note == f'("{build}" only names the kernel build the run used.)'


def test_batch_fit_text_prints_the_fit_and_a_measured_4k_page() -> None:
    fit = lab.batch_fit("fresh")
    rule, one = lab.batch_fit_text().splitlines()
    assert rule.startswith(f"{fit['per_batch_ns']:.0f} ns per folio + {fit['per_pte_ns']:.1f} ns")
    assert one.startswith(f"a batch of one: {fit['per_batch_ns'] + fit['per_pte_ns']:.0f} ns;")
    assert "(1 GiB, FRESH)" in one
    with pytest.raises(StoredDataError, match="size_bytes=12345"):
        lab.batch_fit_text(size_bytes=12345)


def test_fork_batches_end_only_at_a_vma_border_or_a_folio_end() -> None:
    """The model's copy calls in the cut-up rows: none crosses a VMA border, and each ends
    at a VMA's end or its folio's end (j3's differing write bits end none)."""
    import pytest

    from pkmm.errors import ScenarioError
    from pkmm.realkernel.layouts_model import BASE, P, build
    from pkmm.realkernel.report import stored_kernel
    for sid in ("j2", "j3", "r1"):
        vmas = build(BY_ID[sid], stored_kernel(lab.load_stored())).vmas
        ends = {(v.vm_end - BASE) // P for v in vmas}
        calls = [r for r in lab.fork_batches((sid,)).rows]
        assert calls and all(r[0] == sid for r in calls)
        for _, span, what, why in calls:
            lo, _, hi = span.removeprefix("pg").partition("–pg")
            first, last = int(lo), int(hi or lo)
            assert what == f"shares {last - first + 1} PTE" + ("s" if last > first else "")
            inside = [v for v in vmas if v.vm_start <= BASE + first * P < v.vm_end]
            assert BASE + (last + 1) * P <= inside[0].vm_end, (sid, span)
            assert (last + 1) in ends or (last + 1) % 16 == 0, (sid, span, why)
    assert len(lab.fork_batches(("j3",)).rows) == 4          # one call per 64K folio
    with pytest.raises(ScenarioError, match="ids"):
        lab.fork_batches(("zz",))


def test_swap_steps_set_the_models_column_apart_from_the_kernels() -> None:
    t = lab.swap_steps("s1")
    assert t.model_cols == frozenset({2}) and "(model)" in t.head[2]
    cells = re.findall(r"<t[dh] style=\"([^\"]*)\"", t._repr_html_())
    width = len(t.head)
    head, body = cells[:width], cells[width:]
    # the model's column, and only it, is italic on grey: head and every row
    assert ["italic" in c for c in head] == [j == 2 for j in range(width)]
    rows = [body[k:k + width] for k in range(0, len(body), width)
            if len(body[k:k + width]) == width]
    assert rows and all(("font-style:italic" in c) == (j == 2)
                        for r in rows for j, c in enumerate(r))
    assert lab.MODEL_BG in head[2] and "model's column" in t.legend


def test_timing_picture_draws_both_fits_and_says_so_in_its_alt_text() -> None:
    """09-report's plot: a fit line per state (FRESH and REPEAT), and an alt text that names
    every plotted point and both fits, so the static page does not show nbconvert's
    placeholder."""
    import matplotlib
    matplotlib.use("Agg")
    fig = lab.plot_timing()
    fits = [t for t in fig.axes[0].get_legend_handles_labels()[1] if " fit: " in t]
    assert [f.split()[0] for f in fits] == ["fresh", "repeat"]
    pic = lab.timing_picture()
    gib = [r for r in records(pooled(load_timing())) if r["size_bytes"] == 1 << 30]
    assert all(f"{r['folio']} {r['ns_per_page']:.1f}" in pic.alt for r in gib)
    for mode in ("fresh", "repeat"):
        fit = lab.batch_fit(mode)
        assert f"{fit['per_batch_ns']:.0f} ns per folio + {fit['per_pte_ns']:.1f} ns" in pic.alt
    assert pic._repr_html_().startswith('<img alt="Line chart') and pic._repr_png_()
