"""The live widget shell: one anywidget whose picture is a pkmm SVG and whose controls
Python describes; the same SVG is the static fallback in the widget's mime bundle.

Simulator concept (views layer).  The ES module and its CSS ship inside the package
(``pkmm/views/assets``) -- anywidget loads them from the kernel, never from a CDN, so the
widgets work offline, in JupyterLab, Notebook 7, VS Code and JupyterLite (no server
extension).  Subclasses implement :meth:`LiveWidget.draw` (state -> picture, panel,
controls) and handle what the learner did in :meth:`on_control` / :meth:`on_click`; any
pkmm error they raise is shown in the widget and the controls are redrawn from the
model, so a refused change is rolled back in its control.
Taught in: notebooks/00-start-here.ipynb
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anywidget
import traitlets

from ..errors import FaultError, LayoutError
from .svg.core import Picture

ASSETS = Path(__file__).resolve().parent / "assets"

Control = dict[str, Any]


def button(cid: str, label: str, help: str = "", **kw: Any) -> Control:
    """A push button (``value`` is sent back when clicked)."""
    return {"id": cid, "kind": "button", "label": label, "help": help or label, **kw}


def select(cid: str, label: str, value: Any, options: list[tuple[Any, str]],
           help: str = "") -> Control:
    """A labelled drop-down: ``options`` are (value, text) pairs."""
    return {"id": cid, "kind": "select", "label": label, "value": value,
            "options": [[str(v), t] for v, t in options], "help": help or label}


def number(cid: str, label: str, value: int, lo: int, hi: int, help: str = "",
           kind: str = "number") -> Control:
    """A labelled whole-number field (or a slider with ``kind="range"``)."""
    return {"id": cid, "kind": kind, "label": label, "value": value, "min": lo, "max": hi,
            "help": help or label}


def checkbox(cid: str, label: str, value: bool, help: str = "") -> Control:
    """A labelled check box."""
    return {"id": cid, "kind": "checkbox", "label": label, "value": value,
            "help": help or label}


class LiveWidget(anywidget.AnyWidget):
    """Base of the pkmm widgets: picture + panel + controls + error, all from Python."""

    _esm = ASSETS / "widget.js"
    _css = ASSETS / "widget.css"
    svg = traitlets.Unicode("").tag(sync=True)
    panel: Any = traitlets.List([]).tag(sync=True)        # [css class, text] lines
    controls: Any = traitlets.List([]).tag(sync=True)     # rows of Control dicts
    error = traitlets.Unicode("").tag(sync=True)
    label = traitlets.Unicode("pkmm widget").tag(sync=True)
    playing = traitlets.Bool(False).tag(sync=True)
    interval = traitlets.Int(500).tag(sync=True)
    panel_css = traitlets.Unicode("").tag(sync=True)   # extra class of the panel

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.width: int | None = None      # px the front end gives the picture
        self.add_class("pkmm-widget")
        self.on_msg(self._on_msg)

    # -- what subclasses provide -------------------------------------------------------
    def draw(self) -> tuple[Picture, list[list[str]], list[list[Control]]]:
        """The current picture, panel lines and control rows."""
        raise NotImplementedError

    def on_control(self, cid: str, value: Any) -> None:
        """A control changed (or a button was pressed)."""

    def on_click(self, token: str) -> None:
        """A clickable element of the picture was activated (mouse or keyboard)."""

    def on_key(self, key: str) -> None:
        """ArrowLeft / ArrowRight pressed on the widget."""

    def on_tick(self) -> None:
        """One tick of the play timer."""

    def follow(self, layout: Any) -> Any:
        """Redraw when ``layout`` changes, if it is a live builder (its ``model`` takes
        subscribers); returns that model, or None for a fixed layout."""
        source = getattr(layout, "model", None)
        if source is None or not hasattr(source, "subscribe"):
            return None
        source.subscribe(self._layout_changed)
        return source

    def _layout_changed(self) -> None:
        """The builder this widget follows changed (see :meth:`follow`)."""

    def static_picture(self) -> Picture:
        """The picture shown where the widget is not live (default: the current one)."""
        return self.draw()[0]

    # -- plumbing ----------------------------------------------------------------------
    def refresh(self) -> None:
        """Redraw everything from the model (this is also the rollback of a refusal)."""
        pic, panel, controls = self.draw()
        with self.hold_sync():
            self.svg = pic.svg
            self.panel = panel
            self.controls = controls

    def attempt(self, fn: Any, *args: Any) -> bool:
        """Run one learner action; a pkmm error goes to the error box. Always redraws."""
        try:
            fn(*args)
            self.error = ""
            ok = True
        except (LayoutError, FaultError) as e:
            self.error = self.phrase(str(e))
            ok = False
        self.refresh()
        return ok

    def phrase(self, message: str) -> str:
        """The model's message, worded for this widget (subclasses rewrite API terms)."""
        return message

    def _on_msg(self, _widget: Any, content: dict[str, Any], _buffers: Any) -> None:
        kind = content.get("type")
        if kind == "control":
            self.attempt(self.on_control, str(content.get("id")), content.get("value"))
        elif kind == "click":
            self.attempt(self.on_click, str(content.get("token")))
        elif kind == "key":
            self.attempt(self.on_key, str(content.get("key")))
        elif kind == "tick":
            self.attempt(self.on_tick)
        elif kind == "width":
            px = content.get("value")
            if isinstance(px, (int, float)) and px >= 1 and (
                    self.width is None or abs(self.width - px) > 24):
                self.width = int(px)   # lay the picture out for it (not an action)
                self.refresh()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle: Any = super()._repr_mimebundle_(**kwargs)
        meta: dict[str, Any] = {}
        if isinstance(bundle, tuple):
            bundle, meta = bundle
        data: dict[str, Any] = dict(bundle or {})
        pic = self.static_picture()
        data["text/html"] = pic._repr_html_()
        data["image/svg+xml"] = pic.svg
        data["text/plain"] = repr(self)
        return (data, meta) if meta else data


def whole(value: Any, what: str) -> int:
    """A whole number from a control's value (a LayoutError names the control)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise LayoutError(f"{what}: {value!r} is not a whole number")
    return value
