"""The lab's pictures, one function each (pure Python; no widget library needed).

Every function draws from the model -- it builds and forks the layout it is given, or
reads the processes, trace or variant it is handed -- and returns a
:class:`~pkmm.views.svg.core.Picture` (``.svg``, ``_repr_svg_``, ``_repr_html_``), so
a notebook cell that evaluates one shows the picture live, on GitHub, in nbconvert HTML
and in a PDF.  See :mod:`pkmm.views.svg` for how they are drawn.

The pictures (each docstring has a runnable example):

* ``memory_map(source, kernel=None, *, without=(), names=None, title="", clickable=False,
  selected=None, folios=(), width=None)`` -- parent and child page tables, lines to
  folios in memory;
* ``batch_strip(layout, kernel=DEFAULT_KERNEL, *, without=(), vma=0)`` -- a bracket per copy call;
* ``decision_flow(layout, kernel=DEFAULT_KERNEL, slot=0, *, without=(), vma=0)`` -- the copy
  path's decisions, the path of PTE ``slot`` lit;
* ``eagain_loop(layout, kernel=DEFAULT_KERNEL, round=1, *, without=())`` -- -EAGAIN, drop locks,
  preallocate, retry;
* ``dma_timeline(layout=None, kernel=DEFAULT_KERNEL, *, without=(), write=5, dma=9)`` -- who sees
  the device's write;
* ``rule_grid(kernel=DEFAULT_KERNEL, *, uffd_fork=True)`` -- W D A SD UW, private/shared x
  parent/child;
* ``masked_compare(layout, kernels=BATCHING_KERNELS, slot=0)`` -- two PTEs as
  bit fields, ignored bits greyed;
* ``page_state_machine(layout, kernel=DEFAULT_KERNEL, slot=0, actions=(("child", "write"),
  ("parent", "write")), *, without=())`` -- a page's states after fork;
* ``per_page_cost(kernel=DEFAULT_KERNEL, sizes=(1, 4, 16, 512), *, params=None)`` -- per-PTE part
  plus per-batch part / n;
* ``fork_step(layout, kernel=DEFAULT_KERNEL, step=0, *, without=())`` -- one frame of a fork;
* ``version_compare(layout, a, b = COMPARE_PAIR, *, without=())`` -- two kernels, the
  differing PTEs marked in the table where they differ;
* ``vma_verdicts(layout, kernel, *, kinds=None, title="", summary="", width=None)`` -- the
  memory map after fork and, per VMA, whether its page table was copied and its folios'
  refcounts before and after.

A ``layout`` is a :class:`pkmm.scenario.Scenario`, a scenario dict or a LayoutBuilder;
the default kernels come from the registry (:mod:`pkmm.kernels`: ``DEFAULT_KERNEL``,
``BATCHING_KERNELS``, ``COMPARE_PAIR``).
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
    vma_verdicts,
)

__all__ = ["Picture", "batch_strip", "decision_flow", "dma_timeline", "eagain_loop",
           "fork_step", "masked_compare", "memory_map", "page_state_machine",
           "per_page_cost", "rule_grid", "version_compare", "vma_verdicts"]
