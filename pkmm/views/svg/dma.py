"""The lost-DMA-write timeline: device, pinned page, parent, child, the CoW that moves one.

Simulator concept (views layer).  The story is *run*, not told: the layout is built and
forked under the kernel (optionally with rules switched off), the parent writes the
pinned page, the device writes it through its pin (``pkmm.dma_write``), then both
processes read it.  Each column is the model's state after one of those steps: which
page each process maps at that address and what every page holds.
Taught in: notebooks/04-pinned-pages.ipynb
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ...errors import LayoutError
from ...fork import fork
from ...kernels import DEFAULT_KERNEL
from ...process import Process, dma_write
from .core import CHAR_W, Canvas, Picture, wrap
from .scene import folio_name, layout_names, need_kernel

DEFAULT = {"name": "one pinned page", "vmas": [{"start": "0x200000", "npages": 1}],
           "folios": {"P": {"order": 0}}, "ptes": [{"addr": "0x200000", "folio": "P"}],
           "pins": [{"folio": "P"}]}
LANE_H, COL_W, LEFT = 40, 141, 96   # six columns fit the 952 px column
HEAD = 62        # the lanes start below a column's three caption lines


def _mapped(p: Process, addr: int) -> int | None:
    if p.exited:
        return None
    pte = p.pte(addr)
    return pte.pfn if pte is not None and pte.present else None


def dma_timeline(layout: Any = None, kernel: str = DEFAULT_KERNEL, *,
                 without: Iterable[str] = (), write: int = 5, dma: int = 9) -> Picture:
    """Fork, the parent writes ``write``, the device writes ``dma``, both read: who sees it?

    ``layout`` must pin a page (default: one pinned anonymous page).

    >>> dma_timeline().data["parent_reads"]
    9
    >>> dma_timeline(without={"pinned-copy"}).data["parent_reads"]
    5
    """
    from ...scenario import as_scenario
    need_kernel(kernel, "dma_timeline")
    sc = as_scenario(DEFAULT if layout is None else layout)
    if not sc.pins:
        raise LayoutError("dma_timeline: the layout pins no page; pin the page the device "
                          "writes (a 'pins' entry, or the builder's pin button)")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (write, dma)):
        raise LayoutError(f"write={write!r}, dma={dma!r}: pages hold ints")
    parent, folios = sc.build()
    pin = sc.pins[0]
    x_folio, x_page = folios[pin["folio"]], pin.get("page", 0)
    x_pfn = x_folio.pfn + x_page
    addr = next((a for a, p in parent.ptes() if p is not None and p.present
                 and p.pfn == x_pfn), None)
    if addr is None:
        raise LayoutError("dma_timeline: the parent maps the pinned page through a PMD or "
                          "not at all; pin a PTE-mapped page")
    cols: list[dict[str, Any]] = []

    def snap(label: str, actor: str, what: str, child: Process | None) -> None:
        procs = {"parent": parent, "child": child}
        maps = {k: (_mapped(p, addr) if p is not None else None) for k, p in procs.items()}
        pages = {pfn: parent.machine.pfn_folio(pfn) for pfn in maps.values() if pfn}
        pages[x_pfn] = (x_folio, x_page)
        data = {pfn: hit[0].pages[hit[1]].data for pfn, hit in pages.items() if hit}
        cols.append({"label": label, "actor": actor, "what": what, "maps": maps,
                     "data": data, "alive": {k: p is not None for k, p in procs.items()}})

    snap("before fork", "", "the device holds a pin on the page", None)
    r = fork(parent, kernel=kernel, without=frozenset(without))
    child = r.child
    copied = _mapped(child, addr) != x_pfn
    snap("fork()", "parent", "child gets its own copy at fork" if copied else
         "child maps the same page, CoW-shared", child)
    parent.write(addr, write)
    kind = parent.last_fault.kind if parent.last_fault else "none"
    snap(f"parent writes {write}", "parent",
         "no fault: the PTE is still writable" if kind == "none" else
         f"write fault: {kind}", child)
    dma_write(x_folio, x_page, dma)
    snap(f"device writes {dma}", "device", "DMA into the pinned page (no page tables)",
         child)
    got_parent = parent.read(addr)
    snap(f"parent reads {got_parent}", "parent", "", child)
    got_child = child.read(addr)
    snap(f"child reads {got_child}", "child", "", child)
    names = layout_names(folios, [parent, child])
    return _draw(kernel, frozenset(without), cols, names, x_pfn, parent, got_parent, dma,
                 got_child)


def caption_lines(what: str) -> list[str]:
    """A column's caption in lines that fit the column (at most three).

    >>> caption_lines("child maps the same page, CoW-shared")
    ['child maps the same', 'page, CoW-shared']
    """
    lines = wrap(what, int((COL_W - 10) / CHAR_W))
    if len(lines) > 3:
        raise LayoutError(f"dma_timeline caption {what!r} needs {len(lines)} lines; "
                          "shorten it to three lines of the column")
    return lines


def _page_name(parent: Process, names: dict[int, str], pfn: int) -> str:
    hit = parent.machine.pfn_folio(pfn)
    if hit is None:
        return f"pfn {pfn:#x}"
    return f"{folio_name(names, hit[0])}:{hit[1]}"


def _draw(kernel: str, without: frozenset[str], cols: list[dict[str, Any]],
          names: dict[int, str], x_pfn: int, parent: Process, got: int, dma: int,
          got_child: int) -> Picture:
    pfns = [x_pfn] + sorted({pfn for col in cols for pfn in col["data"] if pfn != x_pfn})
    lanes = ["device", "parent", "child"] + [f"page {_page_name(parent, names, p)}"
                                             for p in pfns]
    c = Canvas(LEFT + COL_W * len(cols) + 8)
    off = f" without {', '.join(sorted(without))}" if without else ""
    c.text(8, 14, f"{kernel}{off}: does the parent see the device's write?", "pk-h")
    top = 26
    for i, lane in enumerate(lanes):
        c.text(8, top + HEAD + 20 + i * LANE_H, lane, "pk-t")
    for j, col in enumerate(cols):
        x = LEFT + j * COL_W
        c.text(x + 4, top + 12, f"{j}. {col['label']}", "pk-t", extra=' font-weight="bold"')
        # three short lines of 11 px glyphs: longer ones ran into the next caption, so a
        # caption is written to fit (a fourth line was cut off: "(CoW-shared," and no more)
        for k, line in enumerate(caption_lines(col["what"])):
            c.text(x + 4, top + 25 + 12 * k, line, "pk-t2")
        for i, who in enumerate(("device", "parent", "child")):
            y = top + HEAD + i * LANE_H
            if who == "device":
                on = col["actor"] == "device"
                # "lit" (acting), as for the processes: red is kept for "contents changed"
                c.rect(x + 2, y, COL_W - 6, LANE_H - 8, "lit" if on else "none",
                       tip="device: holds a FOLL_PIN on page "
                       + _page_name(parent, names, x_pfn))
                c.text(x + 6, y + 19, f"pin on {_page_name(parent, names, x_pfn)}", "pk-t2")
                continue
            pfn = col["maps"].get(who)
            on = col["actor"] == who or col["label"].startswith(who)
            text = (f"maps {_page_name(parent, names, pfn)}" if pfn else
                    "no page here" if col["alive"][who] else f"(no {who} yet)")
            c.rect(x + 2, y, COL_W - 6, LANE_H - 8, "lit" if on else "anon", tip=text)
            c.text(x + 6, y + 19, text, "pk-t2")
        for i, pfn in enumerate(pfns):
            y = top + HEAD + (3 + i) * LANE_H
            val = col["data"].get(pfn)
            prev = cols[j - 1]["data"].get(pfn) if j else None
            changed = j > 0 and val is not None and val != prev
            c.rect(x + 2, y, COL_W - 6, LANE_H - 8, "hot" if changed else "none",
                   tip=f"page {_page_name(parent, names, pfn)} "
                   + ("does not exist yet" if val is None else f"holds {val}"))
            if pfn == x_pfn:
                c.hatch(x + 2, y, 14, LANE_H - 8, "pinned page")
            c.text(x + COL_W / 2, y + 20, "no page yet" if val is None else f"holds {val}",
                   "pk-t",
                   anchor="middle")
    y = top + HEAD + len(lanes) * LANE_H + 8
    lost = got != dma
    verdict = (f"The parent reads {got}, but the device wrote {dma}: the DMA write went "
               "into a page the parent no longer maps (lost)." if lost else
               f"The parent reads {got}: it still maps the pinned page, so it sees the "
               f"device's write; the child reads {got_child} from its own copy.")
    c.text(8, y, verdict, "pk-t", extra=' font-weight="bold"')
    # the legend a static page needs: colours and hatching are otherwise unexplained
    c.text(8, y + 16, "orange: who acts in this step (a process or the device); red page: "
           "its contents just changed (grey: unchanged); hatched: the pinned page", "pk-t2")
    return c.picture("dma-timeline", "the lost DMA write", verdict,
                     data={"parent_reads": got, "child_reads": got_child, "lost": lost})
