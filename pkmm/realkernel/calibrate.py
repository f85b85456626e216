"""The stored fork() timings of this machine: how they are taken, saved and read.

Kernel interfaces: those of :mod:`pkmm.realkernel.timing` (interleaved fork timing of
private anon regions per folio layout) and :mod:`pkmm.realkernel.replay` (layouts rebuilt
from scenarios: zero pages, page-cache pages, sparse tables, many VMAs, a real process).
Taught in: notebooks/08-cost.ipynb, notebooks/09-real-kernel-lab.ipynb

One file, ``pkmm/data/forktiming-6.18.json``, holds every timing the notebooks quote and
the cost model is fitted on; :func:`records` and :func:`render` turn its runs into
tables.  ``python -m pkmm.realkernel.calibrate --save`` re-measures it (root, Linux,
some minutes; for maintainers); ``--mode-only`` and ``--layouts-only`` re-measure a part.
Its ``how`` field says how it was taken.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from . import libc as lc
from . import thp
from .timing import (
    FOLIOS,
    MODES,
    available_folios,
    folio_pages,
    measure_interleaved,
    parse_size,
)

DATA = Path(__file__).resolve().parent.parent / "data" / "forktiming-6.18.json"
HOW = ("Python worker forked from the caller; each sample maps a fresh 2 MiB-aligned "
       "private anonymous region between PROT_NONE guards, populates it with "
       "MADV_POPULATE_WRITE under the THP knobs of its folio size (exactly one size "
       "enabled; 4K: MADV_NOHUGEPAGE; 2M-pte: PMD THPs split by mprotect of one page per "
       "2 MiB), checks the folio layout with pagemap + kpageflags, then times fork() alone "
       "with CLOCK_MONOTONIC, the parent at SCHED_FIFO for that call, after waiting (up to "
       "0.5 s) for the other CPUs to be idle (REPEAT: after one untimed fork). Per round: "
       "one baseline fork of the worker without a region, then a 4K sample before every "
       "other layout, the layouts rotated each round. net = min(samples) - min(baseline) "
       "(a disturbance -- load, or a fragmented memory scattering 4K pages -- only adds "
       "time); speed-up = net of 4K / net of the layout. Replays rebuild a scenario in a "
       "probe process, fork it once, snapshot it, then time forks (REPEAT state); net = "
       "min(forks) - min(probe forks before the build and after the teardown). Everything "
       "stored was measured in one session.")

__all__ = ["DATA", "HOW", "batched", "fit_batch_cost", "load", "measure", "pooled", "print_timing",
           "records", "render"]


def load(path: Path = DATA) -> dict[str, Any]:
    """The stored dataset (format 2)."""
    data: dict[str, Any] = json.loads(path.read_text())
    if data.get("format") != 2:
        raise ValueError(f"{path}: format {data.get('format')!r}, expected 2; re-measure "
                         "with python -m pkmm.realkernel.calibrate --save")
    return data


def pooled(data: dict[str, Any]) -> list[dict[str, Any]]:
    """One run per (region size, mode), the runs of that size and mode pooled (a
    dataset is one measuring session, with one run each, unless runs were re-measured).

    Each run's net time is its own minimum minus its own baseline minimum; the pooled net
    is the smallest (a disturbance -- load, or a fragmented memory that scatters 4K
    pages -- only ever adds time), and every speed-up divides the pooled 4K net by the
    pooled net of the layout.
    """
    groups: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for r in data["runs"]:
        groups.setdefault((r["size_bytes"], r["mode"]), []).append(r)
    out = []
    for (size, mode), rs in sorted(groups.items()):
        lays = sorted({lay for r in rs for lay in r["net_min_ns"]}, key=_layout_order)
        net = {lay: min(r["net_min_ns"][lay] for r in rs if lay in r["net_min_ns"])
               for lay in lays}
        best = {lay: _fastest(rs, lay) for lay in lays}
        ref = rs[0]["ref"]
        out.append({"size_bytes": size, "mode": mode, "ref": ref, "sessions": len(rs),
                    "rounds": sum(r["rounds"] for r in rs), "net_min_ns": net,
                    "net_median_ns": {lay: best[lay]["net_median_ns"].get(lay) for lay in lays},
                    # where the kernel put the pages of the sample behind each minimum
                    # (None: not read; sessions before 2026-12-02 did not read it)
                    "streams_min": {lay: best[lay].get("streams_min", {}).get(lay)
                                    for lay in lays},
                    "samples": {lay: sum(len(r["samples_ns"].get(lay, [])) for r in rs)
                                for lay in lays},
                    "speedup": {lay: net[ref] / net[lay] for lay in lays
                                if lay != ref and net[lay] > 0},
                    "layout_failures": {k: v for r in rs
                                        for k, v in r["layout_failures"].items()}})
    return out


def _fastest(rs: list[dict[str, Any]], lay: str) -> dict[str, Any]:
    """The session whose net time of ``lay`` is the smallest."""
    return min((r for r in rs if lay in r["net_min_ns"]), key=lambda r: r["net_min_ns"][lay])


def _layout_order(lay: str) -> int:
    return FOLIOS.index(lay) if lay in FOLIOS else len(FOLIOS)


def measure(rounds: int = 21, *, other_sizes: tuple[str, ...] = ("256M",),
            modes: tuple[str, ...] = MODES, layouts: bool = True,
            progress: bool | None = None) -> dict[str, Any]:
    """Measure every folio layout at 1 GiB (both modes), and 4K/64K/2M-pmd at
    ``other_sizes``, interleaved as :func:`pkmm.realkernel.timing.measure_interleaved`
    does; then the replayed layouts of :mod:`pkmm.realkernel.layouts_cost`."""
    from .layouts_cost import measure_layouts
    from .support import detect
    out: dict[str, Any] = {"format": 2, "how": HOW, "machine": detect().describe(),
                           "thp_knobs": thp.snapshot(), "rounds": rounds,
                           "loadavg_before": _loadavg(), "started": time.strftime("%Y-%m-%d"),
                           "runs": []}
    folios = [f for f in available_folios() if f != "4K"]
    session = {"session": time.strftime("%Y-%m-%d %H:%M"), "loadavg": _loadavg()}
    for mode in modes:
        r = measure_interleaved(1 << 30, folios, mode=mode, rounds=rounds, progress=progress)
        if r is not None:
            out["runs"].append({**r, **session})
    for size in other_sizes:
        small: list[str] = [f for f in ("64K", "2M-pmd") if f in folios]
        for mode in modes:
            r = measure_interleaved(parse_size(size), small, mode=mode,
                                    rounds=max(7, rounds // 2), progress=progress)
            if r is not None:
                out["runs"].append({**r, **session})
    out["layouts"] = [{**lay, **session} for lay in measure_layouts(
        rounds=rounds, progress=progress)] if layouts else []
    out["loadavg_after"] = _loadavg()
    return out


def _loadavg() -> list[str]:
    try:
        return Path("/proc/loadavg").read_text().split()[:3]
    except OSError:
        return []


def dump(data: dict[str, Any]) -> str:
    """JSON with samples kept on one line each: diffable and compact."""
    return json.dumps(data, indent=1, separators=(",", ": ")) + "\n"


# --- the stored runs as tables (notebooks/09-real-kernel-lab.ipynb) ------------------

def records(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per layout of each interleaved run (:func:`measure_interleaved` results, or
    :func:`pooled` ones): net minimum and median, per 4K page and per folio, speed-up over
    the run's 4K."""
    out = []
    for run in runs:
        pages = run["size_bytes"] // lc.PAGE_SIZE
        for lay, net in run["net_min_ns"].items():
            out.append({"size_bytes": run["size_bytes"], "folio": lay, "mode": run["mode"],
                        "net_ns": net, "median_ns": run["net_median_ns"].get(lay),
                        "ns_per_page": net / pages,
                        "ns_per_folio": net / (pages // folio_pages(lay)),
                        "speedup": run["speedup"].get(lay, 1.0 if lay == run["ref"] else None),
                        "samples": run["samples"][lay] if "samples" in run
                        else len(run["samples_ns"][lay]),
                        "layout": run["layout_failures"].get(lay, "ok")})
    return out


def batched(folio: str) -> bool:
    """Whether fork copies the ``folio`` layout on the batched path: a large folio mapped
    by PTEs.  4K pages take the small-folio path (copy_present_ptes() asks
    folio_test_large() first) and 2M-pmd copies PMD entries (copy_huge_pmd()), so
    neither lies on the line :func:`fit_batch_cost` fits.

    >>> [f for f in ("4K", "16K", "2M-pte", "2M-pmd") if batched(f)]
    ['16K', '2M-pte']
    """
    return folio_pages(folio) > 1 and folio != "2M-pmd"


def fit_batch_cost(rows: list[dict[str, Any]], mode: str,
                   size_bytes: int = 1 << 30) -> dict[str, float]:
    """Fit ``ns per folio = per_batch + per_pte * n`` over the PTE-mapped large folios
    (:func:`records` rows): the shape of the batched copy path's cost.

    Fitted as ns per page = per_pte + per_batch / n, so every order weighs the same;
    ``max_rel_err`` says how well one line fits them all.
    """
    pts = [(folio_pages(r["folio"]), r["ns_per_page"]) for r in rows
           if r["mode"] == mode and r["size_bytes"] == size_bytes
           and batched(r["folio"])]
    if len(pts) < 2:
        raise ValueError(f"fit_batch_cost: need two large-folio results for mode={mode!r}")
    xs, ys = [1 / n for n, _ in pts], [y for _, y in pts]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    per_batch = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / \
        sum((x - mx) ** 2 for x in xs)
    per_pte = my - per_batch * mx
    err = max(abs(per_pte + per_batch * x - y) / y for x, y in zip(xs, ys, strict=True))
    return {"per_batch_ns": per_batch, "per_pte_ns": per_pte, "max_rel_err": err}


def render(rows: list[dict[str, Any]]) -> str:
    """One line per layout: net minimum and median ms, ns per page and folio, speed-up
    (``noise`` where min and median differ by at least the min itself)."""
    lines = [f"{'layout':8s} {'size':>6s} {'mode':6s} {'min ms':>8s} {'median ms':>10s} "
             f"{'ns/4K page':>10s} {'ns/folio':>9s} {'vs 4K':>7s}  layout check"]
    for r in rows:
        speed = f"{r['speedup']:.2f}x" if r["speedup"] else "-"
        # min and median are two estimates of one difference; when they differ by as much
        # as the difference itself, a ratio built on it would only measure noise
        if r["median_ns"] is not None and abs(r["median_ns"] - r["net_ns"]) >= r["net_ns"]:
            speed = "noise"
        med = f"{r['median_ns'] / 1e6:10.2f}" if r["median_ns"] is not None else f"{'-':>10s}"
        lines.append(f"{r['folio']:8s} {_size(r['size_bytes']):>6s} {r['mode']:6s} "
                     f"{r['net_ns'] / 1e6:8.2f} {med} {r['ns_per_page']:10.1f} "
                     f"{r['ns_per_folio']:9.0f} {speed:>7s}  {r['layout']}")
    return "\n".join(lines)




def print_timing(sizes: str, stored: bool) -> None:
    """Print the timing table: live (REPEAT, interleaved) or this machine's stored runs."""
    if stored:
        data = load()
        runs = pooled(data)
        print(f"fork() timing, stored: Linux {data['machine']['kernel']}, "
              f"{data['machine']['cpus']} CPUs {data['machine']['cpu']}, minimum of "
              f"{max(r['rounds'] for r in runs)} interleaved rounds in "
              f"{max(r['sessions'] for r in runs)} sessions")
        print(render(records(runs)))
        return
    runs = [r for s in sizes.split(",") if (r := measure_interleaved(
        parse_size(s), [f for f in available_folios() if f != "4K"], mode="repeat",
        rounds=7)) is not None]
    print("fork() timing, live (REPEAT, minimum of 7 interleaved rounds):")
    print(render(records(runs)))


def _size(n: int) -> str:
    return f"{n >> 30}G" if n >= 1 << 30 else f"{n >> 20}M"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pkmm.realkernel.calibrate",
                                 description="Re-measure this machine's fork() timings.")
    ap.add_argument("--save", action="store_true", help=f"write {DATA.name}")
    ap.add_argument("--out", type=Path, default=None, help="write to this file instead")
    ap.add_argument("--rounds", type=int, default=21)
    a = ap.parse_args(argv)
    data = measure(a.rounds, progress=True)
    if a.save or a.out:
        (a.out or DATA).write_text(dump(data))
    else:
        print(dump(data))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
