"""pkmm.processlab (notebook 10's helpers): the close-up region of this process, the view
without root, and the stand-ins where /proc cannot be read."""

from __future__ import annotations

import os
import re
import sys

import pytest

from pkmm import processlab as lab
from pkmm.errors import LayoutError

LINUX = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def _kinds(sc) -> list[str]:
    """Per page of the close-up's one VMA: what the snapshot found there."""
    start, n = sc.vmas[0]["start"], sc.vmas[0]["npages"]
    out = ["none"] * n
    for r in sc.runs:
        for i in range(r["npages"]):
            out[(r["addr"] - start >> 12) + i] = "anon"
    for z in sc.zero:
        for i in range(z["npages"]):
            out[(z["addr"] - start >> 12) + i] = "zero"
    return out


@LINUX
@pytest.mark.parametrize("privileged", [True, False])
def test_close_up_is_what_was_done_to_the_region(privileged: bool) -> None:
    sc, where = lab.close_up(8, privileged=privileged)
    assert "of this process" in where and len(sc.vmas) == 1
    assert _kinds(sc) == ["anon"] * 4 + ["zero"] * 2 + ["none"] * 2
    if not privileged:
        assert not sc.source["kpageflags"] and not sc.source["pfns_visible"]
    elif os.geteuid() == 0:
        assert sc.source["kpageflags"] and sc.source["pfns_visible"]


def test_close_up_stand_in_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lab.sys, "platform", "emscripten")
    sc, where = lab.close_up(12)
    assert "stand-in" in where and "emscripten" in where
    assert _kinds(sc) == ["anon"] * 6 + ["zero"] * 3 + ["none"] * 3
    assert any("written by hand" in a for a in sc.approximations)


@pytest.mark.parametrize("n", [0, 3, 65, 8.0, True, "8"])
def test_close_up_bad_size_names_the_argument(n: object) -> None:
    with pytest.raises(LayoutError, match="npages="):
        lab.close_up(n)  # type: ignore[arg-type]


@LINUX
def test_this_process_without_root_says_what_it_guessed() -> None:
    sc, where = lab.this_process(privileged=False)
    assert "without root" in where
    assert not sc.source["pfns_visible"] and not sc.source["kpageflags"]
    assert any("folio sizes unknown" in a for a in sc.approximations)


def test_this_process_stand_in_off_linux(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lab.sys, "platform", "emscripten")
    sc, where = lab.this_process()
    assert where.startswith("stored snapshot") and sc.vmas


def test_check_asks_first_and_never_shows_the_answer_unasked() -> None:
    from pkmm.scenario import Scenario
    sc = Scenario.from_dict({"vmas": [{"start": 0x200000, "npages": 2, "anon_vma": True},
                                      {"start": 0x400000, "npages": 1, "backing": "file"}],
                             "runs": [{"addr": 0x200000, "npages": 2}]})
    asked = lab.check("copied", ..., sc)
    assert asked.startswith("? ") and "replace the ..." in " ".join(asked.split())
    assert "answer is" not in asked and "1" not in asked
    assert lab.check("copied", 1, sc).startswith("Right")
    assert "the answer is 1" in lab.check("copied", 2, sc)


def test_versions_line_reports_what_differs_between_the_cow_versions() -> None:
    from pkmm.forksim import forksim
    from pkmm.scenario import Scenario
    base = 0x40000000
    # 64 pages as four 64K folios: batching takes 4 calls where v6.8 takes 64
    sc = Scenario.from_dict({"name": "t", "vmas": [{"start": base, "npages": 64,
                                                     "anon_vma": True}],
                             "runs": [{"addr": base, "npages": 64, "order": 4}]})
    _, rows = forksim(sc)
    line = lab.versions_line(rows)
    assert line.startswith("the 4 copy-on-write versions (apart: (largest - smallest) / "
                           "largest):\n  PTEs written 64..64 (0.0% apart)")
    assert f"batches      4..64 ({60 / 64:.1%} apart)" in line
    assert "eager" not in line
    assert "nothing to compare" in lab.versions_line(rows[:1])
    # the batch sizes in words: v6.8 copies every PTE alone, batching takes 16 at a time
    said = {ln.split(":")[0]: ln for ln in lab.batches_lines(rows)}
    assert set(said) == {"v6.8", "batch-v3", "v6.9", "v6.17"}
    assert said["v6.8"] == "v6.8: 64 of 64 calls copy 1 PTE (100.0%); longest 1; batch scans 0"
    assert said["v6.17"] == "v6.17: 0 of 4 calls copy 1 PTE (0.0%); longest 16; batch scans 4"


