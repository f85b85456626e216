"""One frame of a fork (parent and child PTEs with the scan cursor) and the filmstrip.

Simulator concept (views layer).  Draws a :class:`pkmm.views.stepframes.Frame`: the
event the kernel just recorded (function, rule, reason), the PTEs it acted on outlined
in both tables, the PTEs it changed marked, and the folio counters.  The filmstrip --
a stepper's static fallback -- stacks the key frames of the fork, not just its last.
Taught in: notebooks/02-fork-one-pte-at-a-time.ipynb
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from ...kernels import DEFAULT_KERNEL
from ...kernels.common import stop_words
from ...pte import PAGE_SIZE
from ..render import Cell, bits_text
from ..stepframes import Frame, StepFrames
from .core import CHAR_W, CUR_TINT, FG, PALETTE, SOLID, Canvas, Picture, wrap
from .scene import need_kernel

W_MAX, LEFT, CH = 952, 8, 50
BAR = 5                          # the orange (cursor) and green (written) bars, solid
_LABEL = re.compile(r"^(.*):(\d+)( PMD)?$")


def _tag(f: Frame, who: str, a: int) -> str:
    """"cur": the event's code is at slot ``a``; "chg": it wrote ``who``'s PTE there.

    A batch scan (a ``stop:`` rule) reads only the parent's PTEs: outlining the child's
    empty slots too made a reader ask whether the scan looks at the child's table."""
    scan_only = f.event is not None and f.event.rule.startswith("stop:")
    cur = a in f.current and not (who == "child" and scan_only)
    return ("cur" if cur else "") + ("chg" if (who, a) in f.changed else "")


def _continues(a: Cell, b: Cell, ta: str, tb: str) -> bool:
    if (a.kind, a.bits, a.extra, ta) != (b.kind, b.bits, b.extra, tb):
        return False
    if a.kind == "none":
        return True
    ma, mb = _LABEL.match(a.label), _LABEL.match(b.label)
    return bool(ma and mb and ma[1] == mb[1] and int(mb[2]) == int(ma[2]) + 1
                and ma[3] == mb[3])


def _groups(f: Frame, who: str, cells: Sequence[Cell]) -> list[tuple[int, int]]:
    """(first, last) index groups: one per cell when few, runs when many."""
    if len(cells) <= 24:
        return [(i, i) for i in range(len(cells))]
    out, start = [], 0
    for i in range(1, len(cells) + 1):
        if i == len(cells) or not _continues(cells[i - 1], cells[i],
                                             _tag(f, who, cells[i - 1].addr),
                                             _tag(f, who, cells[i].addr)):
            out.append((start, i - 1))
            start = i
    if len(out) > 48:   # a fragmented table: bins of 16 slots keep the frame small
        return [(lo, min(lo + 15, len(cells) - 1)) for lo in range(0, len(cells), 16)]
    return out


def _unseen(f: Frame, since: Frame | None, who: str) -> set[int]:
    """Slots of ``who`` whose PTE differs from frame ``since`` (the one drawn before) but
    that this step did not write: a step the filmstrip does not draw changed them (a
    reader saw a W vanish between two frames with no mark saying where it went)."""
    if since is None:
        return set()
    old = {c.addr: c for c in (since.parent if who == "parent" else since.child)}
    now = f.parent if who == "parent" else f.child
    return {c.addr for c in now if c.addr in old and (who, c.addr) not in f.changed
            and (c.kind, c.label, c.bits, c.extra) != (old[c.addr].kind, old[c.addr].label,
                                                         old[c.addr].bits, old[c.addr].extra)}


