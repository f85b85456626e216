"""Print how the traced model scales: build, fork (full trace kept), faults, invariants.

Usage: python scripts/scale_bench.py [--sizes 4096,32768,262144] [--kernel v6.17]
       [--repeats 3]

A private anonymous layout of N PTEs, one order-0 folio per PTE (262,144 PTEs = 1 GiB),
is built twice -- with a Process.map() call per PTE, and from a scenario dict by
Scenario.build() -- then forked with pkmm.fork (detail=True: every event and step
kept); then 4,096 write faults (CoW copies in the child) are taken and
pkmm.check_invariants runs over parent and child.  Each phase is the best of
``--repeats`` runs, in wall-clock seconds and in CPU seconds of this process (on a
shared machine the CPU figure is the steadier one).  The per-PTE (per-fault) columns
give each cost and, in brackets, its ratio to the cost at the smallest size: 1.00 is
linear.  A benchmark prints figures; no test asserts them.
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable
from typing import Any

import pkmm
from pkmm.scenario import Scenario

BASE = 0x4000_0000
FAULTS = 4096


def build_by_map(n: int, kernel: str) -> pkmm.Process:
    p = pkmm.Process(kernel)
    p.mmap(BASE, n)
    for i in range(n):
        p.map(BASE + i * pkmm.PAGE_SIZE, p.alloc_folio(0))
    return p


def scenario_of(n: int, kernel: str) -> Scenario:
    return Scenario.from_dict({
        "kernel": kernel, "vmas": [{"start": BASE, "npages": n}],
        "folios": {f"F{i}": {"order": 0} for i in range(n)},
        "ptes": [{"addr": BASE + i * pkmm.PAGE_SIZE, "folio": f"F{i}"} for i in range(n)]})


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, float, Any]:
    """(best wall s, best CPU s, the last result) over ``repeats`` runs."""
    walls, cpus, out = [], [], None
    for _ in range(repeats):
        out = None
        gc.collect()
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return min(walls), min(cpus), out


def faults(child: pkmm.Process, n: int) -> None:
    for i in range(min(n, FAULTS)):
        child.write(BASE + i * pkmm.PAGE_SIZE, i)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="4096,32768,262144")
    ap.add_argument("--kernel", default=pkmm.DEFAULT_KERNEL, choices=pkmm.KERNELS)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args(argv)
    sizes = [int(s) for s in a.sizes.split(",")]
    print(f"kernel {a.kernel}; best of {a.repeats}; seconds wall / CPU; per PTE (per fault) "
          "in microseconds of CPU, [ratio to the smallest size]")
    cols = ("map()", "scenario", "fork", "faults", "check")
    print(f"{'PTEs':>7} {'events':>8} " + " ".join(f"{c:>15}" for c in cols) + "   "
          + " ".join(f"{c + '/PTE':>15}" for c in cols))
    base: list[float] | None = None
    for n in sizes:
        row = [timed(lambda n=n: build_by_map(n, a.kernel), a.repeats)[:2]]
        sc = scenario_of(n, a.kernel)     # after map(): its dicts would slow the collector
        row.append(timed(lambda sc=sc: sc.build()[0], a.repeats)[:2])
        parents = [sc.build()[0] for _ in range(a.repeats)]
        w, c, r = timed(lambda ps=parents: pkmm.fork(ps.pop(), a.kernel), a.repeats)
        row.append((w, c))
        children = [pkmm.fork(sc.build()[0], a.kernel).child for _ in range(a.repeats)]
        row.append(timed(lambda cs=children, n=n: faults(cs.pop(), n), a.repeats)[:2])
        row.append(timed(lambda r=r: pkmm.check_invariants(r.parent, r.child), a.repeats)[:2])
        units = [n, n, n, min(n, FAULTS), n]
        per = [cpu / u * 1e6 for (_, cpu), u in zip(row, units, strict=True)]
        base = base or per
        print(f"{n:>7} {len(r.trace):>8} "
              + " ".join(f"{wl:>7.2f}/{cpu:<7.2f}" for wl, cpu in row) + "   "
              + " ".join(f"{v:>8.2f} [{v / b:4.2f}]" for v, b in zip(per, base, strict=True)))
        # Drop this size's processes before building the next, larger one.
        parents.clear()
        children.clear()


if __name__ == "__main__":
    main()
