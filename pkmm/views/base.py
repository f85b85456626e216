"""Shared widget plumbing: the static-HTML fallback and the root CSS classes.

Simulator concept (views layer).  Every pkmm widget is an ``ipywidgets.VBox`` whose
picture is an HTML string built from model state; ``_repr_mimebundle_`` adds that HTML
as ``text/html`` next to the widget view, so nbconvert, GitHub and a notebook opened
without a kernel still show it (jupyter-practice.md §3.7).
Taught in: notebooks/00-start-here.ipynb
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets

from .render import CSS


class PkmmWidget(widgets.VBox):
    """Base: subclasses implement :meth:`static_html` and a short stable ``__repr__``."""

    def __init__(self, kind: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_class("pkmm-widget")
        self.add_class(kind)

    def static_html(self) -> str:
        """The current picture as self-contained HTML (no widget runtime needed)."""
        raise NotImplementedError

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        data = super()._repr_mimebundle_(**kwargs) or {}
        if isinstance(data, tuple):   # (data, metadata) form
            data = data[0]
        data = dict(data)
        data["text/html"] = f'<div class="pkmm-widget">{CSS}{self.static_html()}</div>'
        data["text/plain"] = repr(self)
        return data


def html_box(value: str = "", css: str = "") -> widgets.HTML:
    """A ``widgets.HTML`` with an optional CSS class."""
    w = widgets.HTML(value=value)
    if css:
        w.add_class(css)
    return w


def button(description: str, css: str = "", tooltip: str = "", width: str = "auto"
           ) -> widgets.Button:
    """A compact button with an optional CSS class."""
    # min_width: inside an HBox flexbox would otherwise shrink labels to "ad..."
    b = widgets.Button(description=description, tooltip=tooltip,
                       layout=widgets.Layout(width=width, min_width="max-content"))
    if css:
        b.add_class(css)
    return b
