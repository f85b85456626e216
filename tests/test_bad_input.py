"""Bad input gets a typed error naming the argument and the fix, before any state changes."""

from __future__ import annotations

import copy
import json

import pytest

import pkmm
from pkmm.scenario import Scenario, load_scenario

BASE = 0x200000


def _state(p: pkmm.Process) -> tuple:
    """Everything a failed call must leave unchanged."""
    ptes = [(a, p.pte(a)) for a, _ in p.ptes()]
    folios = sorted((f.pfn, f.refcount, f.mapcount, f.pincount,
                     tuple(pg.anon_exclusive for pg in f.pages))
                    for f in p.machine.folios.values())
    return ptes, folios, dict(p.rss), [v.describe() for v in p.vmas], p.has_pinned


@pytest.fixture
def proc() -> tuple[pkmm.Process, pkmm.Folio]:
    p = pkmm.Process()
    p.mmap(BASE, 16)
    f = p.alloc_folio(2)
    p.map(BASE, f)
    return p, f


@pytest.mark.parametrize("call,words", [
    (lambda p, f: p.map(BASE + 1, f), "not page-aligned"),
    (lambda p, f: p.map(0x900000, p.alloc_folio(0)), "not inside any VMA"),
    (lambda p, f: p.map(BASE + 14 * 4096, p.alloc_folio(2)), "run past the VMA end"),
    (lambda p, f: p.map(BASE + 8 * 4096, p.alloc_folio(2), 2, 3), "past the folio's end"),
    (lambda p, f: p.map(BASE, p.alloc_folio(0)), "already present"),
    (lambda p, f: p.map(BASE + 8 * 4096, f, 0, 1), "already mapped"),
    (lambda p, f: p.map(BASE + 8 * 4096, p.alloc_folio(0, backing="file")), "anonymous VMA"),
    (lambda p, f: p.map(BASE + 8 * 4096, p.alloc_folio(0), protnone=True, write=True),
     "protnone"),
    (lambda p, f: p.map(BASE + 8 * 4096, p.alloc_folio(0), anon_exclusive=False, write=True),
     "anon_exclusive=False"),
    (lambda p, f: p.map(BASE + 8 * 4096, p.alloc_folio(0), uffd_wp=True, write=True),
     "uffd_wp=True"),
    (lambda p, f: p.map(BASE + 8 * 4096, f, 0, 1, anon_exclusive=False, write=False),
     "already mapped"),
    (lambda p, f: p.alloc_folio(10), "order"),
    (lambda p, f: p.alloc_folio(-1), "order"),
    (lambda p, f: p.mmap(BASE + 4096, 4), "overlaps"),
    (lambda p, f: p.mmap(0x800000, 0), "npages"),
    (lambda p, f: p.mmap(0x800000, 4, backing="hugetlb"), "backing"),
    (lambda p, f: p.mmap(0x800000, 4, uffd_fork=True), "uffd_fork"),
    (lambda p, f: p.mmap(0x800000, 4, backing="file", wipeonfork=True), "WIPEONFORK"),
    (lambda p, f: p.map_pmd(BASE + 4096, p.alloc_folio(9)), "2 MiB aligned"),
    (lambda p, f: p.map_pmd(BASE, p.alloc_folio(4)), "order-9"),
    (lambda p, f: p.map_zero_page(BASE), "already present"),
    (lambda p, f: p.pin(p.alloc_folio(0), 0), "does not map"),
    (lambda p, f: p.pin(f, 7), "page=7"),
    (lambda p, f: p.unpin(f, 0), "holds no pin"),
    (lambda p, f: pkmm.dma_write(f, 0, 1), "not pinned"),
    (lambda p, f: pkmm.fork(p, kernel="v5.0"), "kernel='v5.0'"),
    (lambda p, f: pkmm.fork(p, without={"cow"}), "unknown ablation"),
    (lambda p, f: p.pte(BASE + 3), "not page-aligned"),
])
def test_layout_errors_are_typed_and_change_nothing(proc, call, words: str) -> None:
    p, f = proc
    before = _state(p)
    with pytest.raises(pkmm.LayoutError, match=words):
        call(p, f)
    after = _state(p)
    # alloc_folio inside the lambda may add a fresh, unmapped folio: ignore those
    assert after[0] == before[0] and after[2:] == before[2:]
    assert {x for x in after[1] if x[2]} == {x for x in before[1] if x[2]}


