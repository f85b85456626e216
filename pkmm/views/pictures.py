"""The lab's pictures, one function each (pure Python; no widget library needed).

Every function draws from the model -- it builds and forks the layout it is given, or
reads the processes, trace or variant it is handed -- and returns a
:class:`~pkmm.views.svg.core.Picture` (``.svg``, ``_repr_svg_``, ``_repr_html_``), so
a notebook cell that evaluates one shows the picture live, on GitHub, in nbconvert HTML
and in a PDF.  See :mod:`pkmm.views.svg` for how they are drawn.
Taught in: notebooks/00-start-here.ipynb
"""

from __future__ import annotations

from .svg import (
    Picture,
    batch_strip,
    decision_flow,
    dma_timeline,
    eagain_loop,
    fork_step,
    masked_compare,
    memory_map,
    page_state_machine,
    per_page_cost,
    rule_grid,
    version_compare,
)

__all__ = ["Picture", "batch_strip", "decision_flow", "dma_timeline", "eagain_loop",
           "fork_step", "masked_compare", "memory_map", "page_state_machine",
           "per_page_cost", "rule_grid", "version_compare"]
