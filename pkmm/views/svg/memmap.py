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
from ...vma import VM_UFFD_WP, Vma
from .core import CHAR_W, Canvas, Picture, wrap
from .physmem import MAX_W, Box, Memory, Pages, draw_memory, flow
from .scene import Run, Slot, bounded, build_fork, layout_names, need_kernel, runs, vma_slots

CW, CH, GAP = 36, 46, 3          # one slot cell
ROW = 24                         # cells per row
WIDE = 3                         # a run cell is this many cells wide
LEFT = 8
MIN_BEND = 40                    # height a line needs to move sideways without a tangle
LABEL_H = 16                     # the band's frame above a page
LINE = 12                        # between the lines of 11 px text in a cell


def _cells(slots: Sequence[Slot]) -> list[Run]:
    # few slots: one cell each; many: one cell per run (a 512-PTE table is a few boxes)
    if len(slots) <= 2 * ROW:
        return [Run(i, i, s) for i, s in enumerate(slots)]
    return bounded(slots, 2 * ROW)


def _slot_tip(who: str, s: Slot) -> str:
    return f"{who} PTE #{s.index} at {s.addr:#x}: " + (repr(s.pte) if s.pte else "empty")


def _draw_cell(c: Canvas, who: str, run: Run, slots: Sequence[Slot], b: Box) -> None:
    s = run.head
    role = s.kind if s.kind != "none" else "none"
    pmd = s.pte is not None and s.pte.pmd
    tip = _slot_tip(who, s) if run.n == 1 else (
        f"{who} PTEs #{s.index}-#{slots[run.last].index}: {run.n} x {s.label} "
        f"{s.letters or 'no bits'}")
    if pmd and run.n > 1 and run.parts == 1:
        # kernel: a PMD leaf maps the folio directly; there is no PTE table below it
        tip = (f"{who} PMD entry -> {s.label}-{slots[run.last].page} (no PTEs)"
               if s.folio is not None else f"{who} PMD entry (no PTEs)")
    elif run.parts > 1:
        tip = f"{who} PTEs #{s.index}-#{slots[run.last].index}: " + "; ".join(
            f"#{r.head.index}: {r.head.label} {r.head.letters}"
            for r in runs(slots[run.first:run.last + 1])[:8])
    c.rect(b.x, b.y, b.w, b.h, role, tip=tip, extra=' stroke-width="2.5"' if pmd else "")
    c.text_group("pk-t2")
    idx = f"#{s.index}" if run.n == 1 else f"#{s.index}-{slots[run.last].index}"
    # one PMD entry maps the whole run: say "one entry", not "×512" (read as 512 PTEs)
    one_pmd = pmd and run.n > 1 and run.parts == 1
    idx = f"one PMD entry {idx}" if one_pmd else idx
    c.text(b.x + 3, b.y + 11, idx, "", extra=_fit(idx, b.w))
    label = s.label if run.n == 1 else (
        f"{s.label}-{slots[run.last].page}" if s.folio is not None else s.label)
    if run.parts > 1:
        label = f"mixed: {run.parts} runs"
    label += " PMD" if pmd and run.n > 1 and not one_pmd else ""
    c.text(b.x + 2.5, b.y + 23, label, "", extra=_fit(label, b.w))
    if run.n > 1 and not one_pmd:
        c.text(b.x + b.w - 3, b.y + 11, f"×{run.n}", "", anchor="end")
    for k, line in enumerate(_cell_lines(run, b.w)):
        bold = ' font-weight="bold"'
        c.text(b.x + 3, b.y + 35 + LINE * k, line, "", extra=bold + _fit(line, b.w))
    c.end()


def _cell_w(run: Run) -> float:
    """A cell's width: one slot is CW wide, or as wide as its page's name in 11 px
    glyphs ("page1:0") up to two slots; a run of slots is WIDE slots wide."""
    if run.n > 1:
        return WIDE * CW + (WIDE - 1) * GAP
    return min(max(CW, len(run.head.label) * CHAR_W + 6), 2 * CW + GAP)


