"""The cost model in the lab: predict-then-check questions, operation tables and figures.

Teaching layer over :mod:`pkmm.costmodel` (re-exported here, so a notebook needs one
import): every number shown is counted by the model or read from this machine's stored
timings, never written in.
Taught in: notebooks/08-cost.ipynb
"""

from __future__ import annotations

from typing import Any

from .costmodel import (
    FOLIOS,
    GIB,
    MEMMAP_RAMP,
    MODES,
    PRICED,
    Fit,
    fit,
    fork_counts,
    held_out,
    predict_seconds,
    stored_fork_seconds,
)
from .errors import LayoutError
from .figure import Picture
from .kernels import COW_KERNELS

__all__ = ["MEMMAP_RAMP", "PRICED", "QUESTIONS", "Picture", "check", "cold_price_note", "fit",
           "fit_picture", "fork_counts", "held_out", "ops_picture", "ops_table",
           "plot_fit", "plot_ops", "predict_seconds", "render_fit", "render_ops",
           "stored_fork_seconds"]


# --- predict, then check (notebooks/08-cost.ipynb) -------------------------------------

QUESTIONS = {
    "calls-64K": ("How many set_ptes() calls does v6.17 make to fork 1 GiB of 64K folios?",
                  16384),
    "scans-4K": ("How many batch scans does v6.9 do to fork 1 GiB of 4K pages?", 0),
    "pmd-speedup": ("About how many times faster than 4K pages is forking 1 GiB of "
                    "PMD-mapped 2M THPs (REPEAT)? Give a whole number.", None),
}
EXPLAIN = {
    "calls-64K": "every 64K folio is 16 PTEs with equal bits in one PMD slice, so "
                 "folio_pte_batch_flags() returns 16 each time: 262144 / 16 = 16384 "
                 "calls, one per folio (batches never cross a folio or a PMD slice).",
    "scans-4K": "an order-0 folio never enters the batch path: copy_present_ptes() checks "
                "folio_test_large() first and keeps the small-folio path separate, so 4K "
                "pages cost exactly what they cost before batching (no regression).",
    "pmd-speedup": "copy_huge_pmd() copies one PMD entry per 2 MiB (512 of them) instead "
                   "of 512 PTEs per 2 MiB (262144 in all): {pmd_us:.2f} us per PMD against "
                   "{pte_ns:.0f} ns per 4K page, {four_ms:.2f} ms / {pmd_ms:.2f} ms.",
}


def _pmd_answer() -> tuple[int, str]:
    """The stored REPEAT speed-up of PMD-mapped 2M THPs over 4K pages (1 GiB)."""
    four, pmd = (stored_fork_seconds(GIB, f, "repeat") for f in ("4K", "2M-pmd"))
    if not four or not pmd:
        return 0, "no stored timing of this machine"
    return round(four / pmd), EXPLAIN["pmd-speedup"].format(
        pmd_us=pmd * 1e6 / 512, pte_ns=four * 1e9 / 262144, four_ms=four * 1e3,
        pmd_ms=pmd * 1e3)


def check(question: str, answer: object) -> str:
    """Check a learner's prediction; a wrong answer gets the explanation.

    >>> check("scans-4K", 0).startswith("Right")
    True
    """
    if question not in QUESTIONS:
        return f"unknown question {question!r}; choose one of {', '.join(QUESTIONS)}"
    want, why = QUESTIONS[question][1], EXPLAIN[question]
    if want is None:
        want, why = _pmd_answer()
    try:
        got = int(str(answer).replace(",", "").replace("_", "").strip())
    except ValueError:
        return f"Please answer with a number. The answer is {want}: {why}"
    # the PMD speed-up is measured: within a quarter of it counts as right
    ok = got == want if QUESTIONS[question][1] is not None else abs(got - want) <= want / 4
    if ok:
        return f"Right ({want}): {why}"
    return f"Not quite: you said {got}, the answer is {want}. Why: {why}"


# --- tables and figures for notebooks/08-cost.ipynb ------------------------------------

