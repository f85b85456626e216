"""Widget logic without a browser: send what the front end would send, check the model,
the picture, the controls (rollback after a refusal) and the static fallback."""

from __future__ import annotations

import re
from typing import Any

import pytest

pytest.importorskip("anywidget")

from pkmm import LayoutError  # noqa: E402
from pkmm.scenario import Scenario  # noqa: E402
from pkmm.views import (  # noqa: E402
    AfterForkPlayground,
    ForkFrames,
    ForkStepper,
    LayoutBuilder,
    VersionCompare,
    compare_forks,
    process_html,
    steps_table,
)

T06 = {"vmas": [{"start": "0x200000", "npages": 4}], "folios": {"F": {"order": 2}},
       "ptes": [{"addr": "0x200000", "folio": "F", "nr": 2},
                {"addr": "0x202000", "folio": "F", "page": 2, "nr": 2, "dirty": False}]}
PIN = {"vmas": [{"start": 0, "npages": 1}], "folios": {"P": {"order": 0}},
       "ptes": [{"addr": 0, "folio": "P"}], "pins": [{"folio": "P"}]}


def send(w: Any, **msg: Any) -> None:
    """What widget.js sends: {type: control|click|key|tick, ...}."""
    w._on_msg(w, msg, [])


def control(w: Any, cid: str) -> dict[str, Any]:
    return next(c for row in w.controls for c in row if c["id"] == cid)


def bundle(w: Any) -> dict[str, Any]:
    b = w._repr_mimebundle_()
    return b[0] if isinstance(b, tuple) else b


def test_builder_click_a_pte_with_a_tool() -> None:
    b = LayoutBuilder(npages=8, orders=(2,))
    assert 'data-pk-click="pte:0:0:3"' in b.svg and "pkmm-pte-grid" in b.svg
    before = b.svg
    send(b, type="control", id="tool", value="dirty")
    send(b, type="click", token="pte:0:0:3")
    assert b.error == "" and b.slot == 3 and b.model.slots[3]["dirty"] is False
    assert b.svg != before and control(b, "dirty")["pressed"] is False
    send(b, type="control", id="tool", value="pin")
    send(b, type="click", token="pte:0:0:1")
    assert b.model.pins == [("F0", 1)] and "PIN" in b.svg
    assert {"pkmm-layout-builder"} <= set(b._dom_classes)


def test_builder_refusals_are_rolled_back_and_phrased_for_the_widget() -> None:
    b = LayoutBuilder(npages=16, orders=(3, 2))
    send(b, type="control", id="npages", value=8)          # slot 11 is mapped
    assert "12 is mapped" not in b.error and "PTE #11 is mapped" in b.error
    assert control(b, "npages")["value"] == 16 and b.model.npages == 16   # rolled back
    send(b, type="control", id="kind", value="private file + anon_vma (one COWed page)")
    assert "cannot hold this layout" in b.error and control(b, "kind")["value"] == \
        "private anon"
    send(b, type="control", id="uffd_wp", value=True)      # PTE #0 is writable
    assert "toggle W off first" in b.error and "pass write=False" not in b.error
    assert not b.do("toggle", 99, "write") and "outside this 16-slot VMA" in b.error
    send(b, type="control", id="slot", value=40)
    assert control(b, "slot")["value"] == 0 and "outside" in b.error
    send(b, type="control", id="slot", value="abc")
    assert "not a whole number" in b.error


def test_builder_api_the_notebooks_use() -> None:
    b = LayoutBuilder(npages=8, orders=(2,))
    assert b.do("add_folio", 4) and not b.do("map", "F1", 4)
    assert "do not fit" in b.error
    assert b.do("toggle", 0, "dirty") and "pkmm-pte-grid" in b.static_html()
    assert b.scenario.ptes[0]["dirty"] is False
    assert repr(b) == ("LayoutBuilder(kind='private anon', slots=8, folios=2, mapped=4, "
                       "pins=0)")
    data = bundle(b)
    assert data["text/plain"] == repr(b) and "<svg" in data["text/html"]
    assert data["image/svg+xml"].startswith("<svg")
    assert "application/vnd.jupyter.widget-view+json" in data
    assert not b.do("_transaction") and not b.do("scenario")


@pytest.mark.parametrize("kwargs", [
    {"npages": 0}, {"npages": "16"}, {"kind": "weird"}, {"orders": 4}, {"orders": ("a",)},
    {"pattern": "zigzag"}, {"orders": (10,)},
])
def test_builder_constructor_rejects_bad_arguments(kwargs: dict[str, Any]) -> None:
    with pytest.raises(LayoutError):
        LayoutBuilder(**kwargs)


