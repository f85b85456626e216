"""AfterForkPlayground: reads, writes, exit() and DMA after a fork, with ablations.

Simulator concept (views layer).  The state lives in the plain
:class:`~pkmm.views.playground_model.PlaygroundModel`; the widget draws parent and child
as the memory map (click a PTE to act on it), says what each access did and why, and
re-forks at once when the kernel or a rule switch changes (the panel says so).
Taught in: notebooks/07-after-fork.ipynb
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..context import ABLATIONS
from ..kernels import DEFAULT_KERNEL, KERNELS
from .live import Control, LiveWidget, button, checkbox, number, select, whole
from .playground_model import ACTIONS, PlaygroundModel
from .svg.core import Picture
from .svg.memmap import memory_map
from .svg.scene import layout_names


class AfterForkPlayground(LiveWidget):
    """Widget: act as parent, child or device after fork; watch CoW copies and reuse.

    Taught in: notebooks/07-after-fork.ipynb
    """

    def __init__(self, layout: Any, kernel: str = DEFAULT_KERNEL,
                 without: Iterable[str] = frozenset()) -> None:
        model = PlaygroundModel(layout, kernel, without)
        super().__init__(label="pkmm after-fork playground: parent, child and a device")
        self.add_class("pkmm-after-fork")
        self.model = model
        self.who, self.action, self.slot, self.value = "parent", "read", 0, 1
        self.note = "Forked. Pick who does what (or click a PTE), then press go."
        self.source: Any = self.follow(layout)
        self.refresh()

    def __repr__(self) -> str:
        m = self.model
        w = ",".join(sorted(m.without)) or "none"
        return f"AfterForkPlayground({m.scenario.name}, kernel={m.kernel}, without={w})"

    def act(self, who: str, action: str, slot: int, value: int = 0) -> bool:
        """Run one action as ``who`` (``"parent"``/``"child"``); returns whether it
        worked (a refusal is shown in the widget)."""
        return self.attempt(self._do, who, action, slot, value)

    def _do(self, who: str, action: str, slot: int, value: int) -> None:
        self.model.act(who, action, slot, value)
        self.note = ""

    def refork(self, kernel: str | None = None, without: Iterable[str] | None = None) -> None:
        """Build and fork again (with another kernel or rule switches)."""
        def go() -> None:
            m = self.model
            self.model = PlaygroundModel(m.scenario, kernel or m.kernel,
                                         m.without if without is None else without)
            self.note = (f"Forked again under {self.model.kernel}"
                         + (f" without {', '.join(sorted(self.model.without))}"
                            if self.model.without else "") + ": the log starts afresh.")
        self.attempt(go)

    def _layout_changed(self) -> None:
        assert self.source is not None
        m = self.model
        self.model = PlaygroundModel(self.source.scenario(), m.kernel, m.without)
        self.note = "The layout above changed: forked it again."
        self.refresh()

    def on_control(self, cid: str, value: Any) -> None:
        if cid == "kernel":
            self.refork(kernel=str(value))
        elif cid.startswith("without:"):
            name = cid.split(":", 1)[1]
            w = set(self.model.without)
            w = w | {name} if value else w - {name}
            self.refork(without=w)
        elif cid == "refork":
            self.refork()
        elif cid == "who":
            self.model.proc(str(value))
            self.who = str(value)
        elif cid == "action":
            self.action = str(value) if value in ACTIONS else self.action
        elif cid == "slot":
            self.slot = whole(value, "slot")
        elif cid == "value":
            self.value = whole(value, "value")
        elif cid == "go":
            self._do(self.who, self.action, self.slot, self.value)

    def on_click(self, token: str) -> None:
        _, proc, _, slot = token.split(":")
        self.who = "parent" if proc == "0" else "child"
        self.slot = int(slot)

    def phrase(self, message: str) -> str:
        return message.replace("in 'parent'", "in the parent").replace(
            "in 'child'", "in the child").replace("use a live process",
                                                  "press 'fork again' to start over")

    def draw(self) -> tuple[Picture, list[list[str]], list[list[Control]]]:
        m = self.model
        panel: list[list[str]] = []
        if self.note:
            panel.append(["muted", self.note])
        if m.log:
            panel.append(["head", m.log[-1]])
            who = m.log[-1].split()[0]
            if who in ("parent", "child") and "exited" not in m.log[-1]:
                panel += [["", line] for line in m.fault_detail(who)]
            panel.append(["muted", "log: " + " | ".join(m.log[-6:])])
        rules = [checkbox(f"without:{name}", f"without {name}", name in m.without,
                          ABLATIONS[name]) for name in sorted(ABLATIONS)]
        rows = [
            [select("kernel", "kernel", m.kernel, [(k, k) for k in KERNELS],
                    "changing it forks again at once"), *rules,
             button("refork", "fork again", "rebuild the layout and fork", css="pkmm-refork")],
            [select("who", "who", self.who, [("parent", "parent"), ("child", "child")]),
             select("action", "does", self.action, [(a, a) for a in ACTIONS]),
             number("slot", "slot", self.slot, 0, 511, "PTE slot in the first VMA"),
             number("value", "value", self.value, 0, 2**53 - 1, "what a write stores"),
             button("go", "go", "do it", css="pkmm-act")],
        ]
        # copies made at fork or by a fault get readable names (new1, ...), as elsewhere
        pic = memory_map((m.parent, m.child), names=layout_names(m.folios, (m.parent, m.child)),
                         clickable=True,
                         # the static page shows this picture too: no "click" in its title
                         title=(f"after fork ({m.kernel}) and the actions since: "
                                "both page tables now"),
                         selected=None, width=self.width)
        return pic, panel, rows

    def static_html(self) -> str:
        """The current state as static HTML."""
        return self.static_picture()._repr_html_()
