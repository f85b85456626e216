"""The memory map: page tables of one or two processes, lines to physical memory.

Simulator concept (views layer).  The parent's PTE strips on top, physical memory in the
middle (folios as contiguous blocks of pages carrying refcount, per-page mapcount,
AnonExclusive and pins), the child's strips below; each PTE has a line to the page it
maps.  Zero page, raw PFNs, swap and migration entries and PMD mappings are drawn
differently (word, pattern and line style, not colour alone).
Taught in: notebooks/00-start-here.ipynb, notebooks/01-ptes-folios-vmas.ipynb
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ...errors import LayoutError
from ...folio import Folio
from ...fork import ForkResult
from ...process import Process
from .core import Canvas, Picture
from .physmem import MAX_W, Box, Memory, Pages, draw_memory, flow
from .scene import Run, Slot, bounded, build_fork, need_kernel, runs, vma_slots

CW, CH, GAP = 36, 46, 3          # one slot cell
ROW = 24                         # cells per row
WIDE = 3                         # a run cell is this many cells wide
LEFT = 8


def _cells(slots: Sequence[Slot]) -> list[Run]:
    # few slots: one cell each; many: one cell per run (a 512-PTE table is a few boxes)
    if len(slots) <= 2 * ROW:
        return [Run(i, i, s) for i, s in enumerate(slots)]
    return bounded(slots, 2 * ROW)


def _slot_tip(who: str, s: Slot) -> str:
    return f"{who} PTE #{s.index} at {s.addr:#x}: " + (repr(s.pte) if s.pte else "empty")


def _draw_cell(c: Canvas, who: str, run: Run, slots: Sequence[Slot], b: Box,
               pins: Mapping[tuple[int, int], int]) -> None:
    s = run.head
    role = s.kind if s.kind != "none" else "none"
    pmd = s.pte is not None and s.pte.pmd
    tip = _slot_tip(who, s) if run.n == 1 else (
        f"{who} PTEs #{s.index}-#{slots[run.last].index}: {run.n} x {s.label} "
        f"{s.letters or 'no bits'}")
    if run.parts > 1:
        tip = f"{who} PTEs #{s.index}-#{slots[run.last].index}: " + "; ".join(
            f"#{r.head.index}: {r.head.label} {r.head.letters}"
            for r in runs(slots[run.first:run.last + 1])[:8])
    c.rect(b.x, b.y, b.w, b.h, role, tip=tip, extra=' stroke-width="2.5"' if pmd else "")
    idx = f"#{s.index}" if run.n == 1 else f"#{s.index}-{slots[run.last].index}"
    c.text(b.x + 3, b.y + 10, idx, "pk-t2")
    label = s.label if run.n == 1 else (
        f"{s.label}-{slots[run.last].page}" if s.folio is not None else s.label)
    if run.parts > 1:
        label = f"mixed: {run.parts} runs"
    c.text(b.x + 3, b.y + 21, label + (" PMD" if pmd and run.n > 1 else ""), "pk-t2")
    letters = s.letters.split() if run.parts == 1 else []
    c.text(b.x + 3, b.y + 32, " ".join(letters[:3]), "pk-t2", extra=' font-weight="bold"')
    if letters[3:]:
        c.text(b.x + 3, b.y + 42, " ".join(letters[3:]), "pk-t2", extra=' font-weight="bold"')
    if run.n > 1:
        c.text(b.x + b.w - 3, b.y + 10, f"×{run.n}", "pk-t2", anchor="end")
    pinned = 0 if s.folio is None else sum(
        pins.get((s.folio.pfn, i), 0) for i in range(s.page, s.page + run.n))
    if pinned:   # the page behind this PTE is pinned: say so here too (and how often)
        c.text(b.x + b.w - 3, b.y + 42, "PIN" if pinned == 1 else f"PIN×{pinned}", "pk-t2",
               anchor="end", extra=' font-weight="bold"')


def memory_map(source: Any, kernel: str | None = None, *, without: Iterable[str] = (),
               names: Mapping[int, str] | None = None, title: str = "",
               clickable: bool = False, selected: int | None = None,
               folios: Iterable[Folio] = (), width: int | None = None) -> Picture:
    """Page tables (parent above, child below) with a line from each PTE to its page.

    ``source``: a layout (Scenario, scenario dict or LayoutBuilder) -- with ``kernel``
    it is forked and both processes are drawn, without it the parent before fork; a
    :class:`pkmm.ForkResult`; one :class:`pkmm.Process`; or a (parent, child) pair.
    ``names`` maps folio head pfns to names (a layout supplies its own).
    ``folios``: also draw these (allocated but maybe unmapped) folios.
    ``width``: the width to lay out for, in px (a live widget passes what it has; rows
    of PTEs wrap, the text keeps its size).
    ``clickable`` (live widgets) makes every PTE cell a keyboard-operable button whose
    token is ``pte:<process>:<vma>:<slot>``; ``selected`` outlines that slot of VMA 0.

    >>> pic = memory_map({"vmas": [{"start": 0, "npages": 4}],
    ...     "folios": {"F": {"order": 2}}, "ptes": [{"addr": 0, "folio": "F"}]}, "v6.9")
    >>> pic.svg.startswith("<svg") and "refcount 8" in pic.svg
    True
    >>> pic
    <memory-map: parent and child: 2 page tables, 1 folio(s) in physical memory>
    """
    procs, names = _procs(source, kernel, without, names)
    mem = Memory(procs, names, folios)
    if width is not None and (isinstance(width, bool) or not isinstance(width, int)
                              or width < 1):
        raise LayoutError(f"width={width!r}: a width in pixels")
    c = Canvas(max(320, min(width or MAX_W, 1600)))
    who = ["parent", "child"] if len(procs) == 2 else [procs[0].name]
    y = 14.0
    c.text(LEFT, y, title or ("fork(): the child's page table maps the parent's pages"
                              if len(procs) == 2 else f"{procs[0].name}'s page table"),
           "pk-h")
    tables: list[list[tuple[Slot, Run, Box, Sequence[Slot]]]] = []
    opts: dict[str, Any] = {"clickable": clickable, "selected": selected, "pins": mem.pins}
    y, top = _table(c, procs[0], who[0], names, y + 8, 0, **opts)
    tables.append(top)
    y, pages = draw_memory(c, mem, y + 34)
    if len(procs) == 2:
        y, bottom = _table(c, procs[1], who[1], names, y + 30, 1, **opts)
        tables.append(bottom)
    for k, cells in enumerate(tables):
        for s, run, b, _ in cells:
            _link(c, s, run, b, pages, below=k == 1)
    desc = (f"{' and '.join(who)}: {len(procs)} page table"
            f"{'s' if len(procs) > 1 else ''}, {len(mem.order)} folio(s) in physical memory")
    return c.picture("memory-map", title or "memory map", desc, interactive=clickable)


def _procs(source: Any, kernel: str | None, without: Iterable[str],
           names: Mapping[int, str] | None) -> tuple[list[Process], Mapping[int, str]]:
    if isinstance(source, ForkResult):
        return [source.parent, source.child], names or {}
    if isinstance(source, Process):
        return [source], names or {}
    if isinstance(source, (tuple, list)) and source and all(
            isinstance(p, Process) for p in source):
        if len(source) > 2:
            raise LayoutError(f"source: {len(source)} processes; memory_map draws one or "
                              "two (parent, child)")
        return list(source), names or {}
    if kernel is not None:
        need_kernel(kernel, "memory_map")
    _, procs, folios, _ = build_fork(source, kernel, without)
    return procs, names or {f.pfn: n for n, f in folios.items()}


def _table(c: Canvas, p: Process, who: str, names: Mapping[int, str], y: float,
           k: int, clickable: bool = False, selected: int | None = None,
           pins: Mapping[tuple[int, int], int] | None = None
           ) -> tuple[float, list[tuple[Slot, Run, Box, Sequence[Slot]]]]:
    out: list[tuple[Slot, Run, Box, Sequence[Slot]]] = []
    c.raw(f'<g role="group" class="pkmm-pte-grid" aria-label="{who}\'s page table">')
    for vi, (v, slots) in enumerate(vma_slots(p, names)):
        y += 14
        c.text(LEFT, y, f"{who}: {v.describe()}", "pk-t")
        cells = _cells(slots)
        widths = [CW if r.n == 1 else WIDE * CW + (WIDE - 1) * GAP for r in cells]
        boxes = flow(widths, y + 6, CH, c.width)
        for r, b in zip(cells, boxes, strict=True):
            if clickable:
                c.raw(f'<g data-pk-click="pte:{k}:{vi}:{r.head.index}" '
                      f'aria-label="{who} PTE #{r.head.index}: {r.head.label} '
                      f'{r.head.letters}">')
            _draw_cell(c, who, r, slots, b, pins or {})
            if vi == 0 and selected is not None and r.first <= selected <= r.last:
                c.path(f"M{b.x - 2:g},{b.y - 2:g} h{b.w + 4:g} v{b.h + 4:g} h{-b.w - 4:g} z",
                       "lit", width=3, tip=f"selected: PTE #{selected}")
            if clickable:
                c.raw("</g>")
            out.append((r.head, r, b, slots))
        y = (boxes[-1].y + CH) if boxes else y + 4
    if not p.vmas:
        y += 14
        c.text(LEFT, y, f"{who}: no VMAs", "pk-t")
    c.end()
    return y, out


def _target(s: Slot, pages: Pages, run: Run) -> Box | None:
    if s.folio is not None:
        mid = s.page + (run.n - 1) // 2
        return pages.get((s.folio.pfn, mid)) or pages.get((s.folio.pfn, s.page))
    if s.pte is None:
        return None
    if s.pte.present:
        return pages.get((-1, s.pte.pfn))
    if s.pte.swp is not None and s.label == "swap":
        return pages.get((-2, s.pte.swp.offset))
    return None


def _link(c: Canvas, s: Slot, run: Run, b: Box, pages: Pages, below: bool) -> None:
    t = _target(s, pages, run)
    if t is None:
        return
    x1 = b.x + b.w / 2
    y1 = b.y if below else b.y + b.h
    y2 = t.y + t.h if below else t.y
    bend = (y2 - y1) / 2
    d = f"M{x1:g},{y1:g} C{x1:g},{y1 + bend:g} {t.x:g},{y2 - bend:g} {t.x:g},{y2:g}"
    pmd = s.pte is not None and s.pte.pmd
    dash = "4 3" if s.kind == "nonpresent" else ""
    role = s.kind if s.kind not in ("none", "nonpresent") else "nonpresent"
    c.path(d, role, width=3 if pmd else 1.2, dash=dash, under=True)
