"""Physical memory in the memory map: folios as blocks of pages with their counters.

Simulator concept (views layer).  One block per folio in pfn order (refcount, pincount,
per-page mapcount, AnonExclusive, pins), plus the zero page, raw PFNs and swap slots;
records where each page sits so the map can draw a line to it.
Taught in: notebooks/01-ptes-folios-vmas.ipynb
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...folio import Folio
from ...process import Process
from .core import Canvas
from .scene import Slot, folio_name, page_pins, vma_slots

CW, GAP, LEFT = 36, 3, 8
ROW = 24
MAX_W = LEFT * 2 + ROW * (CW + GAP)
PAGE_H = 30
FOLIO_GAP = 12                   # between folios (GAP between the pages of one)
BIG = 16                         # folios with more pages draw page runs


@dataclass
class Box:
    """A placed rectangle."""

    x: float
    y: float
    w: float
    h: float


def flow(widths: Sequence[float], y0: float, h: float, max_w: float = MAX_W,
         gap: float = GAP) -> list[Box]:
    """Place boxes left to right, ``gap`` apart, wrapping at ``max_w``."""
    out: list[Box] = []
    x, y = float(LEFT), y0
    for w in widths:
        if x + w > max_w - LEFT and x > LEFT:
            x, y = LEFT, y + h + GAP + 4
        out.append(Box(x, y, w, h))
        x += w + gap
    return out


class Memory:
    """Physical memory: one block per folio (or zero page, raw pfn, swap slot)."""

    def __init__(self, procs: Sequence[Process], names: Mapping[int, str],
                 extra: Iterable[Folio] = ()) -> None:
        self.procs, self.names = procs, names
        self.pins = page_pins(procs)
        self.folios: dict[int, Folio] = {f.pfn: f for f in extra if not f.freed}
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


Pages = dict[tuple[int, int], Box]   # (folio pfn or -raw pfn / -swap, page) -> box


def draw_memory(c: Canvas, mem: Memory, y: float) -> tuple[float, Pages]:
    # named so that a control whose effect shows on a page (a pin) can be checked there
    c.group("physical memory", css="pkmm-physmem")
    # page_mapcount() counts a folio's PMD mappings on every page: say so when it matters.
    pmd = any(f.entire_mapcount for f in mem.order)
    c.text(LEFT, y, "physical memory: folios in pfn order (number = mapcount of the page"
           + (": its PTE mappings + its folio's PMD mappings)" if pmd else ")"),
           "pk-t", halo=True)
    pages: Pages = {}
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
    widths = [min(w, c.width - 2 * LEFT) for w in widths]
    # folios further apart than the pages inside one, each outlined: two adjacent folios
    # read as two (a reader saw one run of five pages where folios A and B met)
    boxes = flow(widths, y + 8, PAGE_H + 24, c.width, FOLIO_GAP)
    if boxes:
        bottom = boxes[-1].y + PAGE_H + 28
        c.rect(2, y - 12, c.width - 4, bottom - y + 12, rx=4)
    for (kind, obj), b in zip(blocks, boxes, strict=True):
        if kind == "folio":
            _folio_block(c, mem, obj, b, pages)
        else:
            _other_block(c, mem, kind, obj, b, pages)
    c.end()
    return (boxes[-1].y + PAGE_H + 28 if boxes else y + 8), pages


def _folio_block(c: Canvas, mem: Memory, f: Folio, b: Box, pages: Pages) -> None:
    special = f.kind in ("zero", "huge_zero")
    for k, line in enumerate(_folio_head(mem, f)):
        c.text(b.x, b.y + 9 + 10 * k, line, "pk-t2", halo=True)
    prs = mem.page_runs(f)
    total = sum(last - first + 1 for first, last in prs)
    if not special:     # the folio's outline: its pages are one allocation
        used = len(prs) * CW + GAP * (len(prs) - 1) if f.nr_pages <= BIG else b.w
        pages_ = f"{f.nr_pages} page" + ("s" if f.nr_pages != 1 else "")
        c.rect(b.x - 2.5, b.y + 20.5, used + 5, PAGE_H + 5, "", rx=3,
               extra=' stroke-width="1.5"',
               tip=f"folio {folio_name(mem.names, f)}: {pages_} (order {f.order})")
    x = b.x
    for first, last in prs:
        n = last - first + 1
        w = CW if f.nr_pages <= BIG or special else max(
            CW, (b.w - GAP * (len(prs) - 1)) * n / total)
        box = Box(x, b.y + 23, w, PAGE_H)
        _page_box(c, mem, f, first, last, box, special)
        for i in range(first, last + 1):
            pages[(f.pfn, i)] = Box(box.x + (i - first + 0.5) * w / n - 0.5, box.y, 1,
                                     box.h)
        if special:
            for i in range(f.nr_pages):
                pages[(f.pfn, i)] = Box(box.x + w / 2, box.y, 1, box.h)
        x += w + GAP


def _folio_head(mem: Memory, f: Folio) -> list[str]:
    """The folio's header lines: name, kind and order; its counters."""
    name = folio_name(mem.names, f)
    if f.kind in ("zero", "huge_zero"):
        return [f"{name} page", "(no refcounting)"]
    pin = f", pincount {f.pincount}" if f.order and f.pincount else ""
    return [f"{name} {f.kind} order {f.order}" + (" FREED" if f.freed else ""),
            f"refcount {f.refcount}{pin}"]


def _page_box(c: Canvas, mem: Memory, f: Folio, first: int, last: int, b: Box,
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
    count = str(pg.mapcount) if first == last else f"{pg.mapcount} ×{last - first + 1}"
    if pins:
        # three marks in one box, each in its own band: AE top left, the mapcount top
        # right, PIN centred in the hatched lower band (PIN over the digit hid it)
        c.hatch(b.x, b.y + b.h - 12, b.w, 12, tip)
        c.text(b.x + b.w / 2, b.y + b.h - 3, "PIN" if pins == 1 else f"PIN×{pins}",
               "pk-t2", anchor="middle", halo=True, extra=' font-weight="bold"')
        c.text(b.x + b.w - 3, b.y + 13, count, "pk-t", anchor="end", tip=tip)
    else:
        c.text(b.x + b.w / 2, b.y + 21, count, "pk-t", anchor="middle", tip=tip)
    if pg.anon_exclusive:
        c.text(b.x + 2, b.y + 9, "AE", "pk-t2")


def _other_block(c: Canvas, mem: Memory, kind: str, key: int, b: Box,
                 pages: Pages) -> None:
    box = Box(b.x, b.y + 23, b.w, PAGE_H)
    if kind == "raw":
        c.text(b.x, b.y + 9, "device memory", "pk-t2")
        c.rect(box.x, box.y, box.w, box.h, "special", tip=f"raw pfn {key:#x}: no struct "
               "page, nothing is refcounted")
        c.text(box.x + 3, box.y + 19, f"pfn {key:#x}", "pk-t2")
        pages[(-1, key)] = Box(box.x + box.w / 2, box.y, 1, box.h)
        return
    slot = mem.procs[0].machine.swap.get(key)
    count = slot.count if slot is not None else 0
    c.text(b.x, b.y + 9, "swap space", "pk-t2")
    c.rect(box.x, box.y, box.w, box.h, "nonpresent", tip=f"swap slot {key}: swap count "
           f"{count} (one per PTE that refers to it)")
    c.text(box.x + 3, box.y + 19, f"slot {key} count {count}", "pk-t2")
    pages[(-2, key)] = Box(box.x + box.w / 2, box.y, 1, box.h)