def ops_table(size_bytes: int, kernels: tuple[str, ...] = COW_KERNELS,
              folios: tuple[str, ...] = FOLIOS, mode: str = "fresh") -> list[dict[str, Any]]:
    """Operation counts of one fork per kernel and folio layout, of a FRESH region (just
    written) or a REPEAT one (forked before, that child gone: its PTEs already read-only)."""
    if mode not in MODES:
        raise LayoutError(f"ops_table(mode={mode!r}): mode must be one of "
                          f"{', '.join(repr(m) for m in MODES)}")
    return [{"kernel": k, "folio": f, **fork_counts(size_bytes, f, k, mode)}
            for k in kernels for f in folios]


def render_ops(rows: list[dict[str, Any]], keys: tuple[str, ...] = (
        "pte_reads", "set_ptes_calls", "batch_scans", "refcount_ops", "wrprotect_calls",
        "pmd_copies")) -> str:
    """A fixed-width text table of :func:`ops_table` rows."""
    # columns as wide as their names: a static page wraps a wider table mid-row
    kw = max([len("kernel")] + [len(r["kernel"]) for r in rows]) + 1
    fw = max([len("folio")] + [len(r["folio"]) for r in rows]) + 1
    out = [f"{'kernel':{kw}s}{'folio':{fw}s}" + "".join(f"{k:>{len(k) + 1}s}" for k in keys)]
    for r in rows:
        out.append(f"{r['kernel']:{kw}s}{r['folio']:{fw}s}"
                   + "".join(f"{r.get(k, 0):{len(k) + 1}d}" for k in keys))
    return "\n".join(out)


def cold_price_note(f: Fit) -> str:
    """A few lines on the fitted price m of a cold struct page, FRESH and REPEAT, and what
    it does to the speed-up curve: m depends on where the allocator of the machine the
    timings come from put the folios, so the sentence is chosen from the fit, never
    written into a notebook.  No line is wider than a static page shows unwrapped."""
    key = "ns_per_cold_struct_page"
    ms = {mode: f.prices[mode].get(key, 0.0) for mode in MODES}
    shown = ", ".join(f"{mode.upper()} {v:.1f} ns" for mode, v in ms.items())
    # the fit keeps every price >= 0 (_nonnegative_lstsq): a 0 is "not measurable", and
    # a price held at 0 leaves the fitted sizes one free price short of an exact fit
    bound = ("The fit keeps every price >= 0 (an operation cannot save time), so a 0 means\n"
             "the stored timings show no measurable cost there.")
    if all(v < 0.05 for v in ms.values()):
        return (f"m came out 0 on the stored timings ({shown}).\n{bound}\n"
                "On the machine that recorded them, a struct page missing from the CPU's cache\n"
                "cost nothing measurable, so m drops out: the cost per page is a + (b + c) / n.")
    return (f"m came out non-zero on the stored timings ({shown}):\n"
            f"each folio's first {MEMMAP_RAMP} struct pages cost extra, which small folios pay "
            "on\nevery page, so the curve keeps rising past 256K, up to the largest folios.")


def _speedup_error_lines(f: Fit) -> list[str]:
    """The largest speed-up error in either direction (|predicted - measured|, its sign
    printed too) at 1 GiB over *every* folio size the table shows (4K is the baseline, 1.00
    by definition), fitted and held out apart, each naming the row it comes from -- so no
    size can hide behind a chosen list."""
    rows = [r for r in f.rows if r["kind"] == "folio" and r["size_bytes"] == GIB
            and r["label"] != "4K"]
    out = []
    for trained, what in ((True, "fitted"), (False, "held out")):
        group = [r for r in rows if r["trained"] == trained]
        if not group:
            continue
        worst = max(group, key=lambda r: abs(r["speedup_predicted"] - r["speedup_measured"]))
        err = worst["speedup_predicted"] - worst["speedup_measured"]
        labels = ", ".join(dict.fromkeys(r["label"] for r in group))
        # a difference of two speed-ups, not a share of a time: say so beside the % errors
        out.append(f"  speed-up error, {what} ({labels}; both states):\n"
                   f"    largest error {abs(err):.2f}x, either sign "
                   f"({worst['label']} {worst['mode']}: predicted - measured = {err:+.2f}x)")
    return out