def test_stepper_steps_calls_keys_and_play() -> None:
    s = ForkStepper(Scenario.from_dict(T06), kernel="v6.9")
    assert "pkmm-fork-stepper" in s._dom_classes and s.panel_css == "pkmm-stepper-panel"
    assert "Before fork" in s.words and control(s, "prev")["disabled"] is True
    send(s, type="control", id="next")
    assert s.index == 1 and "vma_needs_copy" in s.words
    send(s, type="control", id="next_call")
    assert "stop:" in " ".join(e.rule for e in s.frames.events[:s.index])
    stops = [k for k, e in enumerate(s.frames.events, 1) if e.rule.startswith("stop:")]
    s.go(stops[0])
    assert "next PTE differs in the dirty bit" in s.words
    assert s.svg.count('stroke-width="3"') >= 2              # cursor in both tables
    send(s, type="key", key="ArrowLeft")
    assert s.index == stops[0] - 1
    send(s, type="control", id="play")
    assert s.playing
    for _ in range(len(s.frames)):
        send(s, type="tick")
    assert not s.playing and s.index == len(s.frames) - 1
    s.set_kernel("v6.8")
    assert s.index == 0 and repr(s).startswith("ForkStepper(scenario, kernel=v6.8")


def test_stepper_static_fallback_is_a_filmstrip_of_key_frames() -> None:
    s = ForkStepper(Scenario.from_dict(T06), kernel="v6.9")
    html = bundle(s)["text/html"]
    keys = s.frames.key_frames()
    assert len(keys) >= 3 and keys[0] == 0 and keys[-1] == len(s.frames) - 1
    for k in keys:
        assert f"step {k}/{len(s.frames) - 1}" in html
    assert html != s.svg


def test_stepper_follows_its_builder_and_says_so() -> None:
    b = LayoutBuilder(npages=8, orders=(2,))
    s = ForkStepper(b, kernel="v6.9")
    assert s.frames.result.batches == [4]
    s.go(3)
    b.do("toggle", 2, "dirty")
    assert s.frames.result.batches == [2, 1, 1] and s.index == 0   # D differs at #2, #3
    assert "layout above changed" in s.words


def test_stepper_refused_kernel_keeps_the_old_choice() -> None:
    s = ForkStepper(T06, kernel="v6.9")
    send(s, type="control", id="kernel", value="v7")
    assert "not a pkmm kernel" in s.error and control(s, "kernel")["value"] == "v6.9"
    with pytest.raises(LayoutError):
        ForkStepper(T06, kernel="v7")
    with pytest.raises(LayoutError):
        ForkStepper(T06, without={"nope"})
    with pytest.raises(LayoutError):
        ForkStepper(42)


@pytest.mark.parametrize("make", [
    lambda: ForkStepper(T06, without=5), lambda: ForkStepper(T06, kernel=None),
    lambda: AfterForkPlayground(T06, without=[1]), lambda: AfterForkPlayground(object()),
    lambda: VersionCompare(object()), lambda: VersionCompare(T06, without="nope"),
    lambda: LayoutBuilder(npages=True), lambda: LayoutBuilder(orders=[1.5]),
])
def test_widget_constructors_raise_pkmm_errors(make: Any) -> None:
    with pytest.raises(LayoutError):
        make()


def test_frames_counters_follow_the_model() -> None:
    ff = ForkFrames(Scenario.from_dict(T06), "v6.8")
    s0, s1 = ff.snapshot(0), ff.snapshot(len(ff) - 1)
    assert s0.refcount == {"F": 4} and s1.refcount == {"F": 8}
    assert s0.pages[("F", 0)] == (1, True) and s1.pages[("F", 0)] == (2, False)
    assert [c.bits for c in s1.parent] == ["D A", "D A", "A", "A"]




def test_frames_mark_exactly_the_ptes_each_event_wrote() -> None:
    # The green bar marks a PTE write on one side, never the other side's slot and
    # never a page-counter change: the set-pte events write only the child's table,
    # cow-wrprotect only the parent's, an rmap dup no PTE at all.
    tour = {"vmas": [{"start": "0x200000", "npages": 4}],
            "folios": {"F1": {"order": 0}, "F2": {"order": 1}},
            "ptes": [{"addr": "0x200000", "folio": "F1"}, {"addr": "0x202000", "folio": "F2"}],
            "zero": ["0x201000"]}
    ff = ForkFrames(Scenario.from_dict(tour), "v6.8")
    seen = set()
    for k in range(1, len(ff)):
        before, now = ff.snapshot(k - 1), ff.snapshot(k)
        wrote = {(side, b.addr) for side, old, new in (("parent", before.parent, now.parent),
                                                       ("child", before.child, now.child))
                 for a, b in zip(old, new, strict=True) if (a.label, a.bits) != (b.label, b.bits)}
        assert now.changed == wrote, (k, now.event)
        sides = {side for side, _ in now.changed}
        assert now.event is not None
        seen.add(now.event.rule)
        if now.event.rule == "set-pte":
            assert sides == {"child"}
        elif now.event.rule == "cow-wrprotect":
            assert sides == {"parent"}
        elif now.event.rule.startswith("anon-dup"):
            assert not now.changed       # AnonExclusive moved: a page fact, not a PTE write
    assert {"set-pte", "cow-wrprotect", "anon-dup:ok"} <= seen


