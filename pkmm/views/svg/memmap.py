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
from dataclasses import dataclass
from typing import Any

from ...errors import LayoutError
from ...folio import Folio
from ...fork import ForkResult
from ...process import Process
from .core import Canvas, Picture
from .scene import Run, Slot, build_fork, folio_name, need_kernel, page_pins, runs, vma_slots

CW, CH, GAP = 36, 46, 3          # one slot cell
ROW = 24                         # cells per row
WIDE = 3                         # a run cell is this many cells wide
LEFT = 8
MAX_W = LEFT * 2 + ROW * (CW + GAP)
PAGE_H = 30
BIG = 16                         # folios with more pages draw page runs


@dataclass
class _Box:
    x: float
    y: float
    w: float
    h: float


def _cells(slots: Sequence[Slot]) -> list[Run]:
    # few slots: one cell each; many: one cell per run (a 512-PTE table is a few boxes)
    if len(slots) <= 2 * ROW:
        return [Run(i, i, s) for i, s in enumerate(slots)]
    return runs(slots)


def _flow(widths: Sequence[float], y0: float, h: float) -> list[_Box]:
    """Place boxes left to right, wrapping at MAX_W."""
    out, x, y = [], LEFT, y0
    for w in widths:
        if x + w > MAX_W - LEFT and x > LEFT:
            x, y = LEFT, y + h + GAP + 4
        out.append(_Box(x, y, w, h))
        x += w + GAP
    return out


class _Memory:
    """Physical memory: one block per folio (or zero page, raw pfn, swap slot)."""

    def __init__(self, procs: Sequence[Process], names: Mapping[int, str]) -> None:
        self.procs, self.names = procs, names
        self.pins = page_pins(procs)
        self.folios: dict[int, Folio] = {}
        self.swaps: list[int] = []
        self.raw: list[int] = []
        for p in procs:
            for f, _ in p.pins:
                self.folios.setdefault(f.pfn, f)
            for _, slots in vma_slots(p, names):
                for s in slots:
                    self._note(s)
        self.order = sorted(self.folios.values(), key=lambda f: f.pfn)

    def _note(self, s: Slot) -> None:
        if s.folio is not None:
            self.folios.setdefault(s.folio.pfn, s.folio)
        elif s.pte is not None and s.pte.present and s.pte.pfn not in self.raw:
            self.raw.append(s.pte.pfn)
        elif s.label == "swap" and s.pte is not None and s.pte.swp is not None:
            if s.pte.swp.offset not in self.swaps:
                self.swaps.append(s.pte.swp.offset)

    def page_runs(self, f: Folio) -> list[tuple[int, int]]:
        """(first, last) page runs of equal mapcount / AE / pin state."""
        def key(i: int) -> tuple[int, bool, int]:
            pg = f.pages[i]
            return (pg.mapcount, pg.anon_exclusive, self.pins.get((f.pfn, i), 0))
        if f.nr_pages <= BIG or f.kind in ("zero", "huge_zero"):
            return [(i, i) for i in range(1 if f.kind in ("zero", "huge_zero")
                                          else f.nr_pages)]
        out, start = [], 0
        for i in range(1, f.nr_pages + 1):
            if i == f.nr_pages or key(i) != key(i - 1):
                out.append((start, i - 1))
                start = i
        return out


def _slot_tip(who: str, s: Slot) -> str:
    return f"{who} PTE #{s.index} at {s.addr:#x}: " + (repr(s.pte) if s.pte else "empty")


def _draw_cell(c: Canvas, who: str, run: Run, slots: Sequence[Slot], b: _Box) -> None:
    s = run.head
    role = s.kind if s.kind != "none" else "none"
    pmd = s.pte is not None and s.pte.pmd
    tip = _slot_tip(who, s) if run.n == 1 else (
        f"{who} PTEs #{s.index}-#{slots[run.last].index}: {run.n} x {s.label} "
        f"{s.letters or 'no bits'}")
    c.rect(b.x, b.y, b.w, b.h, role, tip=tip, extra=' stroke-width="2.5"' if pmd else "")
    idx = f"#{s.index}" if run.n == 1 else f"#{s.index}-{slots[run.last].index}"
    c.text(b.x + 3, b.y + 10, idx, "pk-t2")
    label = s.label if run.n == 1 else (
        f"{s.label}-{slots[run.last].page}" if s.folio is not None else s.label)
    c.text(b.x + 3, b.y + 21, label + (" PMD" if pmd and run.n > 1 else ""), "pk-t2")
    letters = s.letters.split()
    c.text(b.x + 3, b.y + 32, " ".join(letters[:3]), "pk-t2", extra=' font-weight="bold"')
    if letters[3:]:
        c.text(b.x + 3, b.y + 42, " ".join(letters[3:]), "pk-t2", extra=' font-weight="bold"')
    if run.n > 1:
        c.text(b.x + b.w - 3, b.y + 10, f"×{run.n}", "pk-t2", anchor="end")


