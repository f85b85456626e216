"""Static pictures for notebook cells: a process's page table, a fork's steps.

Simulator concept (views layer).  Small wrappers that return ``IPython.display.HTML``
so a notebook cell shows a table even where widgets are not live.
Taught in: notebooks/01-ptes-folios-vmas.ipynb
"""

from __future__ import annotations

from collections.abc import Mapping

from IPython.display import HTML

from ..folio import Folio
from ..fork import ForkResult
from ..process import Process
from .render import CSS, folio_table, grid_html, process_cells, table_html


def process_html(p: Process, folios: Mapping[str, Folio] | None = None,
                 title: str = "") -> HTML:
    """One process's PTE grid (and its folios' counters when given)."""
    names = {f.pfn: n for n, f in (folios or {}).items()}
    head = f"<b>{title or p.name}</b>: " + "; ".join(v.describe() for v in p.vmas)
    body = grid_html(process_cells(p, names)) + (folio_table(folios) if folios else "")
    return HTML(f'<div class="pkmm-widget">{CSS}{head}{body}</div>')


def steps_table(r: ForkResult) -> HTML:
    """One row per return of the present/non-present copy function."""
    rows = [[f"{s.addr:#x}", s.func, s.action, s.nr, s.stop or "", s.reason] for s in r.steps]
    return HTML(f'<div class="pkmm-widget">{CSS}<b>{r.kernel}</b>: batches {r.batches}'
                + table_html(("addr", "function", "action", "nr", "stop", "why"), rows)
                + "</div>")
