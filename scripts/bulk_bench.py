"""Time the bulk fork (pkmm.fast) on 1 GiB layouts of every kind, under every variant.

Builds each layout with the Process API (anon with mixed folio sizes and bits, a private
file mapping with CoWed pages, shared uffd-wp shmem, zero pages, swap entries), converts
it once with ``from_process``, and forks copies of it with ``fork_bulk``; prints build,
conversion and the best of ``--repeats`` fork times, and how many PMD slices each engine
took.  A benchmark, not a test: run it on the machine you care about.
Usage: .venv/bin/python scripts/bulk_bench.py [--size-mib 1024] [--repeats 3] [LAYOUT ...]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import pkmm
from pkmm.fast import Bulk, fork_bulk, from_process

START = 1 << 30


def anon_mixed(p: pkmm.Process, n: int) -> None:
    """Private anon: folios of 4K..2M in turn, some clean, some old."""
    v = p.mmap(START, n)
    a, k = v.vm_start, 0
    while a < v.vm_end:
        f = p.alloc_folio((0, 4, 0, 2, 9, 0, 3)[k % 7])
        nr = min(f.nr_pages, (v.vm_end - a) >> 12)
        p.map(a, f, 0, nr, dirty=k % 3 != 0, young=k % 2 == 0)
        a, k = a + (nr << 12), k + 1


def file_private(p: pkmm.Process, n: int) -> None:
    """A private file mapping: half page cache (PTE-mapped 2M), half CoWed anon pages."""
    v = p.mmap(START, n, backing="file", anon_vma=True)
    for i in range(0, n, 512):
        p.map(v.vm_start + (i << 12), p.alloc_folio(9, backing="file"), 0, 256)
        for j in range(256, 512, 16):
            p.map(v.vm_start + ((i + j) << 12), p.alloc_folio(4))


def shmem_uffd(p: pkmm.Process, n: int) -> None:
    """Shared shmem registered for uffd-wp with EVENT_FORK (so fork copies it)."""
    v = p.mmap(START, n, shared=True, uffd_wp=True, uffd_fork=True)
    for i in range(0, n, 16):
        p.map(v.vm_start + (i << 12), p.alloc_folio(4, backing="shmem"))


def zero(p: pkmm.Process, n: int) -> None:
    """Read-faulted private anon memory: the shared zero page everywhere."""
    v = p.mmap(START, n, anon_vma=True)
    for i in range(n):
        p.map_zero_page(v.vm_start + (i << 12))


def swap(p: pkmm.Process, n: int) -> None:
    """Swapped-out private anon memory: swap entries, half of them exclusive."""
    v = p.mmap(START, n)
    for i in range(n):
        p.map_swap(v.vm_start + (i << 12), i, exclusive=i % 2 == 0)


LAYOUTS: dict[str, Callable[[pkmm.Process, int], None]] = {
    f.__name__: f for f in (anon_mixed, file_private, shmem_uffd, zero, swap)}


def best_fork(b: Bulk, kernel: str, repeats: int) -> tuple[float, int, int]:
    """Best fork_bulk time (s) over ``repeats`` copies, and the slices each engine took."""
    times = []
    for _ in range(repeats):
        c = b.copy()
        t = time.perf_counter()
        r = fork_bulk(c, kernel)
        times.append(time.perf_counter() - t)
    return min(times), r.vectorised_slices, r.hard_slices


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("layouts", nargs="*", help="some of " + ", ".join(LAYOUTS))
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    unknown = sorted(set(a.layouts) - set(LAYOUTS))
    if unknown:
        ap.error(f"unknown layout(s) {unknown}; choose from {', '.join(LAYOUTS)}")
    n = a.size_mib << 8
    print(f"{a.size_mib} MiB per layout; fork: best of {a.repeats} (ms), vectorised/traced "
          "PMD slices")
    for name in a.layouts or LAYOUTS:
        p = pkmm.Process()
        t = time.perf_counter()
        LAYOUTS[name](p, n)
        build = time.perf_counter() - t
        t = time.perf_counter()
        b = from_process(p)
        conv = time.perf_counter() - t
        cells = []
        for kernel in pkmm.KERNELS:
            s, vec, hard = best_fork(b, kernel, a.repeats)
            cells.append(f"{kernel} {s * 1e3:6.1f} ({vec}/{hard})")
        print(f"{name:12s} build {build:5.2f} s, from_process {conv:4.2f} s | "
              + " | ".join(cells))


if __name__ == "__main__":
    main()