def memory_map(source: Any, kernel: str | None = None, *, without: Iterable[str] = (),
               names: Mapping[int, str] | None = None, title: str = "",
               clickable: bool = False, selected: int | None = None) -> Picture:
    """Page tables (parent above, child below) with a line from each PTE to its page.

    ``source``: a layout (Scenario, scenario dict or LayoutBuilder) -- with ``kernel``
    it is forked and both processes are drawn, without it the parent before fork; a
    :class:`pkmm.ForkResult`; one :class:`pkmm.Process`; or a (parent, child) pair.
    ``names`` maps folio head pfns to names (a layout supplies its own).
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
    mem = _Memory(procs, names)
    c = Canvas(MAX_W)
    who = ["parent", "child"] if len(procs) == 2 else [procs[0].name]
    y = 14.0
    c.text(LEFT, y, title or ("fork(): the child's page table maps the parent's pages"
                              if len(procs) == 2 else f"{procs[0].name}'s page table"),
           "pk-h")
    tables: list[list[tuple[Slot, Run, _Box, Sequence[Slot]]]] = []
    opts = {"clickable": clickable, "selected": selected}
    y, top = _table(c, procs[0], who[0], names, y + 8, 0, **opts)
    tables.append(top)
    y, pages = _memory(c, mem, y + 34)
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
           k: int, clickable: bool = False, selected: int | None = None
           ) -> tuple[float, list[tuple[Slot, Run, _Box, Sequence[Slot]]]]:
    out = []
    c.raw(f'<g role="group" class="pkmm-pte-grid" aria-label="{who}\'s page table">')
    for vi, (v, slots) in enumerate(vma_slots(p, names)):
        y += 14
        c.text(LEFT, y, f"{who}: {v.describe()}", "pk-t")
        cells = _cells(slots)
        widths = [CW if r.n == 1 else WIDE * CW + (WIDE - 1) * GAP for r in cells]
        boxes = _flow(widths, y + 6, CH)
        for r, b in zip(cells, boxes, strict=True):
            if clickable:
                c.raw(f'<g data-pk-click="pte:{k}:{vi}:{r.head.index}" '
                      f'aria-label="{who} PTE #{r.head.index}: {r.head.label} '
                      f'{r.head.letters}">')
            _draw_cell(c, who, r, slots, b)
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


_Pages = dict[tuple[int, int], _Box]   # (folio pfn or -raw pfn / -swap, page) -> box


def _memory(c: Canvas, mem: _Memory, y: float) -> tuple[float, _Pages]:
    c.group("physical memory")
    c.text(LEFT, y, "physical memory: folios in pfn order (number = mapcount of the page)",
           "pk-t")
    pages: _Pages = {}
    blocks: list[tuple[str, Any]] = [("folio", f) for f in mem.order]
    blocks += [("raw", pfn) for pfn in mem.raw] + [("swap", off) for off in mem.swaps]
    widths = []
    for kind, obj in blocks:
        if kind == "folio":
            n = len(mem.page_runs(obj))
            text = max(len(t) for t in _folio_head(mem, obj)) * 5.6 + 6
            widths.append(max(n * (CW + GAP) - GAP, 170 if obj.nr_pages > BIG else 0, text))
        else:
            widths.append(CW * 3)
    boxes = _flow(widths, y + 8, PAGE_H + 24)
    if boxes:
        bottom = boxes[-1].y + PAGE_H + 28
        c.rect(2, y - 12, MAX_W - 4, bottom - y + 12, rx=4)
    for (kind, obj), b in zip(blocks, boxes, strict=True):
        if kind == "folio":
            _folio_block(c, mem, obj, b, pages)
        else:
            _other_block(c, mem, kind, obj, b, pages)
    c.end()
    return (boxes[-1].y + PAGE_H + 28 if boxes else y + 8), pages


def _folio_block(c: Canvas, mem: _Memory, f: Folio, b: _Box, pages: _Pages) -> None:
    special = f.kind in ("zero", "huge_zero")
    for k, line in enumerate(_folio_head(mem, f)):
        c.text(b.x, b.y + 9 + 10 * k, line, "pk-t2")
    prs = mem.page_runs(f)
    total = sum(last - first + 1 for first, last in prs)
    x = b.x
    for first, last in prs:
        n = last - first + 1
        w = CW if f.nr_pages <= BIG or special else max(
            CW, (b.w - GAP * (len(prs) - 1)) * n / total)
        box = _Box(x, b.y + 23, w, PAGE_H)
        _page_box(c, mem, f, first, last, box, special)
        for i in range(first, last + 1):
            pages[(f.pfn, i)] = _Box(box.x + (i - first + 0.5) * w / n - 0.5, box.y, 1,
                                     box.h)
        if special:
            for i in range(f.nr_pages):
                pages[(f.pfn, i)] = _Box(box.x + w / 2, box.y, 1, box.h)
        x += w + GAP


def _folio_head(mem: _Memory, f: Folio) -> list[str]:
    """The folio's header lines: name, kind and order; its counters."""
    name = folio_name(mem.names, f)
    if f.kind in ("zero", "huge_zero"):
        return [f"{name} page", "(no refcounting)"]
    pin = f", pincount {f.pincount}" if f.order and f.pincount else ""
    return [f"{name} {f.kind} order {f.order}" + (" FREED" if f.freed else ""),
            f"refcount {f.refcount}{pin}"]


