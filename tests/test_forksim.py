"""python -m pkmm forksim: one layout forked under every variant, counts equal to the
traced model's, on a scenario file and on a process the test starts."""

from __future__ import annotations

import json
import sys

import pytest
from realproc import target

import pkmm
from pkmm import forksim as fs
from pkmm.kernels import KERNELS
from pkmm.scenario import Scenario

BASE = 0x40000000
LAYOUT = {
    "name": "mixed",
    "vmas": [{"start": BASE, "npages": 128, "anon_vma": True},
             {"start": BASE + 0x200000, "npages": 32, "backing": "file", "anon_vma": True}],
    "runs": [{"addr": BASE, "npages": 64, "order": 4},            # four 64K folios
             {"addr": BASE + 64 * 4096, "npages": 16},            # 4K pages
             {"addr": BASE + 0x200000, "npages": 31, "backing": "file", "write": False,
              "dirty": False},
             {"addr": BASE + 0x200000 + 31 * 4096, "npages": 1}],
    "zero": [{"addr": BASE + 80 * 4096, "npages": 8}],
}


@pytest.fixture(scope="module")
def rows() -> dict[str, fs.VariantFork]:
    _, out = fs.forksim(Scenario.from_dict(LAYOUT))
    return {r.kernel: r for r in out}


def test_every_variant_reports_what_the_traced_model_counts(rows) -> None:
    assert list(rows) == list(KERNELS)
    for k, r in rows.items():
        p, _ = Scenario.from_dict(LAYOUT).build()
        t = pkmm.fork(p, kernel=k, detail=False)
        assert r.ops == dict(sorted(t.ops.items())), k
        assert r.batch_sizes == dict(sorted(t.batch_sizes.items())), k
        assert (r.pages_copied, r.eagain) == (t.copies, t.eagain), k
        assert r.child_rss["MM_ANONPAGES"] == t.child.rss["MM_ANONPAGES"], k
        assert r.child_vmas == len(t.child.vmas) == 2


def test_batches_follow_the_variants(rows) -> None:
    # v6.8 copies one PTE per call; the batching variants take each 64K folio at once
    assert rows["v6.8"].batch_sizes == {1: rows["v6.8"].ptes_copied}
    for k in ("batch-v3", "v6.9", "v6.17"):
        assert rows[k].batch_sizes.get(16) == 4, k
        assert rows[k].batches == rows["v6.8"].batches - 4 * 15, k
    # every variant copies every present PTE of both copied VMAs
    assert {r.ptes_copied for r in rows.values()} == {64 + 16 + 8 + 32}


def test_eager_copy_copies_pages_and_costs_more(rows) -> None:
    assert rows["eager-copy"].pages_copied > 0
    assert all(rows[k].pages_copied == 0 for k in KERNELS if k != "eager-copy")
    assert rows["v6.8"].predicted_ms > rows["v6.17"].predicted_ms > 0   # more calls
    # a count no stored timing priced is named, and the prediction marked a lower bound
    from pkmm import costmodel
    priced = all(costmodel.fit().prices[m].get("ns_per_page_copy", 0) > 0
                 for m in costmodel.MODES)
    assert ("page_copies" in rows["eager-copy"].unpriced) is not priced
    assert "page_copies" not in rows["v6.17"].unpriced
    text = fs.render(fs.forksim(Scenario.from_dict(LAYOUT), ("eager-copy",))[0],
                     [rows["eager-copy"]])
    # alone in the table, eager-copy's unpriced count is common to every row: a lower bound
    marked = f"at least {rows['eager-copy'].predicted_ms:.2f}" in text
    assert marked is bool(rows["eager-copy"].unpriced)
    # beside a version that has no such count, it prints no time at all
    both = fs.render(Scenario.from_dict(LAYOUT), [rows["eager-copy"], rows["v6.17"]])
    eager_line = next(ln for ln in both.splitlines() if ln.startswith("eager-copy "))
    assert ("not priced" in eager_line) is bool(rows["eager-copy"].unpriced)
    assert (f"{rows['eager-copy'].predicted_ms:.2f}" in both) is not bool(
        rows["eager-copy"].unpriced)
    assert priced or "page_copies" in text.split("lower bound")[1]


def test_forksim_of_a_live_process() -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("needs /proc (Linux)")
    with target() as (pid, regions):
        sc, out = fs.forksim(pid, ("v6.8", "v6.17"))
    assert [r.kernel for r in out] == ["v6.8", "v6.17"]
    text = fs.render(sc, out)
    assert text.startswith(f"forksim: pid {pid} (") and "approximates" in text
    # MADV_DONTFORK leaves the child without that VMA
    assert out[1].child_vmas == len(sc.vmas) - sum(1 for v in sc.vmas if v.get("dontfork"))


