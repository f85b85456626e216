"""The memory maps fit the page's column: a picture wider than the 952 px column is shown
scaled down, so its 11 px text reaches a reader at less than 11 px.  Each test draws a
map that a notebook draws (five VMA kinds; a 16-page folio with two new pages) at the
width the notebook asks for and measures the SVG: its width, its smallest text at the
scale it is shown, and that physical memory stays one row (a second row puts the lines
to its pages through the first row's pages and captions)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

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
