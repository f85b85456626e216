"""ForkStepper: step forward and back through every decision of one fork.

Simulator concept (views layer).  The frames come from the model's own trace of a real
fork of the layout (:class:`~pkmm.views.stepper_model.StepperModel`); this widget only
draws them: the event's function, rule and reason, the PTEs it acted on outlined as the
scan cursor in the parent's and the child's table, and the folio counters.  Step by
event or by copy call, play at a chosen speed, or use the arrow keys.  Made from a
LayoutBuilder, it follows the builder.  Its static fallback is a filmstrip of the fork's
key frames.
Taught in: notebooks/02-fork-one-pte-at-a-time.ipynb
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import traitlets

from ..kernels import DEFAULT_KERNEL, KERNELS
from ..scenario import Scenario
from .live import Control, LiveWidget, button, number, select, whole
from .stepframes import StepFrames
from .stepper_model import StepperModel
from .svg.core import Picture
from .svg.stepframe import filmstrip, frame_picture, frame_words

SPEEDS = {150: "fast", 500: "normal", 1200: "slow"}


class ForkStepper(LiveWidget):
    """Widget: one fork of a layout, decision by decision, for a chosen kernel.

    Taught in: notebooks/02-fork-one-pte-at-a-time.ipynb
    """

    panel_css = traitlets.Unicode("pkmm-stepper-panel").tag(sync=True)

    def __init__(self, layout: Any, kernel: str = DEFAULT_KERNEL,
                 without: Iterable[str] = frozenset()) -> None:
        model = StepperModel(layout, kernel, without)
        super().__init__(label="pkmm fork stepper: one fork, decision by decision")
        self.add_class("pkmm-fork-stepper")
        self.model = model
        if model.source is not None:
            model.source.subscribe(self._layout_changed)
        self.refresh()

    def __repr__(self) -> str:
        m = self.model
        return f"ForkStepper({m.scenario.name}, kernel={m.kernel}, steps={m.last})"

    @property
    def frames(self) -> StepFrames:
        """Every frame of the current fork."""
        return self.model.frames

    @property
    def scenario(self) -> Scenario:
        """The layout being forked."""
        return self.model.scenario

    @property
    def index(self) -> int:
        """The current frame (0 = before fork)."""
        return self.model.index

    @property
    def words(self) -> str:
        """The panel's text: what the kernel did at this frame, and why."""
        return "\n".join(text for _, text in self.panel)

    def go(self, k: int) -> None:
        """Jump to frame ``k`` (clamped)."""
        self.attempt(self.model.go, k)

    def set_kernel(self, kernel: str) -> None:
        """Re-run the fork under another kernel and start again at frame 0."""
        self.attempt(self.model.set_kernel, kernel)

    def _layout_changed(self) -> None:
        self.playing = False
        self.model.follow()
        self.refresh()

    def on_control(self, cid: str, value: Any) -> None:
        m = self.model
        self.model.note = ""
        actions = {"prev": m.prev, "next": m.next, "prev_call": m.prev_call,
                   "next_call": m.next_call}
        if cid in actions:
            actions[cid]()
        elif cid == "kernel":
            self.playing = False
            m.set_kernel(str(value))
        elif cid == "step":
            m.go(whole(value, "step"))
        elif cid == "play":
            if m.index >= m.last:
                m.go(0)
            self.playing = not self.playing
        elif cid == "speed":
            self.interval = whole(value, "speed")

    def on_key(self, key: str) -> None:
        self.model.next() if key == "ArrowRight" else self.model.prev()

    def on_tick(self) -> None:
        if self.model.index >= self.model.last:
            self.playing = False
            return
        self.model.next()

    def draw(self) -> tuple[Picture, list[list[str]], list[list[Control]]]:
        m = self.model
        f = m.frame
        panel = [["head", f"step {f.index}/{f.total} · kernel {m.kernel}"]]
        panel += [[cls, text] for cls, text in frame_words(f)]
        if m.note:
            panel.append(["muted", m.note])
        play = "pause" if self.playing else "play"
        rows = [
            [select("kernel", "kernel", m.kernel, [(k, k) for k in KERNELS]),
             button("prev", "◀ prev", "one event back", css="pkmm-step-prev",
                    aria="previous step", disabled=f.index == 0),
             button("next", "next ▶", "one event forward", css="pkmm-step-next",
                    aria="next step", disabled=f.index >= m.last),
             button("prev_call", "◀◀ call", "back to the end of the previous copy call",
                    aria="previous copy call"),
             button("next_call", "call ▶▶", "forward to the end of the next copy call",
                    aria="next copy call", css="pkmm-step-call"),
             button("play", f"{'❚❚' if self.playing else '▶'} {play}", f"{play} the fork",
                    css="pkmm-play", pressed=self.playing),
             select("speed", "speed", self.interval, list(SPEEDS.items())),
             number("step", "step", f.index, 0, m.last, "jump to a step", kind="range")],
        ]
        return frame_picture(f, m.kernel, explain=False, width=self.width), panel, rows

    def static_picture(self) -> Picture:
        """A filmstrip of the fork's key frames (not just the current one)."""
        return filmstrip(self.model.frames)


__all__ = ["ForkStepper"]