def test_cli_json_and_bad_arguments(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "layout.json"
    path.write_text(json.dumps(LAYOUT))
    assert fs.main([str(path), "--kernel", "v6.9,v6.17", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [v["kernel"] for v in out["variants"]] == ["v6.9", "v6.17"]
    assert {"ptes_copied", "batch_sizes", "pages_copied", "eagain", "ops", "predicted_ms",
            "child_rss"} <= set(out["variants"][0])
    assert fs.main([str(path)]) == 0
    assert "batch sizes" in capsys.readouterr().out
    for argv, msg in (([str(path), "--kernel", "v5"], "--kernel"),
                      ([str(tmp_path / "nope.json")], "does not exist"),
                      ([str(path), "--rounds", "0"], "--rounds")):
        assert fs.main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("pkmm forksim: error:") and msg in err and "Traceback" not in err


def test_forksim_of_a_process_seen_without_root() -> None:
    from realproc import in_child, nobody

    from pkmm.realkernel import snapshot
    uid = nobody()
    if uid is None:
        pytest.skip("needs root to drop to 'nobody'")
    with target(as_user=uid) as (pid, _):
        d = in_child(lambda: snapshot(pid).to_dict(), as_user=uid)
    sc, out = fs.forksim(Scenario.from_dict(d), ("v6.8", "v6.17"))
    assert not sc.source["pfns_visible"]
    # without kpageflags every PTE-mapped page is its own 4K folio: no batch above 1
    assert set(out[1].batch_sizes) == {1} and out[0].batches == out[1].batches
    assert "folio sizes unknown" in fs.render(sc, out)


def test_every_printed_counter_is_defined_under_the_table(rows) -> None:
    from pkmm.context import OP_MEANINGS
    text = fs.render(Scenario.from_dict(LAYOUT), list(rows.values()))
    key = " ".join(text.split("\nkey:\n")[1].split())     # wrapped lines joined again
    shown = {k for r in rows.values() for k, v in r.ops.items() if v}
    assert shown <= set(OP_MEANINGS), shown - set(OP_MEANINGS)
    for k in shown:
        assert f"{k} {' '.join(OP_MEANINGS[k].split())}" in key, k
    for col in fs.COLUMNS:
        assert col in text.split("\n")[1] and f"{col} {fs.COLUMNS[col]}" in key, col


def test_no_line_wraps_on_a_static_page_and_counters_read_one_per_line(rows) -> None:
    # a static notebook page wraps a long output line wherever it hits the edge, also
    # inside a number: every line fits, and each counter is a row with one number per variant
    sc = Scenario.from_dict(LAYOUT)
    sc.approximations.append("a guess " * 30)            # long prose is wrapped at words
    text = fs.render(sc, list(rows.values()))
    assert max(len(ln) for ln in text.splitlines()) <= fs.WIDTH
    ops = text.split("\noperations")[1].split("\nkey:")[0].splitlines()
    assert ops[1].split() == list(rows)
    for ln in ops[2:]:
        name, *nums = ln.split()
        assert nums == [str(r.ops.get(name, 0)) for r in rows.values()], name
    # the child's rss is printed in pages, so a difference of a few pages shows
    first = next(ln for ln in text.splitlines() if ln.startswith("v6.17 "))
    rss = rows["v6.17"].child_rss
    assert first.split()[-1] == f"{rss['MM_ANONPAGES']}/{rss['MM_FILEPAGES']}/" \
                                f"{rss['MM_SHMEMPAGES']}"


def test_a_count_only_one_variant_leaves_unpriced_is_printed_beside_it(rows) -> None:
    # eager-copy's page copies are its main cost: when no timing prices them, the table
    # must print how many, so its small lower bound cannot read as a cheaper fork
    text = fs.render(Scenario.from_dict(LAYOUT), list(rows.values()))
    eager = rows["eager-copy"]
    own = [k for k in eager.unpriced if k not in rows["v6.17"].unpriced]
    line = [ln for ln in text.splitlines() if ln.startswith("  eager-copy: ")]
    if not own:
        assert not line
        return
    assert own == ["page_copies"] and eager.unpriced_counts["page_copies"] == eager.pages_copied
    lines = text.splitlines()
    at = lines.index(line[0])
    entry = [line[0]] + [ln for ln in lines[at + 1:at + 3] if ln.startswith("    ")]
    assert " ".join(entry).split() == (
        f"  eager-copy: not priced: {eager.pages_copied:,} page_copies, its main work; no "
        "time is printed, since the priced rest alone would read as the cheapest fork").split()
    assert not any(ln.startswith("  v6.17: ") for ln in text.splitlines())


def test_rss_updates_count_the_same_thing_in_every_variant() -> None:
    """rss_updates is one per counted page (or batch of them) plus one add_mm_rss_vec()
    per pass, in every variant: eager-copy's copied pages count as v6.8's shared ones."""
    from pkmm.forksim import forksim
    from pkmm.scenario import Scenario
    a = 0x7F0000000000
    sc = Scenario.from_dict({"name": "rss", "vmas": [{"start": a, "npages": 64,
                                                      "anon_vma": True}],
                             "runs": [{"addr": a, "npages": 40}],
                             "zero": [{"addr": a + 40 * 4096, "npages": 8}]})
    _, rows = forksim(sc, ("eager-copy", "v6.8"))
    eager, v68 = rows
    passes = v68.ops.get("passes", 1)
    assert v68.ops["rss_updates"] == 40 + passes
    assert eager.ops["rss_updates"] == v68.ops["rss_updates"]
    assert eager.pages_copied == 40


def test_the_short_key_defines_only_the_counters_that_tell_versions_apart(rows) -> None:
    from pkmm.context import OP_MEANINGS
    from pkmm.kernels import COW_KERNELS
    rs = list(rows.values())
    text = fs.render(Scenario.from_dict(LAYOUT), rs, key="differs")
    key = " ".join(text.split("\nkey (")[1].split("pred ms:")[0].split())
    cow = [r for r in rs if r.kernel in COW_KERNELS]
    for k in fs.shown_counters(rs):
        tells = (len({r.ops.get(k, 0) for r in cow}) > 1
                 or not any(r.ops.get(k) for r in cow))
        assert (" ".join(OP_MEANINGS[k].split()) in key) == tells, k
    assert fs.differing_counters(rs)           # the layout has large folios: some differ
    with pytest.raises(ValueError, match="key="):
        fs.render(Scenario.from_dict(LAYOUT), rs, key="short")