def _fit(text: str, w: float) -> str:
    """A name longer than its cell ("new12:0") is squeezed to fit, not run into the next."""
    return (f' textLength="{w - 5:g}" lengthAdjust="spacingAndGlyphs"'
            if len(text) * CHAR_W > w - 5 else "")


def _cell_lines(run: Run, w: float) -> list[str]:
    """The bit letters of a cell, as many to a line as fit its width (11 px monospace
    glyphs are 6.6 px wide): "D A UW" on one line ran into the next cell.  Only PTE bits:
    a pin belongs to the page (FOLL_PIN counts on the folio), so PIN is drawn on the
    page box in physical memory, never in a PTE -- and never on the child's PTE, which
    maps the same pinned page only when fork did not copy it.  A line may be squeezed by
    up to a tenth (``_fit``): "W D A" wrapped as "W D" / "A" in a one-slot cell, and readers
    took the lone A for a marker of its own."""
    per_line = max(1, int((w - 5) / (CHAR_W * 0.9)))
    letters = run.head.letters if run.parts == 1 else ""
    return wrap(letters, per_line)


def _cell_h(cells: Sequence[Run], widths: Sequence[float]) -> float:
    """The height every cell of a table gets: room for its longest list of lines."""
    n = max((len(_cell_lines(r, w))
             for r, w in zip(cells, widths, strict=True)), default=0)
    return max(CH, 26.0 + LINE * n + 3)


def memory_map(source: Any, kernel: str | None = None, *, without: Iterable[str] = (),
               names: Mapping[int, str] | None = None, title: str = "",
               clickable: bool = False, selected: int | None = None,
               folios: Iterable[Folio] = (), width: int | None = None) -> Picture:
    """Page tables (parent above, child below) with a line from each PTE to its page.

    ``source``: a layout (Scenario, scenario dict or LayoutBuilder) -- with ``kernel``
    it is forked and both processes are drawn, without it the parent before fork; a
    :class:`pkmm.ForkResult`; one :class:`pkmm.Process`; or a (parent, child) pair.
    ``names`` maps folio head pfns to names (a layout supplies its own); a mapped folio
    without one is ``new1``, ``new2``, ... in allocation order.
    ``folios``: also draw these (allocated but maybe unmapped) folios.
    ``width``: the width to lay out for, in px, at most the column's 952 (a live
    widget passes what it has; rows of PTEs wrap, captions narrow, the text keeps its
    size).
    ``clickable`` (live widgets) makes every PTE cell a keyboard-operable button whose
    token is ``pte:<process>:<vma>:<slot>``; ``selected`` outlines that slot of VMA 0.

    >>> pic = memory_map({"vmas": [{"start": 0, "npages": 4}],
    ...     "folios": {"F": {"order": 2}}, "ptes": [{"addr": 0, "folio": "F"}]}, "v6.9")
    >>> pic.svg.startswith("<svg") and "refcount 8" in pic.svg
    True
    >>> pic
    <memory-map: parent and child: 1 VMA each, 1 folio in physical memory>
    """
    procs, names = _procs(source, kernel, without, names)
    mem = Memory(procs, names, folios)
    if width is not None and (isinstance(width, bool) or not isinstance(width, int)
                              or width < 1):
        raise LayoutError(f"width={width!r}: a width in pixels")
    # never wider than the page's column (MAX_W): a wider picture is shown scaled down,
    # and its 11 px text came out at 8 px (the VMAs and physical memory wrap instead)
    c = Canvas(max(320, min(width or MAX_W, MAX_W)))
    who = ["parent", "child"] if len(procs) == 2 else [procs[0].name]
    y = 14.0
    c.text(LEFT, y, title or ("fork(): the child's page table maps the parent's pages"
                              if len(procs) == 2 else f"{procs[0].name}'s page table"),
           "pk-h")
    tables: list[list[tuple[Slot, Run, Box, Sequence[Slot]]]] = []
    opts: dict[str, Any] = {"clickable": clickable, "selected": selected}
    y, top = _table(c, procs[0], who[0], names, y + 8, 0, **opts)
    tables.append(top)
    # room for the lines to bend above the band; the captions beside the pages before
    # fork too, so the physical row is laid out the same before and after fork (a
    # reader compares the two pictures frame by frame)
    y, pages = draw_memory(c, mem, y + 40, beside=True)
    band_foot = y
    if len(procs) == 2:
        # as much room below the band: the child's lines move sideways there, not inside
        y, bottom = _table(c, procs[1], who[1], names, y + MIN_BEND, 1, **opts)
        tables.append(bottom)
    for k, cells in enumerate(tables):
        for s, run, b, _ in cells:
            _link(c, s, run, b, pages, below=k == 1, band_foot=band_foot)
    kinds = {s.kind for cells in tables for s, _, _, _ in cells}
    kinds |= {"special" if f.kind in ("zero", "huge_zero") else f.kind for f in mem.order}
    kinds |= {"special"} if mem.raw else set()
    kinds |= {"nonpresent"} if mem.swaps else set()
    marks = [("box", role, words) for role, words in KEY if role in kinds]
    if any(pg.anon_exclusive for f in mem.order for pg in f.pages):
        marks.append(("word", "AE", "AnonExclusive: no other process maps this page, "
                      "so a write may reuse it"))
    if mem.pins:
        marks.append(("hatch", "anon", "PIN (on a page): pinned (FOLL_PIN), e.g. by a "
                      "device's DMA"))
    c.legend(y + 18, marks)
    desc = (f"{_vmas_words(who, procs)}, {_frames_words(mem.order)} in physical memory"
            + (f", {len(mem.swaps)} swap slot(s) on disk" if mem.swaps else ""))
    return c.picture("memory-map", title or "memory map", desc, interactive=clickable)