def test_writable_page_cache_page_in_private_mapping_is_impossible() -> None:
    p = pkmm.Process()
    p.mmap(BASE, 4, backing="file")
    with pytest.raises(pkmm.LayoutError, match="page-cache page in a private mapping"):
        p.map(BASE, p.alloc_folio(0, backing="file"), write=True)
    assert p.pte(BASE) is None
    p.map(BASE, p.alloc_folio(0, backing="file"))            # default: mapped read-only
    assert not p.pte(BASE).write
    p.mmap(0x800000, 4, backing="file", shared=True)
    p.map(0x800000, p.alloc_folio(0, backing="file"))      # shared: writable is fine
    assert p.pte(0x800000).write


def test_default_write_is_as_writable_as_the_kernel_can_map() -> None:
    p = pkmm.Process()
    p.mmap(BASE, 8)
    p.mmap(0x800000, 2, write=False)
    p.map(BASE, p.alloc_folio(0))
    p.map(BASE + 4096, p.alloc_folio(0), uffd_wp=True)
    p.map(BASE + 2 * 4096, p.alloc_folio(0), protnone=True)
    p.map(BASE + 3 * 4096, p.alloc_folio(0), anon_exclusive=False)
    p.map(0x800000, p.alloc_folio(0))
    assert [p.pte(a).write for a in (BASE, BASE + 4096, BASE + 2 * 4096, BASE + 3 * 4096,
                                     0x800000)] == [True, False, False, False, False]
    pkmm.check_invariants(p)


def test_layout_error_is_a_value_error() -> None:
    assert issubclass(pkmm.LayoutError, ValueError)
    assert issubclass(pkmm.ScenarioError, ValueError)


def test_pin_of_shared_page_explains_unshare() -> None:
    p = pkmm.Process()
    p.mmap(BASE, 4)
    f = p.alloc_folio(0)
    p.map(BASE, f)
    pkmm.fork(p)
    with pytest.raises(pkmm.LayoutError, match="not AnonExclusive"):
        p.pin(f, 0)


def test_exited_process_rejects_calls() -> None:
    p = pkmm.Process()
    p.exit()
    for call in (lambda: p.mmap(0, 1), lambda: pkmm.fork(p), lambda: p.read(0)):
        with pytest.raises(pkmm.LayoutError, match="exited"):
            call()


def test_access_outside_vma_is_a_fault_error() -> None:
    p = pkmm.Process()
    with pytest.raises(pkmm.FaultError) as e:
        p.read(0x1000)
    assert e.value.signal == "SIGSEGV"
    p.mmap(BASE, 1, write=False)
    with pytest.raises(pkmm.FaultError, match="read-only"):
        p.write(BASE, 1)


GOOD = {"name": "t", "vmas": [{"start": "0x200000", "npages": 16}],
        "folios": {"F": {"order": 2}},
        "ptes": [{"addr": "0x200000", "folio": "F", "write": True}],
        "pins": [{"folio": "F", "page": 1}]}


@pytest.mark.parametrize("mutate,words", [
    (lambda d: d.update(kernel="v9"), "kernel"),
    (lambda d: d.update(extra=1), "unknown section"),
    (lambda d: d["vmas"][0].pop("npages"), r"vmas\[0\]: missing required key 'npages'"),
    (lambda d: d["vmas"][0].update(npages="many"), r"vmas\[0\].npages"),
    (lambda d: d["ptes"][0].update(folio="G"), r"ptes\[0\].folio"),
    (lambda d: d["ptes"][0].update(write="yes"), r"ptes\[0\].write"),
    (lambda d: d["ptes"][0].update(colour=1), "unknown key"),
    (lambda d: d.update(vmas={}), "vmas: expected a list"),
    (lambda d: d["folios"]["F"].update(order=12), r"folios.F.order: 12 is out of range"),
    (lambda d: d["ptes"][0].update(addr="0x900000"), r"ptes\[0\]: .*not inside any VMA"),
])
def test_malformed_scenarios_name_the_field(mutate, words: str) -> None:
    d = copy.deepcopy(GOOD)
    mutate(d)
    with pytest.raises(pkmm.ScenarioError, match=words):
        Scenario.from_dict(d).build()


def test_scenario_round_trip_and_json(tmp_path) -> None:
    s = Scenario.from_dict(GOOD)
    assert Scenario.from_dict(s.to_dict()) == s
    path = tmp_path / "s.json"
    path.write_text(json.dumps(GOOD))
    p, folios = load_scenario(path).build()
    assert folios["F"].pincount == 1 and p.has_pinned
    with pytest.raises(pkmm.ScenarioError, match="not valid JSON"):
        load_scenario("{not json")
    with pytest.raises(pkmm.ScenarioError, match="does not exist"):
        load_scenario(tmp_path / "missing.json")
