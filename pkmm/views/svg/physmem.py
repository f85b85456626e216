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
from .core import CHAR_W, Canvas, wrap
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
        #: the characters a caption line wraps at (None: unwrapped), set by draw_memory
        self.caption_limit: int | None = None
        #: the width of one page's box (narrower than CW when one row would not fit)
        self.page_w: float = float(CW)
        # references that are not mappings, where the model records their holder: a
        # process's vmsplice() references per page, and the page cache of mapped files
        self.gup: dict[int, dict[int, int]] = {}
        for p in procs:
            for f, i in p.gup_refs:
                held = self.gup.setdefault(f.pfn, {})
                held[i] = held.get(i, 0) + 1
        self.cached: dict[int, int] = {}
        files = {id(v.vm_file): v.vm_file for p in procs for v in p.mm.vmas
                 if v.vm_file is not None}
        for file in files.values():
            for page in file.cache.values():
                self.cached[page.folio.pfn] = self.cached.get(page.folio.pfn, 0) + 1

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


SWAP_W = CW * 3                  # one swap slot's box
CAP = 14                         # one caption line below a folio's pages (11 px text)
CAP_GAP = 6                      # between a folio's pages and a caption beside them
#: The narrowest a caption beside a folio wraps to, in characters: "refcount 30" and
#: "order 1" stay whole.  Wider captions come first; they narrow only until one row of
#: physical memory fits the column (a second row would put the lines to its pages
#: through the first row's pages and captions).
CAP_MIN = 11
PAGE_MIN = 28                    # the narrowest page box: "AE" and "2" side by side


def draw_memory(c: Canvas, mem: Memory, y: float, beside: bool = False
                ) -> tuple[float, Pages]:
    """Physical memory (and, beside it, swap space) from baseline ``y`` of the heading.

    The lines from the parent's PTEs arrive at the top edge of a page, the child's at
    the bottom edge.  With one process each folio's caption (name, kind, order,
    refcount, who else holds a reference) goes below its pages, where no line passes.
    ``beside`` (a picture after fork, with lines from below too) puts the caption to
    the right of the folio's pages instead: every line reaches its page straight up or
    straight down at the page's own x, so no line crosses the refcount a reader is
    asked to check (below the pages, every child line ran through it)."""
    pmd = any(f.entire_mapcount for f in mem.order)
    pages: Pages = {}
    blocks: list[tuple[str, Any]] = [("folio", f) for f in mem.order]
    blocks += [("raw", pfn) for pfn in mem.raw]
    # swap is a disk, not memory: its own box to the right of physical memory
    swap_w = (SWAP_W + 16) * len(mem.swaps) + 12 if mem.swaps else 0
    mem_w = c.width - 4 - (swap_w + 8 if swap_w else 0)

    def widths_at(limit: int | None, pw: float = CW) -> list[float]:
        out = []
        for kind, obj in blocks:
            if kind == "folio":
                n = len(mem.page_runs(obj))
                head = _caption(mem, obj, beside, limit)
                text = max(len(t) for t in head) * CHAR_W + 6
                pages_w = max(n * (pw + GAP) - GAP, 170 if obj.nr_pages > BIG else 0)
                out.append(pages_w + CAP_GAP + text if beside else max(pages_w, text))
            else:
                out.append(CW * 3 + (CAP_GAP + 14 * CHAR_W if beside else 0))
        return out

    def one_row(ws: Sequence[float]) -> bool:
        return LEFT + sum(ws) + FOLIO_GAP * max(len(ws) - 1, 0) <= mem_w + 4 - LEFT

    # captions beside the pages narrow (more, shorter lines) before the row wraps
    limit: int | None = None
    widths = widths_at(None)
    if beside and not one_row(widths):
        longest = max((len(t) for kind, obj in blocks if kind == "folio"
                       for t in _folio_head(mem, obj, True)), default=CAP_MIN)
        for n in range(longest - 1, CAP_MIN - 1, -1):
            limit, widths = n, widths_at(n)
            if one_row(widths):
                break
        # then the pages narrow, down to PAGE_MIN ("AE" and a mapcount still fit)
        pw = float(CW)
        while not one_row(widths) and pw > PAGE_MIN:
            pw -= 2
            widths = widths_at(limit, pw)
        mem.page_w = pw
    mem.caption_limit = limit
    widths = [min(w, mem_w - 2 * LEFT) for w in widths]
    lines = max((len(_caption(mem, obj, beside, limit)) if kind == "folio" else 1
                 for kind, obj in blocks), default=1)
    row_h = (max(PAGE_H, CAP * lines) + 8 if beside else PAGE_H + CAP * lines + 4)
    # folios further apart than the pages inside one, each outlined: two adjacent folios
    # read as two (a reader saw one run of five pages where folios A and B met)
    # the heading goes at the foot of the box: the parent's lines all arrive from above,
    # and a heading over the pages had every one of them run through it
    boxes = flow(widths, y - 2, row_h, mem_w + 4, FOLIO_GAP)
    foot = (boxes[-1].y + row_h if boxes else y + row_h) + 12
    bottom = foot + 6
    c.group("physical memory", css="pkmm-physmem")
    c.rect(2, y - 10, mem_w, bottom - y + 10, rx=4)
    # page_mapcount() counts a folio's PMD mappings on every page: say so when it matters.
    c.text(LEFT, foot, "physical memory: folios in pfn order (number in a page = its "
           "mapcount" + (": PTE + PMD mappings)" if pmd else ")"), "pk-t", halo=True)
    for (kind, obj), b in zip(blocks, boxes, strict=True):
        if kind == "folio":
            _folio_block(c, mem, obj, b, pages, beside)
        else:
            _raw_block(c, obj, b, pages, beside)
    c.end()
    if mem.swaps:
        _swap_space(c, mem, 2 + mem_w + 8, y, swap_w, bottom, pages)
    return bottom, pages


