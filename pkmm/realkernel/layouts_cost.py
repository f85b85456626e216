"""Layouts that price what the folio runs cannot: zero pages, page-cache pages, empty
PTE slots and page tables, many VMAs, pages copied at fork -- and one real process.

Kernel interfaces: those of :mod:`pkmm.realkernel.replay` (each layout is a scenario,
rebuilt in a probe process, snapshotted, then fork-timed in the REPEAT state).
Taught in: notebooks/08-cost.ipynb

Each layout exercises counts the cost model prices (see :mod:`pkmm.costmodel`); the
``real`` layout is a snapshot of a Python process holding a NumPy array and is never
fitted on: it is the held-out check that the prices add up on a real process's layout.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..scenario import Scenario

MIB = 1 << 20
BASE = 0x10_0000_0000        # where the synthetic layouts start (moved by the replay)


def _one_vma(npages: int, **vma: Any) -> dict[str, Any]:
    return {"start": BASE, "npages": npages, "anon_vma": True, **vma}


def zero_pages(size: int = 256 * MIB) -> Scenario:
    """Zero pages copied raw (no struct page): one written page gives the VMA its
    anon_vma, the rest were only read."""
    n = size >> 12
    return Scenario.from_dict({"name": "zero", "vmas": [_one_vma(n)],
                               "runs": [{"addr": BASE, "npages": 1}],
                               "zero": [{"addr": BASE + 4096, "npages": n - 1}]})


def page_cache(size: int = 256 * MIB) -> Scenario:
    """Page-cache pages of a private file mapping (read), one CoW'd anon page."""
    n = size >> 12
    return Scenario.from_dict({"name": "file", "vmas": [_one_vma(n, backing="file")],
                               "runs": [{"addr": BASE, "npages": 1},
                                        {"addr": BASE + 4096, "npages": n - 1,
                                         "backing": "file", "write": False, "dirty": False}]})


def sparse(size: int = 4 << 30) -> Scenario:
    """One 4K page per 2 MiB: a page table for every PTE, 511 empty slots read each."""
    n = size >> 12
    return Scenario.from_dict({"name": "sparse", "vmas": [_one_vma(n)],
                               "runs": [{"addr": BASE + i * 2 * MIB, "npages": 1}
                                        for i in range(size // (2 * MIB))]})


def many_vmas(count: int = 2048, stride: int = 4096) -> Scenario:
    """``count`` one-page VMAs, writable with a written page and read-only empty ones in
    turn (so they cannot merge); with the default ``stride`` all in one 2 MiB page table,
    with ``stride`` = 2 MiB each written one in a page table of its own (the child then
    allocates a table per VMA, and reads one slot of it)."""
    at = [BASE + (i // 2) * stride * 2 + (i % 2) * 4096 for i in range(count)]
    vmas = [{"start": a, "npages": 1, **({"anon_vma": True} if i % 2 == 0
                                          else {"write": False})} for i, a in enumerate(at)]
    return Scenario.from_dict({"name": "vmas" if stride == 4096 else "spread-vmas",
                               "vmas": vmas, "runs": [{"addr": a, "npages": 1}
                                                      for a in at[::2]]})


def empty_vmas(count: int = 2048, backing: str = "anon") -> Scenario:
    """``count`` one-page VMAs with no page and no anon_vma (``backing="file"``: private
    mappings of a file, like a library's): what dup_mmap costs per VMA alone."""
    vmas = [{"start": BASE + i * 4096, "npages": 1, "backing": backing,
             **({"write": False} if i % 2 else {})} for i in range(count)]
    return Scenario.from_dict({"name": f"empty {backing} VMAs", "vmas": vmas})


def pinned(size: int = 32 * MIB) -> Scenario:
    """4K pages pinned by an io_uring fixed buffer: fork copies every one of them
    (copy_present_page) and the parent keeps them writable, fork after fork."""
    n = size >> 12
    return Scenario.from_dict({"name": "pinned", "vmas": [_one_vma(n)],
                               "runs": [{"addr": BASE, "npages": n, "pinned": True}]})


def real_process(array_mib: int = 512) -> Scenario:
    """A snapshot of a Python process that imported NumPy and filled an array (its heap,
    arenas, libraries, stack): the held-out real layout.  The array is filled while this
    process holds the THP lock with the knobs as they are (so no other user of the lock
    changes the folio size NumPy's MADV_HUGEPAGE gets half-way)."""
    import os
    import signal

    from . import thp
    from .probe import kill_and_reap
    from .snapshot import snapshot
    r, w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()          # before taking the lock: a child must not share its file
    if pid == 0:
        try:
            os.close(r)
            os.close(go_w)
            os.read(go_r, 1)
            import numpy as np
            keep = np.ones(array_mib << 17, np.float64)
            os.write(w, b"x")
            signal.pause()
            del keep
        finally:
            os._exit(0)
    os.close(w)
    os.close(go_r)
    try:
        with thp.thp_settings({}):
            os.write(go_w, b"g")
            os.read(r, 1)
        sc = snapshot(pid)
    finally:
        os.close(r)
        os.close(go_w)
        kill_and_reap(pid)
    d = sc.to_dict()
    d["name"] = f"real (Python + NumPy, {array_mib} MiB array)"
    return Scenario.from_dict(d)


LAYOUTS: dict[str, Callable[[], Scenario]] = {
    "zero": zero_pages, "file": page_cache, "sparse": sparse, "vmas": many_vmas,
    "spread-vmas": lambda: many_vmas(stride=2 * MIB),
    "empty-vmas": empty_vmas, "file-vmas": lambda: empty_vmas(backing="file"),
    "pinned": pinned, "real": real_process}
HELD_OUT = ("real",)


def measure_layouts(rounds: int = 21, names: tuple[str, ...] = tuple(LAYOUTS),
                    progress: bool | None = None) -> list[dict[str, Any]]:
    """Rebuild each layout, fork it once, snapshot it, and time ``rounds`` forks."""
    from ..progress import progress as bar
    from .replay import replay_fork
    out = []
    for name in bar(names, desc="cost layouts", enabled=progress):
        r = replay_fork(LAYOUTS[name](), rounds=rounds)
        out.append({"name": name, "net_min_ns": r["net_min_ns"],
                    "net_median_ns": r["net_median_ns"], "samples_ns": r["samples_ns"],
                    "baseline_ns": r["baseline_ns"], "left_out": r["left_out"],
                    "obtained": r["obtained"].to_dict(), "bare": r["bare"].to_dict()})
    return out
