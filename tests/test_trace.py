"""A summarised trace (detail=False) keeps exact counts; eager-copy's kalloc failure."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from random_layouts import random_layout

import pkmm


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), kernel=st.sampled_from(pkmm.KERNELS))
def test_summarised_trace_counts_equal_the_detailed_ones(seed: int, kernel: str) -> None:
    lay = random_layout(seed)
    full = pkmm.fork(lay.build()[0], kernel, detail=True)
    summ = pkmm.fork(lay.build()[0], kernel, detail=False)
    assert summ.trace.events == [] and summ.steps == []
    assert summ.trace.counts == Counter((e.func, e.rule) for e in full.trace)
    assert summ.step_counts == full.step_counts
    assert summ.actions() == Counter(s.action for s in full.steps)
    assert (summ.eagain, summ.copies, summ.wasted, summ.ops) == \
        (full.eagain, full.copies, full.wasted, full.ops)


@pytest.mark.parametrize("thp", [False, True])
def test_eager_copy_allocation_failure_fails_fork_without_leaks(thp: bool) -> None:
    p = pkmm.Process("eager-copy")
    p.mmap(0x200000, 512)
    if thp:
        p.map_pmd(0x200000, p.alloc_folio(9))
    else:
        p.map(0x200000, p.alloc_folio(2))
    folios = set(p.machine.folios)
    p.machine.fail_alloc = 1                      # the next kalloc fails
    with pytest.raises(pkmm.ForkError) as e:
        pkmm.fork(p, "eager-copy")
    assert e.value.trace is not None and e.value.trace.filter(rule="alloc-failed")
    assert set(p.machine.folios) == folios and p.machine.mms == [p.mm]
    pkmm.check_invariants(p)


@pytest.mark.parametrize("kernel", pkmm.KERNELS)
def test_child_pte_reason_names_a_cleared_bit_only_when_there_was_one(kernel: str) -> None:
    """A learner reading the trace must not be told a bit was cleared that was never set:
    the child-PTE event names uffd-wp / soft-dirty only if the value it clears carried it."""
    def child_pte_reasons(**bits: bool) -> list[str]:
        p = pkmm.Process(kernel)
        p.mmap(0x200000, 4, uffd_wp=bits.get("uffd_wp", False))
        p.map(0x200000, p.alloc_folio(2), **bits)
        r = pkmm.fork(p, kernel)
        return [e.reason for e in r.trace if e.rule in ("set-pte", "set-ptes")]

    plain = child_pte_reasons(dirty=False)
    if not plain:   # eager-copy copies every private page: no shared child PTE to write
        return
    assert not any("uffd-wp" in why or "soft-dirty cleared" in why for why in plain)
    # a dirty private batch: batch-v3's pte_mkdirty() sets SD too (x86), then clears it
    dirty = child_pte_reasons(dirty=True)
    assert all(("soft-dirty cleared" in why) == (kernel == "batch-v3") for why in dirty)
    marked = child_pte_reasons(uffd_wp=True, soft_dirty=True)
    # the child of a uffd-wp VMA without EVENT_FORK is not registered: its bit is cleared
    assert all("uffd-wp cleared" in why for why in marked)
