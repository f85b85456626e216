"""``python -m pkmm forksim SCENARIO|PID``: fork one layout under every kernel variant.

Simulator concept.  The layout is a scenario file, or a live process snapshotted on the
spot (:func:`pkmm.realkernel.snapshot.snapshot`).  It is built once in the bulk form
(:mod:`pkmm.scenario_bulk`, :mod:`pkmm.fast`) and forked under each variant; per variant
this reports what the model counted -- PTEs copied, batches (count and size
histogram), pages copied at fork, -EAGAIN rounds, operations -- the cost model's
predicted fork() time (:mod:`pkmm.costmodel`) and the child's rss.  ``--live``
rebuilds the layout in a probe process on this kernel and times its fork()
(:mod:`pkmm.realkernel.replay`).
Taught in: notebooks/10-real-process.ipynb
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

from .context import OP_MEANINGS
from .errors import PkmmError
from .kernels import KERNELS
from .scenario import Scenario, load_scenario

RSS_KEYS = ("MM_ANONPAGES", "MM_FILEPAGES", "MM_SHMEMPAGES", "MM_SWAPENTS")

__all__ = ["COLUMNS", "VariantFork", "forksim", "histogram", "main", "render"]

#: The table's columns and what each counts: printed as the key under every table.
COLUMNS = {
    "PTEs": "PTEs written into the child",
    "PMDs": "PMD entries copied (one per PMD-mapped 2 MiB THP)",
    "batches": "present-copy steps: runs of PTEs copied together (share, copy or by value)",
    "copied": "pages copied for the child at fork",
    "EAGAIN": "times the copy loop stopped and tried again (the kernel's error code -EAGAIN, "
              "'try again'): a page a device may be reading or writing directly (pinned "
              "for DMA, direct memory access) must be copied, not shared, so the loop "
              "dropped its locks, allocated the copy and retried",
    "pred ms": "the cost model's fork() time for the priced counts ('at least': some "
               "counts have no price, so the fork takes longer than this lower bound)",
    "child rss": "the child's RSS counters at birth, in pages: anon / file / shmem (a page "
                 "eager-copy copied out of a file is the child's anonymous page)",
}


@dataclass(frozen=True)
class VariantFork:
    """What forking the layout under one variant did, and what it would cost."""

    kernel: str
    ptes_copied: int                 # PTEs written into the child
    pmds_copied: int                 # PMD leaves copied
    batches: int                     # present-copy calls that copied (share/copy/raw)
    batch_sizes: dict[int, int]      # PTEs per call -> calls
    pages_copied: int                # pages the child got copies of at fork
    eagain: int                      # -EAGAIN -> preallocate -> retry rounds
    ops: dict[str, int]
    predicted_ms: float
    child_rss: dict[str, int] = field(default_factory=dict)
    child_vmas: int = 0
    unpriced: tuple[str, ...] = ()   # counts the prediction leaves out: no fitted price
    unpriced_counts: dict[str, int] = field(default_factory=dict)   # ... and their numbers


def histogram(sizes: dict[int, int], width: int = 60) -> str:
    """A compact batch-size histogram: ``size x count`` from small to large.

    >>> histogram({1: 300, 16: 20, 512: 2})
    '1x300 16x20 512x2'
    """
    out, text = [], ""
    for nr in sorted(sizes):
        item = f"{nr}x{sizes[nr]}"
        if len(text) + len(item) > width:
            out.append("...")
            break
        out.append(item)
        text += item + " "
    return " ".join(out)


def forksim(layout: Scenario | str | int, kernels: tuple[str, ...] = KERNELS, *,
            progress: bool | None = None) -> tuple[Scenario, list[VariantFork]]:
    """Fork ``layout`` (a scenario, a scenario file, or a PID to snapshot) under each of
    ``kernels``; returns the scenario and one :class:`VariantFork` per kernel."""
    from . import costmodel
    from .progress import progress as bar
    from .scenario_bulk import bulk_of
    sc = _scenario(layout, progress)
    base = bulk_of(sc)
    out = []
    for k in bar(kernels, desc="forksim", enabled=progress):
        r, f = costmodel.fork_features(base.copy(), k)
        child = r.child.mm
        out.append(VariantFork(
            k, r.ops.get("pte_writes", 0), r.ops.get("pmd_copies", 0),
            sum(r.batch_sizes.values()), dict(sorted(r.batch_sizes.items())), r.copies,
            r.eagain, dict(sorted(r.ops.items())), costmodel.predict_seconds(f) * 1e3,
            {key: child.rss.get(key, 0) for key in RSS_KEYS}, len(child.vmas),
            tuple(costmodel.unpriced(f)), {k: f[k] for k in costmodel.unpriced(f)}))
    return sc, out


def _scenario(layout: Scenario | str | int, progress: bool | None) -> Scenario:
    if isinstance(layout, Scenario):
        return layout
    if isinstance(layout, int) or (isinstance(layout, str) and layout.isdigit()):
        from .realkernel.snapshot import snapshot
        return snapshot(int(layout), progress=progress)
    return load_scenario(layout)


#: The widest line :func:`render` prints: a static notebook page shows about 90
#: characters of a code cell's output before it wraps, and a wrap inside a number
#: (``refcount_ops=100`` / ``89``) reads as a different number.
WIDTH = 88


def _wrapped(first: str, text: str, indent: int) -> list[str]:
    """``first`` + ``text`` wrapped at word boundaries to :data:`WIDTH`, continuation
    lines indented by ``indent`` so they read as part of the same entry."""
    import textwrap
    return textwrap.wrap(first + text, WIDTH, subsequent_indent=" " * indent,
                         break_long_words=False, break_on_hyphens=False)


def shown_counters(rows: list[VariantFork]) -> list[str]:
    """The counters the operations table prints: every one some variant made."""
    return [k for k in sorted({k for r in rows for k in r.ops})
            if any(r.ops.get(k) for r in rows)]


def differing_counters(rows: list[VariantFork]) -> list[str]:
    """The printed counters that tell the rows apart: those not the same in every
    copy-on-write row, and those only a variant without copy-on-write makes (its page
    copies).  With fewer than two copy-on-write rows: those not the same in every row."""
    from .kernels import COW_KERNELS
    cow = [r for r in rows if r.kernel in COW_KERNELS]
    if len(cow) < 2:
        return [k for k in shown_counters(rows) if len({r.ops.get(k, 0) for r in rows}) > 1]
    return [k for k in shown_counters(rows)
            if len({r.ops.get(k, 0) for r in cow}) > 1 or not any(r.ops.get(k) for r in cow)]


def key_lines(rows: list[VariantFork]) -> list[str]:
    """The full key: every column of the table and every counter it prints."""
    lines: list[str] = []
    for name, meaning in COLUMNS.items():
        lines += _wrapped(f"  {name:10s}", meaning, 12)
    for k in shown_counters(rows):
        lines += _wrapped(f"  {k:17s}", OP_MEANINGS.get(k, "a count the model keeps "
                                                          "(pkmm.context)"), 19)
    return lines


def pred_column(rows: list[VariantFork]) -> list[str]:
    """The *pred ms* entry of each row: the time, "at least" the time where some count has
    no price, or "not priced" for a row whose own main work has none."""
    # a count only some rows make and no timing prices is their main work (eager-copy's
    # page copies): such a row prints no time, since its priced part alone reads as the
    # cheapest fork in the table
    shared_unpriced = set.intersection(*(set(r.unpriced) for r in rows)) if rows else set()
    return ["not priced" if set(r.unpriced) - shared_unpriced else
            f"{'at least ' if r.unpriced else ''}{r.predicted_ms:.2f}" for r in rows]


def render(sc: Scenario, rows: list[VariantFork], key: str = "full", *,
           approximations: bool = True) -> str:
    """The per-variant table, the operation counts (one counter per line, one column
    per variant), the key, and what the layout approximated; no line is wider than
    :data:`WIDTH`.  ``key="differs"`` keeps only the counters that differ between the
    rows in the key (:func:`key_lines` has the full one).  ``approximations=False`` leaves
    out the layout's guesses, for a page that has printed them already."""
    if key not in ("full", "differs"):
        from .errors import LayoutError
        raise LayoutError(f"key={key!r}: choose 'full' (every column and counter) or "
                         "'differs' (only the counters that differ between the rows)")
    # pred ms is 15 wide: a lower bound prints as words ("at least 0.28"), never as a glyph
    # a reader can miss ('>0.28' read as the smallest time in the table)
    head = (f"{'kernel':10s}{'PTEs':>8s}{'PMDs':>5s}{'batches':>8s}{'copied':>7s}"
            f"{'EAGAIN':>7s}{'pred ms':>15s}{'child rss (anon/file/shmem)':>28s}")
    lines = [f"forksim: {sc.name}", head, "-" * len(head)]
    for r, pred in zip(rows, pred_column(rows), strict=True):
        # pages, not MiB: eager-copy's child holds the copied .data pages as anon pages,
        # a difference of a few pages that one decimal of MiB would round away
        rss = "/".join(str(r.child_rss.get(k, 0)) for k in RSS_KEYS[:3])
        lines.append(f"{r.kernel:10s}{r.ptes_copied:8d}{r.pmds_copied:5d}{r.batches:8d}"
                     f"{r.pages_copied:7d}{r.eagain:7d}{pred:>15s}{rss:>28s}")
    lines.append("batch sizes (PTEs per copy call x calls):")
    lines += [f"  {r.kernel:11s}{histogram(r.batch_sizes)}" for r in rows]
    keys = shown_counters(rows)
    lines.append("operations (a counter no variant made is left out):")
    lines.append(f"  {'':17s}" + "".join(f"{r.kernel:>11s}" for r in rows))
    lines += [f"  {k:17s}" + "".join(f"{r.ops.get(k, 0):11d}" for r in rows) for k in keys]
    if key == "full":
        lines.append("key:")
        lines += key_lines(rows)
    else:
        # a reader compares versions: the counters equal in every row say nothing about
        # the difference, and their meanings would bury the few that do
        diff = differing_counters(rows)
        lines.append("key (only the counters that tell the versions above apart):"
                     if diff else "key: every counter is the same in every version above")
        for k in diff:
            lines += _wrapped(f"  {k:17s}", OP_MEANINGS.get(k, "a count the model keeps "
                                                              "(pkmm.context)"), 19)
    lines += _wrapped("pred ms: ", "the cost model (pkmm.costmodel), calibrated on the "
                      "fork() timings stored with pkmm (taken on the development machine; "
                      "scripts/costmodel_bench.py measures yours)", 2)
    names = list(dict.fromkeys(k for r in rows for k in r.unpriced))
    if names:
        common = [k for k in names if all(k in r.unpriced for r in rows)]
        if common:
            lines += _wrapped("  at least: ", "a lower bound; no stored timing prices "
                              + ", ".join(common) + ", so every prediction leaves them out",
                              4)
        # the count a "not priced" row's time would leave out, by number
        for r in rows:
            own = [k for k in r.unpriced if k not in common]
            if own:
                lines += _wrapped(f"  {r.kernel}: ", "not priced: "
                                  + ", ".join(f"{r.unpriced_counts.get(k, 0):,} {k}"
                                              for k in own)
                                  + ", its main work; no time is printed, since the priced "
                                  "rest alone would read as the cheapest fork", 4)
    if sc.approximations and approximations:
        lines.append(f"the layout approximates {len(sc.approximations)} thing(s) the kernel "
                     "does not export:")
        for a in sc.approximations:
            lines += _wrapped("  - ", a, 4)
    return "\n".join(lines)


