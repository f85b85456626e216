"""Pictures and widgets for the pkmm lab.

The pictures (:mod:`pkmm.views.pictures`) are pure Python SVG drawn from model state and
traces: they need neither ipywidgets nor anywidget, and every one shows on a static page.
The widgets (``LayoutBuilder``, ``ForkStepper``, ``VersionCompare``,
``AfterForkPlayground``) draw the same pictures live; each carries the SVG as its static
fallback.  Names are imported on first use, so ``from pkmm.views import memory_map``
works where no widget library is installed.  ``import pkmm`` never imports this package.
Taught in: notebooks/00-start-here.ipynb
"""

from __future__ import annotations

import importlib
from typing import Any

from . import pictures as _pictures_module

# name -> submodule that defines it (imported lazily: widget modules need ipywidgets)
_LAZY = {
    "AfterForkPlayground": "playground", "PlaygroundModel": "playground_model",
    "Comparison": "compare_model", "VersionCompare": "compare",
    "compare_forks": "compare_model", "comparison_html": "compare",
    "ForkFrames": "frames", "Snapshot": "frames", "StepFrames": "stepframes",
    "ForkStepper": "stepper", "StepperModel": "stepper_model",
    "LayoutBuilder": "layout", "LayoutModel": "layout_model",
    "folio_table": "render", "grid_html": "render", "process_cells": "render",
    "process_html": "static", "steps_table": "static",
    "as_scenario": "_scenario",
    **{name: "pictures" for name in _pictures_module.__all__},
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'pkmm.views' has no attribute {name!r}")
    if mod == "_scenario":
        from ..scenario import as_scenario
        return as_scenario
    value = getattr(importlib.import_module(f".{mod}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