def test_compare_marks_only_the_side_that_differs() -> None:
    c = compare_forks(T06, "batch-v3", "v6.9")
    assert c.differing == {("child", 2), ("child", 3)}
    v = VersionCompare(T06)
    assert "child table" in v.panel[0][1] and "parent" not in v.panel[0][1]
    parent_row = v.svg.split(">parent<")[1].split(">child<")[0]
    assert "≠" not in parent_row and "≠" in v.svg
    send(v, type="control", id="b", value="batch-v3")
    assert "No difference" in v.svg and v.b == "batch-v3"
    send(v, type="control", id="a", value="v9")
    assert v.a == "batch-v3" and control(v, "a")["value"] == "batch-v3" and v.error
    with pytest.raises(LayoutError):
        VersionCompare(T06, "v6.9", "nope")


def test_playground_dma_and_ablation_take_effect_at_once() -> None:
    pg = AfterForkPlayground(PIN, kernel="v6.9")
    pg.act("parent", "write", 0, 5)
    pg.act("parent", "DMA write (device)", 0, 9)
    pg.act("parent", "read", 0)
    assert pg.model.log[-1] == "parent read PTE 0 -> 9: no fault"
    assert any("no page fault" in t for _, t in pg.panel)
    send(pg, type="control", id="without:pinned-copy", value=True)
    assert pg.model.without == {"pinned-copy"} and "Forked again" in pg.panel[0][1]
    pg.act("parent", "write", 0, 5)
    pg.act("parent", "DMA write (device)", 0, 9)
    pg.act("parent", "read", 0)
    assert pg.model.log[-1] == "parent read PTE 0 -> 5: no fault"   # the write is lost
    send(pg, type="control", id="kernel", value="v6.17")
    assert pg.model.kernel == "v6.17" and pg.model.log == []


def test_playground_errors_in_widget_words() -> None:
    pg = AfterForkPlayground(PIN, kernel="v6.9")
    pg.act("child", "write", 3, 1)
    assert "no VMA there" in pg.error and "in the child" in pg.error
    assert not pg.act("parent", "read", 0, -7) and "0..9007199254740991" in pg.error
    pg.act("child", "exit", 0)
    pg.act("parent", "exit", 0)
    pg.act("parent", "DMA write (device)", 0, 1)
    assert "pinned page is gone" in pg.error and "pass a live folio" not in pg.error
    send(pg, type="click", token="pte:1:0:0")
    assert pg.who == "child"
    with pytest.raises(LayoutError):
        AfterForkPlayground(PIN, kernel="v5")


def test_static_helpers_are_pictures() -> None:
    p, folios = Scenario.from_dict(T06).build()
    pic = process_html(p, folios)
    assert pic.kind == "memory-map" and "F anon order 2" in pic.svg
    import pkmm
    t = steps_table(pkmm.fork(p, kernel="v6.9"))
    assert "batches [2, 2]" in t._repr_html_() and "batches [2, 2]" in repr(t)


@pytest.mark.parametrize("kernel", ["v6.8", "v6.17"])
def test_512_pte_layout_renders_compactly(kernel: str) -> None:
    # the redraw *time* is measured by scripts/redraw_bench.py, not asserted here
    b = LayoutBuilder(npages=512, orders=(9,))
    s = ForkStepper(b, kernel=kernel)
    assert "#0-511" in b.svg
    s.go(len(s.frames) // 2)
    assert "step " in s.words and len(s.svg) < 50_000


def test_fragmented_512_pte_layout_stays_small() -> None:
    # every other PTE clean: a run per PTE; the pictures bin them (size, not time)
    b = LayoutBuilder(npages=512, orders=(9,))
    for slot in range(0, 50, 2):
        b.model.toggle(slot, "dirty")
    b.refresh()
    assert "mixed: 16 runs" in b.svg and len(b.svg) < 50_000
    alternating = {"vmas": [{"start": "0x200000", "npages": 512}],
                   "folios": {"F": {"order": 9}},
                   "ptes": [{"addr": 0x200000 + i * 4096, "folio": "F", "page": i, "nr": 1,
                             "dirty": i % 2 == 0} for i in range(512)]}
    s = ForkStepper(alternating, kernel="v6.9")
    s.go(len(s.frames) // 2)
    assert "mixed" in s.svg and len(s.svg) < 50_000


def test_pictures_are_laid_out_for_the_width_the_front_end_reports() -> None:
    b = LayoutBuilder(npages=16, orders=(4,))
    wide = b.svg
    assert 'viewBox="0 0 952 ' in wide
    send(b, type="width", value=600)
    assert b.width == 600 and 'viewBox="0 0 600 ' in b.svg
    # 16 cells no longer fit one row at 600 px: PTE numbers on more rows, same text size
    slot_text = re.compile(r'<text x="[\d.]+" y="([\d.]+)"[^>]*>#\d+<')
    assert len(slot_text.findall(b.svg)) == len(slot_text.findall(wide)) == 16
    assert len(set(slot_text.findall(b.svg))) > len(set(slot_text.findall(wide)))
    assert b.error == ""
    with pytest.raises(LayoutError):
        from pkmm.views import memory_map
        memory_map(T06, width="wide")
