"""The stored fork() timings of this machine: how they are taken, saved and read.

Kernel interfaces: those of :mod:`pkmm.realkernel.timing` (interleaved fork timing of
private anon regions per folio layout) and :mod:`pkmm.realkernel.replay` (layouts rebuilt
from scenarios: zero pages, page-cache pages, sparse tables, many VMAs, a real process).
Taught in: notebooks/08-cost.ipynb, notebooks/09-real-kernel-lab.ipynb

One file, ``pkmm/data/forktiming-6.18.json``, holds every timing the notebooks quote and
the cost model is fitted on.  ``python -m pkmm.realkernel.calibrate --save`` re-measures
it (root, Linux, a few minutes; for maintainers).  Its ``how`` field says how.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from . import thp
from .timing import MODES, available_folios, measure_interleaved, parse_size

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

__all__ = ["DATA", "HOW", "load", "measure", "runs"]


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
