"""LayoutBuilder: build a VMA, folios, PTEs (with their bits) and pins by clicking.

Simulator concept (views layer).  The state and every rule check live in the plain
:class:`~pkmm.views.layout_model.LayoutModel`; this widget draws the layout as the
memory map (click a PTE to select it, toggle a bit or pin its page, as the "clicking a
PTE" tool says) and offers the same actions as labelled buttons for the keyboard.  A
refused change shows the model's reason in the widget and every control is redrawn from
the model, so the control that asked for it is rolled back.
Taught in: notebooks/01-ptes-folios-vmas.ipynb
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ..errors import LayoutError
from ..scenario import Scenario
from .layout_model import BITS, PATTERNS, START, VMA_KINDS, LayoutModel
from .live import Control, LiveWidget, button, number, select, whole
from .svg.core import Picture
from .svg.memmap import memory_map

#: what a click on a PTE does: tool id -> words
TOOLS = {"select": "select it", **{bit: f"toggle {letter}" for bit, letter in BITS},
         "pin": "pin its page"}


def phrase(message: str) -> str:
    """The model's message in the builder's words (buttons, not keyword arguments).

    >>> phrase("write=True is impossible here: uffd_wp=True PTEs are write-protected; "
    ...        "pass write=False")
    'W cannot stay set: uffd-wp PTEs are write-protected; toggle W off first'
    """
    m = re.sub(r"npages=(\d+)", r"\1 slots", message)
    m = re.sub(r"\bslot (\d+) is", r"PTE #\1 is", m)
    m = re.sub(r"\bat=(-?\d+)", r"at slot \1", m)
    m = m.replace("write=True is impossible here: ", "W cannot stay set: ")
    m = m.replace("; pass write=False", "; toggle W off first")
    for bit, letter in BITS:
        m = m.replace(f"{bit}=True PTEs", f"{bit.replace('_', '-')} PTEs")
        m = m.replace(f"{bit}=True", f"{letter} set")
    return m


class LayoutBuilder(LiveWidget):
    """Widget: pick a VMA kind, add folios, map pages, toggle PTE bits, pin pages.

    ``LayoutBuilder(npages=16, orders=(4,))`` starts with one order-4 folio mapped
    contiguously from slot 0.  ``.scenario`` exports the layout; steppers, comparisons
    and playgrounds made from a builder follow its changes.
    Taught in: notebooks/01-ptes-folios-vmas.ipynb
    """

    def __init__(self, npages: int = 16, kind: str = "private anon",
                 orders: Sequence[int] = (), pattern: str = "contiguous") -> None:
        if isinstance(orders, (str, bytes)) or not isinstance(orders, Sequence):
            raise LayoutError(f"orders={orders!r}: a list of folio orders, e.g. (4,) or "
                              "(3, 2, 0)")
        if pattern not in PATTERNS:
            raise LayoutError(f"pattern={pattern!r}: choose one of {', '.join(PATTERNS)}")
        model = LayoutModel(npages, kind)
        at = 0
        first = "contiguous" if pattern == "across two folios" else pattern
        for o in orders:
            name = model.add_folio(o)
            seq = model.pages_for(name, first)
            model.map(name, at, first)
            at += len(seq)
        super().__init__(label="pkmm layout builder: a VMA, its folios and PTEs")
        self.add_class("pkmm-layout-builder")
        self.model = model
        self.slot, self.order, self.pattern = 0, 2, "contiguous"
        self.at = min(at, model.npages - 1)
        self.folio = model.folios[0][0] if model.folios else ""
        self.tool = "select"
        self.refresh()

    def __repr__(self) -> str:
        m = self.model
        return (f"LayoutBuilder(kind={m.kind!r}, slots={m.npages}, folios={len(m.folios)}, "
                f"mapped={len(m.slots)}, pins={len(m.pins)})")

    @property
    def scenario(self) -> Scenario:
        """The current layout as a Scenario (build it, fork it, step through it)."""
        return self.model.scenario()

    # -- actions (the model does the work) ---------------------------------------------
    def do(self, action: str, *args: Any) -> bool:
        """Run a :class:`LayoutModel` method by name (``"map"``, ``"toggle"``, ``"pin"``,
        ...); an impossible choice shows its message in the widget.  Returns whether it
        worked."""
        fn = getattr(self.model, action, None) if not action.startswith("_") else None
        if fn is None or not callable(fn) or action in ("scenario", "validate", "subscribe"):
            self.error = f"action={action!r} is not a layout change"
            return False
        ok = self.attempt(fn, *args)
        if ok and action == "add_folio":
            self.folio = self.model.folios[-1][0]
        return ok

    def phrase(self, message: str) -> str:
        return phrase(message)

    def on_control(self, cid: str, value: Any) -> None:
        m = self.model
        if cid == "kind":
            m.set_kind(str(value))
        elif cid == "npages":
            m.set_npages(whole(value, "slots"))
        elif cid == "order":
            self.order = whole(value, "order")
        elif cid == "add":
            m.add_folio(self.order)
            self.folio = m.folios[-1][0]
        elif cid == "folio":
            self.folio = str(value)
        elif cid == "pattern":
            self.pattern = str(value)
        elif cid == "at":
            self.at = whole(value, "at slot")
        elif cid == "map":
            m.map(self.folio, self.at, self.pattern)
        elif cid == "slot":
            slot = whole(value, "PTE #")
            m._check_slot(slot)
            self.slot = slot
        elif cid in dict(BITS):
            m.toggle(self.slot, cid)
        elif cid == "pin":
            m.pin_slot(self.slot)
        elif cid == "clear":
            m.clear()
        elif cid == "tool":
            if value not in TOOLS:
                raise LayoutError(f"tool={value!r}: one of {', '.join(TOOLS)}")
            self.tool = str(value)

    def on_click(self, token: str) -> None:
        parts = token.split(":")
        if len(parts) != 4 or parts[0] != "pte":
            raise LayoutError(f"click {token!r}: not a PTE of this layout")
        slot = int(parts[3])
        self.slot = slot
        if self.tool in dict(BITS):
            self.model.toggle(slot, self.tool)
        elif self.tool == "pin":
            self.model.pin_slot(slot)

    # -- drawing -------------------------------------------------------------------------
    def picture(self) -> Picture:
        """The layout before fork, as the memory map."""
        proc, folios = self.model.built()
        return memory_map(proc, names={f.pfn: n for n, f in folios.items()},
                          title=f"{self.model.kind}, {self.model.npages} slots from "
                          f"{START:#x}", clickable=True, selected=self.slot,
                          folios=folios.values(), width=self.width)

    def draw(self) -> tuple[Picture, list[list[str]], list[list[Control]]]:
        m = self.model
        if self.slot >= m.npages:
            self.slot = m.npages - 1
        names = [n for n, _ in m.folios]
        if self.folio not in names:
            self.folio = names[0] if names else ""
        entry = m.slots.get(self.slot)
        bits = [button(bit, letter, f"toggle {bit} on PTE #{self.slot}",
                       css="pkmm-toggle-bit", pressed=bool(entry and entry[bit]),
                       aria=f"{bit} bit of PTE #{self.slot}")
                for bit, letter in BITS]
        rows = [
            [select("kind", "VMA", m.kind, [(k, k) for k in VMA_KINDS], "the VMA's kind"),
             number("npages", "slots", m.npages, 1, 512, "PTE slots in the VMA")],
            [select("order", "order", self.order,
                    [(o, f"{o} ({4 << o} KiB)") for o in range(10)], "folio order"),
             button("add", "add folio", "allocate a folio of this order", css="pkmm-add"),
             select("folio", "folio", self.folio, [(n, n) for n in names] or [("", "none")],
                    "folio to map"),
             select("pattern", "pattern", self.pattern, [(p, p) for p in PATTERNS]),
             number("at", "at slot", self.at, 0, m.npages - 1, "first PTE to map at"),
             button("map", "map", "map the folio's pages from that slot", css="pkmm-map")],
            [number("slot", "PTE #", self.slot, 0, m.npages - 1, "the PTE the buttons act on"),
             *bits,
             button("pin", "pin its page", f"FOLL_PIN the page at PTE #{self.slot}",
                    css="pkmm-pin"),
             button("clear", "clear", "forget folios, mappings and pins"),
             select("tool", "clicking a PTE:", self.tool, list(TOOLS.items()),
                    "what a click on a PTE in the picture does")],
        ]
        return self.picture(), [], rows

    def static_html(self) -> str:
        """The layout as static HTML (the picture, and the error if the last change was
        refused)."""
        err = f'<div class="pkmm-error">Not possible: {self.error}</div>' if self.error else ""
        return err + self.picture()._repr_html_()

    def redraw(self) -> None:
        """Redraw from the model (kept for notebooks written for earlier versions)."""
        self.refresh()
