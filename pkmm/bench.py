"""``python -m pkmm bench``: simulate fork of real-sized processes; compare with the kernel.

Simulator concept.  For each size x folio layout x kernel: builds the bulk region (setup,
not timed), times :func:`pkmm.fast.fork_bulk` with ``time.perf_counter`` around the fork
only (best of ``--repeats``), measures peak memory, measures the live kernel's fork()
of the same layout (``pkmm.realkernel.timing.measure_pair``: FRESH, the minimum of
interleaved runs) unless ``--no-real``, else shows this machine's stored time (labelled
"stored"), and prints the cost model's prediction.  A progress bar follows the cases
when standard error is a terminal (``--progress`` forces it).  Peak memory: the
process's peak RSS (VmHWM, reset through /proc/self/clear_refs before each case) while
building and forking, and the tracemalloc peak of the fork alone.
Taught in: notebooks/08-cost.ipynb
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tracemalloc
from typing import Any, NoReturn

from .costmodel import predict_seconds, stored_fork_seconds
from .errors import PkmmError
from .kernels import BATCHING_KERNELS, KERNELS, RELEASED_KERNELS

SIZES = {"256M": 256 << 20, "1G": 1 << 30, "4G": 4 << 30, "16G": 16 << 30}
FOLIOS = ("4K", "16K", "32K", "64K", "128K", "256K", "512K", "1M", "2M-pte", "2M-pmd")
OPS_SHOWN = ("pte_reads", "pte_writes", "set_ptes_calls", "batch_scans", "refcount_ops",
             "mapcount_ops", "wrprotect_calls", "pmd_copies", "lockbreak_checks")


#: --repeats above this would run for hours on the 16G layouts; best-of-N settles far sooner.
MAX_REPEATS = 1000


class BenchError(PkmmError, ValueError):
    """A bad command-line argument."""


def _list(value: str, allowed: dict[str, Any] | tuple[str, ...], what: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    bad = [v for v in items if v not in allowed]
    if not items or bad:
        raise BenchError(f"--{what} {value!r}: unknown {bad or value!r}; choose from "
                         + ",".join(allowed))
    return items


#: Released versions that batch: what a benchmark compares unless told.
_DEFAULT_KERNELS = ",".join(k for k in RELEASED_KERNELS if k in BATCHING_KERNELS)


def parse(argv: list[str]) -> argparse.Namespace:
    """Parse and validate; raises BenchError with a message naming the argument."""
    ap = argparse.ArgumentParser(prog="python -m pkmm bench", description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="1G", help="comma list of " + ",".join(SIZES))
    ap.add_argument("--folio", default="4K,64K,2M-pte,2M-pmd", help="comma list of "
                    + ",".join(FOLIOS))
    ap.add_argument("--kernel", default=_DEFAULT_KERNELS,
                    help="comma list of " + ",".join(KERNELS))
    ap.add_argument("--repeats", default=5, type=int, help="timed forks per case (best of)")
    ap.add_argument("--json", action="store_true", help="print one JSON list")
    ap.add_argument("--no-real", action="store_true", help="do not measure the live kernel")
    ap.add_argument("--progress", action="store_true", default=None,
                    help="draw a progress bar even when stderr is not a terminal")

    def fail(message: str) -> NoReturn:
        raise BenchError(message)
    ap.error = fail  # type: ignore[method-assign]
    a = ap.parse_args(argv)
    a.sizes = _list(a.size, SIZES, "size")
    a.folios = _list(a.folio, FOLIOS, "folio")
    a.kernels = _list(a.kernel, KERNELS, "kernel")
    if not 1 <= a.repeats <= MAX_REPEATS:
        raise BenchError(f"--repeats {a.repeats}: use 1..{MAX_REPEATS} (each repeat builds "
                         "and forks the whole region again)")
    return a


def _vm_hwm_reset() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")    # kernel: reset the peak RSS (VmHWM) of this process
    except OSError:
        pass


def _vm_hwm() -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def sim_case(size: int, folio: str, kernel: str, repeats: int) -> dict[str, Any]:
    """Time the bulk fork (best of ``repeats``) and measure its memory."""
    import numpy as np

    from .fast import fork_bulk
    from .fast.layout import W, build_region
    _vm_hwm_reset()
    times = []
    for _ in range(repeats):
        b = build_region(size, folio)
        t0 = time.perf_counter()
        r = fork_bulk(b, kernel)
        times.append(time.perf_counter() - t0)
        del r, b
    b = build_region(size, folio)
    before = int(np.count_nonzero(b.mm.bits & W))
    tracemalloc.start()
    r = fork_bulk(b, kernel)
    fork_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    counts = dict(r.ops)
    counts["wrprotected_ptes"] = before - int(np.count_nonzero(b.mm.bits & W))
    return {"sim_seconds": min(times), "sim_seconds_median": sorted(times)[len(times) // 2],
            "peak_rss_bytes": _vm_hwm(), "fork_tracemalloc_peak_bytes": fork_peak,
            "ops": counts, "eagain": r.eagain, "steps": sum(r.step_counts.values())}


def real_case(size: int, folio: str, measure: bool, rounds: int = 7,
              progress: bool | None = None) -> tuple[float | None, str]:
    """The live kernel's fork() time (FRESH): the minimum of ``rounds`` interleaved with
    4K samples (pkmm.realkernel.timing.measure_pair), net of the worker's own fork; else
    this machine's stored one."""
    if measure:
        try:
            from .realkernel.timing import measure_pair
            m = measure_pair(size, folio, mode="fresh", rounds=rounds, progress=progress)
        except (ImportError, OSError, RuntimeError):
            m = None
        if m is not None and folio in m["net_min_ns"] and not m["layout_failures"]:
            return float(m["net_min_ns"][folio]) / 1e9, "measured"
    stored = stored_fork_seconds(size, folio, "fresh")
    return (stored, "stored") if stored is not None else (None, "-")


