"""VersionCompare: fork one layout under two kernels and mark what differs.

Simulator concept (views layer).  Both forks are the model's
(:func:`~pkmm.views.compare_model.compare_forks`); the picture marks a PTE only in the
table -- parent or child -- where the two kernels' results differ.
Taught in: notebooks/06-upstream-batching.ipynb
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..kernels import COMPARE_PAIR, KERNELS
from ..scenario import Scenario, as_scenario
from .compare_model import Comparison, compare_forks
from .live import Control, LiveWidget, select
from .render import table_html
from .stepper_model import check_without
from .svg.compare import comparison_picture
from .svg.core import Picture
from .svg.scene import need_kernel


def comparison_html(c: Comparison) -> str:
    """The comparison as HTML: the picture and a table of the differing PTEs."""
    rows = [[s, side, va, vb] for s, side, va, vb in c.diffs]
    return (comparison_picture(c)._repr_html_()
            + (table_html(("slot", "table", c.a, c.b), rows) if rows else ""))


class VersionCompare(LiveWidget):
    """Widget: the same layout forked under two kernels, differences marked.

    Taught in: notebooks/06-upstream-batching.ipynb
    """

    def __init__(self, layout: Any, a: str = COMPARE_PAIR[0], b: str = COMPARE_PAIR[1],
                 without: Iterable[str] = frozenset()) -> None:
        self.a, self.b = need_kernel(a, "VersionCompare"), need_kernel(b, "VersionCompare")
        self.without = check_without(without)
        self._scenario = as_scenario(layout)
        self.comparison = compare_forks(self._scenario, self.a, self.b, self.without)
        super().__init__(label="pkmm version compare: one layout, two kernels")
        self.add_class("pkmm-version-compare")
        self.source: Any = self.follow(layout)
        self.refresh()

    def __repr__(self) -> str:
        return (f"VersionCompare({self._scenario.name}, {self.a} vs {self.b}, "
                f"diffs={len(self.comparison.diffs)})")

    @property
    def scenario(self) -> Scenario:
        """The layout being compared."""
        return self._scenario

    def _layout_changed(self) -> None:
        assert self.source is not None
        self._scenario = self.source.scenario()
        self.comparison = compare_forks(self._scenario, self.a, self.b, self.without)
        self.refresh()

    def on_control(self, cid: str, value: Any) -> None:
        if cid in ("a", "b"):
            k = need_kernel(value, f"kernel {cid.upper()}")
            a, b = (k, self.b) if cid == "a" else (self.a, k)
            self.comparison = compare_forks(self._scenario, a, b, self.without)
            self.a, self.b = a, b

    def draw(self) -> tuple[Picture, list[list[str]], list[list[Control]]]:
        c = self.comparison
        sides = sorted({side for side, _ in c.differing})
        panel = [["head", f"{len(c.diffs)} differing PTE(s)"
                  + (f", in the {' and '.join(sides)} table" if sides else "")]]
        rows = [[select("a", "kernel A", self.a, [(k, k) for k in KERNELS]),
                 select("b", "kernel B", self.b, [(k, k) for k in KERNELS])]]
        return comparison_picture(c, self.width), panel, rows

    def static_html(self) -> str:
        """The comparison as static HTML."""
        return comparison_html(self.comparison)


__all__ = ["Comparison", "VersionCompare", "compare_forks", "comparison_html"]
