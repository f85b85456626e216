"""Print how the traced model scales: build, fork (full trace kept) and invariant checks.

Usage: python scripts/scale_bench.py [--sizes 4096,32768,262144] [--kernel v6.17]
       [--repeats 3]

A private anonymous layout of N PTEs, one order-0 folio per PTE (262,144 PTEs = 1 GiB),
is built with Process.map, forked with pkmm.fork (detail=True: every event and step
kept), and checked with pkmm.check_invariants.  Each phase is timed as the best of
``--repeats`` runs; the last columns give the cost per PTE and its ratio to the cost at
the smallest size (1.0 = linear).  A benchmark prints figures; no test asserts them.
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable

import pkmm

BASE = 0x4000_0000


def build(n: int, kernel: str) -> pkmm.Process:
    p = pkmm.Process(kernel)
    p.mmap(BASE, n)
    for i in range(n):
        p.map(BASE + i * pkmm.PAGE_SIZE, p.alloc_folio(0))
    return p


def best(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        gc.collect()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="4096,32768,262144")
    ap.add_argument("--kernel", default=pkmm.DEFAULT_KERNEL, choices=pkmm.KERNELS)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args(argv)
    sizes = [int(s) for s in a.sizes.split(",")]
    print(f"kernel {a.kernel}, best of {a.repeats}; per-PTE cost in microseconds "
          "(ratio to the smallest size)")
    print(f"{'PTEs':>8} {'build s':>8} {'fork s':>8} {'events':>8} {'check s':>8}   "
          f"{'build/PTE':>12} {'fork/PTE':>12} {'check/PTE':>12}")
    base: tuple[float, float, float] | None = None
    for n in sizes:
        tb = best(lambda n=n: build(n, a.kernel), a.repeats)
        parents = [build(n, a.kernel) for _ in range(a.repeats)]
        results: list[pkmm.ForkResult] = []
        tf = best(lambda: results.append(pkmm.fork(parents.pop(), a.kernel)), a.repeats)
        r = results[-1]
        tc = best(lambda: pkmm.check_invariants(r.parent, r.child), a.repeats)
        per = (tb / n * 1e6, tf / n * 1e6, tc / n * 1e6)
        base = base or per
        cells = " ".join(f"{v:7.2f} ({v / b:3.2f})" for v, b in zip(per, base, strict=True))
        print(f"{n:>8} {tb:>8.2f} {tf:>8.2f} {len(r.trace):>8} {tc:>8.2f}   {cells}")
        del parents, results, r


if __name__ == "__main__":
    main()
