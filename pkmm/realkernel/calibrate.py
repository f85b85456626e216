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
from .timing import MODES, available_folios, folio_pages, measure_interleaved, parse_size

DATA = Path(__file__).resolve().parent.parent / "data" / "forktiming-6.18.json"
HOW = ("Python worker forked from the caller; each sample maps a fresh 2 MiB-aligned "
       "private anonymous region between PROT_NONE guards, populates it with "
       "MADV_POPULATE_WRITE under the THP knobs of its folio size (exactly one size "
       "enabled; 4K: MADV_NOHUGEPAGE; 2M-pte: PMD THPs split by mprotect of one page per "
       "2 MiB), checks the folio layout with pagemap + kpageflags, then times fork() alone "
       "with CLOCK_MONOTONIC, the parent at SCHED_FIFO for that call (REPEAT: after one "
       "untimed fork). Per round: one baseline fork "
       "of the worker without a region, then a 4K sample before every other layout, the "
       "layouts rotated each round. net = min(samples) - min(baseline); speed-up = net 4K / "
       "net layout. Replays rebuild a scenario in a probe process, fork it once, snapshot "
       "it, then time forks (REPEAT state); net = min(forks) - min(probe forks before the "
       "build and after the teardown).")

__all__ = ["DATA", "HOW", "fit_batch_cost", "load", "measure", "print_timing", "records",
           "render", "runs"]


def load(path: Path = DATA) -> dict[str, Any]:
    """The stored dataset (format 2)."""
    data: dict[str, Any] = json.loads(path.read_text())
    if data.get("format") != 2:
        raise ValueError(f"{path}: format {data.get('format')!r}, expected 2; re-measure "
                         "with python -m pkmm.realkernel.calibrate --save")
    return data


def runs(data: dict[str, Any], mode: str, size_bytes: int = 1 << 30) -> list[dict[str, Any]]:
    """The interleaved runs of ``data`` for one mode and region size."""
    return [r for r in data["runs"] if r["mode"] == mode and r["size_bytes"] == size_bytes]


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
    for mode in modes:
        r = measure_interleaved(1 << 30, folios, mode=mode, rounds=rounds, progress=progress)
        if r is not None:
            out["runs"].append(r)
    for size in other_sizes:
        small: list[str] = [f for f in ("64K", "2M-pmd") if f in folios]
        for mode in modes:
            r = measure_interleaved(parse_size(size), small, mode=mode,
                                    rounds=max(7, rounds // 2), progress=progress)
            if r is not None:
                out["runs"].append(r)
    out["layouts"] = measure_layouts(rounds=rounds, progress=progress) if layouts else []
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
    """One row per layout of each interleaved run (:func:`measure_interleaved` results):
    net minimum and median, per 4K page and per folio, speed-up over the run's 4K."""
    out = []
    for run in runs:
        pages = run["size_bytes"] // lc.PAGE_SIZE
        for lay, net in run["net_min_ns"].items():
            out.append({"size_bytes": run["size_bytes"], "folio": lay, "mode": run["mode"],
                        "net_ns": net, "median_ns": run["net_median_ns"].get(lay),
                        "ns_per_page": net / pages,
                        "ns_per_folio": net / (pages // folio_pages(lay)),
                        "speedup": run["speedup"].get(lay, 1.0 if lay == run["ref"] else None),
                        "samples": len(run["samples_ns"][lay]),
                        "layout": run["layout_failures"].get(lay, "ok")})
    return out


def fit_batch_cost(rows: list[dict[str, Any]], mode: str,
                   size_bytes: int = 1 << 30) -> dict[str, float]:
    """Fit ``ns per folio = per_batch + per_pte * n`` over the PTE-mapped large folios
    (:func:`records` rows): the shape of the batched copy path's cost.

    Fitted as ns per page = per_pte + per_batch / n, so every order weighs the same;
    ``max_rel_err`` says how well one line fits them all.
    """
    pts = [(folio_pages(r["folio"]), r["ns_per_page"]) for r in rows
           if r["mode"] == mode and r["size_bytes"] == size_bytes
           and r["folio"] not in ("4K", "2M-pmd")]
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
    """One line per layout: net minimum and median ms, ns per page and folio, speed-up."""
    lines = [f"{'layout':8s} {'size':>6s} {'mode':6s} {'min ms':>8s} {'median ms':>10s} "
             f"{'ns/4K page':>10s} {'ns/folio':>9s} {'vs 4K':>7s}  layout check"]
    for r in rows:
        speed = f"{r['speedup']:.2f}x" if r["speedup"] else "-"
        med = f"{r['median_ns'] / 1e6:10.2f}" if r["median_ns"] is not None else f"{'-':>10s}"
        lines.append(f"{r['folio']:8s} {_size(r['size_bytes']):>6s} {r['mode']:6s} "
                     f"{r['net_ns'] / 1e6:8.2f} {med} {r['ns_per_page']:10.1f} "
                     f"{r['ns_per_folio']:9.0f} {speed:>7s}  {r['layout']}")
    return "\n".join(lines)




def print_timing(sizes: str, stored: bool) -> None:
    """Print the timing table: live (REPEAT, interleaved) or this machine's stored runs."""
    if stored:
        data = load()
        print(f"fork() timing, stored: Linux {data['machine']['kernel']}, "
              f"{data['machine']['cpus']} CPUs {data['machine']['cpu']}, minimum of "
              f"{data['rounds']} interleaved rounds")
        print(render(records(data["runs"])))
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
    ap.add_argument("--layouts-only", type=Path, default=None, metavar="DATA",
                    help="re-measure only the rebuilt layouts, keeping DATA's folio runs")
    ap.add_argument("--mode-only", nargs=2, default=None, metavar=("MODE", "DATA"),
                    help="re-measure only the folio runs of MODE (fresh/repeat) in DATA")
    a = ap.parse_args(argv)
    if a.mode_only:
        mode, base = a.mode_only[0], Path(a.mode_only[1])
        data = load(base)
        kept = [r for r in data["runs"] if r["mode"] != mode]
        new = measure(a.rounds, modes=(mode,), layouts=False, progress=True)
        data["runs"] = kept + new["runs"]
        data[f"{mode}_measured"] = {k: new[k] for k in ("started", "loadavg_before",
                                                        "loadavg_after", "rounds")}
    elif a.layouts_only:
        from .layouts_cost import measure_layouts
        data = load(a.layouts_only)
        data["layouts"] = measure_layouts(rounds=a.rounds, progress=True)
        data["layouts_measured"] = time.strftime("%Y-%m-%d")
    else:
        data = measure(a.rounds, progress=True)
    if a.save or a.out:
        (a.out or DATA).write_text(dump(data))
    else:
        print(dump(data))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