def run(a: argparse.Namespace) -> list[dict[str, Any]]:
    from .costmodel import fork_counts
    from .progress import bar
    out = []
    cases = len(a.sizes) * len(a.folios) * len(a.kernels)
    with bar(total=cases, desc="bench", unit="case", enabled=a.progress) as b:
        for sz in a.sizes:
            for folio in a.folios:
                b.set_description(f"bench {sz} {folio}: live fork()")
                real, source = real_case(SIZES[sz], folio, not a.no_real, a.repeats)
                for kernel in a.kernels:
                    b.set_description(f"bench {sz} {folio} {kernel}")
                    row = {"size": sz, "size_bytes": SIZES[sz], "folio": folio,
                           "kernel": kernel}
                    row.update(sim_case(SIZES[sz], folio, kernel, a.repeats))
                    row["kernel_fork_seconds"] = real if source == "measured" else None
                    row["stored_fork_seconds"] = real if source == "stored" else None
                    row["real_source"] = source
                    row["predicted_fork_seconds"] = predict_seconds(
                        fork_counts(SIZES[sz], folio, kernel), baseline=False)
                    row["sim_over_real"] = row["sim_seconds"] / real if real else None
                    out.append(row)
                    b.update(1)
    return out


def render(rows: list[dict[str, Any]]) -> str:
    """One table: a line per case, then its op counts."""
    head = (f"{'size':>5s} {'folio':7s} {'kernel':7s} {'sim ms':>7s} {'peak RSS':>9s} "
            f"{'fork mem':>9s} {'real ms':>8s} {'source':8s} {'sim/real':>8s} {'pred ms':>8s}")
    lines = [head, "-" * len(head)]
    for r in rows:
        real = r["kernel_fork_seconds"] or r["stored_fork_seconds"]
        rss = f"{r['peak_rss_bytes'] / 2**20:.0f} MiB" if r["peak_rss_bytes"] else "-"
        lines.append(
            f"{r['size']:>5s} {r['folio']:7s} {r['kernel']:7s} {r['sim_seconds'] * 1e3:7.1f} "
            f"{rss:>9s} {r['fork_tracemalloc_peak_bytes'] / 2**20:6.0f} MiB "
            f"{real * 1e3 if real else float('nan'):8.2f} {r['real_source']:8s} "
            f"{r['sim_over_real'] or float('nan'):8.2f} {r['predicted_fork_seconds'] * 1e3:8.2f}")
        lines.append("      ops: " + " ".join(f"{k}={r['ops'].get(k, 0)}" for k in OPS_SHOWN))
    lines.append("sim ms: best of the timed forks (perf_counter around fork_bulk only); peak "
                 "RSS: VmHWM of this process while building + forking; fork mem: tracemalloc "
                 "peak of one fork; real: live fork() FRESH, the minimum of interleaved "
                 "runs net of the worker's own fork (measured), or this machine's stored one "
                 "(stored); pred: cost model (pkmm.costmodel).")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """Entry point of ``python -m pkmm bench``; returns the exit code."""
    try:
        a = parse(argv)
    except BenchError as e:
        print(f"pkmm bench: error: {e}", file=sys.stderr)
        return 2
    except SystemExit as e:     # --help
        return int(e.code or 0)
    rows = run(a)
    print(json.dumps(rows, indent=1) if a.json else render(rows))
    return 0
