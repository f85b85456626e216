"""VersionCompare: fork one layout under two kernels and highlight what differs.

Simulator concept (views layer).  :func:`compare_forks` forks two fresh builds of the
same scenario and lists, slot by slot, where the final parent or child PTEs differ, and
the batch sequences each kernel returned.  Nothing is predicted here: both sides are the
model's results.
Taught in: notebooks/06-upstream-batching.ipynb
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import ipywidgets as widgets

from ..fork import ForkResult, fork
from ..kernels import COMPARE_PAIR, KERNELS
from ..pte import PAGE_SIZE
from ..scenario import Scenario, as_scenario
from .base import PkmmWidget, html_box
from .render import CSS, Cell, esc, grid_html, process_cells, pte_cell, table_html

_NEW = re.compile(r"^f\d+:")


def _norm(c: Cell) -> tuple[str, str]:
    # pkmm: pages allocated during fork (copies) get allocation-order names; two kernels
    # may allocate in another order (wasted preallocations), so compare them as "new".
    return (_NEW.sub("new:", c.label), c.bits)


@dataclass
class Comparison:
    """Two forks of one scenario and their differences."""

    a: str
    b: str
    result_a: ForkResult
    result_b: ForkResult
    cells: dict[str, dict[str, list[Cell]]]            # kernel -> "parent"/"child" -> cells
    diffs: list[tuple[int, str, str, str]] = field(default_factory=list)  # slot, side, a, b

    @property
    def differing_slots(self) -> set[int]:
        """Slots whose final parent or child PTE differs."""
        return {d[0] for d in self.diffs}


def compare_forks(layout: Any, a: str = COMPARE_PAIR[0], b: str = COMPARE_PAIR[1],
                  without: Iterable[str] = frozenset()) -> Comparison:
    """Fork ``layout`` under kernels ``a`` and ``b``; list the final PTE differences.

    >>> s = {"vmas": [{"start": 0, "npages": 4}], "folios": {"F": {"order": 2}},
    ...      "ptes": [{"addr": 0, "folio": "F", "nr": 2},
    ...               {"addr": 8192, "folio": "F", "page": 2, "nr": 2, "dirty": False}]}
    >>> c = compare_forks(s, "batch-v3", "v6.9")
    >>> c.result_a.batches, c.result_b.batches, sorted(c.differing_slots)
    ([4], [2, 2], [2, 3])
    """
    sc: Scenario = as_scenario(layout)
    results: dict[str, ForkResult] = {}
    cells: dict[str, dict[str, list[Cell]]] = {}
    for k in (a, b):
        p, folios = sc.build()
        r = fork(p, kernel=k, without=frozenset(without))
        names = {f.pfn: n for n, f in folios.items()}
        results[k] = r
        parent = process_cells(p, names)
        child_ptes = dict(r.child.ptes())
        child = [pte_cell(c.addr, child_ptes.get(c.addr), p.machine, names) for c in parent]
        cells[k] = {"parent": parent, "child": child}
    diffs: list[tuple[int, str, str, str]] = []
    base = cells[a]["parent"][0].addr if cells[a]["parent"] else 0
    for side in ("parent", "child"):
        for ca, cb in zip(cells[a][side], cells[b][side], strict=True):
            if _norm(ca) != _norm(cb):
                diffs.append(((ca.addr - base) // PAGE_SIZE, side,
                              f"{ca.label} {ca.bits}", f"{cb.label} {cb.bits}"))
    return Comparison(a, b, results[a], results[b], cells, diffs)


def comparison_html(c: Comparison) -> str:
    """Both kernels' batches, final page tables (differences in red) and a diff table."""
    slots = c.differing_slots
    out = []
    for k, r in ((c.a, c.result_a), (c.b, c.result_b)):
        cl = c.cells[k]
        base = cl["parent"][0].addr if cl["parent"] else 0
        marks = {base + s * PAGE_SIZE: "diff" for s in slots}
        out.append(f"<div><b>{esc(k)}</b>: batches {esc(r.batches)}, copies {r.copies}, "
                   f"-EAGAIN rounds {r.eagain}<br>parent"
                   + grid_html(cl["parent"], base=base, classes=marks) + "child"
                   + grid_html(cl["child"], base=base, classes=marks) + "</div>")
    rows = [[s, side, va, vb] for s, side, va, vb in c.diffs]
    summary = (f"<p>{len(c.diffs)} differing PTE(s)</p>" if c.diffs else
               "<p>No difference in the final page tables.</p>")
    return ('<div class="pkmm-side">' + "".join(out) + "</div>" + summary
            + (table_html(("slot", "table", c.a, c.b), rows) if rows else ""))


class VersionCompare(PkmmWidget):
    """Widget: the same layout forked under two kernels, differences highlighted.

    Taught in: notebooks/06-upstream-batching.ipynb
    """

    def __init__(self, layout: Any, a: str = COMPARE_PAIR[0], b: str = COMPARE_PAIR[1]) -> None:
        super().__init__("pkmm-version-compare")
        self.scenario_ = as_scenario(layout)
        self._a = widgets.Dropdown(options=list(KERNELS), value=a, description="kernel A")
        self._b = widgets.Dropdown(options=list(KERNELS), value=b, description="kernel B")
        self._view = html_box()
        self._a.observe(lambda c: self.redraw(), names="value")
        self._b.observe(lambda c: self.redraw(), names="value")
        self.children = [html_box(CSS), widgets.HBox([self._a, self._b]), self._view]
        self.redraw()

    def __repr__(self) -> str:
        return (f"VersionCompare({self.scenario_.name}, {self._a.value} vs {self._b.value}, "
                f"diffs={len(self.comparison.diffs)})")

    def redraw(self) -> None:
        """Fork again under the two selected kernels and redraw."""
        self.comparison = compare_forks(self.scenario_, self._a.value, self._b.value)
        self._view.value = comparison_html(self.comparison)

    def static_html(self) -> str:
        return self._view.value
