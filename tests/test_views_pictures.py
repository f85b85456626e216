"""The pictures draw what the model did: each test changes a rule's input and checks the
picture follows, so a picture drawn from hand-typed data (or a stale rule) fails."""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from pkmm import LayoutError
from pkmm.views import pictures as P

NS = "{http://www.w3.org/2000/svg}"
T06 = {"vmas": [{"start": "0x200000", "npages": 4}], "folios": {"F": {"order": 2}},
       "ptes": [{"addr": "0x200000", "folio": "F", "nr": 2},
                {"addr": "0x202000", "folio": "F", "page": 2, "nr": 2, "dirty": False}]}
PINNED = {"vmas": [{"start": "0x200000", "npages": 8}],
          "folios": {"F": {"order": 2}, "P": {"order": 0}},
          "ptes": [{"addr": "0x200000", "folio": "F"}, {"addr": "0x204000", "folio": "P"}],
          "pins": [{"folio": "P"}]}
LARGE = {"vmas": [{"start": 0, "npages": 4}], "folios": {"F": {"order": 2}},
         "ptes": [{"addr": 0, "folio": "F"}]}


def all_pictures() -> list[P.Picture]:
    return [P.memory_map(PINNED, "v6.9"), P.batch_strip(T06, "v6.9"),
            P.decision_flow(PINNED, "v6.9", 4), P.eagain_loop(PINNED, "v6.9"),
            P.dma_timeline(), P.rule_grid("v6.9"), P.masked_compare(T06, slot=1),
            P.page_state_machine(LARGE, "v6.17"),
            P.per_page_cost(params={"ns_per_pte": 40, "ns_per_copy_call": 30,
                                    "ns_per_batch_scan": 60})]


@pytest.mark.parametrize("pic", all_pictures(), ids=lambda p: p.kind)
def test_every_picture_is_accessible_themed_svg(pic: P.Picture) -> None:
    root = ET.fromstring(pic.svg)               # well-formed XML
    assert root.tag == f"{NS}svg" and root.get("role") == "img"
    ids = [e.get("id") for e in root.iter() if e.get("id")]
    assert len(ids) == len(set(ids))
    title, desc = root.find(f"{NS}title"), root.find(f"{NS}desc")
    assert title is not None and desc is not None and desc.text == pic.text
    assert set(root.get("aria-labelledby", "").split()) == {title.get("id"), desc.get("id")}
    style = root.find(f"{NS}style")
    assert style is not None and "var(--jp-ui-font-color1" in (style.text or "")
    assert pic._repr_svg_() == pic.svg and pic.svg in pic._repr_html_()
    texts = [t.text for t in root.iter(f"{NS}text") if t.text]
    assert texts, "words are real <text>"
    assert not any(re.search(r"\b[1-9]\d*x\d+\b", t) for t in texts)   # counts use "×"


