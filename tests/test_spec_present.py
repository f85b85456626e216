"""Spec scenarios T01-T15 and T39 (present PTEs), per kernel variant.

Every expected value is read from the fork spec's scenario tables (kernel source at the
commits each variant module names; A = v6.8,
B = batch-v3, C = v6.9, D = v6.17); every registered variant runs the row of its own spec
label (spec_helpers.by_spec); comments cite the scenario.
"""

from __future__ import annotations

import pytest
from spec_helpers import (
    BASE,
    COW_VARIANTS,
    NEWEST,
    A,
    B,
    C,
    D,
    by_spec,
    child_bits,
    p_anon_folio,
    parent_bits,
    spec,
)

import pkmm

E = "E"


# --- T01 / T02 / T03 / T04: one small anon page ---

@pytest.mark.parametrize("kernel", COW_VARIANTS)
def test_T01_small_anon_page_plain_share(kernel: str) -> None:
    p, f = p_anon_folio(0, W=1, D_=1, A_=1, SD=1, UW=0)
    pfn = f.pfn
    r = pkmm.fork(p, kernel)
    assert r.batches == [1] and r.eagain == 0
    pp, cp = p.pte(BASE), r.child.pte(BASE)
    assert (pp.pfn, pp.write, pp.dirty, pp.young, pp.soft_dirty) == (pfn, 0, 1, 1, 1)
    assert (cp.pfn, cp.write, cp.dirty, cp.young, cp.uffd_wp) == (pfn, 0, 1, 0, 0)
    # B clears the child's soft-dirty; A/C/D inherit it
    assert cp.soft_dirty == (spec(kernel) != B)
    assert (f.refcount, f.page(0).mapcount, f.page(0).anon_exclusive) == (2, 2, False)
    assert r.child.rss["MM_ANONPAGES"] == 1 and p.rss["MM_ANONPAGES"] == 1
    pkmm.check_invariants(p, r.child)


def _pinned_small(kernel: str = NEWEST) -> tuple[pkmm.Process, pkmm.Folio]:
    p, f = p_anon_folio(0, kernel=kernel, W=1, D_=1, SD=0)
    p.pin(f, 0)
    return p, f


@pytest.mark.parametrize("kernel", COW_VARIANTS)
def test_T02_pinned_small_page_is_copied_for_the_child(kernel: str) -> None:
    p, f = _pinned_small()
    assert f.refcount == 1025 and p.has_pinned
    r = pkmm.fork(p, kernel)
    assert r.batches == [E, 1]
    assert (r.eagain, r.wasted, r.copies) == (1, 0, 1)
    cp, pp = r.child.pte(BASE), p.pte(BASE)
    assert cp.pfn != f.pfn and (cp.write, cp.dirty, cp.uffd_wp) == (1, 1, 0)
    new = r.child.page_at(BASE)[0]
    assert (new.refcount, new.page(0).mapcount, new.page(0).anon_exclusive) == (1, 1, True)
    # original folio and the parent PTE are untouched
    assert (f.refcount, f.page(0).mapcount, f.page(0).anon_exclusive) == (1025, 1, True)
    assert pp.write and pp.pfn == f.pfn
    assert r.child.rss["MM_ANONPAGES"] == 1
    pkmm.check_invariants(p, r.child)


@pytest.mark.parametrize("kernel", COW_VARIANTS)
def test_T03_many_references_but_mm_never_pinned_shares(kernel: str) -> None:
    p, f = p_anon_folio(0, W=1, D_=1)
    p.vmsplice(f, 0, refs=1024)            # refcount 1025, MMF_HAS_PINNED clear
    assert f.refcount == 1025 and not p.has_pinned
    r = pkmm.fork(p, kernel)
    assert r.batches == [1] and r.copies == 0
    assert (f.refcount, f.page(0).mapcount, f.page(0).anon_exclusive) == (1026, 2, False)
    assert not p.pte(BASE).write
    pkmm.check_invariants(p, r.child)


@pytest.mark.parametrize("kernel", COW_VARIANTS)
def test_T04_pinned_looking_but_already_shared_page_is_shared(kernel: str) -> None:
    p, f = p_anon_folio(0, W=0, AE=0)
    p.vmsplice(f, 0, refs=1024)
    g = p.alloc_folio(0)                     # pin another page: MMF_HAS_PINNED set
    p.map(BASE + 0x10000, g)
    p.pin(g, 0)
    r = pkmm.fork(p, kernel)
    # non-AE pages skip the pin test: shared, not copied (g, AE and pinned, is copied)
    assert r.child.pte(BASE).pfn == f.pfn and not r.child.pte(BASE).write
    assert (f.refcount, f.page(0).mapcount) == (1026, 2)
    assert r.child.pte(BASE + 0x10000).pfn != g.pfn
    pkmm.check_invariants(p, r.child)