def _page_box(c: Canvas, mem: _Memory, f: Folio, first: int, last: int, b: _Box,
              special: bool) -> None:
    pg = f.pages[first]
    pins = mem.pins.get((f.pfn, first), 0)
    role = "special" if special else f.kind
    if special:
        tip = f"{folio_name(mem.names, f)} page: shared read-only, no per-page mapcount"
        c.rect(b.x, b.y, b.w, b.h, role, tip=tip)
        c.text(b.x + b.w / 2, b.y + 19, "zero", "pk-t2", anchor="middle")
        return
    span = f"page {first}" if first == last else f"pages {first}-{last}"
    tip = (f"{folio_name(mem.names, f)} {span}: mapcount {pg.mapcount}"
           + (", AnonExclusive" if pg.anon_exclusive else "")
           + (f", {pins} FOLL_PIN" if pins else ""))
    c.rect(b.x, b.y, b.w, b.h, role, tip=tip)
    if pins:
        c.hatch(b.x, b.y, b.w, b.h, tip)
        c.text(b.x + b.w - 2, b.y + 28, "PIN", "pk-t2", anchor="end")
    if pg.anon_exclusive:
        c.text(b.x + 2, b.y + 9, "AE", "pk-t2")
    count = str(pg.mapcount) if first == last else f"{pg.mapcount} ×{last - first + 1}"
    c.text(b.x + b.w / 2, b.y + 21, count, "pk-t", anchor="middle", tip=tip)


def _other_block(c: Canvas, mem: _Memory, kind: str, key: int, b: _Box,
                 pages: _Pages) -> None:
    box = _Box(b.x, b.y + 23, b.w, PAGE_H)
    if kind == "raw":
        c.text(b.x, b.y + 9, "device memory", "pk-t2")
        c.rect(box.x, box.y, box.w, box.h, "special", tip=f"raw pfn {key:#x}: no struct "
               "page, nothing is refcounted")
        c.text(box.x + 3, box.y + 19, f"pfn {key:#x}", "pk-t2")
        pages[(-1, key)] = _Box(box.x + box.w / 2, box.y, 1, box.h)
        return
    slot = mem.procs[0].machine.swap.get(key)
    count = slot.count if slot is not None else 0
    c.text(b.x, b.y + 9, "swap space", "pk-t2")
    c.rect(box.x, box.y, box.w, box.h, "nonpresent", tip=f"swap slot {key}: swap count "
           f"{count} (one per PTE that refers to it)")
    c.text(box.x + 3, box.y + 19, f"slot {key} count {count}", "pk-t2")
    pages[(-2, key)] = _Box(box.x + box.w / 2, box.y, 1, box.h)


def _target(s: Slot, pages: _Pages, run: Run) -> _Box | None:
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


def _link(c: Canvas, s: Slot, run: Run, b: _Box, pages: _Pages, below: bool) -> None:
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