def _strip(c: Canvas, f: Frame, who: str, cells: Sequence[Cell], y: float,
           clickable: bool, unseen: frozenset[int] = frozenset()) -> float:
    c.text(LEFT, y + 10, who, "pk-h")
    y += 22                  # the heading's descenders clear the cursor's bar
    groups = _groups(f, who, cells)
    unit = min(60.0, (c.width - 2 * LEFT) / max(len(cells), 1))
    if len(cells) > 24:   # widths proportional to the run, at least one unit... scaled
        total = sum(min(4, 1 + (last - first)) for first, last in groups)
        unit = (c.width - 2 * LEFT) / max(total, 1)
    x = float(LEFT)
    for first, last in groups:
        cell = cells[first]
        n = last - first + 1
        w = unit * (min(4, n) if len(cells) > 24 else 1)
        span = cells[first:last + 1]
        mixed = any(not _continues(a, b, _tag(f, who, a.addr), _tag(f, who, b.addr))
                    for a, b in zip(span, span[1:], strict=False))
        tag = "".join(sorted({_tag(f, who, x.addr) for x in span})) if mixed \
            else _tag(f, who, cell.addr)
        lo = (cell.addr - f.base) // PAGE_SIZE
        slot = f"#{lo}" if n == 1 else f"#{lo}-{lo + n - 1}"
        tip = f"{who} PTE {slot}: {cell.label} {cell.bits} {cell.extra}".strip()
        if "cur" in tag and f.event is not None and ("chg" in tag or not f.changed):
            # hover: why the kernel touched it, on the row the reason is about: a step
            # that wrote PTEs describes those (a reader found "child PTE written" on the
            # parent's row); one that wrote none, the PTEs its code is at
            tip += f" -- {f.event.func}: {f.event.reason}"
        if clickable:
            c.raw(f'<g data-pk-click="slot:{lo}" aria-label="{who} PTE {slot}">')
        c.rect(x + 1, y, w - 2, CH, cell.kind if cell.kind != "none" else "none", tip=tip)
        if "cur" in tag:    # the cursor's outline in the cursor's colour, as the key says
            # (it stands out 3:1 from the page), and a light tint under the words (see
            # core.CUR_TINT: dark enough to find, light enough to read the text on)
            c.raw(f'<rect x="{x + 2:g}" y="{y + 1:g}" width="{w - 4:g}" height="{CH - 2:g}" '
                  f'rx="2" class="pk-cur" fill="{CUR_TINT[0]}" fill-opacity="{CUR_TINT[1]}" '
                  f'stroke="{PALETTE["lit"][1]}" stroke-width="3"/>')
        if any(x_.addr in unseen for x_ in span):
            # the green bar's place, dashed and thin: a change seen late, not this step's
            # work (an outline inside the box ran through its words)
            c.path(f"M{x + 1:g},{y + CH + 4.5:g} h{w - 2:g}", "ok", width=2, dash="4 3",
                   tip="changed in a step this filmstrip does not draw")
        if "chg" in tag:     # below the box, clear of the cursor's thick outline
            c.rect(x + 1, y + CH + 2, w - 2, BAR, "ok", rx=0, extra=SOLID,
                   tip="this PTE was written by this event")
        if w >= 26:
            c.text(x + 3, y + 11, slot, "pk-t2", extra=_fit(slot, w))
            label = "mixed" if mixed else cell.label if n == 1 else f"{cell.label} ×{n}"
            c.text(x + 3, y + 23, label, "pk-t2", extra=_fit(label, w))
            # "no bits" in words: a lone "-" read like the empty slot's "--"
            bits = "no bits" if cell.bits == "-" else cell.bits
            # the outlined cell is the one the frame is about: its bits in the full text
            # colour (grey on the tinted fill had the lowest contrast on the page)
            ink = f' style="fill:{FG}"' if "cur" in tag else ""
            bits = "" if mixed or cell.kind == "none" else bits
            c.text(x + 3, y + 35, bits, "pk-t2", extra=' font-weight="bold"' + ink
                   + _fit(bits, w))
            if cell.extra and not mixed:   # a fact about the page, not a PTE bit: say so
                c.text(x + 3, y + 47, f"page {cell.extra}", "pk-t2",
                       extra=_fit(f"page {cell.extra}", w))
        if clickable:
            c.raw("</g>")
        if "cur" in tag:
            c.rect(x + 1, y - BAR - 2, w - 2, BAR, "lit", rx=0, extra=SOLID,
                   tip="the scan cursor")
        x += w
    return y + CH + BAR + 4      # the green bars below the boxes