def test_large_folio_process_is_a_real_snapshot_where_batching_differs() -> None:
    from pkmm.forksim import forksim
    from pkmm.kernels import BATCHING_KERNELS
    sc = lab.large_folio_process()
    # the file says how it was made, and kpageflags saw 64 KiB (order-4) folios
    assert "MADV_HUGEPAGE" in sc.description and "pkmm snapshot" in sc.description
    assert sc.source["kpageflags"] and sc.source["folio_orders"].get("4", 0) >= 1024
    _, rows = forksim(sc)
    by = {r.kernel: r for r in rows}
    # the same PTEs in every copy-on-write version; batching needs fewer calls
    assert len({r.ptes_copied for r in rows}) == 1
    for k in BATCHING_KERNELS:
        assert by[k].batches < by["v6.8"].batches
        assert by[k].batch_sizes.get(16, 0) >= 1024


def test_full_key_folds_every_printed_counter() -> None:
    from pkmm.context import OP_MEANINGS
    from pkmm.forksim import forksim, shown_counters
    _, rows = forksim(lab.large_folio_process(), ("v6.8", "v6.17"))
    key = lab.full_key(rows)
    html = key._repr_html_()
    assert html.startswith("<details>") and html.endswith("</details>")
    flat = " ".join(repr(key).split())
    assert all(" ".join(OP_MEANINGS[k].split()) in flat for k in shown_counters(rows))


def test_map_has_one_bar_per_region_split_by_fork_s_decision() -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    sc = lab.large_folio_process()
    copied = lab.copied_vmas(sc)
    pages = lab._pages(sc)
    rows = lab.map_kinds(sc)
    # every VMA in exactly one region; the halves count the copy decision of each VMA
    assert sum(r[1] + r[3] for r in rows) == len(sc.vmas)
    for name, cv, cp, nv, np_ in rows:
        mine = [i for i, v in enumerate(sc.vmas) if lab.region(v) == name]
        assert cv == sum(copied[i] for i in mine) and nv == len(mine) - cv
        assert cp == sum(pages[i] for i in mine if copied[i])
        assert np_ == sum(pages[i] for i in mine if not copied[i])
    by = {r[0]: r for r in rows}
    # fork never copies shared memory; raw PFN maps it always copies
    assert by["shared file"][1] == 0 and by["raw PFN map"][3] == 0
    # one grouping on the page: the bars are the table's lines, with its VMA counts
    table = {ln[:14].strip(): (int(ln[14:].split()[0]), int(ln[14:].split()[3]))
             for ln in lab.vma_table(sc).splitlines()[2:]}
    assert {name: (cv + nv, cv) for name, cv, _, nv, _ in rows} == table
    fig = lab.plot_map(sc)
    ax = fig.axes[0]
    orange, blue = (matplotlib.colors.to_rgba(c) for c in ("tab:orange", "tab:blue"))
    bars = [p for p in ax.patches if p.get_facecolor() in (orange, blue)]
    # two segments per region, as long as its copied and its other VMAs
    assert sorted(round(p.get_width()) for p in bars if p.get_facecolor() == orange) == \
        sorted(r[1] for r in rows)
    assert sorted(round(p.get_width()) for p in bars if p.get_facecolor() == blue) == \
        sorted(r[3] for r in rows)
    # the first region on top
    ticks = sorted(ax.get_yticklabels(), key=lambda t: -t.get_position()[1])
    assert [t.get_text() for t in ticks] == [r[0] for r in rows]
    # every text readable at native size
    assert min(t.get_fontsize() for t in ax.texts + ax.get_yticklabels()) >= 11
    # the VMA axis ends at the longest bar; the room past it is for the counts
    most = max(r[1] + r[3] for r in rows)
    assert max(ax.get_xticks()) <= most < ax.get_xlim()[1]
    plt.close(fig)


