"""LayoutBuilder: build a VMA, folios, PTEs (with their bits) and pins by clicking.

Simulator concept (views layer).  :class:`LayoutModel` is plain Python: it holds the
learner's choices and turns them into a :class:`pkmm.scenario.Scenario`; every change is
validated by building that scenario with the model, so an impossible layout is refused
with the model's own :class:`pkmm.LayoutError` message.  :class:`LayoutBuilder` is the
ipywidgets view over it.
Taught in: notebooks/01-ptes-folios-vmas.ipynb
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets

from ..errors import LayoutError, ScenarioError
from ..scenario import Scenario
from .base import PkmmWidget, button, html_box
from .layout_model import BITS, PATTERNS, START, VMA_KINDS, LayoutModel
from .render import CSS, error_box, folio_table, grid_html, process_cells


class LayoutBuilder(PkmmWidget):
    """Widget: pick a VMA kind, add folios, map pages, toggle PTE bits, pin pages.

    ``LayoutBuilder(npages=16, orders=(4,))`` starts with one order-4 folio mapped
    contiguously from slot 0.  ``.scenario`` exports the layout.
    Taught in: notebooks/01-ptes-folios-vmas.ipynb
    """

    def __init__(self, npages: int = 16, kind: str = "private anon",
                 orders: Sequence[int] = (), pattern: str = "contiguous") -> None:
        super().__init__("pkmm-layout-builder")
        self.model = LayoutModel(npages, kind)
        at = 0
        for o in orders:
            name = self.model.add_folio(o)
            seq = self.model.pages_for(name, pattern if pattern != "across two folios"
                                       else "contiguous")
            self.model.map(name, at, pattern if pattern != "across two folios"
                           else "contiguous")
            at += len(seq)
        self._kind = widgets.Dropdown(options=list(VMA_KINDS), value=kind,
                                      description="VMA")
        self._npages = widgets.BoundedIntText(value=npages, min=1, max=512,
                                              description="slots")
        self._order = widgets.Dropdown(options=list(range(10)), value=2,
                                       description="order")
        self._add = button("add folio")
        self._folio = widgets.Dropdown(options=[], description="folio")
        self._pattern = widgets.Dropdown(options=list(PATTERNS), description="pattern")
        self._at = widgets.BoundedIntText(value=at, min=0, max=511, description="at slot")
        self._map = button("map")
        self._slot = widgets.BoundedIntText(value=0, min=0, max=511, description="PTE #")
        self._toggles = []
        for bit, letter in BITS:
            b = button(letter, "pkmm-toggle-bit", tooltip=f"toggle {bit} on PTE #", width="44px")
            b.on_click(lambda _b, bit=bit: self.do("toggle", self._slot.value, bit))
            self._toggles.append(b)
        self._pin = button("pin its page", "pkmm-pin", tooltip="FOLL_PIN the page at PTE #")
        self._clear = button("clear")
        self._error = html_box()
        self._grid = html_box()
        self._table = html_box()
        self._kind.observe(lambda c: self.do("set_kind", c["new"]), names="value")
        self._npages.observe(lambda c: self.do("set_npages", c["new"]),
                             names="value")
        self._add.on_click(lambda _b: self.do("add_folio", self._order.value))
        self._map.on_click(lambda _b: self.do("map", self._folio.value,
                                               self._at.value, self._pattern.value))
        self._pin.on_click(lambda _b: self.do("pin_slot", self._slot.value))
        self._clear.on_click(lambda _b: self.do("clear"))
        row = widgets.HBox
        self.children = [
            html_box(CSS),
            row([self._kind, self._npages]),
            row([self._order, self._add, self._folio, self._pattern, self._at, self._map]),
            row([self._slot, *self._toggles, self._pin, self._clear]),
            self._error, self._grid, self._table]
        self.redraw()

    def __repr__(self) -> str:
        m = self.model
        return (f"LayoutBuilder(kind={m.kind!r}, slots={m.npages}, folios={len(m.folios)}, "
                f"mapped={len(m.slots)}, pins={len(m.pins)})")

    @property
    def scenario(self) -> Scenario:
        """The current layout as a Scenario (build it, fork it, step through it)."""
        return self.model.scenario()

    @property
    def error(self) -> str:
        """The message shown in the error box ("" when the last action worked)."""
        return self._error.value

    def do(self, action: str, *args: Any) -> bool:
        """Run a :class:`LayoutModel` method by name (``"map"``, ``"toggle"``, ``"pin"``,
        ...); an impossible choice shows its LayoutError message in the error box.
        Returns whether it worked."""
        ok = True
        try:
            getattr(self.model, action)(*args)
            self._error.value = ""
        except (LayoutError, ScenarioError) as e:
            self._error.value = error_box(str(e))
            ok = False
        self.redraw()
        return ok

    def grid_html(self) -> str:
        """The PTE grid of the current layout."""
        p, folios = self.model.scenario().build()
        names = {f.pfn: n for n, f in folios.items()}
        pinned = {f"{f}:{i}" for f, i in self.model.pins}
        return grid_html(process_cells(p, names), pinned=pinned), folio_table(folios)

    def redraw(self) -> None:
        """Re-render the grid and the folio table from the model."""
        names = [n for n, _ in self.model.folios]
        old = list(self._folio.options)
        if old != names:
            keep = self._folio.value
            self._folio.options = names
            # ipywidgets leaves value None after new options: pick the folio just added,
            # else keep the choice, else the first one
            added = [n for n in names if n not in old]
            self._folio.value = (added[-1] if old and added else keep if keep in names
                                 else names[0] if names else None)
        grid, table = self.grid_html()
        self._grid.value = (f"<b>{self.model.kind}</b>, {self.model.npages} slots from "
                            f"{START:#x}" + grid)
        self._table.value = table

    def static_html(self) -> str:
        return self._error.value + self._grid.value + self._table.value
