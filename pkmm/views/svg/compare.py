"""Two kernels side by side: each one's final parent and child PTEs, differences marked.

Simulator concept (views layer).  Both forks are the model's (:func:`compare_forks`);
a PTE is marked only in the table (parent or child) where the two kernels' results
differ, with a "≠" and an outline, never by colour alone.
Taught in: notebooks/05-shared-vs-private.ipynb, notebooks/06-upstream-batching.ipynb
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ...kernels import COMPARE_PAIR
from ..compare_model import Comparison, compare_forks
from ..render import Cell
from .core import CHAR_W, Canvas, Picture
from .scene import need_kernel

LEFT, W_MAX, CH = 8, 952, 40


def _row(c: Canvas, cells: Sequence[Cell], marks: set[int], y: float, who: str,
         kernel: str) -> float:
    n = max(len(cells), 1)
    w = min(56.0, (c.width - 2 * LEFT - 60) / n)
    c.text(LEFT, y + 22, who, "pk-t")
    for i, cell in enumerate(cells):
        x = LEFT + 60 + i * w
        diff = i in marks
        tip = (f"{kernel} {who} PTE #{i}: {cell.label} {cell.bits}".strip()
               + (" (differs from the other kernel)" if diff else ""))
        c.rect(x + 1, y, w - 2, CH, cell.kind if cell.kind != "none" else "none", tip=tip,
               extra=' stroke-width="3"' if diff else "")
        if w >= 30:
            c.text(x + 3, y + 11, f"#{i}" + (" ≠" if diff else ""), "pk-t2",
                   extra=' font-weight="bold"' if diff else "")
            c.text(x + 3, y + 22, cell.label, "pk-t2", extra=_fit(cell.label, w))
            # "no bits" in words: a lone "-" read like the empty slot's "--"
            bits = "no bits" if cell.bits == "-" else cell.bits
            c.text(x + 3, y + 34, bits, "pk-t2", extra=' font-weight="bold"' + _fit(bits, w))
        elif diff:
            c.text(x + w / 2, y + CH + 9, "≠", "pk-t2", anchor="middle")
    return y + CH + (12 if w < 30 else 4)


def _fit(text: str, w: float) -> str:
    """Squeeze a cell's words longer than the cell ("W D A SD"), not spill them."""
    return (f' textLength="{w - 7:g}" lengthAdjust="spacingAndGlyphs"'
            if len(text) * CHAR_W > w - 7 else "")


def _words(value: str) -> str:
    """A cell's "label bits" with the lone "-" of no bits in words ("S:0 no bits")."""
    return value[:-2] + " no bits" if value.endswith(" -") else value


def comparison_picture(cmp: Comparison, width: int | None = None) -> Picture:
    """Draw a :class:`Comparison` (both kernels, both tables, differences marked)."""
    c = Canvas(max(320, min(width or W_MAX, 1600)))
    c.text(LEFT, 14, f"{cmp.a} vs {cmp.b}: the same layout forked twice", "pk-h")
    y = 24.0
    differ = cmp.differing
    for k, r in ((cmp.a, cmp.result_a), (cmp.b, cmp.result_b)):
        batches = r.batches if len(r.batches) <= 24 else f"{r.batches[:24]}..."
        c.text(LEFT, y + 12, f"{k}: batches {batches}, copies {r.copies}, -EAGAIN rounds "
               f"{r.eagain}", "pk-t", extra=' font-weight="bold"')
        y += 18
        for side in ("parent", "child"):
            marks = {slot for s, slot in differ if s == side}
            y = _row(c, cmp.cells[k][side], marks, y, side, k) + 4
        y += 8
    if cmp.diffs:
        sides = sorted({s for s, _ in differ})
        summary = (f"{len(cmp.diffs)} PTE(s) differ, in the {' and '.join(sides)} "
                   f"table{'s' if len(sides) > 1 else ''} only (marked ≠)")
    else:
        summary = "No difference in the final page tables."
    c.text(LEFT, y + 6, summary, "pk-t")
    for j, (slot, side, va, vb) in enumerate(cmp.diffs[:12]):
        c.text(LEFT + 12, y + 20 + 12 * j,
               f"{side} PTE #{slot}: {cmp.a} {_words(va)} / {cmp.b} {_words(vb)}", "pk-t2")
    return c.picture("version-compare", f"{cmp.a} vs {cmp.b}", summary,
                     data={"differing": sorted(differ)})


def version_compare(layout: Any, a: str = COMPARE_PAIR[0], b: str = COMPARE_PAIR[1], *,
                    without: Iterable[str] = ()) -> Picture:
    """Fork ``layout`` under kernels ``a`` and ``b``; mark what differs, where.

    >>> t = {"vmas": [{"start": 0, "npages": 4}], "folios": {"F": {"order": 2}},
    ...      "ptes": [{"addr": 0, "folio": "F", "nr": 2},
    ...               {"addr": 8192, "folio": "F", "page": 2, "nr": 2, "dirty": False}]}
    >>> version_compare(t).data["differing"]
    [('child', 2), ('child', 3)]
    """
    need_kernel(a, "version_compare")
    need_kernel(b, "version_compare")
    return comparison_picture(compare_forks(layout, a, b, without))
