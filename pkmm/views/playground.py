"""AfterForkPlayground: reads, writes, exit() and DMA after a fork, with ablations.

Simulator concept (views layer).  The widget forks a fresh build of a layout under a
chosen kernel (optionally with rules switched off) and then lets the learner act as the
parent, the child or a device; every access runs the model's fault path and the log
shows what it did (CoW copy, reuse, zero page, PMD split ...).
Taught in: notebooks/07-after-fork.ipynb
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import ipywidgets as widgets

from ..context import ABLATIONS
from ..errors import FaultError, LayoutError
from ..fork import fork
from ..kernels import DEFAULT_KERNEL, KERNELS
from ..process import Process, dma_write
from ..pte import PAGE_SIZE
from ..scenario import as_scenario
from .base import PkmmWidget, button, html_box
from .render import CSS, esc, folio_table, grid_html, process_cells

ACTIONS = ("read", "write", "exit", "DMA write (device)")


def _kind(fr: Any) -> str:
    """The fault path an access took, or "no fault" when the PTE allowed it."""
    return "no fault" if fr is None or not fr.faulted else str(fr.kind)


class PlaygroundModel:
    """A forked pair of processes and a log of what the learner did.

    >>> m = PlaygroundModel({"vmas": [{"start": 0, "npages": 2}],
    ...     "folios": {"F": {"order": 0}}, "ptes": [{"addr": 0, "folio": "F"}]}, "v6.17")
    >>> m.act("child", "write", 0, 7)
    'child write slot 0 = 7: cow-copy'
    >>> m.act("parent", "read", 0)
    'parent read slot 0 -> 0: no fault'
    """

    def __init__(self, layout: Any, kernel: str = DEFAULT_KERNEL,
                 without: Iterable[str] = frozenset()) -> None:
        self.scenario = as_scenario(layout)
        self.kernel = kernel
        self.without = frozenset(without)
        self.parent, self.folios = self.scenario.build()
        self.result = fork(self.parent, kernel=kernel, without=self.without)
        self.child = self.result.child
        self.names = {f.pfn: n for n, f in self.folios.items()}
        self.start = self.parent.vmas[0].vm_start if self.parent.vmas else 0
        self.log: list[str] = []

    def proc(self, who: str) -> Process:
        """The parent or the child."""
        if who not in ("parent", "child"):
            raise LayoutError(f"who={who!r}: 'parent' or 'child'")
        return self.parent if who == "parent" else self.child

    def act(self, who: str, action: str, slot: int, value: int = 0) -> str:
        """Do one thing; returns (and logs) a one-line account of it."""
        addr = self.start + slot * PAGE_SIZE
        if action == "read":
            v = self.proc(who).read(addr)
            fr = self.proc(who).last_fault
            line = f"{who} read slot {slot} -> {v}: {_kind(fr)}"
        elif action == "write":
            self.proc(who).write(addr, value)
            fr = self.proc(who).last_fault
            line = f"{who} write slot {slot} = {value}: {_kind(fr)}"
        elif action == "exit":
            self.proc(who).exit()
            line = f"{who} exited: its mappings and pins are gone"
        elif action.startswith("DMA"):
            f, page = self._pinned()
            dma_write(f, page, value)
            line = (f"device wrote {value} into pinned page {self.names.get(f.pfn, '?')}:"
                    f"{page}")
        else:
            raise LayoutError(f"action={action!r}: one of {', '.join(ACTIONS)}")
        self.log.append(line)
        return line

    def _pinned(self) -> tuple[Any, int]:
        for pin in self.scenario.pins:
            return self.folios[pin["folio"]], pin.get("page", 0)
        raise LayoutError("DMA write: the layout pins no page; pin one in the layout")

    def fault_detail(self, who: str) -> str:
        """The last fault of ``who``, every decision it took."""
        fr = self.proc(who).last_fault
        return str(fr) if fr is not None else ""


class AfterForkPlayground(PkmmWidget):
    """Widget: act as parent, child or device after fork; watch CoW copies and reuse.

    Taught in: notebooks/07-after-fork.ipynb
    """

    def __init__(self, layout: Any, kernel: str = DEFAULT_KERNEL,
                 without: Iterable[str] = frozenset()) -> None:
        super().__init__("pkmm-after-fork")
        self.model = PlaygroundModel(layout, kernel, without)
        self._kernel = widgets.Dropdown(options=list(KERNELS), value=kernel,
                                        description="kernel")
        self._ablate = [widgets.Checkbox(value=name in self.model.without,
                                         description=f"without {name}", indent=False)
                        for name in sorted(ABLATIONS)]
        self._reset = button("fork again", "pkmm-refork")
        self._who = widgets.Dropdown(options=["parent", "child"], description="who")
        self._action = widgets.Dropdown(options=list(ACTIONS), description="does")
        self._slot = widgets.BoundedIntText(value=0, min=0, max=511, description="slot")
        self._value = widgets.IntText(value=1, description="value")
        self._go = button("go", "pkmm-act")
        self._error = html_box()
        self._view = html_box()
        self._go.on_click(lambda _b: self.act(self._who.value, self._action.value,
                                              self._slot.value, self._value.value))
        self._reset.on_click(lambda _b: self.refork())
        self.children = [html_box(CSS),
                         widgets.HBox([self._kernel, *self._ablate, self._reset]),
                         widgets.HBox([self._who, self._action, self._slot, self._value,
                                       self._go]),
                         self._error, self._view]
        self.redraw()

    def __repr__(self) -> str:
        m = self.model
        w = ",".join(sorted(m.without)) or "none"
        return f"AfterForkPlayground({m.scenario.name}, kernel={m.kernel}, without={w})"

    @property
    def error(self) -> str:
        """The error box's HTML ("" after a successful action)."""
        return self._error.value

    def refork(self) -> None:
        """Rebuild and fork again with the selected kernel and ablations."""
        without = {n for n, cb in zip(sorted(ABLATIONS), self._ablate, strict=True) if cb.value}
        self.model = PlaygroundModel(self.model.scenario, self._kernel.value, without)
        self._error.value = ""
        self.redraw()

    def act(self, who: str, action: str, slot: int, value: int = 0) -> None:
        """Run one action; a fault the process cannot survive shows in the error box."""
        try:
            self.model.act(who, action, slot, value)
            self._error.value = ""
        except (LayoutError, FaultError) as e:
            self._error.value = f'<div class="pkmm-error"><b>Not possible:</b> {esc(e)}</div>'
        self.redraw()

    def _side(self, who: str) -> str:
        p = self.model.proc(who)
        if p.exited:
            return f"<div><b>{who}</b> (exited)</div>"
        cells = process_cells(p, self.model.names)
        data = []
        for c in cells:
            hit = p.page_at(c.addr)
            data.append(c if hit is None else
                        type(c)(c.addr, c.label, c.bits, c.kind,
                                f"{c.extra} ={hit[0].pages[hit[1]].data}".strip()))
        return f"<div><b>{who}</b>" + grid_html(data, base=self.model.start) + "</div>"

    def redraw(self) -> None:
        """Draw both page tables (with page contents), the folios and the log."""
        m = self.model
        last = m.log[-1] if m.log else "fork done; pick who does what"
        detail = ""
        if m.log and not m.log[-1].startswith(("device", "parent exited", "child exited")):
            detail = m.fault_detail(m.log[-1].split()[0])
        self._view.value = (
            f'<div class="pkmm-panel"><b>{esc(last)}</b><pre>{esc(detail)}</pre>'
            f"log: {esc(' | '.join(m.log[-6:]))}</div>"
            + '<div class="pkmm-side">' + self._side("parent") + self._side("child")
            + "</div>" + folio_table(m.folios))

    def static_html(self) -> str:
        return self._error.value + self._view.value
