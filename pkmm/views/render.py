"""HTML rendering of model state: PTE grids, folio tables, panels and error boxes.

Simulator concept (views layer).  Pure functions from model state to HTML strings; no
ipywidgets here, so the same HTML is a widget's live view and its static fallback
(nbconvert, GitHub, a notebook opened without a kernel).  Nothing here decides a kernel
rule: cells show the bits and counters the model holds.
Taught in: notebooks/01-ptes-folios-vmas.ipynb
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ..folio import Folio
from ..pte import PAGE_SIZE, SETTABLE_BITS, Pte

#: Bit letters in the order cells print them (pkmm.pte.PTE_BITS, as ``Pte.__repr__``).
BIT_LETTERS = tuple((b.name, b.letter) for b in SETTABLE_BITS)

# Colours: JupyterLab's CSS variables with light fallbacks, so dark themes stay readable;
# kinds are tints (low alpha) that read on either background.
CSS = """<style>
.pkmm-widget{font-family:var(--jp-code-font-family,ui-monospace,Menlo,Consolas,monospace);
 font-size:12px;color:var(--jp-ui-font-color1,#1a1a1a)}
.pkmm-pte-grid{display:grid;grid-template-columns:repeat(8,minmax(74px,1fr));gap:2px;
 margin:2px 0 6px 0}
.pkmm-cell{border:1px solid var(--jp-border-color1,#8a8a8a);border-radius:3px;
 padding:1px 3px;line-height:1.25;color:var(--jp-ui-font-color1,#1a1a1a);min-height:30px;
 background:var(--jp-layout-color1,#fafafa)}
.pkmm-cell .a{color:var(--jp-ui-font-color2,#4d4d4d);font-size:10px}
.pkmm-cell.none{background:rgba(139,148,158,.15)}
.pkmm-cell.anon{background:rgba(59,130,246,.2)}.pkmm-cell.file{background:rgba(34,160,107,.2)}
.pkmm-cell.shmem{background:rgba(168,85,247,.2)}.pkmm-cell.special{background:rgba(210,153,34,.2)}
.pkmm-cell.nonpresent{background:rgba(232,89,12,.2)}
.pkmm-cell.cur{outline:3px solid #e8590c;outline-offset:-2px}
.pkmm-cell.chg{box-shadow:inset 0 0 0 2px #2b8a3e}
.pkmm-cell.diff{outline:3px dashed #c92a2a;outline-offset:-2px}
.pkmm-cell.copy{border-color:#c92a2a;border-width:2px}
.pkmm-table{border-collapse:collapse;margin:4px 0}
.pkmm-table td,.pkmm-table th{border:1px solid var(--jp-border-color1,#8a8a8a);
 padding:1px 5px;text-align:left;color:var(--jp-ui-font-color1,#1a1a1a)}
.pkmm-table th{background:var(--jp-layout-color2,#eeeeee)}
.pkmm-table tr.diff td{outline:2px dashed #c92a2a}
.pkmm-error{border:2px solid var(--jp-error-color1,#c92a2a);
 background:var(--jp-layout-color1,#fff5f5);color:var(--jp-ui-font-color1,#1a1a1a);
 padding:4px 8px;border-radius:4px;margin:4px 0}
.pkmm-stepper-panel,.pkmm-panel{border:1px solid var(--jp-border-color1,#8a8a8a);
 border-radius:4px;padding:4px 8px;background:var(--jp-layout-color1,#f8f9fa);
 color:var(--jp-ui-font-color1,#1a1a1a);margin:4px 0;white-space:normal}
.pkmm-side{display:flex;gap:14px;flex-wrap:wrap}
.pkmm-side>div{flex:1 1 600px;min-width:0;overflow-x:auto}
.pkmm-legend{color:var(--jp-ui-font-color2,#4d4d4d);font-size:11px}
</style>"""


def esc(s: object) -> str:
    """HTML-escape ``str(s)``."""
    return html.escape(str(s))


def bits_text(pte: Pte) -> str:
    """The set bits of a present PTE as letters, e.g. ``'W D A'`` (``'-'`` if none).

    >>> bits_text(Pte(pfn=1, write=True, young=True))
    'W A'
    >>> bits_text(Pte(pfn=1))
    '-'
    """
    letters = [ch for name, ch in BIT_LETTERS if getattr(pte, name)]
    return " ".join(letters) or "-"


@dataclass(frozen=True)
class Cell:
    """One slot of a PTE grid, ready to draw."""

    addr: int
    label: str          # what the slot maps ("F0:3", "zero", "swap", "--")
    bits: str           # bit letters, or "" for none/non-present
    kind: str           # css kind: none, anon, file, shmem, special, nonpresent
    extra: str = ""     # e.g. "AE", "ref 32"


def folio_label(names: Mapping[int, str], folio: Folio, idx: int) -> str:
    """``name:page`` for a folio page (names keyed by the folio's head pfn)."""
    return f"{names.get(folio.pfn, f'f{folio.uid}')}:{idx}"


def pte_cell(addr: int, pte: Pte | None, machine: object, names: Mapping[int, str]) -> Cell:
    """Describe one slot from its PTE value and the folio behind it."""
    if pte is None:
        return Cell(addr, "--", "", "none")
    if not pte.present:
        assert pte.swp is not None
        s = pte.swp
        label = ("marker " + ",".join(sorted(s.markers)) if s.kind == "marker"
                 else "swap" if s.kind == "swap" else s.kind.replace("_", " "))
        return Cell(addr, label, ("UW" if pte.uffd_wp else ""), "nonpresent")
    found = machine.pfn_folio(pte.pfn)  # type: ignore[attr-defined]
    if found is None or pte.special:
        kind = "special"
        label = "zero" if found is not None else f"pfn {pte.pfn:#x}"
        if found is not None and found[0].kind == "huge_zero":
            label = "huge zero"
        return Cell(addr, label + (" PMD" if pte.pmd else ""), bits_text(pte), kind)
    folio, idx = found
    kind = "anon" if folio.kind == "anon" else folio.kind
    page = folio.pages[idx]
    extra = "AE" if page.anon_exclusive else ""
    label = folio_label(names, folio, idx) + (" PMD" if pte.pmd else "")
    return Cell(addr, label, bits_text(pte), kind, extra)


def process_cells(proc: object, names: Mapping[int, str], start: int | None = None,
                  end: int | None = None) -> list[Cell]:
    """Cells for every slot of every VMA of ``proc`` in [start, end)."""
    machine = proc.machine  # type: ignore[attr-defined]
    return [pte_cell(a, p, machine, names)
            for a, p in proc.ptes(start, end)]  # type: ignore[attr-defined]


def grid_html(cells: Sequence[Cell], *, base: int | None = None,
              classes: Mapping[int, str] | None = None, pinned: Iterable[str] = (),
              css_class: str = "pkmm-pte-grid") -> str:
    """A CSS grid of PTE cells; ``classes`` adds css classes per address (cur, chg, diff)."""
    classes = classes or {}
    pin = set(pinned)
    base = cells[0].addr if base is None and cells else (base or 0)
    out = [f'<div class="{css_class}">']
    for c in cells:
        cls = f"pkmm-cell {c.kind} {classes.get(c.addr, '')}"
        mark = ""
        if c.label in pin:
            cls += " pin"
            mark = ' <span class="pinmark">PIN</span>'   # text too: visible without CSS
        slot = (c.addr - base) // PAGE_SIZE
        out.append(f'<div class="{cls.strip()}" title="{c.addr:#x}"><span class="a">'
                   f'#{slot} {c.addr:#x}</span><br><span class="l">{esc(c.label)}</span>'
                   f'<br><b>{esc(c.bits)}</b> {esc(c.extra)}{mark}</div>')
    out.append("</div>")
    return "".join(out)


def table_html(header: Sequence[str], rows: Iterable[Sequence[object]], *,
               row_classes: Sequence[str] | None = None, css_class: str = "pkmm-table") -> str:
    """A plain HTML table (escaped cells)."""
    out = [f'<table class="{css_class}"><tr>'
           + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>"]
    for i, row in enumerate(rows):
        cls = row_classes[i] if row_classes and i < len(row_classes) else ""
        out.append(f'<tr class="{cls}">' + "".join(f"<td>{esc(v)}</td>" for v in row)
                   + "</tr>")
    out.append("</table>")
    return "".join(out)


def folio_rows(folios: Mapping[str, Folio]) -> list[list[object]]:
    """One row per folio: name, kind, order, refcount, mapcount per page, AE pages, pins."""
    rows: list[list[object]] = []
    for name, f in folios.items():
        if f.freed:
            rows.append([name, f.kind, f.order, "freed", "", "", ""])
            continue
        mc = [p.mapcount for p in f.pages]
        ae = [i for i, p in enumerate(f.pages) if p.anon_exclusive]
        rows.append([name, f.kind, f.order, f.refcount, _compact(mc),
                     _ranges(ae) if ae else "none", f.pincount])
    return rows


FOLIO_HEADER = ("folio", "kind", "order", "refcount", "mapcount per page",
                "AnonExclusive pages", "pincount")


def folio_table(folios: Mapping[str, Folio]) -> str:
    """HTML table of folio counters."""
    return table_html(FOLIO_HEADER, folio_rows(folios))


def error_box(message: str) -> str:
    """The widget's error display: the message of a LayoutError, never a traceback."""
    return f'<div class="pkmm-error"><b>Not possible:</b> {esc(message)}</div>'


def _compact(values: Sequence[int]) -> str:
    """``[2, 2, 2, 1]`` -> ``'2 ×3, 1'`` (run-length, for big folios; never "0x16",
    which reads as hex).

    >>> _compact([2, 2, 2, 1])
    '2 ×3, 1'
    """
    out: list[str] = []
    i = 0
    while i < len(values):
        j = i
        while j < len(values) and values[j] == values[i]:
            j += 1
        out.append(f"{values[i]} ×{j - i}" if j - i > 1 else str(values[i]))
        i = j
    return ", ".join(out)


def _ranges(idx: Sequence[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``'0-2,5'``.

    >>> _ranges([0, 1, 2, 5])
    '0-2,5'
    """
    out: list[str] = []
    i = 0
    while i < len(idx):
        j = i
        while j + 1 < len(idx) and idx[j + 1] == idx[j] + 1:
            j += 1
        out.append(f"{idx[i]}-{idx[j]}" if j > i else str(idx[i]))
        i = j + 1
    return ",".join(out)