def render_fit(f: Fit) -> str:
    """The fitted prices, and measured vs predicted time and speed-up per 1 GiB layout."""
    rebuilt = [r for r in f.rows if r["kind"] == "layout"]
    lines = [f"fitted on {', '.join(f.train)} (1 GiB, FRESH and REPEAT)"
             + (" and the rebuilt layouts" if rebuilt else "") + "; prices in ns:"]
    import textwrap
    for mode in MODES:
        # wrapped between prices, never inside one: a static page breaks a long line anywhere
        lines += textwrap.wrap(f"  {mode:7s}" + ", ".join(f"{k}={v:.1f}" for k, v in
                                                         f.prices[mode].items()),
                               88, subsequent_indent=" " * 9, break_long_words=False)
    lines.append(f"{'layout':8s}{'mode':7s}{'measured ms':>12s}{'predicted ms':>13s}"
                 f"{'error':>8s}{'speed-up measured':>19s}{'predicted':>10s}")
    for r in f.rows:
        if r["kind"] != "folio" or r["size_bytes"] != GIB:
            continue
        lines.append(f"{r['label']:8s}{r['mode']:7s}{r['measured_ms']:12.2f}"
                     f"{r['predicted_ms']:13.2f}{r['rel_err']:+8.1%}"
                     f"{r['speedup_measured']:19.2f}{r['speedup_predicted']:10.2f}"
                     + ("  (fitted)" if r["trained"] else ""))
    lines.append(f"max time error at 1 GiB: fitted {f.max_err(True):.0%}, held out "
                 f"{f.max_err(False):.0%};")
    lines += _speedup_error_lines(f)
    other = [r for r in f.rows if r["kind"] == "folio" and r["size_bytes"] != GIB]
    if other:
        lines.append("other region sizes (held out):")
        lines += [f"  {r['label']:8s}{r['mode']:7s}{r['size_bytes'] >> 20:>5d}M "
                  f"{r['rel_err']:+5.0%}" for r in other]
    for r in rebuilt:
        lines.append(f"rebuilt layout {r['label']:7s}: measured {r['measured_ms']:.2f} ms,"
                     f" predicted {r['predicted_ms']:.2f} ms ({r['rel_err']:+.0%})"
                     + ("" if r["trained"] else ", held out"))
    # The folio timings are net of forking the worker without the region, so they hold no
    # fixed cost; only rebuilt layouts (whole probe processes) can measure one.
    lines.append(f"fixed cost of a fork: {f.fixed_ns / 1e3:.0f} us" if rebuilt else
                 "fixed cost of a fork: none in these timings\n  (each is net of forking "
                 "the same process without the region)")
    return "\n".join(lines)


def ops_picture(rows: list[dict[str, Any]], key: str = "set_ptes_calls") -> Picture:
    """:func:`plot_ops` with an alternative text that lists every bar's value."""
    kernels = list(dict.fromkeys(r["kernel"] for r in rows))
    groups = "; ".join(
        f"{f}: " + ", ".join(f"{r['kernel']} {r.get(key, 0):,}" for r in rows if r["folio"] == f)
        for f in dict.fromkeys(r["folio"] for r in rows))
    return Picture(plot_ops(rows, key), f"Bar chart, log scale: {key} per fork for each folio "
                   f"layout, one bar per kernel ({', '.join(kernels)}). {groups}.")


def fit_picture(f: Fit) -> Picture:
    """:func:`plot_fit` with an alternative text naming the largest error of each panel."""
    rows = [r for r in f.rows if r["kind"] == "folio"]

    def worst(rs: list[dict[str, Any]]) -> str:
        r = max(rs, key=lambda r: abs(r["rel_err"]))
        return (f"{r['label']} {r['mode'].upper()} {r['size_bytes'] >> 20} MiB, "
                f"{100 * r['rel_err']:+.1f} %")
    gib = worst([r for r in rows if r["size_bytes"] == GIB])
    rest = worst([r for r in rows if r["size_bytes"] != GIB])
    return Picture(plot_fit(f), "Two panels of markers: the cost model's error in fork time "
                   "(predicted minus measured, as a percentage of the measured time), left for "
                   "each folio size at 1 GiB, right for other region sizes. Red circles FRESH, "
                   "blue squares REPEAT; filled: sizes the prices were fitted on, hollow: held "
                   f"out. Largest error at 1 GiB: {gib}; elsewhere: {rest}.")


#: Bar colours told apart with any colour vision (Okabe and Ito's palette), each also
#: hatched differently, so that no bar needs its colour to be named.
BAR_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00")
BAR_HATCHES = ("", "//", "..", "xx", "\\\\", "--")


