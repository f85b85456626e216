"""Widget logic without a browser: construct, click, assert the rendered HTML."""

from __future__ import annotations

import pytest

pytest.importorskip("ipywidgets")

from pkmm.scenario import Scenario  # noqa: E402
from pkmm.views import (  # noqa: E402
    AfterForkPlayground,
    ForkFrames,
    ForkStepper,
    LayoutBuilder,
    VersionCompare,
    compare_forks,
)

T06 = {"vmas": [{"start": "0x200000", "npages": 4}], "folios": {"F": {"order": 2}},
       "ptes": [{"addr": "0x200000", "folio": "F", "nr": 2},
                {"addr": "0x202000", "folio": "F", "page": 2, "nr": 2, "dirty": False}]}
PIN = {"vmas": [{"start": 0, "npages": 1}], "folios": {"P": {"order": 0}},
       "ptes": [{"addr": 0, "folio": "P"}], "pins": [{"folio": "P"}]}


def test_builder_toggle_changes_grid_text() -> None:
    b = LayoutBuilder(npages=8, orders=(2,))
    before = b._grid.value
    assert "pkmm-pte-grid" in before and "W D A" in before
    b._toggles[0].click()                      # the first .pkmm-toggle-bit: W on PTE #0
    assert b._grid.value != before and b.error == ""
    assert b.scenario.ptes[0]["write"] is False
    assert all("pkmm-toggle-bit" in t._dom_classes for t in b._toggles)
    assert {"pkmm-widget", "pkmm-layout-builder"} <= set(b._dom_classes)


def test_builder_bad_input_shows_error_not_traceback() -> None:
    b = LayoutBuilder(npages=8, orders=(2,))
    b._slot.value = 6
    b._toggles[1].click()                      # empty slot
    assert "slot 6 is empty" in b.error and "pkmm-error" in b.error
    assert not b.do("map", "F0", 0)            # already mapped
    assert "already mapped" in b.error
    b.do("toggle", 0, "protnone")              # PN on a writable PTE: the model refuses
    assert "never writable" in b.error
    assert b.scenario.ptes[0]["protnone"] is False  # refused change rolled back


def test_builder_patterns_and_pins() -> None:
    b = LayoutBuilder(npages=8)
    b.do("add_folio", 2)
    b.do("add_folio", 2)
    assert b.do("map", "F0", 0, "across two folios")
    assert [(e["folio"], e["page"]) for e in b.scenario.ptes] == [
        ("F0", 2), ("F0", 3), ("F1", 0), ("F1", 1)]
    assert b.do("pin", "F0", 2) and "anon  pin" in b._grid.value
    assert "shuffled" in b._pattern.options
    assert repr(b) == ("LayoutBuilder(kind='private anon', slots=8, folios=2, mapped=4, "
                       "pins=1)")
    bundle = b._repr_mimebundle_()
    assert "pkmm-pte-grid" in bundle["text/html"] and bundle["text/plain"] == repr(b)


def test_builder_private_file_with_anon_vma() -> None:
    b = LayoutBuilder(npages=4, kind="private file + anon_vma (one COWed page)", orders=(1,))
    assert "COW:0" in b._grid.value
    assert not b.do("set_npages", 1)


def test_stepper_steps_and_panel() -> None:
    s = ForkStepper(Scenario.from_dict(T06), kernel="v6.9")
    assert {"pkmm-widget", "pkmm-fork-stepper"} <= set(s._dom_classes)
    assert "pkmm-step-next" in s._next._dom_classes
    first = s.panel
    assert "pkmm-stepper-panel" in first and "Before fork" in first
    s._next.click()
    assert s.index == 1 and s.panel != first and "vma_needs_copy" in s.panel
    stops = [k for k, e in enumerate(s.frames.events, 1) if e.rule.startswith("stop:")]
    s.go(stops[0])
    assert "next PTE differs in the dirty bit" in s.panel
    assert s._tables.value.count("cur") >= 2          # batch outlined in both tables
    s.go(len(s.frames))
    assert s.index == len(s.frames) - 1 and "F:3" in s._tables.value.split("child")[-1]
    s._prev.click()
    assert s.index == len(s.frames) - 2
    s.set_kernel("v6.8")
    assert s.index == 0 and repr(s).startswith("ForkStepper(scenario, kernel=v6.8")
    assert "batches [1, 1, 1, 1]" in s._repr_mimebundle_()["text/html"]


def test_frames_counters_follow_the_model() -> None:
    ff = ForkFrames(Scenario.from_dict(T06), "v6.8")
    s0, s1 = ff.snapshot(0), ff.snapshot(len(ff) - 1)
    assert s0.refcount == {"F": 4} and s1.refcount == {"F": 8}
    assert s0.pages[("F", 0)] == (1, True) and s1.pages[("F", 0)] == (2, False)
    assert s0.rss["MM_ANONPAGES"] == 0 and s1.rss["MM_ANONPAGES"] == 4
    assert [c.bits for c in s1.parent] == ["D A", "D A", "A", "A"]
    assert [c.label for c in s0.child] == ["--"] * 4


def test_compare_highlights_differences() -> None:
    c = compare_forks(T06, "batch-v3", "v6.9")
    assert (c.result_a.batches, c.result_b.batches) == ([4], [2, 2])
    assert c.differing_slots == {2, 3}
    v = VersionCompare(T06)
    assert "diff" in v._view.value and repr(v) == ("VersionCompare(scenario, batch-v3 vs v6.9, "
                                                    "diffs=2)")
    v._b.value = "batch-v3"
    assert "No difference" in v._view.value


def test_playground_dma_and_ablation() -> None:
    pg = AfterForkPlayground(PIN, kernel="v6.9")
    pg.act("parent", "write", 0, 5)
    pg.act("parent", "DMA write (device)", 0, 9)
    pg.act("parent", "read", 0)
    assert pg.model.log[-1] == "parent read slot 0 -> 9: no fault"
    pg._ablate[0].value = True                 # "cow-wrprotect"
    pg._ablate[1].value = True                 # "pinned-copy"
    pg._reset.click()
    assert pg.model.without == {"cow-wrprotect", "pinned-copy"}
    pg.act("child", "write", 3, 1)
    assert "no VMA there" in pg.error
    pg.act("child", "exit", 0)
    assert "(exited)" in pg._view.value and "pkmm-cell" in pg.static_html()


@pytest.mark.parametrize("kernel", ["v6.8", "v6.17"])
def test_512_pte_layout_renders_every_slot(kernel: str) -> None:
    # the redraw *time* is measured by scripts/redraw_bench.py, not asserted here
    b = LayoutBuilder(npages=512, orders=(9,))
    s = ForkStepper(b, kernel=kernel)
    assert b._grid.value.count('class="pkmm-cell') == 512
    s.go(len(s.frames) - 1)
    assert "pkmm-stepper-panel" in s.panel and s.panel.count("<tr") >= 2


def test_builder_buttons_work_with_their_default_choices() -> None:
    # what a learner (and the browser test) does: click without touching the dropdowns
    b = LayoutBuilder(npages=16, orders=(3, 2, 0))
    assert b._folio.value == "F0"
    before = b._grid.value
    b._pin.click()                                  # pins the page at PTE #0
    assert b.error == "" and "PIN" in b._grid.value and b._grid.value != before
    assert b.model.pins == [("F0", 0)]
    b._slot.value = 15
    b._pin.click()
    assert "PTE #15 is empty" in b.error
    b._add.click()                                  # the new folio becomes the choice
    assert b._folio.value == "F3"
    b._slot.value = 0
    b._toggles[0].click()
    assert b.error == ""