def _fit(text: str, w: float) -> str:
    """Squeeze words longer than their cell, not spill them into the next."""
    return (f' textLength="{w - 6:g}" lengthAdjust="spacingAndGlyphs"'
            if len(text) * CHAR_W > w - 6 else "")


def draw_frame(c: Canvas, f: Frame, kernel: str, y: float, *, clickable: bool = False,
               words: int = 150, explain: bool = True, since: Frame | None = None
               ) -> float:
    """Draw frame ``f`` on ``c`` from height ``y``; returns the height below it.
    ``explain=False`` leaves the words out (a live stepper shows them in its panel).
    ``since``: the frame drawn before this one (a filmstrip's); PTEs changed by the
    steps between the two, not by this one, get a dashed green line below."""
    e = f.event
    c.text(LEFT, y + 12, f"step {f.index}/{f.total} · {kernel}", "pk-h")
    y += 18
    lines = frame_words(f) if explain else []
    for cls, line in lines:
        # the reason line carries the frame's lesson: the main text size and colour (in
        # the small grey of the notes a reader found it hard to read); only the muted
        # hint stays small
        for part in wrap(line, words):
            c.text(LEFT, y + 10, part, "pk-t2" if cls == "muted" else "pk-t",
                   extra=' font-weight="bold"' if cls == "head" else "")
            y += 13
    unseen = {who: _unseen(f, since, who) for who in ("parent", "child")}
    y = _strip(c, f, "parent", f.parent, y + 2, clickable, frozenset(unseen["parent"]))
    y = _strip(c, f, "child", f.child, y + 4, clickable, frozenset(unseen["child"]))
    value = e.get("value") if e is not None else None
    if e is not None and value is not None:
        # the value a batch's child PTEs will be written from, as this step left it: it
        # lives in no table yet (a reader saw the child's slots outlined but still "--")
        name = next((cell.label for cell in f.parent if cell.addr == e.addr), "")
        c.text(LEFT, y + 12, f"value for the child's {e.nr} PTE(s), not written yet: "
               f"{name} {_bits(value)}", "pk-t", extra=' font-weight="bold"')
        y += 16
    tags = "".join(_tag(f, who, cell.addr) for who, cells in (("parent", f.parent),
                                                              ("child", f.child))
                   for cell in cells)
    marks = ([("bar", "lit", "orange bar above, orange box: the PTE(s) this step's "
               "code is at")] if "cur" in tags else [])
    marks += [("bar", "ok", "green bar below: PTE written by this step")] if "chg" in tags else []
    if unseen["parent"] or unseen["child"]:
        marks.append(("dashbar", "ok", f"dashed green line below: changed in a step not drawn "
                      f"(steps {since.index + 1 if since else 1}-{f.index - 1})"))
    if marks:    # say what the bars mean where they appear
        y = c.legend(y + 14, marks)
    y += 14
    for row in f.folios:
        mc = " ".join(map(str, row.mapcounts[:16])) + (" ..." if len(row.mapcounts) > 16
                                                       else "")
        # AnonExclusive is a flag of anonymous pages only: a page-cache page never has it
        ae = (f"AnonExclusive on {row.exclusive} of its {len(row.mapcounts)} page(s)"
              if row.anon
              else "a page-cache folio (no AnonExclusive)")
        # the counters are what a frame is read for: the main text size and colour, not
        # the small grey of the notes (a reader found them the hardest part to read)
        c.text(LEFT, y + 2, f"{row.name}: refcount {row.refcount}, mapcount per page {mc}, "
               f"{ae}", "pk-t")
        y += 14
    rss = ", ".join(f"{k[3:].lower()} {v}" for k, v in f.rss) or "0"
    c.text(LEFT, y + 2, f"child rss so far: {rss}" + ("" if e is None else ""), "pk-t")
    return y + 9