def _folio_block(c: Canvas, mem: Memory, f: Folio, b: Box, pages: Pages,
                 beside: bool = False) -> None:
    special = f.kind in ("zero", "huge_zero")
    head = _caption(mem, f, beside, mem.caption_limit)
    if beside:          # the pages' share of the block: the caption takes the rest
        text = max(len(t) for t in head) * CHAR_W + 6
        b = Box(b.x, b.y, max(mem.page_w, b.w - CAP_GAP - text), b.h)
    prs = mem.page_runs(f)
    total = sum(last - first + 1 for first, last in prs)
    pw = mem.page_w
    if not special:     # the folio's outline: its pages are one allocation
        used = len(prs) * pw + GAP * (len(prs) - 1) if f.nr_pages <= BIG else b.w
        pages_ = f"{f.nr_pages} page" + ("s" if f.nr_pages != 1 else "")
        c.rect(b.x - 2.5, b.y - 2.5, used + 5, PAGE_H + 5, "", rx=3,
               extra=' stroke-width="1.5"',
               tip=f"folio {folio_name(mem.names, f)}: {pages_} (order {f.order})")
    x = b.x
    for first, last in prs:
        n = last - first + 1
        w = pw if f.nr_pages <= BIG or special else max(
            pw, (b.w - GAP * (len(prs) - 1)) * n / total)
        box = Box(x, b.y, w, PAGE_H)
        _page_box(c, mem, f, first, last, box, special)
        for i in range(first, last + 1):
            pages[(f.pfn, i)] = Box(box.x + (i - first + 0.5) * w / n - 0.5, box.y, 1,
                                     box.h)
        if special:
            for i in range(f.nr_pages):
                pages[(f.pfn, i)] = Box(box.x + w / 2, box.y, 1, box.h)
        x += w + GAP
    # beside: the caption starts right of the pages, its first line level with their top
    cx, cy = (x - GAP + CAP_GAP, b.y + 10) if beside else (b.x, b.y + PAGE_H + 13)
    for k, line in enumerate(head):
        c.text(cx, cy + CAP * k, line, "pk-t", halo=True)


def _caption(mem: Memory, f: Folio, narrow: bool, limit: int | None) -> list[str]:
    """The folio's caption, each line wrapped to ``limit`` characters (None: whole)."""
    head = _folio_head(mem, f, narrow)
    if limit is None:
        return head
    out: list[str] = []
    for t in head:
        for k, part in enumerate(wrap(t, limit)):
            # a count stays with its word ("page cache: 2", not "page cache:" over "2")
            if k and part.rstrip(",").isdigit():
                out[-1] += " " + part
            else:
                out.append(part)
    return out