# --- T05..T13: PTE-mapped large folios ---------------------------------------------------

@pytest.mark.parametrize("kernel,batches", by_spec({A: [1] * 16, B: [16], C: [16], D: [16]}))
def test_T05_order4_uniform(kernel: str, batches: list[int]) -> None:
    p, f = p_anon_folio(4, W=1, D_=1, A_=1, SD=0)
    r = pkmm.fork(p, kernel)
    assert r.batches == batches
    assert parent_bits(r, "write", 16) == [0] * 16
    assert child_bits(r, "write", 16) == [0] * 16
    assert child_bits(r, "dirty", 16) == [1] * 16 and child_bits(r, "young", 16) == [0] * 16
    assert f.refcount == 32
    assert all(f.page(i).mapcount == 2 and not f.page(i).anon_exclusive for i in range(16))
    assert r.child.rss["MM_ANONPAGES"] == 16
    if spec(kernel) == D:
        assert f.large_mapcount == 32 and f.maybe_mapped_shared
    pkmm.check_invariants(p, r.child)


@pytest.mark.parametrize("dirty", [[1, 1, 0, 0], [0, 0, 1, 1]], ids=["T06", "T06b"])
@pytest.mark.parametrize("kernel", COW_VARIANTS)
def test_T06_mixed_dirty_private(kernel: str, dirty: list[int]) -> None:
    p, f = p_anon_folio(2, W=1, D_=dirty)
    r = pkmm.fork(p, kernel)
    expect = {A: ([1, 1, 1, 1], dirty), B: ([4], [1, 1, 1, 1]),
              C: ([2, 2], dirty), D: ([2, 2], dirty)}[spec(kernel)]
    assert (r.batches, child_bits(r, "dirty", 4)) == expect
    assert parent_bits(r, "dirty", 4) == dirty      # fork never touches the parent's D
    pkmm.check_invariants(p, r.child)


@pytest.mark.parametrize("kernel,batches", by_spec({A: [1, 1, 1, 1], B: [4], C: [4], D: [4]}))
def test_T07_mixed_write_private(kernel: str, batches: list[int]) -> None:
    p, f = p_anon_folio(2, W=[0, 1, 1, 1], D_=1)
    r = pkmm.fork(p, kernel)
    assert r.batches == batches
    assert parent_bits(r, "write", 4) == [0] * 4
    assert child_bits(r, "write", 4) == [0] * 4
    assert child_bits(r, "dirty", 4) == [1] * 4


def _shared_uffd_shmem(W: list[int], D_: list[int]) -> tuple[pkmm.Process, pkmm.Folio]:
    p = pkmm.Process()
    p.mmap(BASE, 64, backing="shmem", shared=True, uffd_wp=True, uffd_fork=True)
    f = p.alloc_folio(2, backing="shmem")
    for i in range(4):
        p.map(BASE + i * 4096, f, i, 1, write=bool(W[i]), dirty=bool(D_[i]))
    return p, f


@pytest.mark.parametrize("W,expect", [
    ([1, 0, 1, 0], {A: [1, 0, 1, 0], B: [0, 0, 0, 0], C: [1, 1, 1, 1], D: [1, 1, 1, 1]}),
    ([0, 1, 1, 1], {A: [0, 1, 1, 1], B: [0, 0, 0, 0], C: [1, 1, 1, 1], D: [1, 1, 1, 1]}),
    ([1, 1, 1, 1], {A: [1] * 4, B: [1] * 4, C: [1] * 4, D: [1] * 4}),
    ([0, 0, 0, 0], {A: [0] * 4, B: [0] * 4, C: [0] * 4, D: [0] * 4}),
])
@pytest.mark.parametrize("kernel", COW_VARIANTS)
def test_T08_shared_mapping_mixed_writability(kernel: str, W: list[int],
                                              expect: dict[str, list[int]]) -> None:
    p, f = _shared_uffd_shmem(W, W)
    before = [p.pte(BASE + i * 4096) for i in range(4)]
    ref = f.refcount
    r = pkmm.fork(p, kernel)
    assert [p.pte(BASE + i * 4096) for i in range(4)] == before   # parent unchanged
    assert f.refcount == ref + 4 and all(f.page(i).mapcount == 2 for i in range(4))
    assert r.child.rss["MM_SHMEMPAGES"] == 4 and r.child.rss["MM_ANONPAGES"] == 0
    assert child_bits(r, "dirty", 4) == [0] * 4 and child_bits(r, "young", 4) == [0] * 4
    assert child_bits(r, "write", 4) == expect[spec(kernel)]
    assert r.batches == ([1, 1, 1, 1] if spec(kernel) == A else [4])
    pkmm.check_invariants(p, r.child)