def plot_ops(rows: list[dict[str, Any]], key: str = "set_ptes_calls") -> Any:
    """Bar chart: ``key`` per folio layout, one group of bars per kernel (log scale)."""
    import matplotlib.pyplot as plt
    kernels = list(dict.fromkeys(r["kernel"] for r in rows))
    folios = list(dict.fromkeys(r["folio"] for r in rows))
    fig, ax = plt.subplots(figsize=(9, 3.2))
    w = 0.8 / len(kernels)
    table = {k: [next(r.get(key, 0) for r in rows if r["kernel"] == k and r["folio"] == f)
                 for f in folios] for k in kernels}
    for i, k in enumerate(kernels):
        ys = table[k]
        xs = [j + i * w for j in range(len(folios))]
        # a log axis cannot draw 0: leave the bar out and write "0" where it would stand
        # (once for the group when no kernel makes the count there)
        ax.bar([x for x, y in zip(xs, ys, strict=True) if y > 0], [y for y in ys if y > 0], w,
               label=k, color=BAR_COLOURS[i % len(BAR_COLOURS)],
               hatch=BAR_HATCHES[i % len(BAR_HATCHES)], edgecolor="black", linewidth=0.4)
        for j, (x, y) in enumerate(zip(xs, ys, strict=True)):
            if y == 0 and any(table[o][j] for o in kernels):
                ax.annotate("0", (x, 1), ha="center", va="bottom", fontsize=8, color="black")
    for j in range(len(folios)):
        if not any(table[k][j] for k in kernels):
            # upright in the group's own slot: written across, it ran over the bars of
            # the group beside it and read as their label
            ax.annotate("0 for every kernel", (j + 0.4 - w / 2, 1), ha="center",
                        va="bottom", rotation=90, fontsize=8, color="black")
    ax.set_xticks([j + 0.4 - w / 2 for j in range(len(folios))], folios)
    ax.set_yscale("log")
    ax.set_ylim(bottom=0.5)     # keep the "0" marks (drawn at 1) inside the axes,
    ax.set_xlim(-w, len(folios) - 1 + len(kernels) * w)   # also those of the last layout
    ax.set_ylabel(key)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    ax.set_title(f"{key} per fork, by folio layout and kernel")
    return fig


def plot_fit(f: Fit) -> Any:
    """The model's error per layout: predicted minus measured fork time, as a percentage
    of the measured time, for every 1 GiB folio size (left) and every other region size
    (right); filled markers are the sizes the prices were fitted on, hollow ones held out.

    The error itself is drawn, not the two times: on any axis wide enough for 4K and
    2M-pmd, a few per cent disappear under the markers."""
    import matplotlib.pyplot as plt
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.4), width_ratios=(3, 2))
    def name(r: dict[str, Any]) -> str:
        return r["label"] if r["size_bytes"] == GIB else f"{r['label']} {r['size_bytes'] >> 20}M"

    folio_rows = [r for r in f.rows if r["kind"] == "folio"]
    for ax, rs in ((a1, [r for r in folio_rows if r["size_bytes"] == GIB]),
                   (a2, [r for r in folio_rows if r["size_bytes"] != GIB])):
        # Sizes are categories, not a scale: one slot each, markers only, no lines.
        names = list(dict.fromkeys(name(r) for r in rs))
        for r in rs:
            mk, colour = ("o", "tab:red") if r["mode"] == "fresh" else ("s", "tab:blue")
            ax.plot(names.index(name(r)), 100 * r["rel_err"], mk, color=colour,
                    markerfacecolor=colour if r["trained"] else "none")
        ax.set_xticks(range(len(names)), names, rotation=45, fontsize=8)
    for mode, mk, colour in (("fresh", "o", "tab:red"), ("repeat", "s", "tab:blue")):
        a1.plot([], [], mk, color=colour, label=f"{mode}, fitted on")
        a1.plot([], [], mk, color=colour, markerfacecolor="none", label=f"{mode}, held out")
    for ax in (a1, a2):
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.set_ylabel("predicted - measured, % of measured")
    a1.legend(fontsize=7)
    a1.set_title("time error per folio size, 1 GiB regions")
    a2.set_title("same prices, other region sizes (all held out)")
    fig.tight_layout()
    return fig
