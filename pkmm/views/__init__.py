"""Widgets and static pictures for the pkmm lab (needs ipywidgets; matplotlib optional).

Every widget is a ``VBox`` that draws model state as HTML and carries a static
``text/html`` fallback, so notebooks read well on GitHub and in nbconvert output.
``import pkmm`` never imports this package.
Taught in: notebooks/00-start-here.ipynb
"""

from __future__ import annotations

from ..scenario import as_scenario
from .compare import Comparison, VersionCompare, compare_forks, comparison_html
from .frames import ForkFrames, Snapshot
from .layout import LayoutBuilder, LayoutModel
from .playground import AfterForkPlayground, PlaygroundModel
from .render import folio_table, grid_html, process_cells
from .static import process_html, steps_table
from .stepper import ForkStepper

__all__ = [
    "AfterForkPlayground", "Comparison", "ForkFrames", "ForkStepper", "LayoutBuilder",
    "LayoutModel", "PlaygroundModel", "Snapshot", "VersionCompare", "as_scenario",
    "compare_forks", "comparison_html", "folio_table", "grid_html", "process_cells",
    "process_html", "steps_table",
]