def _vmas_words(who: Sequence[str], procs: Sequence[Process]) -> str:
    """"parent: 1 VMA" for one process drawn, "parent and child: 2 VMAs each" for two
    with as many: "each" only where there are two to share it (a reader of a parent-only
    picture asked which "each" was meant)."""
    counts = [len(p.vmas) for p in procs]

    def n(k: int) -> str:
        return f"{k} VMA{'s' if k != 1 else ''}"
    if len(procs) == 1:
        return f"{who[0]}: {n(counts[0])}"
    if counts[0] == counts[1]:
        return f"{' and '.join(who)}: {n(counts[0])} each"
    return "; ".join(f"{w}: {n(k)}" for w, k in zip(who, counts, strict=True))


def _frames_words(order: Sequence[Folio]) -> str:
    """"4 folios + the zero page": the zero page is one shared frame, not a folio a
    process allocated, so it is counted apart."""
    zero = [f for f in order if f.kind in ("zero", "huge_zero")]
    n = len(order) - len(zero)
    words = f"{n} folio{'s' if n != 1 else ''}"
    for f in zero:
        words += " + the huge zero page" if f.kind == "huge_zero" else " + the zero page"
    return words


def _procs(source: Any, kernel: str | None, without: Iterable[str],
           names: Mapping[int, str] | None) -> tuple[list[Process], Mapping[int, str]]:
    # Processes come without a layout: the pages ``names`` leaves out get new1, new2, ...
    # as in every other picture, not the model's allocation numbers.
    if isinstance(source, ForkResult):
        procs = [source.parent, source.child]
        return procs, layout_names({}, procs, names)
    if isinstance(source, Process):
        return [source], layout_names({}, [source], names)
    if isinstance(source, (tuple, list)) and source and all(
            isinstance(p, Process) for p in source):
        if len(source) > 2:
            raise LayoutError(f"source: {len(source)} processes; memory_map draws one or "
                              "two (parent, child)")
        return list(source), layout_names({}, list(source), names)
    if kernel is not None:
        need_kernel(kernel, "memory_map")
    _, procs, folios, _ = build_fork(source, kernel, without)
    return procs, names or layout_names(folios, procs, unnamed_layout=True)


