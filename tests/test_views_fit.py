"""The memory maps fit the page's column: a picture wider than the 952 px column is shown
scaled down, so its 11 px text reaches a reader at less than 11 px.  Each test draws a
map that a notebook draws (five VMA kinds; a 16-page folio with two new pages) at the
width the notebook asks for and measures the SVG: its width, its smallest text at the
scale it is shown, and that physical memory stays one row (a second row puts the lines
to its pages through the first row's pages and captions)."""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET

from test_views_flow_geometry import crossing_pairs

import pkmm
from pkmm.scenario import Scenario
from pkmm.views import pictures as P

COLUMN = 952                     # the static site's and JupyterLab's text column
NS = "{http://www.w3.org/2000/svg}"
KINDS = {"vmas": [{"start": "0x200000", "npages": 2},
                  {"start": "0x400000", "npages": 2, "backing": "file"},
                  {"start": "0x600000", "npages": 2, "backing": "file", "anon_vma": True},
                  {"start": "0x800000", "npages": 2, "backing": "shmem", "shared": True},
                  {"start": "0xa00000", "npages": 2, "backing": "shmem", "shared": True,
                   "uffd_wp": True, "uffd_fork": True}],
         "folios": {"F": {"order": 1}, "T": {"order": 1, "backing": "file"},
                    "C": {"order": 0, "backing": "file"}, "N": {"order": 0},
                    "S": {"order": 1, "backing": "shmem"},
                    "U": {"order": 1, "backing": "shmem"}},
         "ptes": [{"addr": "0x200000", "folio": "F"},
                  {"addr": "0x400000", "folio": "T", "write": False, "dirty": False},
                  {"addr": "0x600000", "folio": "C", "write": False, "dirty": False},
                  {"addr": "0x601000", "folio": "N"},
                  {"addr": "0x800000", "folio": "S"},
                  {"addr": "0xa00000", "folio": "U"}]}
BIG = {"vmas": [{"start": "0x200000", "npages": 16}], "folios": {"F": {"order": 4}},
       "ptes": [{"addr": "0x200000", "folio": "F", "nr": 16, "write": False}]}


def _smallest_shown(svg: str) -> float:
    """The smallest font size in the SVG times the scale a 952 px column shows it at."""
    width = float(ET.fromstring(svg).get("width") or 0)
    sizes = [float(v) for v in re.findall(r'font-size(?:="|:\s*)([\d.]+)', svg)]
    return min(sizes) * min(1.0, COLUMN / width)


def _page_rows(svg: str) -> set[float]:
    """The y of every page box in physical memory."""
    root = ET.fromstring(svg)
    band = next(g for g in root.iter(f"{NS}g") if g.get("aria-label") == "physical memory")
    return {float(r.get("y") or 0) for r in band.iter(f"{NS}rect")
            if r.get("height") == "30"}


def _after_both_wrote() -> tuple[pkmm.Process, pkmm.Process, int]:
    parent, folios = Scenario.from_dict(BIG).build()
    r = pkmm.fork(parent, kernel="v6.17")
    r.child.write(0x205000, 1)
    parent.write(0x205000, 2)
    return parent, r.child, folios["F"].pfn


def test_five_vma_kinds_fit_the_column_with_11px_text() -> None:
    for pic in (P.memory_map(KINDS, title="before fork", width=1240),
                P.vma_verdicts(KINDS, "v6.9", width=1240).picture):
        svg = pic.svg
        assert float(ET.fromstring(svg).get("width") or 0) <= COLUMN
        assert _smallest_shown(svg) >= 11
        assert len(_page_rows(svg)) == 1, "physical memory wrapped to a second row"


def test_a_16_page_folio_and_two_new_pages_fit_one_row() -> None:
    parent, child, f = _after_both_wrote()
    svg = P.memory_map((parent, child), names={f: "F"}, width=1100).svg
    assert float(ET.fromstring(svg).get("width") or 0) <= COLUMN
    assert _smallest_shown(svg) >= 11
    assert len(_page_rows(svg)) == 1, "physical memory wrapped to a second row"
    # every caption line still whole: the refcount is one line, not split
    assert "refcount 30" in svg


def _lines(svg: str) -> list[dict]:
    """Each PTE's line to its page, as the curves its path draws (curve, then drop)."""
    out = []
    for d in re.findall(r'<path d="(M[^"]+)" class="pk-s-(?:anon|file|shmem|special|'
                        r'nonpresent)"', svg):
        n = [float(x) for x in re.findall(r"-?[\d.]+", d)]
        if len(n) == 10:
            out.append({"edge": d, "curves": [[(n[0], n[1]), (n[2], n[3]), (n[4], n[5]),
                                                (n[6], n[7])],
                                               [(n[6], n[7]), (n[6], n[7]), (n[8], n[9]),
                                                (n[8], n[9])]]})
    return out


def _forced(lines: list[dict]) -> int:
    """Pairs of lines of one table whose PTEs and pages come in opposite orders: with
    pages in pfn order these must cross; any other crossing is the drawing's fault."""
    ends = [(e["curves"][0][0], e["curves"][-1][3]) for e in lines]
    return sum(1 for (a0, a1), (b0, b1) in itertools.combinations(ends, 2)
               if (a0[1] < a1[1]) == (b0[1] < b1[1])          # same table (direction)
               and (a0[0] - b0[0]) * (a1[0] - b1[0]) < 0)


def test_lines_from_ptes_cross_only_where_the_pfn_order_forces_it() -> None:
    parent, child, f = _after_both_wrote()
    maps = {"five kinds": P.memory_map(KINDS, width=1240).svg,
            "five kinds after fork": P.vma_verdicts(KINDS, "v6.9", width=1240).picture.svg,
            "after both wrote": P.memory_map((parent, child), names={f: "F"},
                                             width=1100).svg}
    for name, svg in maps.items():
        lines = _lines(svg)
        assert lines, name
        assert len(crossing_pairs(lines)) == _forced(lines), name
    # in 01's maps every VMA's pages lie in the order of its PTEs: no line crosses
    assert crossing_pairs(_lines(maps["five kinds after fork"])) == []


def test_the_dma_timeline_fits_the_column() -> None:
    """04's DMA timeline (six steps side by side) is drawn within the column, for the
    kernel that copies the pinned page and for the one that loses the write."""
    for pic in (P.dma_timeline(), P.dma_timeline(without={"pinned-copy"})):
        svg = pic._repr_svg_() if hasattr(pic, "_repr_svg_") else pic._repr_html_()
        svg = svg[svg.index("<svg"):svg.rindex("</svg>") + 6]
        assert float(ET.fromstring(svg).get("width") or 0) <= COLUMN
