"""pkmm's pictures: SVG drawn from model state and traces, for live and static pages.

Why hand-written SVG (and not drawsvg, matplotlib or an HTML grid): the pictures must
import with nothing but the standard library (JupyterLite without numpy, nbval, CI);
their output must be byte-for-byte deterministic (committed notebook outputs, doctests);
every colour must be a CSS variable of JupyterLab with a plain fallback (light and dark
themes live, the light palette on GitHub, nbconvert and PDF); and every word must be
real ``<text>`` with ``<title>``/``<desc>`` and ARIA labels (screen readers, search).
A drawing library would add a dependency and hide exactly those details; the pictures
need only boxes, text and lines, which :class:`~pkmm.views.svg.core.Canvas` writes in a
few dozen lines.  The same SVG is each widget's static fallback.
Taught in: notebooks/00-start-here.ipynb
"""

from __future__ import annotations

from .batches import batch_strip
from .compare import version_compare
from .core import Picture
from .cost import per_page_cost
from .dma import dma_timeline
from .flow import decision_flow
from .loop import eagain_loop
from .memmap import memory_map
from .rules import masked_compare, rule_grid
from .states import page_state_machine
from .stepframe import fork_step
from .vmacopy import vma_verdicts

__all__ = ["Picture", "batch_strip", "decision_flow", "dma_timeline", "eagain_loop",
           "fork_step", "masked_compare", "memory_map", "page_state_machine",
           "per_page_cost", "rule_grid", "version_compare", "vma_verdicts"]