#: the key to the box colours (each box also says its kind in words: folio name, "zero",
#: "swap", "--")
KEY = (("anon", "anonymous page"), ("file", "page-cache page (file)"),
       ("shmem", "shared memory (shmem)"), ("special", "zero page / raw PFN: no refcount"),
       ("nonpresent", "not present: swap or migration entry"), ("none", "empty PTE"))
VMA_GAP = 14                     # between VMAs placed side by side


def _table(c: Canvas, p: Process, who: str, names: Mapping[int, str], y: float,
           k: int, clickable: bool = False, selected: int | None = None
           ) -> tuple[float, list[tuple[Slot, Run, Box, Sequence[Slot]]]]:
    out: list[tuple[Slot, Run, Box, Sequence[Slot]]] = []
    c.raw(f'<g role="group" class="pkmm-pte-grid" aria-label="{who}\'s page table">')
    tables = vma_slots(p, names)
    blocks = _vma_blocks(c, [(_vma_words(v, i, len(tables)), _cells(slots))
                             for i, (v, slots) in enumerate(tables)], who)
    heading = f"{who}'s page table, {len(tables)} VMAs" if len(tables) > 1 else ""
    if heading and k == 0:
        y += 14
        c.text(LEFT, y, heading + ":", "pk-t")
    row_y, row_h, bottom = y, 0.0, y + 4
    for vi, ((_, slots), (x, w, lines, cls, cells, first)) in enumerate(
            zip(tables, blocks, strict=True)):
        if first and vi:                       # a new row of VMAs below the last one
            row_y, row_h = row_y + row_h + 6, 0.0
        # a VMA's words sit on the side away from physical memory (above the parent's
        # cells, below the child's), so no line to a page runs through them
        step = 13 if cls == "pk-t" else 11
        ty = row_y if k == 0 else row_y - 8
        if k == 0:
            for line in lines:
                ty += step
                c.text(x, ty, line, cls)
        widths = [_cell_w(r) for r in cells]
        h = _cell_h(cells, widths)
        boxes = [Box(b.x + x - LEFT, b.y, b.w, b.h)
                 for b in flow(widths, ty + 6, h, w + 2 * LEFT)]
        if k == 1:
            ty = (boxes[-1].y + h) if boxes else ty
            for line in lines:
                ty += step
                c.text(x, ty, line, cls)
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
        end = ty + 4 if k == 1 or not boxes else boxes[-1].y + h
        row_h = max(row_h, end - row_y)
        bottom = max(bottom, end)
    if heading and k == 1:
        # below the child's cells (a heading above them would sit where its lines pass),
        # under the VMAs' own names, so it says where its boxes are
        bottom += 14
        # a reader took names below the PTEs for a quirk of the child: say it is the
        # parent's rule (the words on the side away from the lines) seen from below
        c.text(LEFT, bottom, f"^ the child's page table, {len(tables)} VMAs: here each VMA's "
               "name is under its PTEs (the parent's are above), clear of the lines", "pk-t")
    if not p.vmas:
        bottom += 14
        c.text(LEFT, bottom, f"{who}: no VMAs", "pk-t")
    c.end()
    return bottom, out


def _vma_words(v: Vma, i: int, n: int) -> str:
    """A VMA's label: its number when there are several (questions ask about "VMA 2"),
    and whether its uffd-wp handler follows forks (that decides whether fork copies it)."""
    words = v.describe()
    if v.uffd_fork and v.vm_flags & VM_UFFD_WP:
        words = words.replace("uffd-wp", "uffd-wp + EVENT_FORK", 1)
    return f"VMA {i}: {words}" if n > 1 else words


