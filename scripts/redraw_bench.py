"""Measure one widget redraw of a 512-PTE layout: Python render time and message size.

A redraw is what a click costs the kernel: the model change, the picture (SVG), the panel
and the controls, and the JSON that anywidget sends to the browser for them.  Targets:
<= 50 ms and < 50 KB per frame.  Prints best / median / worst of several redraws for the
layout builder (toggle a bit), the fork stepper (jump to a step; v6.8 has ~1500 frames)
and the after-fork playground (a write fault); a benchmark, not a test: run it on the
machine you care about.
Usage: .venv/bin/python scripts/redraw_bench.py
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable

from pkmm.views import AfterForkPlayground, ForkStepper, LayoutBuilder
from pkmm.views.live import LiveWidget


def message_bytes(w: LiveWidget) -> int:
    """Size of the state update one redraw sends (svg + panel + controls, as JSON)."""
    return len(json.dumps({"svg": w.svg, "panel": w.panel, "controls": w.controls}))


def measure(name: str, w: LiveWidget, change: Callable[[int], None], n: int = 9) -> None:
    times, sizes = [], []
    for i in range(n):
        t = time.perf_counter()
        change(i)
        w.refresh()
        times.append((time.perf_counter() - t) * 1000)
        sizes.append(message_bytes(w))
    print(f"{name}: render best {min(times):.1f} ms, median {statistics.median(times):.1f} "
          f"ms, worst {max(times):.1f} ms; message median {statistics.median(sizes) / 1024:.1f}"
          f" KB, largest {max(sizes) / 1024:.1f} KB")


def main() -> None:
    builder = LayoutBuilder(npages=512, orders=(9,))
    measure("layout builder, 512 PTEs, toggle D", builder,
            lambda i: builder.model.toggle(i * 37 % 512, "dirty"))
    for kernel in ("v6.8", "v6.17"):
        stepper = ForkStepper(builder, kernel=kernel)
        frames = len(stepper.frames)
        measure(f"fork stepper ({kernel}), 512 PTEs, {frames} frames", stepper,
                lambda i, s=stepper, n=frames: s.model.go(i * 173 % n))
    play = AfterForkPlayground(builder, kernel="v6.17")
    measure("after-fork playground, 512 PTEs, write", play,
            lambda i: play.model.act("parent", "write", i * 41 % 512, i))


if __name__ == "__main__":
    main()
