"""ForkStepper: step forward and back through every decision of one fork.

Simulator concept (views layer).  The frames come from :class:`ForkFrames` (the model's
trace of a real fork of the layout); this widget only draws them: the current event's
function, version, rule and reason, the batch it acted on, and parent and child page
tables side by side with page counters and the child's rss.
Taught in: notebooks/02-fork-one-pte-at-a-time.ipynb
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import ipywidgets as widgets

from ..kernels import DEFAULT_KERNEL, KERNELS
from ..kernels.common import stop_words
from ..scenario import as_scenario
from .base import PkmmWidget, button, html_box
from .frames import ForkFrames, Snapshot
from .render import CSS, esc, grid_html, table_html


def panel_html(ff: ForkFrames, snap: Snapshot) -> str:
    """What the kernel is doing at this frame, and the counters it changed."""
    e = snap.event
    head = f"<b>step {snap.index}/{len(ff) - 1}</b> &middot; kernel <b>{esc(ff.kernel)}</b>"
    if e is None:
        body = ("<br>Before fork: the parent's page table on the left, the child's (empty) "
                "on the right. Press <b>next</b> to run the first decision.")
    else:
        where = ""
        if e.addr is not None:
            where = f" at {e.addr:#x}" + (f" (+{e.nr} PTEs)" if e.nr > 1 else "")
        body = (f"<br>function <code>{esc(e.func)}()</code>{where}<br>rule "
                f"<code>{esc(e.rule)}</code>: {esc(e.reason)}")
        if e.rule.startswith("stop:"):
            body += f"<br><i>batch stopped:</i> {esc(stop_words(e.rule[5:]))}"
    rows = []
    for name, ref in snap.refcount.items():
        pages = [(i, mc, ae) for (n, i), (mc, ae) in snap.pages.items() if n == name]
        mcs = " ".join(str(mc) for _, mc, _ in pages[:16]) + (" ..." if len(pages) > 16 else "")
        ae = sum(1 for *_, a in pages if a)
        rows.append([name, ref, mcs, f"{ae}/{len(pages)}"])
    rss = ", ".join(f"{k[3:]} {v}" for k, v in snap.rss.items() if v) or "0"
    counters = table_html(("folio", "refcount", "mapcount (first pages)", "AE pages"), rows)
    return (f'<div class="pkmm-stepper-panel">{head}{body}{counters}child rss (pages mapped '
            f"so far; the kernel adds each pass's counts when the pass ends): {esc(rss)}</div>")


def tables_html(ff: ForkFrames, snap: Snapshot) -> str:
    """Parent and child PTE grids side by side, current batch outlined, changes marked."""
    classes: dict[int, str] = {}
    for a in snap.current:
        classes[a] = "cur"
    for a in snap.changed:
        classes[a] = classes.get(a, "") + " chg"
    base = ff.addrs[0] if ff.addrs else 0
    return ('<div class="pkmm-side"><div><b>parent</b>'
            + grid_html(snap.parent, base=base, classes=classes, css_class="pkmm-pte-grid")
            + "</div><div><b>child</b>"
            + grid_html(snap.child, base=base, classes=classes, css_class="pkmm-pte-grid")
            + "</div></div>")


class ForkStepper(PkmmWidget):
    """Widget: one fork of a layout, decision by decision, for a chosen kernel.

    Taught in: notebooks/02-fork-one-pte-at-a-time.ipynb
    """

    def __init__(self, layout: Any, kernel: str = DEFAULT_KERNEL,
                 without: Iterable[str] = frozenset()) -> None:
        super().__init__("pkmm-fork-stepper")
        self.scenario_ = as_scenario(layout)
        self.without = frozenset(without)
        self.frames = ForkFrames(self.scenario_, kernel, self.without)
        self._kernel = widgets.Dropdown(options=list(KERNELS), value=kernel,
                                        description="kernel")
        self._prev = button("◀ prev", "pkmm-step-prev")
        self._next = button("next ▶", "pkmm-step-next")
        self._play = widgets.Play(value=0, min=0, max=len(self.frames) - 1, interval=600)
        self._slider = widgets.IntSlider(value=0, min=0, max=len(self.frames) - 1,
                                         description="step", continuous_update=True)
        widgets.jslink((self._play, "value"), (self._slider, "value"))
        self._panel = html_box()
        self._tables = html_box()
        self._prev.on_click(lambda _b: self.go(self.index - 1))
        self._next.on_click(lambda _b: self.go(self.index + 1))
        self._slider.observe(lambda c: self._draw(), names="value")
        self._kernel.observe(lambda c: self.set_kernel(c["new"]), names="value")
        self.children = [html_box(CSS), widgets.HBox([self._kernel, self._prev, self._next,
                                                      self._play, self._slider]),
                         self._panel, self._tables]
        self._draw()

    def __repr__(self) -> str:
        return (f"ForkStepper({self.scenario_.name}, kernel={self.frames.kernel}, "
                f"steps={len(self.frames) - 1})")

    @property
    def index(self) -> int:
        """The current frame (0 = before fork)."""
        return int(self._slider.value)

    @property
    def panel(self) -> str:
        """The panel's HTML (function, rule, reason, counters)."""
        return self._panel.value

    def go(self, k: int) -> None:
        """Jump to frame ``k`` (clamped)."""
        self._slider.value = max(0, min(k, len(self.frames) - 1))
        self._draw()

    def set_kernel(self, kernel: str) -> None:
        """Re-run the fork under another kernel and start again at frame 0."""
        self.frames = ForkFrames(self.scenario_, kernel, self.without)
        with self.hold_sync():
            self._slider.value = 0
            self._play.max = self._slider.max = len(self.frames) - 1
        self._draw()

    def _draw(self) -> None:
        snap = self.frames.snapshot(self.index)
        self._panel.value = panel_html(self.frames, snap)
        self._tables.value = tables_html(self.frames, snap)

    def static_html(self) -> str:
        """The final state, with the batches the kernel returned."""
        ff = self.frames
        snap = ff.snapshot(len(ff) - 1)
        steps = [[f"{s.addr:#x}", s.action, s.nr, s.stop or s.reason] for s in ff.result.steps]
        return (f"<p><b>fork under {esc(ff.kernel)}</b>: batches "
                f"{esc(ff.result.batches)}</p>" + tables_html(ff, snap)
                + table_html(("addr", "action", "nr", "why"), steps))


__all__ = ["ForkStepper", "panel_html", "tables_html"]
