"""The filmstrip marks what changed between two drawn frames without being drawn: a
PTE a skipped step rewrote gets a dashed green line below it, and the legend says which
steps were not drawn.  A batch's child value, made before any child PTE is written, is
printed in the frame that makes it."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from pkmm.scenario import Scenario
from pkmm.views.render import bits_text
from pkmm.views.stepframes import StepFrames
from pkmm.views.svg.stepframe import filmstrip

NS = "{http://www.w3.org/2000/svg}"
DASH_TIP = "changed in a step this filmstrip does not draw"
# PTEs 0-1 clean, 2-3 dirty: batch-v3's one call merges the dirty bit into the value
DIRTY_LAST = {"vmas": [{"start": "0x200000", "npages": 4}], "folios": {"F": {"order": 2}},
              "ptes": [{"addr": "0x200000", "folio": "F", "nr": 2, "dirty": False},
                       {"addr": "0x202000", "folio": "F", "page": 2, "nr": 2}]}
# one small page per PTE: v6.8 writes one child PTE per call, so key frames skip copies
SMALL = {"vmas": [{"start": "0x200000", "npages": 4}],
         "folios": {"A": {"order": 0}, "B": {"order": 0}, "C": {"order": 0},
                    "D": {"order": 0}},
         "ptes": [{"addr": "0x200000", "folio": "A"}, {"addr": "0x201000", "folio": "B"},
                  {"addr": "0x202000", "folio": "C"}, {"addr": "0x203000", "folio": "D"}]}


def _dashes(svg: str) -> int:
    root = ET.fromstring(svg)
    return sum(1 for p in root.iter(f"{NS}path")
               if (t := p.find(f"{NS}title")) is not None and t.text == DASH_TIP)


def _expected(sf: StepFrames) -> int:
    """Cells that differ from the frame drawn before and that the frame's step did not
    write, counted from the frames themselves."""
    keys, n = sf.key_frames(6), 0
    for a, b in zip(keys, keys[1:], strict=False):
        fa, fb = sf.frame(a), sf.frame(b)
        for who, old, new in (("parent", fa.parent, fb.parent), ("child", fa.child, fb.child)):
            for x, y in zip(old, new, strict=True):
                if (who, y.addr) not in fb.changed and (x.label, x.bits, x.extra) != (
                        y.label, y.bits, y.extra):
                    n += 1
    return n


def test_changes_of_undrawn_steps_are_marked_one_per_pte() -> None:
    for layout, kernel in ((SMALL, "v6.8"), (DIRTY_LAST, "batch-v3")):
        sf = StepFrames(Scenario.from_dict(layout), kernel)
        want = _expected(sf)
        assert want > 0, "the layout must skip a step that writes a PTE"
        svg = filmstrip(sf).svg
        assert _dashes(svg) == want
        assert re.search(r"dashed green line below: changed in a step not drawn "
                         r"\(steps \d+-\d+\)", svg)


def test_the_dirty_merge_frame_prints_the_value_it_made() -> None:
    sf = StepFrames(Scenario.from_dict(DIRTY_LAST), "batch-v3")
    merge = next(f for f in (sf.frame(i) for i in range(1, len(sf)))
                 if f.event is not None and f.event.rule == "private-dirty-merge")
    value = merge.event.get("value")
    # the rule: the first PTE is clean, a later one dirty, so the value is dirty
    assert value is not None and value.dirty and not sf.frame(0).parent[0].bits.count("D")
    assert merge.index in sf.key_frames(6)
    texts = [t.text for t in ET.fromstring(filmstrip(sf).svg).iter(f"{NS}text")]
    assert (f"value for the child's {merge.event.nr} PTE(s), not written yet: "
            f"F:0 {bits_text(value)}") in texts


def test_a_step_reason_sits_on_the_row_it_describes() -> None:
    """A step that writes the child's PTE puts its reason ("child PTE written") on the
    child's row only; the parent's row at the same slot does not carry it (a reader
    found the child's write titled on the parent's PTE)."""
    sf = StepFrames(Scenario.from_dict(SMALL), "v6.8")
    svg = filmstrip(sf).svg
    titles = [t.text or "" for t in ET.fromstring(svg).iter(f"{NS}title")]
    written = [t for t in titles if "child PTE written" in t]
    assert written and all(t.startswith("child PTE #") for t in written)
    # a step that writes the parent's PTE (the write-protect) titles the parent's row
    wp = next(i for i in range(1, len(sf)) if sf.frame(i).event.rule == "cow-wrprotect")
    from pkmm.views.svg.stepframe import frame_picture
    tips = [t.text or "" for t in ET.fromstring(frame_picture(sf.frame(wp), "v6.8").svg)
            .iter(f"{NS}title") if " -- " in (t.text or "")]
    assert tips and all(t.startswith("parent PTE #") for t in tips)
