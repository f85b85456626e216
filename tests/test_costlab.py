"""08's fit summary: the speed-up error is taken over every size the table shows."""

from __future__ import annotations

import re

import pytest

from pkmm import costlab, costmodel
from pkmm.errors import LayoutError


def test_speed_up_error_covers_every_row_and_names_the_worst() -> None:
    f = costmodel.fit()
    text = costlab.render_fit(f)
    # each bound is printed on the line after the sizes it covers
    lines = [a + b for a, b in zip(text.splitlines(), text.splitlines()[1:], strict=False)
             if "speed-up error" in a]
    gib = [r for r in f.rows if r["kind"] == "folio" and r["size_bytes"] == costmodel.GIB
           and r["label"] != "4K"]
    for trained, word in ((True, "fitted"), (False, "held out")):
        group = [r for r in gib if r["trained"] == trained]
        line = next(ln for ln in lines if f", {word} (" in ln)
        named = re.search(r"\(([^;]*);", line)
        assert named is not None
        # every size of the group is named, none left out
        assert named.group(1).split(", ") == list(dict.fromkeys(r["label"] for r in group))
        worst = max(group, key=lambda r: abs(r["speedup_predicted"] - r["speedup_measured"]))
        bound = abs(worst["speedup_predicted"] - worst["speedup_measured"])
        # a unit beside the number: a ratio of speed-ups, not a % like the time errors
        signed = worst["speedup_predicted"] - worst["speedup_measured"]
        assert f"largest error {bound:.2f}x, either sign ({worst['label']} " \
            f"{worst['mode']}: predicted - measured = {signed:+.2f}x)" in line
        # the bound really bounds every row of the group, as printed
        assert all(abs(r["speedup_predicted"] - r["speedup_measured"]) <= bound for r in group)


def test_repeat_fork_write_protects_no_pte_but_every_pmd() -> None:
    # copy_present_ptes() write-protects only a writable batch (is_cow_mapping() &&
    # pte_write()); copy_huge_pmd() calls pmdp_set_wrprotect() whatever the PMD was
    for folio in ("4K", "64K", "2M-pte", "2M-pmd"):
        fresh, repeat = (costlab.ops_table(16 << 20, ("v6.17",), (folio,), mode)[0]
                         for mode in ("fresh", "repeat"))
        pmds = fresh.get("pmd_copies", 0)
        assert fresh["wrprotect_calls"] == (pmds or fresh["set_ptes_calls"]) > 0
        assert repeat.get("wrprotect_calls", 0) == pmds
        # everything the cost model prices is counted alike in both modes
        for key in ("pte_writes", "set_ptes_calls", "batch_scans", "pmd_copies"):
            assert fresh.get(key, 0) == repeat.get(key, 0), (folio, key)


def test_ops_table_rejects_an_unknown_mode() -> None:
    with pytest.raises(LayoutError, match="mode must be one of"):
        costlab.ops_table(2 << 20, mode="warm")


def test_pictures_carry_an_alt_text_made_from_their_data() -> None:
    pytest.importorskip("matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = costlab.ops_table(16 << 20, ("v6.8", "v6.17"), ("4K", "64K"))
    before = set(plt.get_fignums())      # other tests' figures may still be open
    pic = costlab.ops_picture(rows)
    html = pic._repr_html_()
    assert html.startswith('<img alt="Bar chart') and "base64," in html
    # every bar's value is in the text, and the figure is closed (no second, alt-less copy)
    assert "4K: v6.8 4,096, v6.17 4,096; 64K: v6.8 4,096, v6.17 256." in pic.alt
    assert set(plt.get_fignums()) <= before
    f = costmodel.fit()
    worst = max((r for r in f.rows if r["kind"] == "folio" and r["size_bytes"] == costmodel.GIB),
                key=lambda r: abs(r["rel_err"]))
    alt = costlab.fit_picture(f).alt
    assert f"Largest error at 1 GiB: {worst['label']} {worst['mode'].upper()} 1024 MiB" in alt
    # the text is escaped into the attribute: a quote cannot end it
    fig = matplotlib.pyplot.figure()
    assert 'alt="a &quot;b&quot; &lt;c&gt;"' in costlab.Picture(fig, 'a "b" <c>')._repr_html_()


def test_ops_chart_tells_kernels_apart_without_colour_and_zeros_once_per_group() -> None:
    # a reader could not tell the bars' colours apart: each kernel's bars get their own
    # hatching, and a layout where no kernel makes the count says so once, not per bar
    pytest.importorskip("matplotlib")
    rows = [{"kernel": k, "folio": f, "set_ptes_calls": n}
            for k, per in (("v6.8", (4096, 0)), ("v6.9", (256, 0)), ("v6.17", (0, 0)))
            for f, n in zip(("64K", "2M-pmd"), per, strict=True)]
    fig = costlab.plot_ops(rows)
    ax = fig.axes[0]
    hatches = {p.get_hatch() or "" for p in ax.patches}
    assert len(hatches) == 2                      # the two kernels with bars, told apart
    texts = [t.get_text() for t in ax.texts]
    assert texts.count("0 for every kernel") == 1    # the 2M-pmd group
    assert texts.count("0") == 1                   # v6.17 at 64K, beside bars of others


def test_the_every_kernel_zero_overlaps_no_bar() -> None:
    # the label of an empty group stands in its own slot: drawn across, it lay over the
    # last bar of the group beside it (08's chart, 2M-pte then 2M-pmd)
    pytest.importorskip("matplotlib")
    from pkmm.costlab import ops_table
    fig = costlab.plot_ops(ops_table(16 << 20))
    fig.canvas.draw()
    ax = fig.axes[0]
    r = fig.canvas.get_renderer()
    label = next(t for t in ax.texts if t.get_text() == "0 for every kernel")
    box = label.get_window_extent(r)
    bars = [p.get_window_extent(r) for p in ax.patches]
    assert bars and not any(box.overlaps(b) for b in bars)