def _folio_head(mem: Memory, f: Folio, narrow: bool = False) -> list[str]:
    """The folio's caption lines: name, kind and order; its counters; then the holders
    of references that are not mappings, as far as the model records them (a pipe's
    vmsplice() references per page, the page cache of a mapped file), each a part of
    the refcount.  ``narrow`` (a caption beside the pages) drops the "(1 per page)",
    so one row of physical memory holds a folio more before it wraps."""
    name = folio_name(mem.names, f)
    if f.kind in ("zero", "huge_zero"):
        return [f"{name} page", "(no refcounting)"]
    pin = f", pincount {f.pincount}" if f.order and f.pincount else ""
    # the holders are parts of the refcount, never added to it: "refcount 19, of which
    # vmsplice (pipe): 3" (a "+" before them read as 19 + 3)
    held = mem.gup.get(f.pfn, {})
    holders = []
    if held:
        where = ", ".join(f"{n} on page {i}" for i, n in sorted(held.items()))
        holders.append(f"vmsplice (pipe): {where}")
    rest = f.gup_refs - sum(held.values())     # held by a pipe whose process is gone
    if rest > 0:
        holders.append(f"other FOLL_GET: {rest}")
    cached = mem.cached.get(f.pfn, 0)
    if cached:
        holders.append(f"page cache: {cached}" + ("" if narrow else " (1 per page)"))
    return [f"{name} {f.kind} order {f.order}" + (" FREED" if f.freed else ""),
            f"refcount {f.refcount}{pin}" + (", of which" if holders else "")] + holders


def _page_box(c: Canvas, mem: Memory, f: Folio, first: int, last: int, b: Box,
              special: bool) -> None:
    pg = f.pages[first]
    pins = mem.pins.get((f.pfn, first), 0)
    role = "special" if special else f.kind
    if special:
        tip = (f"{folio_name(mem.names, f)} page: mapped read-only by every process, "
               "no per-page mapcount")
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
        pin = "PIN" if pins == 1 else f"PIN×{pins}"
        fit = (f' textLength="{b.w - 4:g}" lengthAdjust="spacingAndGlyphs"'
               if len(pin) * CHAR_W > b.w - 4 else "")
        c.text(b.x + b.w / 2, b.y + b.h - 3, pin, "pk-t2", anchor="middle", halo=True,
               extra=' font-weight="bold"' + fit)
        c.text(b.x + b.w - 3, b.y + 13, count, "pk-t", anchor="end", tip=tip)
    else:
        c.text(b.x + b.w / 2, b.y + 21, count, "pk-t", anchor="middle", tip=tip)
    if pg.anon_exclusive:
        c.text(b.x + 2, b.y + 9, "AE", "pk-t2")


def _raw_block(c: Canvas, key: int, b: Box, pages: Pages, beside: bool = False) -> None:
    box = Box(b.x, b.y, CW * 3, PAGE_H)
    c.rect(box.x, box.y, box.w, box.h, "special", tip=f"raw pfn {key:#x}: no struct "
           "page, nothing is refcounted")
    c.text(box.x + 3, box.y + 19, f"pfn {key:#x}", "pk-t2")
    cx, cy = (b.x + CW * 3 + CAP_GAP, b.y + 10) if beside else (b.x, b.y + PAGE_H + 13)
    c.text(cx, cy, "device memory", "pk-t", halo=True)
    pages[(-1, key)] = Box(box.x + box.w / 2, box.y, 1, box.h)


def _swap_space(c: Canvas, mem: Memory, x: float, y: float, w: float, bottom: float,
                pages: Pages) -> None:
    """Swap space: a box of its own beside physical memory -- a swap entry names a slot
    on the swap device, not a page in RAM."""
    c.group("swap space", css="pkmm-swap")
    c.rect(x, y - 10, w, bottom - y + 10, rx=4)
    c.text(x + 6, bottom - 6, "swap space (on disk)", "pk-t", halo=True)
    sx = x + 8
    for key in mem.swaps:
        slot = mem.procs[0].machine.swap.get(key)
        count = slot.count if slot is not None else 0
        box = Box(sx, y - 2, SWAP_W, PAGE_H)
        c.rect(box.x, box.y, box.w, box.h, "nonpresent", tip=f"swap slot {key}: swap "
               f"count {count} (one per PTE that refers to it)")
        # the count goes inside the slot's box: under it, it ran into the "swap space"
        # heading at the foot of the band (a reader could read neither)
        c.text(box.x + box.w / 2, box.y + 12, f"slot {key}", "pk-t", anchor="middle")
        c.text(box.x + box.w / 2, box.y + 25, f"swap count {count}", "pk-t",
               anchor="middle")
        pages[(-2, key)] = Box(box.x + box.w / 2, box.y, 1, box.h)
        sx += SWAP_W + 16
    c.end()
