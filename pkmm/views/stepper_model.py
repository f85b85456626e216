"""StepperModel: one fork of a layout, frame by frame (plain Python, no widget library).

Simulator concept (views layer).  Holds the layout (a Scenario, or the LayoutModel of a
builder, which it follows: a change there re-forks here), the kernel, the ablations and
the current frame; every move is clamped, every argument checked (LayoutError).
Taught in: notebooks/02-fork-one-pte-at-a-time.ipynb
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..context import check_ablations
from ..errors import LayoutError
from ..kernels import DEFAULT_KERNEL
from ..scenario import Scenario, as_scenario
from .stepframes import Frame, StepFrames
from .svg.scene import need_kernel


def check_without(without: Any) -> frozenset[str]:
    """Validate an ablation set (:func:`pkmm.context.check_ablations`)."""
    return check_ablations(without)


class StepperModel:
    """A fork of ``layout`` under ``kernel``, stepped one event at a time.

    >>> m = StepperModel({"vmas": [{"start": 0, "npages": 2}],
    ...     "folios": {"F": {"order": 1}}, "ptes": [{"addr": 0, "folio": "F"}]}, "v6.9")
    >>> m.next(); m.index, m.frame.event.func
    (1, 'vma_needs_copy')
    >>> m.next_call(); m.frame.event.rule
    'set-ptes'
    """

    def __init__(self, layout: Any, kernel: str = DEFAULT_KERNEL,
                 without: Iterable[str] = frozenset()) -> None:
        self.kernel = need_kernel(kernel, "ForkStepper")
        self.without = check_without(without)
        self.source = getattr(layout, "model", None)    # a builder's LayoutModel
        if not hasattr(self.source, "subscribe"):
            self.source = None
        self.scenario: Scenario = as_scenario(layout)
        self.revision = getattr(self.source, "revision", 0)
        self.note = ""
        self._fork()

    def _fork(self) -> None:
        self.frames = StepFrames(self.scenario, self.kernel, self.without)
        self.index = 0

    @property
    def last(self) -> int:
        """The last frame's index."""
        return len(self.frames) - 1

    @property
    def frame(self) -> Frame:
        """The current frame."""
        return self.frames.frame(self.index)

    def follow(self) -> bool:
        """Re-fork if the builder this stepper was made from changed; True if it did."""
        if self.source is None or self.source.revision == self.revision:
            return False
        self.scenario = self.source.scenario()
        self.revision = self.source.revision
        self._fork()
        self.note = "The layout above changed: forked it again (back to step 0)."
        return True

    def go(self, k: int) -> None:
        """Jump to frame ``k`` (clamped to 0..last)."""
        if isinstance(k, bool) or not isinstance(k, int):
            raise LayoutError(f"step={k!r}: a whole number 0..{self.last}")
        self.index = max(0, min(k, self.last))

    def next(self) -> None:
        """One event forward."""
        self.go(self.index + 1)

    def prev(self) -> None:
        """One event back."""
        self.go(self.index - 1)

    def next_call(self) -> None:
        """Forward to the end of the next present-PTE copy call."""
        self.go(self.frames.next_call(self.index, 1))

    def prev_call(self) -> None:
        """Back to the end of the previous copy call."""
        self.go(self.frames.next_call(self.index, -1))

    def set_kernel(self, kernel: str) -> None:
        """Fork again under ``kernel`` and start at frame 0."""
        self.kernel = need_kernel(kernel, "ForkStepper")
        self._fork()
        self.note = f"Forked again under {kernel} (back to step 0)."