def _bits(pte: Any) -> str:
    """A PTE value's flag letters, as the tables print them ("no bits" for none)."""
    text = bits_text(pte)
    return "no bits" if text == "-" else text


def frame_words(f: Frame) -> list[tuple[str, str]]:
    """The frame's explanation: what the kernel did at this event and why."""
    e = f.event
    if e is None:
        return [("head", "Before fork: the parent's page table, and the child's, still "
                         "empty."), ("muted", "The next step runs the first decision.")]
    where = "" if e.addr is None else f" at {e.addr:#x}" + (f" ({e.nr} PTEs)" if e.nr > 1
                                                             else "")
    out = [("head", f"{e.func}(){where}: {e.rule}"), ("", e.reason)]
    if e.rule.startswith("stop:"):
        out.append(("", f"batch stopped: {stop_words(e.rule[5:])}"))
    return out


def fork_step(layout: Any, kernel: str = DEFAULT_KERNEL, step: int = 0, *,
              without: Iterable[str] = ()) -> Picture:
    """One frame of the fork of ``layout``: the state after its first ``step`` events.

    >>> p = fork_step({"vmas": [{"start": 0, "npages": 2}], "folios": {"F": {"order": 1}},
    ...                "ptes": [{"addr": 0, "folio": "F"}]}, "v6.9", 3)
    >>> p.data["event"]
    'folio_pte_batch: stop:range-end'
    """
    from ...scenario import as_scenario
    need_kernel(kernel, "fork_step")
    sf = StepFrames(as_scenario(layout), kernel, without)
    return frame_picture(sf.frame(step), kernel)


def frame_picture(f: Frame, kernel: str, clickable: bool = False,
                  explain: bool = True, width: int | None = None) -> Picture:
    """A frame as its own picture (the live stepper's view, without the words)."""
    c = Canvas(max(320, min(width or W_MAX, 1600)))
    draw_frame(c, f, kernel, 0, clickable=clickable, explain=explain)
    e = f.event
    text = (f"step {f.index}/{f.total} of a {kernel} fork"
            + (f": {e.func} {e.rule}" if e else ": before fork"))
    return c.picture("fork-step", f"fork step {f.index}", text, interactive=clickable,
                     data={"event": f"{e.func}: {e.rule}" if e else "before fork"})


def filmstrip(sf: StepFrames, most: int = 6) -> Picture:
    """The fork's key frames, top to bottom (a stepper's static fallback).

    >>> from pkmm.scenario import Scenario
    >>> s = Scenario.from_dict({"vmas": [{"start": 0, "npages": 4}],
    ...     "folios": {"F": {"order": 2}}, "ptes": [{"addr": 0, "folio": "F"}]})
    >>> filmstrip(StepFrames(s, "v6.9")).data["frames"]
    [0, 3, 4, 5, 6, 7]
    """
    keys = sf.key_frames(most)
    c = Canvas(W_MAX)
    c.text(LEFT, 14, f"fork under {sf.kernel}: {len(keys)} key frames: step 0 before fork, "
           f"then {len(sf) - 1} fork steps; batches "
           f"{sf.result.batches if len(sf.result.batches) < 20 else '...'}",
           "pk-h")
    y = 24.0
    since: Frame | None = None
    for k in keys:
        c.rect(2, y, W_MAX - 4, 2, "none", rx=0)
        f = sf.frame(k)
        y = draw_frame(c, f, sf.kernel, y + 6, since=since) + 10
        since = f
    return c.picture("filmstrip", f"fork under {sf.kernel}, key frames",
                     f"{len(keys)} key frames of a {sf.kernel} fork (steps "
                     f"{', '.join(map(str, keys))})", data={"frames": keys})