@pytest.mark.parametrize("child_uffd,expect", [
    (True, {A: [1, 1, 1, 1], B: [2, 2], C: [2, 2], D: [2, 2]}),
    (False, {A: [1, 1, 1, 1], B: [4], C: [2, 2], D: [2, 2]}),
], ids=["T09a", "T09b"])
@pytest.mark.parametrize("kernel", COW_VARIANTS)
def test_T09_uffd_wp_mixed(kernel: str, child_uffd: bool, expect: dict[str, list[int]]) -> None:
    p, f = p_anon_folio(2, UW=[1, 1, 0, 0], W=[0, 0, 1, 1], D_=1, uffd_wp=True,
                        uffd_fork=child_uffd)
    r = pkmm.fork(p, kernel)
    assert r.batches == expect[spec(kernel)]
    assert child_bits(r, "uffd_wp", 4) == ([1, 1, 0, 0] if child_uffd else [0] * 4)
    assert child_bits(r, "write", 4) == [0] * 4 and parent_bits(r, "write", 4) == [0] * 4
    assert parent_bits(r, "uffd_wp", 4) == [1, 1, 0, 0]


@pytest.mark.parametrize("kernel,batches", by_spec({A: [1] * 4, B: [2, 2], C: [2, 2], D: [2, 2]}))
def test_T10_protnone_mixed(kernel: str, batches: list[int]) -> None:
    p, f = p_anon_folio(2, PN=[1, 1, 0, 0], W=[0, 0, 1, 1])
    r = pkmm.fork(p, kernel)
    assert r.batches == batches
    assert child_bits(r, "protnone", 4) == [1, 1, 0, 0]
    assert child_bits(r, "write", 4) == [0] * 4 and parent_bits(r, "write", 4) == [0] * 4
    assert f.refcount == 8
    assert all(f.page(i).mapcount == 2 and not f.page(i).anon_exclusive for i in range(4))


@pytest.mark.parametrize("kernel,batches", by_spec({A: [1] * 10, B: [10], C: [10], D: [10]}))
def test_T11_folio_cut_by_vma_end(kernel: str, batches: list[int]) -> None:
    p, f = p_anon_folio(4, n=10, npages=10)
    r = pkmm.fork(p, kernel)
    assert r.batches == batches and f.refcount == 20


@pytest.mark.parametrize("kernel,batches", by_spec({A: [1] * 8, B: [4, 4], C: [4, 4], D: [4, 4]}))
def test_T12_two_physically_adjacent_folios(kernel: str, batches: list[int]) -> None:
    p = pkmm.Process()
    p.mmap(BASE, 64)
    f1 = p.alloc_folio(4)
    f2 = p.alloc_folio(2)
    assert f2.pfn == f1.pfn + 16, "setup: F2 must follow F1 physically"
    p.map(BASE, f1, 12, 4)
    p.map(BASE + 4 * 4096, f2, 0, 4)
    r = pkmm.fork(p, kernel)
    assert r.batches == batches
    assert (f1.refcount, f2.refcount) == (8, 8)


@pytest.mark.parametrize("kernel", COW_VARIANTS)
def test_T13_non_consecutive_pfns(kernel: str) -> None:
    p = pkmm.Process()
    p.mmap(BASE, 64)
    f = p.alloc_folio(2)
    for slot, page in enumerate([3, 2, 1, 0]):
        p.map(BASE + slot * 4096, f, page, 1)
    r = pkmm.fork(p, kernel)
    assert r.batches == [1, 1, 1, 1]


# --- T14 / T15: pinned large folios ---

