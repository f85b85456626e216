"""Notebooks 03 and 04's pictures read at their own size: the batch strip's labels never
run into each other, and the DMA timeline's captions are whole."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from pkmm.errors import LayoutError
from pkmm.views import pictures as P
from pkmm.views.svg import dma
from pkmm.views.svg.core import CHAR_W

NS = "{http://www.w3.org/2000/svg}"
WHOLE = {"vmas": [{"start": "0x200000", "npages": 16}], "folios": {"F": {"order": 4}},
         "ptes": [{"addr": "0x200000", "folio": "F"}]}
SHUFFLED = {"vmas": [{"start": "0x200000", "npages": 4}], "folios": {"F": {"order": 2}},
            "ptes": [{"addr": 0x200000 + k * 4096, "folio": "F", "page": pg, "nr": 1}
                     for k, pg in enumerate([2, 0, 3, 1])]}


def _spans(svg: str, group: str) -> list[tuple[float, float, float, str]]:
    """(y, left, right, words) of each text in the group, 11 px glyphs CHAR_W wide."""
    root = ET.fromstring(svg)
    g = next(e for e in root.iter(f"{NS}g") if e.get("aria-label") == group)
    out = []
    for t in g.iter(f"{NS}text"):
        words, x = t.text or "", float(t.get("x", 0))
        width = len(words) * CHAR_W
        left = {"middle": x - width / 2, "end": x - width}.get(t.get("text-anchor", ""), x)
        out.append((float(t.get("y", 0)), left, left + width, words))
    return out


@pytest.mark.parametrize("layout,kernel", [(WHOLE, "v6.8"), (WHOLE, "batch-v3"),
                                           (SHUFFLED, "batch-v3"), (SHUFFLED, "v6.8")])
def test_batch_strip_labels_do_not_overlap(layout: dict, kernel: str) -> None:
    spans = _spans(P.batch_strip(layout, kernel).svg, "copy calls")
    assert spans
    for i, (y, a0, a1, wa) in enumerate(spans):
        for y2, b0, b1, wb in spans[i + 1:]:
            if abs(y - y2) < 11:        # one line of 11 px text
                assert a1 + 4 <= b0 or b1 + 4 <= a0, f"{wa!r} runs into {wb!r}"


def test_batch_strip_says_map_n_under_sixteen_one_pte_calls() -> None:
    words = [s[3] for s in _spans(P.batch_strip(WHOLE, "v6.8").svg, "copy calls")]
    assert words.count("map 1") == 16


def test_dma_captions_are_whole_and_the_child_is_absent_before_fork() -> None:
    for without in ((), {"pinned-copy"}):
        pic = P.dma_timeline(without=without)
        texts = [t.text or "" for t in ET.fromstring(pic.svg).iter(f"{NS}text")]
        assert not any(re.search(r"[(,]$", t) for t in texts), texts
        assert "(no child yet)" in texts
    assert "CoW-shared" in " ".join(
        t.text or "" for t in ET.fromstring(P.dma_timeline(without={"pinned-copy"}).svg)
        .iter(f"{NS}text"))
    with pytest.raises(LayoutError, match="three lines"):
        dma.caption_lines("a caption far too long to fit into three short lines of one "
                          "column of the timeline")


@pytest.mark.parametrize("layout,kernel", [(WHOLE, "v6.8"), (WHOLE, "batch-v3"),
                                           (SHUFFLED, "batch-v3"), (SHUFFLED, "v6.8")])
def test_batch_strip_is_as_wide_as_its_lines_and_every_line_fits(layout: dict,
                                                                  kernel: str) -> None:
    # a page scales a picture wider than its column down, its 11 px text with it: a strip
    # of 4 PTEs drawn on the 16-PTE strip's canvas read at 9 px
    from pkmm.views.svg.batches import MAX_W, MIN_W
    root = ET.fromstring(P.batch_strip(layout, kernel).svg)
    width = float(root.get("width", 0))
    texts = [(float(t.get("x", 0)), t.get("text-anchor", ""), t.text or "",
              "pk-h" in t.get("class", "")) for t in root.iter(f"{NS}text")]
    for x, anchor, words, bold in texts:
        w = len(words) * CHAR_W * (1.2 if bold else 1)   # the 12 px bold title: wider glyphs
        right = {"middle": x + w / 2, "end": x}.get(anchor, x + w)
        assert right <= width + 1, f"{words!r} runs past the picture's edge ({width:g} px)"
    longest = max(len(words) * CHAR_W * (1.2 if bold else 1) for _, _, words, bold in texts)
    strip = 44 * layout["vmas"][0]["npages"]
    assert width == MIN_W or width <= max(longest, strip) + 2 * 8 + 3 * CHAR_W + 1, \
        f"{width:g} px for lines of {longest:g} px and a strip of {strip} px"
    if layout is SHUFFLED:
        assert width < MAX_W


def test_a_groups_note_line_clears_the_map_labels_and_its_label() -> None:
    """The line under a group of alike calls sits clear of the "map 1" labels above it (their
    descenders) and of its own note below it: at 4 px it ran into them."""
    import re

    from pkmm.views.pictures import batch_strip
    whole = {"name": "w", "vmas": [{"start": "0x200000", "npages": 16}],
             "folios": {"F": {"order": 4}}, "ptes": [{"addr": "0x200000", "folio": "F"}]}
    svg = batch_strip(whole, "v6.8").svg
    map_y = max(float(y) for y in re.findall(r'<text x="[\d.]+" y="([\d.]+)"[^>]*>map 1<', svg))
    line_y = float(re.search(r'<path d="M[\d.]+,([\d.]+) L[\d.]+,\1" class="pk-line"', svg)[1])
    note_y = float(re.search(r'y="([\d.]+)"[^>]*>note 1: each of these 16 calls', svg)[1])
    assert line_y - map_y >= 6 and note_y - line_y >= 11