def test_pictures_import_without_widget_libraries() -> None:
    code = ("import sys\n"
            "class B:\n"
            "    def find_spec(self, n, p=None, t=None):\n"
            "        if n.split('.')[0] in ('ipywidgets', 'anywidget', 'IPython', 'numpy',"
            " 'matplotlib', 'traitlets'):\n"
            "            raise ImportError(n)\n"
            "sys.meta_path.insert(0, B())\n"
            "from pkmm.views import memory_map, rule_grid\n"
            "print(memory_map({'vmas': [{'start': 0, 'npages': 1}]}).kind)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "memory-map"


def test_memory_map_draws_a_pin_on_the_page_never_in_a_pte() -> None:
    # FOLL_PIN counts on the folio: the mark belongs to the page box, one per pinned page
    svg = P.memory_map(PINNED, "v6.9").svg
    parent = svg.split("parent's page table")[1].split('aria-label="physical memory"')[0]
    memory = svg.split('aria-label="physical memory"')[1].split("child's page table")[0]
    child = svg.split("child's page table")[1].split('aria-label="legend"')[0]
    assert "PIN" not in parent and "PIN" not in child
    assert memory.count(">PIN<") == len(PINNED["pins"])     # each pin: one order-0 page


def test_memory_map_outlines_each_folio_and_parts_adjacent_ones() -> None:
    from pkmm.views.svg.physmem import FOLIO_GAP, GAP
    two = {"vmas": [{"start": 0, "npages": 5}], "folios": {"F1": {"order": 2},
                                                          "F2": {"order": 0}},
           "ptes": [{"addr": 0, "folio": "F1"}, {"addr": 16384, "folio": "F2"}]}
    svg = P.memory_map(two, "v6.9").svg
    outline = r'<rect x="([\d.]+)" y="[\d.]+" width="([\d.]+)"[^>]*><title>folio {}: '
    f1 = re.search(outline.format("F1") + "4 pages", svg)
    f2 = re.search(outline.format("F2") + "1 page ", svg)
    assert f1 and f2
    # the outlines do not touch, and folios stand further apart than pages of one folio
    assert float(f2[1]) - (float(f1[1]) + float(f1[2])) > 0 and FOLIO_GAP > 2 * GAP


def test_memory_map_draws_the_pinned_copy_and_the_counters() -> None:
    svg = P.memory_map(PINNED, "v6.9").svg
    # the child's PTE #4 maps a new page (allocated during fork), not P:0
    assert "child PTE #4 at 0x204000: Pte(pfn=" in svg
    assert re.search(r"child PTE #4[^<]*</title>", svg)
    assert "F anon order 2" in svg and "refcount 8" in svg      # 4 + 4 child mappings
    assert "P anon order 0" in svg and "refcount 1025" in svg   # 1 mapping + FOLL_PIN bias
    assert "PIN" in svg
    before = P.memory_map(PINNED).svg                           # no kernel: before fork
    assert "refcount 4" in before and "child" not in before


def test_memory_map_marks_pmd_swap_zero() -> None:
    s = {"vmas": [{"start": "0x200000", "npages": 512}, {"start": "0x400000", "npages": 4}],
         "folios": {"T": {"order": 9}}, "pmds": [{"addr": "0x200000", "folio": "T"}],
         "zero": ["0x400000"], "swap": [{"addr": "0x401000", "value": 3}]}
    svg = P.memory_map(s, "v6.17").svg
    assert "one PMD entry #0-511" in svg and "T:0-511<" in svg and 'stroke-width="2.5"' in svg
    assert "zero page" in svg and "swap count 2" in svg     # swap count: parent + child
    assert "2 ×512" in svg                                    # PMD-shared: mapcount 2


def test_batch_strip_follows_the_version() -> None:
    v69, v3 = P.batch_strip(T06, "v6.9"), P.batch_strip(T06, "batch-v3")
    assert v69.data["batches"] == [2, 2] and v3.data["batches"] == [4]
    assert "next PTE differs in the dirty bit" in v69.svg
    assert "dirty" not in " ".join(v3.data["groups"])
    with pytest.raises(LayoutError, match="vma=3"):
        P.batch_strip(T06, "v6.9", vma=3)


def test_decision_flow_lights_the_path_the_pte_took() -> None:
    pinned = P.decision_flow(PINNED, "v6.9", 4).data["lit"]
    assert [p[-1] for p in pinned] == ["copy_present_page:need-prealloc",
                                       "copy_present_page:copied"]
    ablated = P.decision_flow(PINNED, "v6.9", 4, without={"pinned-copy"}).data["lit"]
    assert ablated[0][1] == "folio_try_dup_anon_rmap_pte:anon-dup:ok"
    v68 = P.decision_flow(LARGE, "v6.8", 0)
    assert not any("folio_pte_batch" in n for n in v68.data["nodes"])   # v6.8 never batches
    assert any(n.startswith("folio_pte_batch_flags") for n in
               P.decision_flow(LARGE, "v6.17").data["nodes"])
    with pytest.raises(LayoutError, match="slot=7"):
        P.decision_flow(PINNED, "v6.9", 7)




def _group(svg: str, label: str) -> str:
    return svg.split(f'aria-label="{label}"')[1].split("</g>")[0]


def test_decision_flow_keys_every_colour_it_draws_and_no_other() -> None:
    from pkmm.views.svg.flow import ROLES
    for pic in (P.decision_flow(PINNED, "v6.9", 4), P.decision_flow(LARGE, "v6.8", 0)):
        box = r'<rect[^>]*class="pk-(\w+)"'
        drawn = set(re.findall(box, _group(pic.svg, "decisions"))) - {"bg"}
        keyed = set(re.findall(box, _group(pic.svg, "legend")))
        assert drawn == keyed == set(pic.data["roles"]), (drawn, keyed)
        for role in drawn:
            assert ROLES[role].split(":")[0].split(",")[0] in pic.svg
    # the refused return is drawn (and keyed) wherever it is not on the lit path
    assert "hot" in P.decision_flow(LARGE, "v6.8", 0).data["roles"]


def test_eagain_loop_counts_the_rounds() -> None:
    two = dict(PINNED, pins=[{"folio": "P"}, {"folio": "F", "page": 1}])
    assert len(P.eagain_loop(two, "v6.9").data["rounds"]) == 5   # all of F, then P
    assert len(P.eagain_loop(PINNED, "v6.9").data["rounds"]) == 1
    assert P.eagain_loop(LARGE, "v6.9").data["rounds"] == []
    with pytest.raises(LayoutError, match="round=2"):
        P.eagain_loop(PINNED, "v6.9", round=2)




def test_eagain_loop_names_the_allocator_the_variant_calls() -> None:
    # v6.9's copy_pte_range() calls folio_prealloc(src_mm, src_vma, addr, false) after
    # -EAGAIN (the rename's need_zero=false); the picture, the trace and the declaration
    # must agree for every variant that has the loop
    import pkmm
    from pkmm.kernels import KERNELS, get_kernel
    from pkmm.scenario import Scenario
    assert get_kernel("v6.9").prealloc_func == get_kernel("v6.17").prealloc_func \
        == "folio_prealloc"
    for name in KERNELS:
        k = get_kernel(name)
        r = pkmm.fork(Scenario.from_dict(PINNED).build()[0], name)
        funcs = {e.func for e in r.trace if e.rule.startswith("prealloc")}
        if not funcs:
            continue                       # no -EAGAIN loop in this variant
        assert funcs == {k.prealloc_func}, (name, funcs)
        svg = P.eagain_loop(PINNED, name).svg
        assert f"{k.prealloc_func}()" in svg
        other = {"page_copy_prealloc", "folio_prealloc"} - {k.prealloc_func}
        assert not any(f"{o}()" in svg for o in other), name




def test_masked_compare_says_counted_for_the_bits_the_seed_patch_counts() -> None:
    import pkmm
    from pkmm.kernels import BATCHING_KERNELS, get_kernel
    from pkmm.views.svg.rules import ignored_bits
    for name in BATCHING_KERNELS:
        k, mask = get_kernel(name), ignored_bits(name)
        for bit in k.counted_bits:
            assert mask[bit] == "counted", (name, bit)
        assert not any(v == "counted" for b, v in mask.items() if b not in k.counted_bits)
    assert get_kernel("batch-v3").counted_bits == {"dirty", "write"}
    # the declaration against the function: PTE #0 clean and read-only, PTE #1 dirty and
    # writable, one batch of 2 -- counting makes the child's batch dirty and write-protects
    # the parent's #1; deciding from the first PTE alone would do neither
    p = pkmm.Process()
    p.mmap(0x200000, 2)
    f = p.alloc_folio(1)
    p.map(0x200000, f, 0, 1, write=False, dirty=False)
    p.map(0x201000, f, 1, 1, write=True, dirty=True)
    r = pkmm.fork(p, "batch-v3")
    assert r.batches == [2]
    assert r.child.pte(0x200000).dirty and not p.pte(0x201000).write
    pic = P.masked_compare({"vmas": [{"start": 0, "npages": 2}], "folios": {"F": {"order": 1}},
                            "ptes": [{"addr": 0, "folio": "F", "nr": 1},
                                     {"addr": 4096, "folio": "F", "page": 1, "dirty": False}]},
                           ("batch-v3", "v6.9"))
    v3 = pic.svg.split(">v6.9<")[0]
    assert "<title>D: counted" in v3 and "<title>W: counted" in v3
    assert "<title>D: ignored" not in v3 and "<title>D: differs" in pic.svg.split(">v6.9<")[1]


def test_dma_timeline_loses_the_write_only_without_the_pinned_copy() -> None:
    for k in ("v6.8", "v6.9", "v6.17"):
        assert P.dma_timeline(kernel=k).data["lost"] is False
        assert P.dma_timeline(kernel=k, without={"pinned-copy"}).data["lost"] is True
    with pytest.raises(LayoutError, match="pins no page"):
        P.dma_timeline(LARGE)


def test_rule_grid_reads_each_version() -> None:
    v69, v3 = P.rule_grid("v6.9").data, P.rule_grid("batch-v3").data
    assert v69["private", "write", "parent"] == "cleared"          # COW write-protect
    assert v69["shared", "write", "child"] == "kept"               # shared: no COW
    assert v69["shared", "dirty", "child"] == "cleared"            # clean in the child
    assert v69["private", "soft_dirty", "child"] == "kept"
    assert v3["private", "soft_dirty", "child"] == "cleared"       # the seed patch's clear
    no_fork = P.rule_grid("v6.9", uffd_fork=False).data
    assert no_fork["shared", "write", "child"] == "no PTE"         # the VMA is not copied
    assert no_fork["private", "uffd_wp", "child"] == "cleared"


def test_masked_compare_greys_what_the_scan_ignores() -> None:
    pair = {"vmas": [{"start": 0, "npages": 2}], "folios": {"F": {"order": 1}},
            "ptes": [{"addr": 0, "folio": "F", "nr": 1},
                     {"addr": 4096, "folio": "F", "page": 1, "dirty": False}]}
    d = P.masked_compare(pair, ("v6.8", "batch-v3", "v6.9", "v6.17")).data
    assert d["batch-v3"] == "same batch (2 PTEs)"                  # dirty is only counted
    assert d["v6.9"].endswith("differs in the dirty bit")
    assert d["v6.8"].startswith("batch stops here") or "batch" in d["v6.8"]
    shared = dict(pair, vmas=[{"start": 0, "npages": 2, "backing": "shmem", "shared": True,
                               "uffd_wp": True, "uffd_fork": True}],
                  folios={"F": {"order": 1, "backing": "shmem"}})
    assert P.masked_compare(shared, "v6.9").data["v6.9"] == "same batch (2 PTEs)"


def test_masked_compare_keys_every_word_a_grey_bit_can_carry() -> None:
    """Grey stands for three outcomes; a reader met "merged" on W with no key for it.  The
    key names each word ignored_bits() can give a compared-out bit, and fits the picture."""
    from pkmm.views.svg.core import CHAR_W
    from pkmm.views.svg.rules import MASK_KEY
    svg = P.masked_compare(T06, ("batch-v3", "v6.9"), slot=1).svg
    key = " ".join(MASK_KEY)
    for word in ("counted", "merged", "ignored", "not compared"):
        assert word + ":" in key or word + "," in key, word
    for line in MASK_KEY:
        assert line in svg and 8 + len(line) * CHAR_W <= 760, line


def test_page_states_follow_the_reuse_rule_of_each_version() -> None:
    assert P.page_state_machine(LARGE, "v6.9").data["faults"] == [
        "child write: cow-copy", "parent write: cow-copy"]          # never reuses large
    assert P.page_state_machine(LARGE, "v6.17").data["faults"] == [
        "child write: cow-copy", "parent write: cow-copy"]          # child maps pages 1-3
    gone = [("child", "exit"), ("parent", "write")]
    assert P.page_state_machine(LARGE, "v6.17", actions=gone).data["faults"][-1] == \
        "parent write: reuse"                                       # v6.17 reuses large
    assert P.page_state_machine(LARGE, "v6.9", actions=gone).data["faults"][-1] == \
        "parent write: cow-copy"
    states = P.page_state_machine(LARGE, "v6.17").data["states"]
    assert states[1] == {"parent": "CoW-shared, read-only", "child": "CoW-shared, read-only"}
    with pytest.raises(LayoutError, match="actions"):
        P.page_state_machine(LARGE, actions=[("kid", "write")])


def test_per_page_cost_falls_with_the_batch_size_only_when_batching() -> None:
    params = {"ns_per_pte": 40.0, "ns_per_copy_call": 30.0, "ns_per_batch_scan": 60.0}
    v617 = P.per_page_cost("v6.17", params=params).data["per_page_ns"]
    v68 = P.per_page_cost("v6.8", params=params).data["per_page_ns"]
    assert v617[1] > v617[4] > v617[16] > v617[512]
    assert len(set(v68.values())) == 1                              # one call per PTE
    with pytest.raises(LayoutError, match="powers of two"):
        P.per_page_cost(sizes=(3,), params=params)


def test_per_page_cost_adds_the_cold_struct_pages_of_each_folio() -> None:
    from pkmm.costmodel import MEMMAP_RAMP
    base = {"ns_per_pte": 40.0, "ns_per_copy_call": 30.0, "ns_per_batch_scan": 60.0}
    cold = P.per_page_cost("v6.17", sizes=(1, 4, 64, 512),
                           params={**base, "ns_per_cold_struct_page": 10.0})
    plain = P.per_page_cost("v6.17", sizes=(1, 4, 64, 512), params=base)
    extra = {n: cold.data["per_page_ns"][n] - plain.data["per_page_ns"][n]
             for n in (1, 4, 64, 512)}
    # every page of a folio up to the ramp is cold; beyond it the cold share falls as 1/n
    assert extra == pytest.approx({n: 10.0 * min(n, MEMMAP_RAMP) / n for n in extra})
    assert "cold struct pages" in cold.svg and "cold struct pages" not in plain.svg
    # v6.8 copies PTE by PTE, but a folio's struct pages still stream: the same cold part
    v68 = P.per_page_cost("v6.8", sizes=(64,), params={**base, "ns_per_cold_struct_page": 10.0})
    assert v68.data["per_page_ns"][64] - P.per_page_cost(
        "v6.8", sizes=(64,), params=base).data["per_page_ns"][64] == pytest.approx(extra[64])


@pytest.mark.parametrize("call", [
    lambda: P.memory_map(T06, "v7"), lambda: P.batch_strip(T06, kernel=None),
    lambda: P.memory_map([object()]), lambda: P.rule_grid(uffd_fork="yes"),
    lambda: P.masked_compare(T06, slot=3), lambda: P.dma_timeline(T06, write="five"),
])
def test_bad_arguments_raise_pkmm_errors(call: object) -> None:
    with pytest.raises(LayoutError):
        call()  # type: ignore[operator]


def _texts(pic: P.Picture) -> list[str]:
    return [t.text or "" for t in ET.fromstring(pic.svg).iter(f"{NS}text")]


def test_decision_flow_only_lit_draws_the_taken_path_alone() -> None:
    full, lit = P.decision_flow(PINNED, "v6.9", 0), P.decision_flow(PINNED, "v6.9", 0,
                                                                   only_lit=True)
    assert lit.data["lit"] == full.data["lit"]
    # every node of the simple flow is on the lit path (plus entry and return)
    assert len(lit.data["nodes"]) == len(lit.data["lit"][0]) + 2 < len(full.data["nodes"])
    assert "copy_present_page()" in _texts(full) and "copy_present_page()" not in _texts(lit)
    with pytest.raises(LayoutError, match="only_lit"):
        P.decision_flow(PINNED, "v6.9", 0, only_lit="yes")


def test_decision_flow_return_label_follows_the_variant_batching() -> None:
    # v6.8 has no batch function: one PTE per call, so its shared return is 1
    assert "returns 1: mapped, no copy" in _texts(P.decision_flow(LARGE, "v6.8", 0))
    assert "returns nr: mapped, no copy" in _texts(P.decision_flow(LARGE, "v6.9", 0))


def test_pages_fork_copied_are_named_in_allocation_order() -> None:
    one_pin = {**LARGE, "pins": [{"folio": "F", "page": 2}]}
    texts = " ".join(_texts(P.memory_map(one_pin, "v6.9")))
    assert all(f"new{k}:0" in texts for k in range(1, 5)) and "new5" not in texts
    # without the pin nothing is copied, so no new page is named
    assert "new1" not in " ".join(_texts(P.memory_map(LARGE, "v6.9")))
    assert "page new1:0" in _texts(P.dma_timeline())


def test_filmstrip_shows_each_kind_of_call_once() -> None:
    from pkmm.scenario import Scenario
    from pkmm.views.stepframes import StepFrames
    tour = {"vmas": [{"start": "0x200000", "npages": 8},
                     {"start": "0x400000", "npages": 2, "backing": "file", "anon_vma": True}],
            "folios": {"A": {"order": 0}, "F": {"order": 2}, "C": {"order": 0, "backing": "file"},
                       "N": {"order": 0}},
            "ptes": [{"addr": "0x200000", "folio": "A"}, {"addr": "0x202000", "folio": "F"},
                     {"addr": "0x400000", "folio": "C", "write": False, "dirty": False},
                     {"addr": "0x401000", "folio": "N"}],
            "zero": ["0x201000"]}
    sf = StepFrames(Scenario.from_dict(tour), "v6.8")
    shown = {sf.frame(k).event.addr for k in sf.key_frames() if sf.frame(k).event}
    # 6 frames for 8 calls: the zero page (PTE 1, copied by value) and the file page C
    # (0x400000, a file rmap dup) are each a kind of call of their own, so both are shown
    assert len(sf.key_frames()) == 6 and {0x201000, 0x400000} <= shown


def test_masked_compare_rows_are_named_by_pte_number() -> None:
    texts = _texts(P.masked_compare(T06, "v6.9", slot=1))
    assert "PTE #1" in texts and "PTE #2" in texts and "B" not in texts


TOUR = {"vmas": [{"start": 0x200000, "npages": 8},
                 {"start": 0x400000, "npages": 2, "backing": "file", "anon_vma": True}],
        "folios": {"A": {"order": 0}, "F": {"order": 2},
                   "C": {"order": 0, "backing": "file"}, "N": {"order": 0}},
        "ptes": [{"addr": 0x200000, "folio": "A"}, {"addr": 0x202000, "folio": "F"},
                 {"addr": 0x400000, "folio": "C", "write": False, "dirty": False},
                 {"addr": 0x401000, "folio": "N"}],
        "zero": [0x201000]}


@pytest.mark.parametrize("kernel", ["v6.8", "v6.9", "v6.17"])
def test_decision_flow_asks_vm_normal_page_first_and_keeps_its_layout(kernel: str) -> None:
    # the kernel's first question for every present PTE is vm_normal_page(); then anon
    # or file (the rmap dup of that kind); then CoW -- top to bottom in that order
    pics = [P.decision_flow(TOUR, kernel, s) for s in (0, 1, 2)]
    pics.append(P.decision_flow(TOUR, kernel, 0, vma=1))
    for pic in pics:
        for path in pic.data["lit"]:
            assert path[0].startswith("vm_normal_page:"), path
    rows = [_node_rows(p) for p in pics]
    assert all(r == rows[0] for r in rows)            # boxes keep their places
    rank = rows[0]
    q1 = rank["vm_normal_page()"]
    assert q1 < rank["folio_try_dup_anon_rmap_pte" + ("s" if kernel != "v6.8" else "") + "()"]
    assert q1 < min(y for name, y in rank.items() if "file_rmap" in name)
    if kernel != "v6.8":     # the path alone names the batch's size (PTEs #2-#5: one call)
        alone = P.decision_flow(TOUR, kernel, 2, only_lit=True).svg
        assert "a batch of 4 PTEs" in alone and "returns 4: mapped, no copy" in alone
    anon = pics[0].svg.index("2 anon: rmap dup")
    assert pics[0].svg.index("1 struct page? yes") < anon < pics[0].svg.index("3 CoW")


def _node_rows(pic: P.Picture) -> dict[str, float]:
    """Each bold-or-plain function label of the flow's boxes -> the smallest y it sits at
    (x too, as a string key suffix, so a moved box changes the map)."""
    out: dict[str, float] = {}
    group = pic.svg.split('aria-label="decisions"', 1)[1].split("</g>", 1)[0]
    for m in re.finditer(r'<text x="([\d.]+)" y="([\d.]+)"[^>]*>([^<]+\(\))<', group):
        x, y, name = float(m.group(1)), float(m.group(2)), m.group(3)
        out.setdefault(name, y)
        out[f"{name}@{x:g},{y:g}"] = y
    return out


def _text_boxes(pic: P.Picture) -> list[tuple[float, float, float, float, str]]:
    """Estimated extents (x0, y0, x1, y1, text) of every <text>: monospace glyphs are
    0.6 em wide, the box spans the font size above the baseline."""
    out = []
    for m in re.finditer(r'<text x="([-\d.]+)" y="([-\d.]+)"([^>]*)>([^<]*)', pic.svg):
        x, y, attrs, body = float(m.group(1)), float(m.group(2)), m.group(3), m.group(4)
        # a text without a class sits in a group of small labels (Canvas.text_group)
        size = 12.0 if "pk-h" in attrs else 11.0
        n = len(body.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
                .replace("&quot;", '"').replace("&#x27;", "'"))
        fit = re.search(r'textLength="([\d.]+)"', attrs)   # squeezed to this width
        w = float(fit.group(1)) if fit else n * size * 0.6
        x0 = x - w / 2 if 'text-anchor="middle"' in attrs else x - w if (
            'text-anchor="end"' in attrs) else x
        if n:
            out.append((x0, y - size * 0.75, x0 + w, y + size * 0.2, body))
    return out


def _overlaps(pic: P.Picture) -> list[tuple[str, str]]:
    boxes = _text_boxes(pic)
    return [(a[4], b[4]) for i, a in enumerate(boxes) for b in boxes[i + 1:]
            if a[0] < b[2] - 0.5 and b[0] < a[2] - 0.5 and a[1] < b[3] - 0.5
            and b[1] < a[3] - 0.5]


KINDS = {"vmas": [{"start": 0x200000, "npages": 2},
                  {"start": 0x400000, "npages": 2, "backing": "file"},
                  {"start": 0x600000, "npages": 2, "backing": "file", "anon_vma": True},
                  {"start": 0x800000, "npages": 2, "backing": "shmem", "shared": True},
                  {"start": 0xa00000, "npages": 2, "backing": "shmem", "shared": True,
                   "uffd_wp": True, "uffd_fork": True}],
         "folios": {"A": {"order": 1}, "T": {"order": 1, "backing": "file"},
                    "C": {"order": 0, "backing": "file"}, "N": {"order": 0},
                    "S": {"order": 1, "backing": "shmem"},
                    "U": {"order": 1, "backing": "shmem"}},
         "ptes": [{"addr": 0x200000, "folio": "A"},
                  {"addr": 0x400000, "folio": "T", "write": False, "dirty": False},
                  {"addr": 0x600000, "folio": "C", "write": False, "dirty": False},
                  {"addr": 0x601000, "folio": "N"},
                  {"addr": 0x800000, "folio": "S"}, {"addr": 0xa00000, "folio": "U"}]}


@pytest.mark.parametrize("width", [952, 600])
@pytest.mark.parametrize("layout", [KINDS, TOUR], ids=["five-vmas", "tour"])
def test_memory_map_lines_reach_their_pages_without_crossing_vma_labels(
        layout: dict[str, object], width: int) -> None:
    pic = P.memory_map(layout, "v6.9", width=width)
    assert not _overlaps(pic)
    labels = [b for b in _text_boxes(pic) if "[0x" in b[4] or "page table" in b[4]
              or b[4] in ("anon_vma", "uffd-wp")]
    assert len(labels) >= len(layout["vmas"]) * 2     # type: ignore[arg-type]
    # each PTE's line: a path from a cell to a page; sample it, no sample inside a label
    for m in re.finditer(r'<path d="M([\d.]+),([\d.]+) C([\d., -]+?)(?: L[\d.,]+)?"', pic.svg):
        pts = [float(v) for v in re.split(r"[ ,]", m.group(3)) if v]
        p0 = (float(m.group(1)), float(m.group(2)))
        (c1, c2, p3) = (pts[0], pts[1]), (pts[2], pts[3]), (pts[4], pts[5])
        for k in range(1, 40):
            t = k / 40
            x = ((1 - t) ** 3 * p0[0] + 3 * (1 - t) ** 2 * t * c1[0]
                 + 3 * (1 - t) * t * t * c2[0] + t ** 3 * p3[0])
            y = ((1 - t) ** 3 * p0[1] + 3 * (1 - t) ** 2 * t * c1[1]
                 + 3 * (1 - t) * t * t * c2[1] + t ** 3 * p3[1])
            for x0, y0, x1, y1, text in labels:
                assert not (x0 < x < x1 and y0 < y < y1), (text, x, y)


def _rects(pic: P.Picture) -> list[tuple[float, float, float, float]]:
    return [(float(m.group(1)), float(m.group(2)), float(m.group(1)) + float(m.group(3)),
             float(m.group(2)) + float(m.group(4)))
            for m in re.finditer(r'<rect x="([-\d.]+)" y="([-\d.]+)" width="([\d.]+)" '
                                 r'height="([\d.]+)" rx="2" class="pk-(?:anon|file|shmem|'
                                 r'special|nonpresent|none)"', pic.svg)]


def _spills(pic: P.Picture) -> list[str]:
    """Texts that start inside a small box (a PTE or page cell) but end outside it."""
    out = []
    for x0, y0, x1, y1, text in _text_boxes(pic):
        for rx0, ry0, rx1, ry1 in _rects(pic):
            if rx1 - rx0 < 130 and rx0 <= x0 < rx1 and ry0 <= y1 - 2 < ry1:
                # a glyph touching the border reads as running into the next box
                if x1 > rx1 - 1 or y0 < ry0 - 0.5 or y1 > ry1 + 0.5:
                    out.append(text)
    return out


# every bit the letters can show, uffd-wp (a registered VMA), and many pins
LONG = {"vmas": [{"start": 0x200000, "npages": 4, "uffd_wp": True,
                  "soft_dirty_tracking": True}],
        "folios": {"F": {"order": 2}},
        "ptes": [{"addr": 0x200000, "folio": "F", "soft_dirty": True, "uffd_wp": True,
                  "write": False}],
        "pins": [{"folio": "F", "page": 1}] * 12 + [{"folio": "F", "page": 2}]}


@pytest.mark.parametrize("kernel", [None, "v6.9"])
def test_memory_map_cells_hold_long_letter_sets_and_pin_counts(kernel: str | None) -> None:
    pic = P.memory_map(LONG, kernel)
    assert "PIN" in pic.svg and "×12" in pic.svg and "UW" in pic.svg
    assert not re.search(r"<text[^>]*></text>", pic.svg)    # no empty lines (redraw bytes)
    assert not _spills(pic)
    assert not _overlaps(pic)


def test_batch_strip_cells_hold_long_letter_sets() -> None:
    pic = P.batch_strip(LONG, "v6.9")
    assert "UW" in pic.svg
    assert not _spills(pic)
    assert not _overlaps(pic)


def test_every_box_colour_and_mark_of_a_memory_map_has_a_legend() -> None:
    pic = P.memory_map(KINDS, "v6.9")
    legend = pic.svg.split('aria-label="legend"', 1)[1]
    for role in re.findall(r'class="pk-(anon|file|shmem|special|nonpresent|none)"',
                           pic.svg.split('aria-label="legend"', 1)[0]):
        assert f'class="pk-{role}"' in legend, role
    pinned = P.memory_map(LONG).svg.split('aria-label="legend"', 1)[1]
    assert "-hatch)" in pinned and "AE" in pinned and "pinned" in pinned


def test_memory_map_draws_a_pmd_as_one_entry() -> None:
    thp = {"vmas": [{"start": 0x200000, "npages": 512}], "folios": {"H": {"order": 9}},
           "pmds": [{"addr": 0x200000, "folio": "H"}]}
    pic = P.memory_map(thp, "v6.17")
    assert pic.svg.count("one PMD entry #0-511") == 2 and "×512</text>" not in pic.svg.split(
        "physical memory")[0]
    assert not _spills(pic) and not _overlaps(pic)


def test_step_frames_give_page_cache_folios_no_anon_exclusive_count() -> None:
    from pkmm.scenario import Scenario
    from pkmm.views.stepframes import StepFrames
    from pkmm.views.svg.stepframe import frame_picture
    sf = StepFrames(Scenario.from_dict(TOUR), "v6.17")
    last = sf.frame(len(sf) - 1)
    rows = {r.name: r for r in last.folios}
    assert not rows["C"].anon and rows["A"].anon and rows["F"].anon
    texts = " ".join(_texts(frame_picture(last, "v6.17")))
    assert "C: refcount" in texts and "A: refcount" in texts
    c_line = next(t for t in _texts(frame_picture(last, "v6.17")) if t.startswith("C: "))
    a_line = next(t for t in _texts(frame_picture(last, "v6.17")) if t.startswith("A: "))
    assert "AnonExclusive" in a_line and "page-cache folio (no AnonExclusive)" in c_line


def test_page_states_name_pages_as_the_boxes_do_with_a_key() -> None:
    import re
    one = {"vmas": [{"start": 0, "npages": 1}], "folios": {"A": {"order": 0}},
           "ptes": [{"addr": 0, "folio": "A"}]}
    pic = P.page_state_machine(one, "v6.17")
    import html
    texts = [html.unescape(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>", pic.svg)]
    body = " ".join(texts)
    # the copy is the first page allocated after the layout: new1, in box and sentence
    assert "new1:0 (new copy)" in texts and "new1:0;" in body and "A:0" in body
    assert not re.search(r"\bpage 0x[0-9a-f]+", body) and not re.search(r"\bf\d+:", body)
    assert " / " not in body                      # one sentence per decision, not glued
    assert any(t.startswith("Copy page A:0 into new") for t in texts)
    # a step's note sits under the child row whoever acted, so it names the actor, and its
    # lines stay inside the column (the next column's note starts 214 px further on)
    assert "child's write: cow-copy" in texts and "parent's write: reuse" in texts
    start = texts.index("child's write: cow-copy")
    assert all(len(t) <= 29 for t in texts[start:texts.index("3. parent writes")])
    from pkmm.views.svg.states import STATE_LEGEND
    for _, role, words in STATE_LEGEND:
        assert words in texts and f"pk-{role}" in pic.svg
    assert "Thick border: the process that acted in that step." in texts
    assert any("refcount: the whole folio's references" in t for t in texts)
    assert not re.search(r"\(large \d+\)", body)        # a small page has no folio count


def test_page_states_of_a_large_folio_show_the_mapcount_its_reuse_test_reads() -> None:
    # __wp_can_reuse_large_anon_folio() compares the folio's large mapcount with its
    # refcount: the boxes print it, so "mapcount 1, refcount 16" cannot read as "no reuse"
    import html
    import re
    big = {"vmas": [{"start": 0, "npages": 16}], "folios": {"F": {"order": 4}},
           "ptes": [{"addr": 0, "folio": "F"}]}
    pic = P.page_state_machine(big, "v6.17", 5, (("child", "exit"), ("parent", "write")))
    body = " ".join(html.unescape(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>",
                                                         pic.svg))
    assert "mapcount 2 (large 32), refcount 32" in body       # after fork, both map it
    assert "mapcount 1 (large 16), refcount 16" in body       # the child gone: 16 == 16
    assert "which its reuse test compares with the refcount" in body


def test_memory_map_of_processes_names_new_pages_like_a_layout() -> None:
    import pkmm
    from pkmm.scenario import Scenario
    p, fs = Scenario.from_dict({"vmas": [{"start": 0, "npages": 2}],
                                "folios": {"A": {"order": 0}, "B": {"order": 0}},
                                "ptes": [{"addr": 0, "folio": "A"},
                                         {"addr": 4096, "folio": "B"}]}).build()
    kid = pkmm.fork(p, kernel="v6.17").child
    kid.write(4096, 1)          # the first page allocated after the layout
    kid.write(0, 2)             # the second
    svg = P.memory_map((p, kid), names={fs["A"].pfn: "A", fs["B"].pfn: "B"}).svg
    assert ">new1:0<" in svg and ">new2:0<" in svg
    assert not __import__("re").search(r">f\d+:\d+<", svg)
    first = kid.page_at(4096)[0]
    assert "new1 page 0" in svg and first.uid < kid.page_at(0)[0].uid


def test_a_layout_without_names_calls_its_own_pages_page_n_and_fork_copies_new_n() -> None:
    # a process snapshot names no folio: its own pages were there before fork, so they
    # must not read as "new" (pages fork allocated); eager-copy's copies still do
    from pkmm.scenario import Scenario
    base = 0x40000000
    sc = Scenario.from_dict({"name": "snap", "vmas": [{"start": base, "npages": 4,
                                                       "anon_vma": True}],
                             "runs": [{"addr": base, "npages": 2, "order": 0}]})
    before = " ".join(_texts(P.memory_map(sc)))
    assert "page1:0" in before and "page2:0" in before and "new1" not in before
    shared = " ".join(_texts(P.memory_map(sc, "v6.17")))
    assert "page2:0" in shared and "new1" not in shared
    copied = " ".join(_texts(P.memory_map(sc, "eager-copy")))
    assert "page1:0" in copied and "new1:0" in copied and "new2:0" in copied


def test_memory_map_swap_holders_and_captions() -> None:
    """Swap is its own box outside physical memory; references that are not mappings
    are named from what the model records (vmsplice refs per page, the page cache);
    folio captions are the 11 px text class, drawn beside the pages (before fork as
    after it: one layout of the physical row)."""
    s = {"vmas": [{"start": "0x200000", "npages": 4},
                  {"start": "0x400000", "npages": 2, "backing": "file"}],
         "folios": {"F": {"order": 1}, "T": {"order": 1, "backing": "file"}},
         "ptes": [{"addr": "0x200000", "folio": "F"}, {"addr": "0x400000", "folio": "T"}],
         "swap": [{"addr": "0x203000", "value": 3}],
         "vmsplice": [{"folio": "F", "page": 1, "refs": 3}]}
    import re
    svg = P.memory_map(s).svg
    phys = svg[svg.index('class="pkmm-physmem"'):svg.index('class="pkmm-swap"')]
    assert "swap space (on disk)" not in phys and "slot 1" not in phys
    assert "swap space (on disk)" in svg[svg.index('class="pkmm-swap"'):]
    # the holders are named as parts of the refcount: a "+" before them read as a sum
    assert ">vmsplice (pipe): 3 on page 1<" in phys and "+" not in phys
    assert 'class="pk-t pk-halo">refcount 5, of which<' in phys   # 2 mappings + 3 pipe refs
    # beside the pages the page-cache line is short (one row holds a folio more)
    assert ">page cache: 2<" in phys and phys.count("page cache") == 1
    assert 'class="pk-t pk-halo">refcount 4, of which<' in phys   # 2 mappings + 2 cached
    # the swap count sits inside its slot's box, clear of the band's heading at the foot
    swap = svg[svg.index('class="pkmm-swap"'):]
    box_y = float(re.search(r'<rect x="[\d.]+" y="([\d.]+)" width="108" height="30"',
                            swap).group(1))
    count_y = float(re.search(r'y="([\d.]+)"[^>]*>swap count 1<', swap).group(1))
    assert box_y < count_y < box_y + 30
    # each caption beside its folio's pages: right of the page boxes, level with them
    pages = [(float(x), float(y), float(h)) for x, y, h in re.findall(
        r'<rect x="([\d.]+)" y="([\d.]+)" width="36" height="([\d.]+)" rx="2" class="pk-anon"',
        phys)]
    cap = re.search(r'<text x="([\d.]+)" y="([\d.]+)" class="pk-t pk-halo">F anon', phys)
    cap_x, cap_y = float(cap.group(1)), float(cap.group(2))
    assert cap_x > max(x for x, _, _ in pages) + 36
    assert min(y for _, y, _ in pages) < cap_y < max(y + h for _, y, h in pages)
    assert _physical_row_texts(svg) == _physical_row_texts(P.memory_map(s, "v6.9").svg)
    plain = P.memory_map({k: v for k, v in s.items() if k != "vmsplice"}).svg
    assert "vmsplice" not in plain and "refcount 2<" in plain


def _physical_row_texts(svg: str) -> list[tuple[str, str]]:
    """(x, words) of every caption in physical memory: the row's layout."""
    phys = svg[svg.index('class="pkmm-physmem"'):]
    phys = phys[:phys.index("</g>")]
    return [(m.group(1), m.group(2)) for m in re.finditer(
        r'<text x="([\d.]+)" y="[\d.]+" class="pk-t pk-halo">([^<0-9]+)', phys)]


def _bezier(q: list[list[float]] | tuple, t: float) -> tuple[float, float]:
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = q
    u = 1 - t
    return (u ** 3 * x0 + 3 * u * u * t * x1 + 3 * u * t * t * x2 + t ** 3 * x3,
            u ** 3 * y0 + 3 * u * u * t * y1 + 3 * u * t * t * y2 + t ** 3 * y3)


@pytest.mark.parametrize("kernel", ["v6.8", "v6.9", "v6.17"])
@pytest.mark.parametrize("where", [{"slot": 0}, {"slot": 1}, {"slot": 2}, {"slot": 0, "vma": 1}])
def test_decision_flow_edges_never_run_through_a_box(kernel: str, where: dict) -> None:
    # An edge that skips a rank (the zero page's "no struct page" straight to "write the
    # child's PTE") once ran under the boxes between, so the lit path looked as if it had
    # been through the pin check.  Every edge, lit or not, may touch only its own two ends.
    pic = P.decision_flow(TOUR, kernel, **where)
    boxes = pic.data["boxes"]
    lit_edges = set()
    for route in pic.data["edges"]:
        a, b = route["edge"]
        for q in route["curves"]:
            for i in range(1, 40):
                x, y = _bezier(q, i / 40)
                for name, (bx, by, bw, bh) in boxes.items():
                    if name in (a, b):
                        continue
                    assert not (bx < x < bx + bw and by < y < by + bh), (route["edge"], name)
        if route["lit"]:
            lit_edges.add((a, b))
    # lit: exactly the edges between consecutive decisions of the PTE's own path
    taken = {(p[i], p[i + 1]) for p in pic.data["lit"] for i in range(len(p) - 1)}
    assert taken <= lit_edges
    inner = {e for e in lit_edges if not (e[0].startswith("entry:") or e[1].startswith("return:"))}
    assert inner == taken


def test_batch_strip_notes_once_for_calls_that_ended_alike() -> None:
    # sixteen one-PTE calls of v6.8 end for one reason: one note under the whole row
    # (sixteen staggered "note 1" marks were noise), each bracket says "map 1" (the intro
    # says "map N"), and the note says why a v6.8 call ends: it has no batching
    whole = {"vmas": [{"start": 0, "npages": 16}], "folios": {"F": {"order": 4}},
             "ptes": [{"addr": 0, "folio": "F"}]}
    pic = P.batch_strip(whole, "v6.8")
    texts = _texts(pic)
    marks = [t for t in texts if t.startswith("note 1") and not t.startswith("note 1,")]
    assert marks == ["note 1: each of these 16 calls"]
    assert texts.count("map 1") == 16 and "map" not in texts
    # the note may wrap onto a second line at the picture's width
    notes = " ".join(texts[texts.index(next(t for t in texts if t.startswith("note 1, "))):])
    assert notes.startswith("note 1, PTEs #0-#15:") and "(v6.8 has no batching)" in notes
    assert "map N: the child's N PTEs map the parent's own N pages" in " ".join(texts)
    assert not any(t.startswith("share") for t in texts)
    # a batching version's note gives its stop reason, not the no-batching words
    v3 = _texts(P.batch_strip(whole, "batch-v3"))
    assert not any("no batching" in t for t in v3) and "map 16" in v3


def _curve_points(d: str) -> list[tuple[float, float]]:
    """Sample points along a path of M, C and L commands (the memory map's lines)."""
    nums = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", d)]
    cmds = re.findall(r"[MCL]", d)
    pts: list[tuple[float, float]] = []
    k, cur = 0, (0.0, 0.0)
    for cmd in cmds:
        if cmd == "M":
            cur = (nums[k], nums[k + 1])
            k += 2
        elif cmd == "L":
            nxt = (nums[k], nums[k + 1])
            k += 2
            pts += [(cur[0] + (nxt[0] - cur[0]) * t / 20, cur[1] + (nxt[1] - cur[1]) * t / 20)
                    for t in range(21)]
            cur = nxt
        else:
            p1, p2, p3 = ((nums[k + i], nums[k + i + 1]) for i in (0, 2, 4))
            k += 6
            for i in range(41):
                t = i / 40
                a, b, c_, e = (1 - t) ** 3, 3 * t * (1 - t) ** 2, 3 * t * t * (1 - t), t ** 3
                pts.append((a * cur[0] + b * p1[0] + c_ * p2[0] + e * p3[0],
                            a * cur[1] + b * p1[1] + c_ * p2[1] + e * p3[1]))
            cur = p3
    return pts


def test_after_fork_lines_cross_no_folio_caption() -> None:
    """Readers checked "refcount 8" through the child's lines: in a picture after fork
    every line from a PTE (parent's or child's) keeps clear of every folio caption."""
    tour = {"vmas": [{"start": "0x200000", "npages": 8},
                     {"start": "0x400000", "npages": 2, "backing": "file",
                      "anon_vma": True}],
            "folios": {"S": {"order": 0}, "F": {"order": 2},
                       "C": {"order": 0, "backing": "file"}, "N": {"order": 0}},
            "ptes": [{"addr": "0x200000", "folio": "S"}, {"addr": "0x202000", "folio": "F"},
                     {"addr": "0x400000", "folio": "C"}, {"addr": "0x401000", "folio": "N"}],
            "zero": ["0x201000"]}
    svg = P.memory_map(tour, "v6.8").svg
    caps = [(float(x), float(y), len(t)) for x, y, t in re.findall(
        r'<text x="([\d.]+)" y="([\d.]+)" class="pk-t pk-halo">([^<]*(?:order|refcount'
        r'|page cache|refcounting)[^<]*)</text>', svg) if not t.startswith("physical")]
    assert len(caps) >= 8
    lines = re.findall(r'<path d="(M[^"]*C[^"]*)" class="pk-s-', svg)
    assert len(lines) >= 2 * 8, "a line from every present PTE of parent and child"
    for d in lines:
        for px, py in _curve_points(d):
            for x, y, n in caps:
                assert not (x - 1 <= px <= x + n * 6.6 + 1 and y - 10 <= py <= y + 3), (
                    f"line {d} crosses the caption at ({x}, {y})")


def test_decision_flow_spells_out_every_path_under_the_picture() -> None:
    """The grey dashed arrows share routes; each path the code can take is also written
    out box by box, the lit one marked, so a static reader can trace every branch."""
    layout = {"vmas": [{"start": 0, "npages": 4}], "folios": {"F": {"order": 2}},
              "ptes": [{"addr": 0, "folio": "F"}]}
    pic = P.decision_flow(layout, "v6.8", 0)
    words = _group(pic.svg, "every path, in words")
    lines = re.findall(r">([*-] [^<]*)</text>", words)
    returns = {e["edge"][1] for e in pic.data["edges"] if e["edge"][1].startswith("return:")}
    assert len(lines) >= len(returns) and sum(t.startswith("*") for t in lines) == 1
    for ret in ("returns -EAGAIN", "returns 1: copied", "returns 1: by value"):
        assert any(t.rstrip().endswith(ret) for t in lines), ret
    eagain = [t for t in lines if t.rstrip().endswith("returns -EAGAIN")]
    assert eagain and all("refused" in t for t in eagain)


def test_decision_flow_without_the_pinned_branch_is_plainer() -> None:
    """A first reading of the full flow (notebook 02) skips the pinned-page branch: with
    pinned=False its five boxes and their arrows are gone, a line says what was left out,
    and every other box keeps its words; a PTE that took the branch still has it drawn."""
    full = P.decision_flow(TOUR, "v6.8", 0)
    plain = P.decision_flow(TOUR, "v6.8", 0, pinned=False)
    gone = ("maybe pinned, refused", "no page ready: ask for one", "child gets a copy",
            "returns 1: copied", "returns -EAGAIN")
    for w in gone:
        assert any(w in label for label in full.data["labels"]), w
        assert not any(w in label for label in plain.data["labels"]), w
    assert set(plain.data["labels"]) == {t for t in full.data["labels"]
                                         if not any(w in t for w in gone)}
    assert len(plain.data["edges"]) < len(full.data["edges"])
    assert "hot" not in plain.data["roles"] and plain.data["lit"] == full.data["lit"]
    assert any("not drawn: the branch for a page a device may have pinned" in t
               for t in _texts(plain))
    assert not any(t.startswith("not drawn") for t in _texts(full))
    took = P.decision_flow(PINNED, "v6.9", 4, pinned=False)
    assert any("maybe pinned, refused" in label for label in took.data["labels"])
    with pytest.raises(LayoutError, match="pinned="):
        P.decision_flow(TOUR, "v6.8", 0, pinned="no")  # type: ignore[arg-type]


def test_decision_flow_title_names_the_vma_of_the_pte() -> None:
    """PTE #0 of the second VMA is not the first VMA's PTE #0: the title says which."""
    head = [t for t in _texts(P.decision_flow(TOUR, "v6.8", 0, vma=1, only_lit=True))
            if "in orange" in t]
    assert head and head[0].endswith("(in orange: the path of PTE #0 of VMA 1)")
    first = [t for t in _texts(P.decision_flow(TOUR, "v6.8", 0)) if "in orange" in t]
    assert first[0].endswith("(in orange: the path of PTE #0)")


def test_memory_map_numbers_several_vmas_and_names_fork_events() -> None:
    """Questions ask about "VMA 2": the labels number the VMAs when there are several,
    and a uffd-wp VMA whose handler follows forks says EVENT_FORK (it decides the copy)."""
    from pkmm.views.pictures import memory_map
    two = {"vmas": [{"start": 0, "npages": 1},
                    {"start": 0x200000, "npages": 1, "backing": "shmem", "shared": True,
                     "uffd_wp": True, "uffd_fork": True}],
           "folios": {"A": {"order": 0}, "U": {"order": 0, "backing": "shmem"}},
           "ptes": [{"addr": 0, "folio": "A"}, {"addr": 0x200000, "folio": "U"}]}
    svg = memory_map(two).svg
    assert "VMA 0: private anon" in svg and "VMA 1: shared shmem" in svg
    assert "uffd-wp + EVENT_FORK" in svg
    two["vmas"][1]["uffd_fork"] = False
    assert "EVENT_FORK" not in memory_map(two).svg
    one = memory_map({"vmas": [{"start": 0, "npages": 1}], "folios": {"A": {"order": 0}},
                      "ptes": [{"addr": 0, "folio": "A"}]}).svg
    assert "VMA 0:" not in one


def test_decision_flow_says_in_words_what_the_call_returned() -> None:
    from pkmm.views.pictures import decision_flow
    four = {"vmas": [{"start": 0x200000, "npages": 4}], "folios": {"F": {"order": 2}},
            "ptes": [{"addr": 0x200000, "folio": "F"}]}
    svg = decision_flow(four, "v6.17", 0, only_lit=True).svg
    assert "returned 4 (PTEs mapped, no page copied)" in svg and "-&gt; map 4" not in svg


def test_vma_verdicts_reads_the_copy_decision_and_the_refcounts() -> None:
    from pkmm.errors import LayoutError
    from pkmm.views.pictures import vma_verdicts
    lay = {"vmas": [{"start": 0, "npages": 1},
                    {"start": 0x200000, "npages": 1, "backing": "file"},
                    {"start": 0x400000, "npages": 1, "backing": "shmem", "shared": True,
                     "uffd_wp": True, "uffd_fork": True}],
           "folios": {"A": {"order": 0}, "T": {"order": 0, "backing": "file"},
                      "U": {"order": 0, "backing": "shmem"}},
           "ptes": [{"addr": 0, "folio": "A"}, {"addr": 0x200000, "folio": "T"},
                    {"addr": 0x400000, "folio": "U"}]}
    v = vma_verdicts(lay, "v6.9", kinds=["anon", "file", "uffd"], summary="after <fork>")
    assert [r.copied for r in v.rows] == [True, False, True]
    assert [r.after[0][1] - r.before[0][1] for r in v.rows] == [1, 0, 1]
    html = v._repr_html_()
    assert html.startswith("<details><summary><b>after &lt;fork&gt;</b></summary>")
    assert "<svg" in html
    with pytest.raises(LayoutError, match="one name per VMA"):
        vma_verdicts(lay, "v6.9", kinds=["anon"])


def test_scan_frame_outlines_only_the_parent_and_says_why_in_main_text() -> None:
    """The batch scan reads the parent's PTEs only; its reason is the frame's lesson."""
    from pkmm.scenario import Scenario
    from pkmm.views.stepframes import StepFrames
    from pkmm.views.svg.stepframe import frame_picture
    sf = StepFrames(Scenario.from_dict(LARGE), "batch-v3")
    k = next(i for i in range(len(sf)) if sf.frame(i).event
             and sf.frame(i).event.rule.startswith("stop:"))
    f = sf.frame(k)
    svg = frame_picture(f, "batch-v3").svg
    # the scan is at all four slots, and both tables have them, yet only the parent's
    # four are outlined
    outline = 'class="pk-cur"'
    assert len(f.current) == 4 and svg.count(outline) == 4
    # the wrprotect step acts on both tables: there the child is outlined too
    w = next(i for i in range(len(sf)) if sf.frame(i).event
             and sf.frame(i).event.rule == "cow-wrprotect")
    assert frame_picture(sf.frame(w), "batch-v3").svg.count(outline) == 8
    reason = f.event.reason.split(";")[0]
    line = next(ln for ln in svg.splitlines() if reason[:30] in ln)
    assert 'class="pk-t"' in line, line


def test_rule_grid_headers_fit_their_columns() -> None:
    """Each small header spans two 144 px columns; at 11 px monospace the long private
    header used to run into the shared one ("EVENT_FORK)shmem").  The private probe is
    registered for uffd-wp in the UW row only, so that note sits on the UW row, not over
    the column; and the key's lines fit the 700 px picture (one line ran off its edge)."""
    from pkmm.views.svg.core import CHAR_W
    from pkmm.views.svg.rules import GRID_KEY, grid_headers, uw_row_note
    for uffd_fork in (True, False):
        private, shared = grid_headers(uffd_fork)
        half_p, half_s = len(private) * CHAR_W / 2, len(shared) * CHAR_W / 2
        assert 254 + half_p + 8 <= 542 - half_s          # a gap between the two headers
        svg = P.rule_grid("v6.17", uffd_fork=uffd_fork).svg
        assert private in svg and "uffd" not in private
        note = uw_row_note(uffd_fork)
        assert note in svg and len(note) * CHAR_W <= 2 * 144     # under the private cells
        assert ("no EVENT_FORK" in note) is (not uffd_fork)
        # the note comes after the UW row's cells, not in the header
        assert svg.index(note) > svg.index("UW (uffd_wp)") > svg.index(private)
    for line in GRID_KEY:
        assert 8 + len(line) * CHAR_W <= 700, line
        assert line in P.rule_grid("v6.17").svg


def test_memory_map_keeps_a_one_slot_ptes_w_d_a_on_one_line() -> None:
    """A writable, dirty, young PTE in a one-slot cell reads "W D A" on one line: wrapped, the
    lone "A" looked like a marker of its own.  Six letters ("D A UW") still wrap."""
    one = {"name": "one", "vmas": [{"start": "0x200000", "npages": 1}],
           "folios": {"P": {"order": 0}}, "ptes": [{"addr": "0x200000", "folio": "P"}]}
    texts = ["".join(t.itertext()) for t in ET.fromstring(P.memory_map(one).svg).iter()
             if t.tag.endswith("text")]
    assert "W D A" in texts and "A" not in texts
    uffd = {**one, "vmas": [{"start": "0x200000", "npages": 1, "uffd_wp": True}],
            "ptes": [{"addr": "0x200000", "folio": "P", "write": False, "uffd_wp": True}]}
    texts = ["".join(t.itertext()) for t in ET.fromstring(P.memory_map(uffd).svg).iter()
             if t.tag.endswith("text")]
    assert "D A UW" not in texts and "UW" in texts