def test_lockbreak_lines_apply_the_progress_rule_to_the_totals() -> None:
    from pkmm.forksim import forksim
    from pkmm.memory import PROGRESS_BREAK, PROGRESS_ENTRY, PROGRESS_NONE
    sc, rows = forksim(lab.large_folio_process())
    copied = lab.copied_vmas(sc)
    # every page table's loop restarts progress at 0: at most one slice per 512 pages of a
    # copied VMA, plus one for a VMA that does not start on a table boundary
    slices = sum(-(-v["npages"] // 512) + 1 for v, c in zip(sc.vmas, copied, strict=True) if c)
    lines = lab.lockbreak_lines(rows)
    # variants with equal totals share a line, so each variant is named on exactly one
    named = [k for ln in lines for k in ln.split(":")[0].split(", ")]
    assert sorted(named) == sorted(r.kernel for r in rows)
    assert len(lines) == len({(r.ops["pte_writes"], r.ops["pte_reads"],
                               r.ops["lockbreak_checks"]) for r in rows}) < len(rows)
    for r in rows:
        line = next(ln for ln in lines if r.kernel in ln.split(":")[0].split(", "))
        writes, reads = r.ops["pte_writes"], r.ops["pte_reads"]
        bound = (PROGRESS_ENTRY * writes + PROGRESS_NONE * (reads - writes)) // PROGRESS_BREAK
        checks = r.ops["lockbreak_checks"]
        assert line.split("=")[1].split(";")[0].strip() == str(bound)
        assert line.split("lockbreak_checks ")[1] == f"{checks}, within that upper bound"
        assert checks <= bound
        if r.batches == r.ptes_copied:          # one PTE per step: the bound is nearly met
            assert bound - checks <= slices
        else:                                   # a batch passes one check, however long
            assert checks < bound - slices


def test_copied_share_is_multiple_choice_over_the_process_s_own_counts() -> None:
    from pkmm.scenario import Scenario
    # three VMAs, one copied: a third -> C ("a third to two thirds")
    sc = Scenario.from_dict({"vmas": [{"start": 0x200000, "npages": 2, "anon_vma": True},
                                      {"start": 0x400000, "npages": 1, "backing": "file"},
                                      {"start": 0x600000, "npages": 1, "backing": "file"}],
                             "runs": [{"addr": 0x200000, "npages": 2}]})
    offered = lab.choices("copied-share", sc)
    assert [c[0] for c in offered] == list("ABCDE")
    assert offered[2] == "C: a third to two thirds (1 to 1 of 3 VMAs)"
    assert offered[4] == "E: all of them (3 of 3 VMAs)"
    asked = lab.check("copied-share", ..., sc)
    assert all(c in asked for c in offered) and "a letter" in asked and "Right" not in asked
    assert lab.check("copied-share", "c", sc).startswith("Right (C)")
    assert "the answer is C" in lab.check("copied-share", "E", sc)
    assert "one of A, B" in lab.check("copied-share", "7", sc)
    # the choices cover every count exactly once
    big = lab.large_folio_process()
    spans = [c.split("(")[1].split(" of")[0].split(" to ")
             for c in lab.choices("copied-share", big)]
    edges = [(int(s[0]), int(s[-1])) for s in spans]
    assert edges[0][0] == 0 and edges[-1] == (len(big.vmas), len(big.vmas))
    assert all(b[0] == a[1] + 1 for a, b in zip(edges, edges[1:], strict=False))


def test_short_table_and_details_carry_the_rows_numbers() -> None:
    from pkmm.forksim import forksim
    sc, rows = forksim(lab.large_folio_process())
    table = lab.short_table(rows).splitlines()
    assert len(table) == len(rows) + 1
    for line, r in zip(table[1:], rows, strict=True):
        assert line.split()[:4] == [r.kernel, f"{r.ptes_copied:,}", f"{r.batches:,}",
                                    f"{r.pages_copied:,}"]
    folded = lab.details(sc, rows)
    assert folded._repr_html_().startswith("<details>")
    # where v6.9 reads more PTEs than v6.17, the appendix says why, with the trace's count
    by = {r.kernel: r for r in rows}
    more = by["v6.9"].ops["pte_reads"] - by["v6.17"].ops["pte_reads"]
    flat = " ".join(repr(folded).split())
    assert more > 0 and f"v6.9 reads {more:,} more PTEs than v6.17" in flat
    same = [r for r in rows if r.kernel != "v6.9"]
    assert "more PTEs than" not in repr(lab.details(sc, same))
    # the 3b report: the same short table, both prices and the batch lines, folded
    report = lab.large_folio_report(sc, rows)
    assert report._repr_html_().startswith("<details>")
    # the student's part first: the short table and the prices; the counters a student has
    # not met yet (lock-break arithmetic, batch lines) sit in a fold of their own inside it
    student, engineer = report.parts
    assert isinstance(student, str) and isinstance(engineer, lab.Folded)
    assert lab.short_table(rows) in student
    for k in ("v6.8", "v6.17"):
        assert all(ln in student for ln in lab.price_lines(sc, k))
    assert all(ln in engineer.text and ln not in student
               for ln in lab.batches_lines(rows) + lab.lockbreak_lines(rows))
    assert "lockbreak" not in student and "EAGAIN" not in student
    assert engineer._repr_html_() in report._repr_html_()
    # no line of the student's part is wider than the page's 88 columns
    assert max(len(ln) for ln in student.splitlines()) <= 88
    by = {r.kernel: r for r in rows}
    assert f"gain v6.8 -> v6.17: {by['v6.8'].predicted_ms / by['v6.17'].predicted_ms:.2f}x" \
        in student
    # the layout's guesses are not repeated there: the page prints them once
    assert not any(a.split(":")[0] in folded.text for a in sc.approximations)


def test_large_folio_notes_explain_the_differences_from_the_trace() -> None:
    from pkmm.forksim import forksim
    sc, rows = forksim(lab.large_folio_process())
    by = {r.kernel: r for r in rows}
    stops, kinds = lab.batch_stops(sc, "v6.9")
    # v6.9's extra reads are exactly its batches that ran into their folio's end, whatever
    # stopped them there (v6.17 caps a scan at its folio's end and reads nothing past it)
    past = lab.scans_past_folio_end(sc, "v6.9")
    more = by["v6.9"].ops["pte_reads"] - by["v6.17"].ops["pte_reads"]
    assert sum(past.values()) == more and past["folio-end"] == stops["folio-end"]
    assert lab.scans_past_folio_end(sc, "v6.17") == {}
    assert sum(stops.values()) == by["v6.9"].ops["batch_scans"]
    # scan by scan: both kernels make the same batches; a v6.9 scan reads past its folio
    # exactly where v6.17's cap ends it at the folio's end and v6.9 had PTEs left to read
    def scans(kernel: str) -> dict[int, object]:
        return {e.addr: e for e in lab.traced_fork(sc, kernel).trace if e.rule.startswith("stop:")}
    old, new = scans("v6.9"), scans("v6.17")
    assert old.keys() == new.keys() and all(old[a].nr == new[a].nr for a in old)
    assert sum(1 for a in old if old[a].get("read_past")) == more
    assert all(bool(old[a].get("read_past")) == (new[a].rule == "stop:folio-end"
                                                 and old[a].rule != "stop:range-end")
               for a in old)
    assert by["v6.17"].ops["batch_scans"] == by["v6.9"].ops["batch_scans"]
    # the kinds, read from the counters, agree with the trace's own rmap calls (named as
    # in the kernel: folio_try_dup_anon_rmap_ptes(), folio_dup_file_rmap_ptes() ...)
    from pkmm.fork import fork
    trace = fork(sc.build()[0], "v6.9").trace
    assert kinds["anon"] == sum(1 for e in trace if "dup_anon_rmap" in e.func)
    assert kinds["file"] == sum(1 for e in trace if "dup_file_rmap" in e.func)
    assert sum(kinds.values()) == by["v6.9"].batches and kinds["file"] and kinds["by value"]
    flat = " ".join(" ".join(lab.large_folio_notes(sc, rows, "v6.9", "v6.17")).split())
    assert f"reads {more:,} more PTEs" in flat and f"{sum(past.values()):,} ran to the end" in flat
    assert f"{kinds['file']:,} shared page-cache folios" in flat


def test_guesses_changed_names_what_replaces_a_dropped_guess() -> None:
    from pkmm.scenario import Scenario
    root = Scenario.from_dict({"vmas": [], "approximations": [
        "AnonExclusive of tail pages: the head's flag", "pins: none"]})
    user = Scenario.from_dict({"vmas": [], "approximations": [
        "AnonExclusive not visible: from bit 56", "pins: none", "folio sizes unknown"]})
    lines = lab.guesses_changed(root, user)
    assert lines[:2] == ["  - AnonExclusive not visible: from bit 56",
                         "  - folio sizes unknown"]
    assert "no longer needed" in lines[2] and "AnonExclusive not visible\" above" in lines[2]


def test_price_lines_spell_out_the_sum_the_cost_model_predicts() -> None:
    from pkmm import costmodel
    from pkmm.forksim import forksim
    sc, rows = forksim(lab.large_folio_process())
    for r in rows:
        lines = lab.price_lines(sc, r.kernel)
        assert lines[-2].endswith(f"({r.predicted_ms:.2f} ms in the tables)")
        assert lines[-1].startswith("  no price for: ")
        terms = [ln for ln in lines if " x " in ln]
        # the printed terms add up to the printed sum exactly, and that sum is the model's
        # prediction to the rounding of each term
        total = sum(float(ln.split("=")[1].split()[0]) for ln in terms)
        shown = float(lines[-2].split()[1])
        assert f"{total:.3f}" == f"{shown:.3f}"
        assert abs(shown - r.predicted_ms) <= 0.0005 * len(terms) + 1e-9
        f = costmodel.scenario_counts(sc, r.kernel)
        assert f"{f['pte_writes']:,} x " in "\n".join(terms)
        prices = lab.price_lines(sc, r.kernel, sums=False)
        assert not any(" x " in ln or "sum:" in ln for ln in prices)
        assert len(prices) == len(lines) - 2        # the same prices, without the sum
    v68, v617 = (next(r for r in rows if r.kernel == k) for k in ("v6.8", "v6.17"))
    # the same count at the same price prints the same product in both kernels' lines
    # (v6.8 and v6.17 write the same PTEs, at the same mix of the two fits)
    pte_line = [next(ln for ln in lab.price_lines(sc, r.kernel) if "PTEs written" in ln)
                for r in (v68, v617)]
    assert pte_line[0] == pte_line[1]
    # batching prices its batch scans; v6.8 never scans
    assert "batch scans" in "\n".join(lab.price_lines(sc, v617.kernel))
    assert "batch scans" not in "\n".join(lab.price_lines(sc, v68.kernel))


def test_vma_table_counts_the_zero_page_entries_of_the_copied_vmas() -> None:
    from pkmm.forksim import forksim
    sc = lab.large_folio_process()
    rows = [ln.split() for ln in lab.vma_table(sc).splitlines()[2:]]
    their, zero = sum(int(r[-2]) for r in rows), sum(int(r[-1]) for r in rows)
    copied = lab.copied_vmas(sc)
    in_copied = sum(z["npages"] if isinstance(z, dict) else 1 for z in sc.zero
                    if any(c and v["start"] <= (z["addr"] if isinstance(z, dict) else z)
                           < v["start"] + v["npages"] * 4096
                           for v, c in zip(sc.vmas, copied, strict=True)))
    assert zero == in_copied > 0
    # eager-copy copies every counted page of the copied VMAs but the zero-page entries
    _, frows = forksim(sc)
    assert next(r for r in frows if r.kernel == "eager-copy").pages_copied == their - zero


@LINUX
def test_raw_view_prints_smaps_lines_and_decodes_one_pagemap_entry() -> None:
    lines = lab.raw_view("libc.so")
    heads = [ln for ln in lines if not ln.startswith(" ") and "libc.so" in ln]
    assert heads and all(ln.split()[1][-1] == "p" for ln in heads)      # private mappings
    assert sum(ln.startswith("  VmFlags:") for ln in lines) == len(heads)
    entry = int(next(ln for ln in lines if ln.startswith("pagemap entry")).split()[-1], 16)
    bit = {ln.split()[2]: int(ln.split("(")[0].split()[-1]) for ln in lines
           if ln.startswith("  bit ")}
    # a 0 in bit 56 of a present page says why: another entry maps the page too
    excl = next(ln for ln in lines if ln.startswith("  bit 56"))
    assert ("another page-table entry" in excl) is (bit["mapped"] == 0)
    # each printed bit is the entry's own: a library's first page is a present file page
    assert bit["present"] == entry >> 63 == 1 and bit["file"] == entry >> 61 & 1 == 1
    assert bit["mapped"] == entry >> 56 & 1 and bit["uffd-wp"] == entry >> 57 & 1
    assert "nothing to show" in lab.raw_view("no-such-library.so")[0]


def test_price_lines_print_both_fits_and_the_share_that_mixes_them() -> None:
    from pkmm import costmodel
    sc = lab.large_folio_process()
    f = costmodel.scenario_counts(sc, "v6.17")
    w = costmodel.writable_share(f)
    lines = lab.price_lines(sc, "v6.17", sums=False)
    assert f"{w:.1%} of the copied PTEs" in lines[0] and f"{w:.3f} times its FRESH" in lines[2]
    pte = next(ln for ln in lines if "PTEs written" in ln)
    mixed = float(pte.split()[2])
    fresh = float(pte.split("FRESH ")[1].split(",")[0])
    repeat = float(pte.split("REPEAT ")[1].rstrip(")"))
    # a reader redoing the mix from the printed share and fits gets the printed price
    assert abs(round(w, 3) * fresh + (1 - round(w, 3)) * repeat - mixed) < 0.06
    assert fresh != repeat


def test_anon_pages_line_joins_the_summary_s_count_to_the_table_s() -> None:
    sc = lab.large_folio_process()
    line = " ".join(lab.anon_pages_line(sc).split())
    nums = [int(w.replace(",", "")) for w in line.replace("(", " ").split()
            if w.replace(",", "").isdigit()]
    total, in_anon, mapped, zero, in_file = nums
    # the summary's count, the table's private anon mapped pages and zero-page entries
    assert total == sc.source["pages"]["anon"]
    tab = {ln[:14].strip(): ln[14:].split() for ln in lab.vma_table(sc).splitlines()[2:]}
    assert mapped == int(tab["private anon"][2]) and zero == int(tab["private anon"][-1])
    # the parts add up: no swap here, so the private anon VMAs' other entries are zero pages
    assert in_anon == mapped - zero and in_anon + in_file == total and in_file > 0
    assert "private file VMAs" in line


def test_vma_count_key_reconciles_the_overlapping_vma_counts() -> None:
    from pkmm import costmodel
    sc = lab.large_folio_process()
    c = costmodel.scenario_counts(sc, "v6.17")
    key = lab.vma_count_key(sc, c)
    both = sum(1 for v in sc.vmas if v.get("anon_vma") and v.get("backing") != "anon")
    neither = sum(1 for v in sc.vmas if not v.get("anon_vma") and v.get("backing") == "anon")
    # the counts overlap: anon_vmas + file_vmas is not vmas, and the key says by how much
    assert both > 0 and c["anon_vmas"] + c["file_vmas"] != c["vmas"]
    assert c["anon_vmas"] + c["file_vmas"] - both + neither == c["vmas"]
    assert key[-1].endswith(f"= {c['vmas']:,} = vmas") and f"the {both:,} private file" in key[2]
    # the never-written ones are the table's private anon VMAs that fork does not copy
    anon = [c for v, c in zip(sc.vmas, lab.copied_vmas(sc), strict=True)
            if lab.kind(v) == "private anon"]
    assert f"= {len(anon) - sum(anon):,}):" in key[-2] and len(anon) - sum(anon) == neither


def test_large_folio_lines_count_each_folio_once_by_where_fork_meets_it() -> None:
    sc = lab.large_folio_process()
    lines = lab.large_folio_lines(sc)
    counts = {int(ln.split()[1]): [int(x.replace(",", "")) for x in
                                   ln.split(":")[1].split("|")] for ln in lines[1:]}
    # every large folio of the snapshot's summary is counted, once
    assert {str(o): a + b for o, (a, b) in counts.items()} == {
        k: v for k, v in sc.source["folio_orders"].items() if k != "0"}
    # the 64K folios of the array are in a VMA fork copies; the 16K ones never are
    assert counts[4] == [2047, 0] and counts[2][0] == 0


def test_fork_gap_lines_price_the_snapshot_both_ways_and_split_the_gap() -> None:
    from pkmm import costmodel
    sc = lab.large_folio_process()
    f = costmodel.scenario_counts(sc, "v6.17")
    priced = costmodel.predict_seconds(f) * 1e3
    # every entry read-only: the same counts at the REPEAT fits, which are cheaper here
    repeat = costmodel.predict_seconds(f, baseline=True) * 1e3 - sum(
        n * (each - rep) for _, n, each, _, rep in costmodel.price_terms(f)) / 1e6
    lines = lab.fork_gap_lines(sc, "v6.17", 10.0)
    assert lines[0].split()[-2] == f"{priced:.2f}" and lines[1].split()[-2] == f"{repeat:.2f}"
    assert repeat < priced
    flat = " ".join(" ".join(lines).split())
    # the timed forks were REPEAT forks: the share and the gap are taken against that price
    assert f"the page-table copy is {repeat / 10:.0%} of the measured" in flat
    assert f"{10 - round(repeat, 2):.2f} ms have no price" in flat
    assert f"{priced - repeat:.2f} ms more: that narrows the gap" in flat
    hint = " ".join(" ".join(lab.fork_hint_lines(sc, "v6.17")).split())
    assert f"priced REPEAT {repeat:.2f} ms" in hint and "VMAs" in hint
    # the share is named by the one choice it falls in, and the choices cover every share
    for measured, words in ((repeat * 1.2, "over two thirds"), (repeat * 2, "a third to two"),
                            (repeat * 4, "under a third")):
        assert f"({words}" in " ".join(lab.fork_gap_lines(sc, "v6.17", measured))
    # where fork cannot be timed the lines say so and compare nothing
    assert "cannot be timed" in lab.fork_gap_lines(sc, "v6.17", None)[-1]


def test_unpriced_split_lines_bound_the_fixed_part_by_the_stored_baseline_fork() -> None:
    from pkmm import costmodel
    from pkmm.realkernel.calibrate import load
    sc = lab.large_folio_process()
    f = costmodel.scenario_counts(sc, "v6.17")
    priced = costmodel.predict_seconds({**f, "wrprotected": 0}) * 1e3   # REPEAT, as timed
    base = round(min(r["baseline_min_ns"] for r in load()["runs"]) / 1e6, 2)
    lines = lab.unpriced_split_lines(sc, "v6.17", 10.0)
    # the gap is fork_gap_lines' unpriced part; the stored baseline fork is taken out of it,
    # and the printed figures subtract exactly
    gap = 10 - round(priced, 2)
    assert lines[0].split()[-2] == f"{gap:.2f}" and lines[1].split()[-2] == f"{base:.2f}"
    assert lines[6].split()[-2] == f"{gap - base:.2f}"
    assert f"{gap:.2f}" in " ".join(lab.fork_gap_lines(sc, "v6.17", 10.0))
    flat = " ".join(" ".join(lines).split())
    assert f"{f['vmas']:,} VMAs" in flat and f"{f['page_tables']:,} page tables" in flat
    assert f"section 2's {sum(lab.copied_vmas(sc)):,} copied" in flat
    assert f"at most {(gap - base) / f['vmas'] * 1e3:.1f} µs per VMA" in flat
    # a measured fork no dearer than the priced part and the baseline: nothing left to spread
    small = lab.unpriced_split_lines(sc, "v6.17", priced + base / 2)
    assert "fits within" in small[-1] and not any("per VMA" in ln for ln in small)
    assert lab.unpriced_split_lines(sc, "v6.17", None) == []


def test_folded_view_hides_text_and_pictures_and_closes_the_figure() -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pkmm.errors import LayoutError
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    ax.set_title("copied 190 of 415")
    view = lab.FoldedView("open me", "10 of 20 VMAs", fig)
    html = view._repr_html_()
    # everything sits inside the fold: nothing of the answer comes before <details>
    assert html.startswith("<details><summary>open me</summary>") and html.endswith("</details>")
    assert "10 of 20 VMAs" in html and "<svg" in html
    # the figure's words are SVG text a static page's reader can read, not glyph outlines
    assert re.search(r"<text[^>]*>copied 190 of 415</text>", html)
    assert not plt.fignum_exists(fig.number)         # not drawn a second time, unfolded
    assert repr(view).startswith("open me\n10 of 20 VMAs")
    with pytest.raises(LayoutError, match="at least one part"):
        lab.FoldedView("empty")


def test_folded_text_asks_for_the_code_font() -> None:
    """JupyterLab's output CSS would give a folded <pre> the proportional page font and
    misalign its columns; every fold's <pre> names the code font itself."""
    from pkmm import processlab as pl
    for html in (pl.Folded("t", "a  b\n1  2")._repr_html_(),
                 pl.FoldedView("t", "a  b")._repr_html_()):
        pres = html.count("<pre")
        assert pres and html.count("font-family: var(--jp-code-font-family") == pres
