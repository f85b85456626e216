"""pkmm.replay: every frame holds the model's own state at that point of the fork."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from random_layouts import random_layout

import pkmm
from pkmm.mm import MM_SWAPENTS, NR_MM_COUNTERS
from pkmm.pte import is_migration_entry, is_swap_entry
from pkmm.replay import ForkReplay, Frame, MmState
from pkmm.scenario import Scenario
from pkmm.trace import Event, Step
from pkmm.views.frames import ForkFrames

PMD_THP = {"vmas": [{"start": 0x200000, "npages": 512}], "folios": {"T": {"order": 9}},
           "pmds": [{"addr": 0x200000, "folio": "T"}]}


def _live(p: pkmm.Process) -> dict[int, pkmm.Pte | None]:
    return dict(p.ptes())


def _recorded(mm: MmState) -> dict[int, pkmm.Pte | None]:
    return dict(mm.slots())


def _counter(kind: str) -> str:
    return {"anon": "MM_ANONPAGES", "shmem": "MM_SHMEMPAGES"}.get(kind, "MM_FILEPAGES")


def _counted_rss(mm: MmState, fr: Frame) -> Counter[str]:
    """What the recorded slots map, by rss counter (as invariants.py counts it)."""
    rss: Counter[str] = Counter()
    for leaf in mm.pmds.values():
        hit = fr.page_of(leaf.pfn)
        if hit is not None:
            rss[_counter(hit[0].kind)] += 512
    for _, pte in mm.slots():
        if pte is None or pte.pmd:
            continue
        if pte.present:
            hit = None if pte.special else fr.page_of(pte.pfn)
            if hit is not None:
                rss[_counter(hit[0].kind)] += 1
        elif is_swap_entry(pte):
            rss[MM_SWAPENTS] += 1
        elif is_migration_entry(pte):
            assert pte.swp is not None
            hit = fr.page_of(pte.swp.offset)
            if hit is not None:
                rss[_counter(hit[0].kind)] += 1
    return rss


def test_pmd_thp_frames_show_the_models_refcount() -> None:
    # views/frames.py used to rebuild refcount from mapcount deltas: -510 for a PMD THP
    ff = ForkFrames(Scenario.from_dict(PMD_THP), "v6.17")
    refs = [ff.snapshot(k).refcount["T"] for k in range(len(ff))]
    assert refs[0] == 1 and refs[-1] == 2 and set(refs) == {1, 2}
    share = next(k for k, e in enumerate(ff.events, 1) if e.rule == "share")
    assert refs[share] == 2 and refs[share - 1] == 1        # folio_get at copy_huge_pmd
    last = ff.snapshot(len(ff) - 1)
    assert last.rss["MM_ANONPAGES"] == 512 and last.pages[("T", 0)] == (2, False)


def test_migration_entry_counts_in_the_childs_rss() -> None:
    p = pkmm.Process()
    p.mmap(0, 2)
    p.map(0, p.alloc_folio(0))
    p.map_migration(0x1000, p.alloc_folio(0))
    rp = ForkReplay(p, "v6.9")
    assert rp.child is not None
    assert rp[-1].child.rss["MM_ANONPAGES"] == rp.child.rss["MM_ANONPAGES"] == 2
    # mid-pass the kernel keeps the counts in copy_pte_range's local rss[]
    step = next(f for f in rp if isinstance(f.item, Step) and f.item.action == "nonpresent")
    assert step.child.rss["MM_ANONPAGES"] == 0 and step.pending_rss["MM_ANONPAGES"] == 2


def test_first_and_last_frames_equal_the_model_before_and_after() -> None:
    lay = random_layout(7)
    before, _ = lay.build()
    p, _ = lay.build()
    rp = ForkReplay(p, "v6.17")
    assert rp.child is not None and rp.result is not None
    assert _recorded(rp[0].parent) == _live(before) and rp[0].child.vmas == ()
    assert _recorded(rp[-1].parent) == _live(p) and _recorded(rp[-1].child) == _live(rp.child)
    assert dict(rp[-1].child.rss) == dict(rp.child.rss)
    for pfn, f in p.machine.folios.items():
        if f.kind in ("zero", "huge_zero"):
            continue
        got = rp[-1].folio(pfn)
        assert (got.refcount, got.pincount, got.entire_mapcount, got.mapcount) == \
            (f.refcount, f.pincount, f.entire_mapcount, f.mapcount)
        assert got.pages == tuple((pg.mapcount, pg.anon_exclusive) for pg in f.pages)
    events = [f.item for f in rp if isinstance(f.item, Event)]
    steps = [f.item for f in rp if isinstance(f.item, Step)]
    assert events == list(rp.result.trace) and steps == rp.result.steps


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), kernel=st.sampled_from(pkmm.KERNELS))
def test_every_frame_is_a_consistent_model_state(seed: int, kernel: str) -> None:
    p, _ = random_layout(seed).build()
    rp = ForkReplay(p, kernel)
    written: dict[int, pkmm.Pte | None] = {}
    for fr in rp:
        for f in fr.folios.values():          # refcount >= mapcount + pins at every point
            assert f.refcount >= f.mapcount + f.pincount, (fr.index, fr.item, f)
        for addr, pte in fr.child.slots():    # fork writes each child slot once
            if addr in written:
                assert pte == written[addr], (fr.index, fr.item, addr)
            elif pte is not None:
                written[addr] = pte
        if isinstance(fr.item, Step):         # between passes: counters match the slots
            counted = _counted_rss(fr.child, fr)
            for c in NR_MM_COUNTERS:
                assert counted[c] == fr.child.rss[c] + fr.pending_rss[c], (fr.index, c)
    assert [f.index for f in rp] == list(range(len(rp)))


def test_a_failed_fork_keeps_its_frames() -> None:
    p = pkmm.Process()
    p.mmap(0, 4)
    f = p.alloc_folio(2)
    p.map(0, f)
    p.pin(f, 1)
    rp = ForkReplay(p, "v6.9", fail_prealloc=True)
    assert rp.result is None and isinstance(rp.error, pkmm.ForkError)
    assert rp[-1].item is not None and rp[-1].item.rule == "prealloc-failed"
    assert "failed" in repr(rp)


def test_observer_needs_a_detailed_trace() -> None:
    p = pkmm.Process()
    p.mmap(0, 1)
    with pytest.raises(pkmm.LayoutError, match="detail=True"):
        pkmm.fork(p, observer=lambda *a: None, detail=False)


def test_the_rss_count_of_this_test_agrees_with_the_model() -> None:
    p, _ = random_layout(3).build()
    rp = ForkReplay(p, "v6.8")
    assert rp.child is not None
    counted = _counted_rss(rp[-1].child, rp[-1])
    assert all(counted[c] == rp.child.rss[c] for c in NR_MM_COUNTERS)