def live(sc: Scenario, rounds: int, progress: bool | None) -> dict[str, Any]:
    """Replay ``sc`` on this kernel and time its fork (REPEAT state), with the model's
    prediction for the layout really obtained."""
    from . import costmodel
    from .realkernel.model import model_kernel
    from .realkernel.replay import replay_fork
    from .realkernel.support import detect
    r = replay_fork(sc, rounds=rounds, progress=progress)
    kernel = model_kernel(detect().kernel)
    pred = costmodel.predict_seconds(costmodel.scenario_counts(r["obtained"], kernel),
                                     baseline=False) * 1e3
    return {"kernel": kernel, "measured_ms": r["net_min_ns"] / 1e6, "predicted_ms": pred,
            "rounds": rounds, "left_out": r["left_out"],
            "obtained": r["obtained"].source.get("pages", {})}


def _off(measured: dict[str, Any]) -> str:
    """How far the prediction is from the measurement, in words.

    >>> _off({"measured_ms": 20.0, "predicted_ms": 16.0})
    'prediction 20% under the measurement'
    """
    err = (measured["predicted_ms"] - measured["measured_ms"]) / measured["measured_ms"]
    return f"prediction {abs(err):.0%} {'over' if err > 0 else 'under'} the measurement"


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m pkmm forksim",
                                 description="Fork a scenario file or a live process under "
                                             "every kernel variant.")
    ap.add_argument("layout", help="a scenario JSON file, or the PID of a running process")
    ap.add_argument("--kernel", default="all", help="'all' or a comma list of "
                    + ",".join(KERNELS))
    ap.add_argument("--json", action="store_true", help="print JSON")
    ap.add_argument("--live", action="store_true",
                    help="also rebuild the layout on this kernel and time its fork() (root)")
    ap.add_argument("--rounds", type=int, default=15, help="timed forks with --live")
    ap.add_argument("--progress", action="store_true", default=None,
                    help="draw progress bars even when stderr is not a terminal")
    return ap


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m pkmm forksim``; returns the exit code."""
    ap = _parser()
    try:
        a = ap.parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    kernels = KERNELS if a.kernel == "all" else tuple(k.strip() for k in a.kernel.split(","))
    bad = [k for k in kernels if k not in KERNELS]
    if bad or a.rounds < 1:
        print(f"pkmm forksim: error: --kernel {a.kernel!r}: unknown {bad}; choose 'all' or "
              f"from {','.join(KERNELS)}" if bad else
              f"pkmm forksim: error: --rounds {a.rounds}: at least 1", file=sys.stderr)
        return 2
    try:
        sc, rows = forksim(a.layout, kernels, progress=a.progress)
        measured = live(sc, a.rounds, a.progress) if a.live else None
    except PkmmError as e:
        print(f"pkmm forksim: error: {e}", file=sys.stderr)
        return 2
    if a.json:
        print(json.dumps({"scenario": sc.name, "approximations": sc.approximations,
                          "source": sc.source, "variants": [asdict(r) for r in rows],
                          "live": measured}, indent=1))
        return 0
    print(render(sc, rows))
    if measured:
        print(f"live: the layout rebuilt on this kernel forks in {measured['measured_ms']:.2f}"
              f" ms (min of {measured['rounds']}, REPEAT state); the cost model predicts "
              f"{measured['predicted_ms']:.2f} ms for the layout obtained "
              f"({measured['kernel']}; {_off(measured)}); left out: "
              f"{', '.join(measured['left_out']) or '-'}")
    return 0
