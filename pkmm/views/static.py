"""Static pictures for notebook cells: a process's page table, a fork's steps.

Simulator concept (views layer).  Pure Python: ``process_html`` is the memory map of
one process, ``steps_table`` one row per copy call; both show on a static page.
Taught in: notebooks/01-ptes-folios-vmas.ipynb
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..folio import Folio
from ..fork import ForkResult
from ..process import Process
from .render import CSS, esc, table_html
from .svg.core import Picture
from .svg.memmap import memory_map


@dataclass(frozen=True)
class HtmlBlock:
    """A piece of HTML a notebook cell shows (no IPython needed)."""

    html: str
    text: str

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return self.text


def process_html(p: Process, folios: Mapping[str, Folio] | None = None,
                 title: str = "") -> Picture:
    """One process's page table with lines to its pages (the memory map)."""
    names = {f.pfn: n for n, f in (folios or {}).items()}
    return memory_map(p, names=names, title=title or f"{p.name}'s page table")


def steps_table(r: ForkResult) -> HtmlBlock:
    """One row per return of the present/non-present copy function."""
    rows = [[f"{s.addr:#x}", s.func, s.action, s.nr, s.stop or "", s.reason] for s in r.steps]
    html = (f'<div class="pkmm-widget">{CSS}<b>{esc(r.kernel)}</b>: batches {esc(r.batches)}'
            + table_html(("addr", "function", "action", "nr", "stop", "why"), rows)
            + "</div>")
    text = f"{r.kernel}: batches {r.batches}\n" + "\n".join(
        f"{a} {f} {act} nr={n} {st} {why}".rstrip() for a, f, act, n, st, why in rows)
    return HtmlBlock(html, text)