def _vma_blocks(c: Canvas, vmas: Sequence[tuple[str, Sequence[Run]]], who: str
                ) -> list[tuple[float, float, list[str], str, Sequence[Run], bool]]:
    """Where each VMA's block goes: (x, width, label lines, label class, cells, starts a
    row).  One VMA takes the whole width; several sit side by side, each its label
    wrapped above its own cells, so a line from a PTE drops to physical memory without
    crossing another VMA's boxes or words (a stacked column had every upper VMA's lines
    run through the lower ones).  Before the VMAs wrap to a second row, the labels wrap
    to narrower lines (an address range splits at its comma) and the gap narrows."""
    avail = c.width - 2 * LEFT
    def cells_w(cells: Sequence[Run]) -> float:
        ws = [_cell_w(r) for r in cells]
        return min(avail, sum(ws) + GAP * max(len(ws) - 1, 0))
    if len(vmas) <= 1:
        return [(float(LEFT), avail, [f"{who}: {d}"], "pk-t", cells, True)
                for d, cells in vmas]
    def plan(least: int) -> list[tuple[float, list[str], Sequence[Run]]]:
        # the longest word-wrapped line a block needs: ``least`` characters (20 holds an
        # address range, 10 its half "[0xa00000,")
        char_w = CHAR_W
        out = []
        for d, cells in vmas:
            cw = cells_w(cells)
            lines = wrap(d, max(least, int(cw / char_w)))
            out.append((max(cw, max(len(t) for t in lines) * char_w), lines, cells))
        return out
    options = [("pk-t", plan(20), float(VMA_GAP)), ("pk-t", plan(10), float(VMA_GAP)),
               ("pk-t", plan(10), VMA_GAP / 2)]
    fits = [o for o in options
            if sum(w for w, _, _ in o[1]) + o[2] * (len(vmas) - 1) <= avail]
    cls, blocks, gap = (fits or options[-1:])[0]
    out, x = [], float(LEFT)
    for w, lines, cells in blocks:
        first = x == LEFT
        if x > LEFT and x + w > LEFT + avail:
            x, first = float(LEFT), True
        out.append((x, w, lines, cls, cells, first))
        x += w + gap
    return out


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


def _link(c: Canvas, s: Slot, run: Run, b: Box, pages: Pages, below: bool,
          band_foot: float = 0.0) -> None:
    t = _target(s, pages, run)
    if t is None:
        return
    x1 = b.x + b.w / 2
    y1 = b.y if below else b.y + b.h
    y2 = t.y + t.h if below else t.y
    if below:
        # the mirror image: reach the page's x below physical memory's frame, then rise
        # straight up to the page, so the line passes no folio's caption (a diagonal
        # line ran through the "refcount" words the text asks a reader to check)
        knee = max(y2, min(band_foot, y1))
        bend = (y1 - knee) / 2
        d = (f"M{x1:g},{y1:g} C{x1:g},{y1 - bend:g} {t.x:g},{knee + bend:g} {t.x:g},{knee:g}"
             f" L{t.x:g},{y2:g}")
    else:
        # reach the page's x above the folio labels, then drop straight down: a curve still
        # travelling sideways there ran diagonally through the "refcount" lines
        knee = y2 - min(LABEL_H, max(0.0, y2 - y1 - MIN_BEND))
        bend = (knee - y1) / 2
        d = (f"M{x1:g},{y1:g} C{x1:g},{y1 + bend:g} {t.x:g},{knee - bend:g} {t.x:g},{knee:g}"
             f" L{t.x:g},{y2:g}")
    pmd = s.pte is not None and s.pte.pmd
    dash = "4 3" if s.kind == "nonpresent" else ""
    role = s.kind if s.kind not in ("none", "nonpresent") else "nonpresent"
    c.path(d, role, width=3 if pmd else 1.2, dash=dash, under=True)
