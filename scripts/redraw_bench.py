"""Measure widget redraw time for a 512-PTE layout (the lab's < 100 ms target).

Prints the best and median of several redraws for the layout builder and the fork stepper;
a benchmark, not a test: run it on the machine you care about.
Usage: .venv/bin/python scripts/redraw_bench.py
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from pkmm.views import ForkStepper, LayoutBuilder


def timings(fn: Callable[[], object], n: int = 9) -> tuple[float, float]:
    """(best, median) wall time of ``n`` calls, in ms."""
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return min(out), statistics.median(out)


def main() -> None:
    builder = LayoutBuilder(npages=512, orders=(9,))
    best, med = timings(builder.redraw)
    print(f"layout builder, 512 PTEs: best {best:.1f} ms, median {med:.1f} ms")
    for kernel in ("v6.8", "v6.17"):
        stepper = ForkStepper(builder, kernel=kernel)
        frames = len(stepper.frames)
        steps = iter(range(10**6))

        def step(st: ForkStepper = stepper, it: object = steps, n: int = frames) -> None:
            st.go(next(it) * 37 % n)  # type: ignore[call-overload]
        best, med = timings(step)
        print(f"fork stepper ({kernel}), 512 PTEs, {frames} frames: best {best:.1f} ms, "
              f"median {med:.1f} ms")


if __name__ == "__main__":
    main()