@pytest.mark.parametrize("kernel", COW_VARIANTS)
def test_T14_one_pin_copies_every_exclusive_page(kernel: str) -> None:
    p, f = p_anon_folio(2, W=1, D_=1)
    p.pin(f, 2)
    assert f.pincount == 1
    before = [p.pte(BASE + i * 4096) for i in range(4)]
    ref = f.refcount
    r = pkmm.fork(p, kernel)
    assert r.batches == [E, 1, E, 1, E, 1, E, 1]
    assert (r.eagain, r.wasted, r.copies) == (4, 0, 4)
    pfns = {r.child.pte(BASE + i * 4096).pfn for i in range(4)}
    assert len(pfns) == 4 and not pfns & set(range(f.pfn, f.pfn + 4))
    for i in range(4):
        c = r.child.pte(BASE + i * 4096)
        assert (c.write, c.dirty) == (1, 1)
        g, k = r.child.page_at(BASE + i * 4096)
        assert g.order == 0 and g.page(k).anon_exclusive
    assert [p.pte(BASE + i * 4096) for i in range(4)] == before
    assert f.refcount == ref and all(f.page(i).anon_exclusive for i in range(4))
    assert r.child.rss["MM_ANONPAGES"] == 4
    pkmm.check_invariants(p, r.child)


# T15 as printed says C/D try a batch of 4 at PTE0.  With D = [0,0,1,1] in a private
# mapping that contradicts the spec's own folio_pte_batch rule (dirty is compared
# unless VM_SHARED; T06 shows C/D splitting on dirty): the batch at PTE0 stops after 2
# non-AE pages, which dup fine.  We test the rule: T15 as printed, and T15u with uniform
# dirty bits, where the all-or-nothing behaviour the scenario describes does show.
@pytest.mark.parametrize("dirty,expect", [
    ([0, 0, 1, 1], {A: ([1, 1, E, 1, E, 1], 2, 0, [0, 0]),
                    B: ([2, E, 1, E, 1], 2, 0, [1, 1]),      # dirty merged from PTE2,3
                    C: ([2, E, 1, E, 1], 2, 0, [0, 0]),      # batch split on dirty
                    D: ([2, E, 1, E, 1], 2, 0, [0, 0])}),
    ([1, 1, 1, 1], {A: ([1, 1, E, 1, E, 1], 2, 0, [1, 1]),
                    B: ([2, E, 1, E, 1], 2, 0, [1, 1]),
                    C: ([E, 1, E, 1, E, 1, E, 1], 4, 2, [1, 1]),   # all-or-nothing dup
                    D: ([E, 1, E, 1, E, 1, E, 1], 4, 2, [1, 1])}),
], ids=["T15", "T15u"])
@pytest.mark.parametrize("kernel", COW_VARIANTS)
def test_T15_pinned_folio_with_shared_prefix(kernel: str, dirty: list[int],
                                             expect: dict[str, tuple]) -> None:
    p, f = p_anon_folio(2, AE=[0, 0, 1, 1], W=[0, 0, 1, 1], D_=dirty)
    p.pin(f, 2)
    ref = f.refcount
    r = pkmm.fork(p, kernel)
    assert (r.batches, r.eagain, r.wasted, child_bits(r, "dirty", 2)) == expect[spec(kernel)]
    assert r.copies == 2
    assert child_bits(r, "write", 2) == [0, 0]
    for i in (2, 3):
        c = r.child.pte(BASE + i * 4096)
        assert c.pfn not in range(f.pfn, f.pfn + 4) and (c.write, c.dirty) == (1, 1)
    assert f.refcount == ref + 2 and [f.page(i).mapcount for i in range(4)] == [2, 2, 1, 1]
    assert r.child.rss["MM_ANONPAGES"] == 4
    pkmm.check_invariants(p, r.child)


# --- T39: PMD-slice boundary ----------------------------------------------------------------

@pytest.mark.parametrize("kernel,batches",
                         by_spec({A: [1, 1, 1, 1], B: [1, 3], C: [1, 3], D: [1, 3]}))
def test_T39_pmd_slice_boundary_limits_batches(kernel: str, batches: list[int]) -> None:
    p = pkmm.Process()
    start = BASE + 0x200000 - 4096           # last slot of one PMD slice
    p.mmap(start - 4096, 8)
    f = p.alloc_folio(2)
    p.map(start, f)
    r = pkmm.fork(p, kernel)
    assert r.batches == batches
    if spec(kernel) in (C, D):
        assert r.steps[0].stop == "max_nr-1"     # per-PTE path: only one slot left
