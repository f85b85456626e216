"""Spec scenarios T16-T38: PMD THPs, non-present entries, VMA skips, lock breaks, file and
PFN maps, soft-dirty, failures, and the fault path after fork.

Out of scope (not modelled): T23/T24 device-private/-exclusive entries, T21b swap-count
continuation pages, T40 (D+ only).
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
    spec,
)

import pkmm

E = "E"
HUGE = 0x400000          # a 2 MiB-aligned address


def _thp(kernel: str = NEWEST, pinned: bool = False) -> tuple[pkmm.Process, pkmm.Folio]:
    p = pkmm.Process(kernel)
    p.mmap(HUGE, 512)
    f = p.alloc_folio(9)
    p.map_pmd(HUGE, f, write=True, dirty=True)
    if pinned:
        p.pin(f, 7)
    return p, f


# --- T16..T19: PMD level ---

@pytest.mark.parametrize("kernel", COW_VARIANTS)
def test_T16_pmd_thp_shared(kernel: str) -> None:
    p, f = _thp()
    assert (f.refcount, f.entire_mapcount, f.page(0).anon_exclusive) == (1, 1, True)
    nr_ptes = 0
    r = pkmm.fork(p, kernel)
    cp, pp = r.child.pmd(HUGE), p.pmd(HUGE)
    assert cp is not None and cp.pfn == f.pfn and (cp.write, cp.dirty, cp.young) == (0, 1, 0)
    assert pp is not None and not pp.write
    assert (f.entire_mapcount, f.refcount, f.page(0).anon_exclusive) == (2, 2, False)
    assert f.page(100).mapcount == 2
    assert r.child.rss["MM_ANONPAGES"] == 512
    assert r.child.mm.nr_ptes == nr_ptes + 1          # the deposited table
    assert r.steps == []                               # no PTE-level copy
    pkmm.check_invariants(p, r.child)


@pytest.mark.parametrize("kernel", COW_VARIANTS)
def test_T17_pinned_pmd_thp_is_split_and_copied_per_page(kernel: str) -> None:
    p, f = _thp(pinned=True)
    r = pkmm.fork(p, kernel)
    assert p.pmd(HUGE) is None and r.child.pmd(HUGE) is None
    assert r.batches == [E, 1] * 512
    assert (r.eagain, r.copies) == (512, 512)
    assert all(p.pte(HUGE + i * 4096).write and p.pte(HUGE + i * 4096).dirty
               for i in range(0, 512, 37))
    assert all(f.page(i).anon_exclusive for i in range(512))    # every subpage AE
    assert f.order == 9 and f.entire_mapcount == 0 and f.page(3).mapcount == 1
    c = r.child.pte(HUGE + 5 * 4096)
    assert c.pfn not in range(f.pfn, f.pfn + 512) and (c.write, c.dirty) == (1, 1)
    assert r.child.rss["MM_ANONPAGES"] == 512
    assert r.child.mm.nr_ptes == 1
    pkmm.check_invariants(p, r.child)


@pytest.mark.parametrize("kernel", COW_VARIANTS)
def test_T18_huge_zero_pmd(kernel: str) -> None:
    p = pkmm.Process()
    p.mmap(HUGE, 512)
    p.map_huge_zero_pmd(HUGE)
    r = pkmm.fork(p, kernel)
    cp = r.child.pmd(HUGE)
    assert cp is not None and cp.huge_zero and not cp.write and not cp.young
    assert r.child.mm.nr_ptes == 1 and r.child.mm.huge_zero_ref
    assert dict(r.child.rss) == {k: 0 for k in r.child.rss}


@pytest.mark.parametrize("kernel", COW_VARIANTS)
def test_T19_file_thp_pmd_is_never_copied(kernel: str) -> None:
    p = pkmm.Process()
    p.mmap(HUGE, 1024, backing="file")
    f = p.alloc_folio(9, backing="file")
    p.map_pmd(HUGE, f, write=False, dirty=False)
    a = p.alloc_folio(0)                          # a COWed page gives the VMA an anon_vma
    p.map(HUGE + 0x200000, a)
    ref = f.refcount
    r = pkmm.fork(p, kernel)
    assert r.child.pmd(HUGE) is None and r.child.pte(HUGE) is None
    assert f.refcount == ref and r.child.rss["MM_FILEPAGES"] == 0
    assert r.child.pte(HUGE + 0x200000).pfn == a.pfn   # the anon page is copied


# --- T20..T22, T25: zero page and non-present entries ---------------------------------------

@pytest.mark.parametrize("kernel", COW_VARIANTS)
def test_T20_shared_zero_page_pte(kernel: str) -> None:
    p = pkmm.Process()
    p.mmap(BASE, 16)
    p.map_zero_page(BASE)
    p.map(BASE + 4096, p.alloc_folio(0))          # anon_vma, so the VMA is copied
    zero = p.machine.zero_folio
    ref = zero.refcount
    r = pkmm.fork(p, kernel)
    c = r.child.pte(BASE)
    assert c.pfn == p.pte(BASE).pfn and c.special and not c.young and not c.write
    assert r.batches[0] == 1 and r.steps[0].action == "raw"
    assert zero.refcount == ref and r.child.rss["MM_ANONPAGES"] == 1


@pytest.mark.parametrize("kernel", COW_VARIANTS)
def test_T21_swap_entry(kernel: str) -> None:
    p = pkmm.Process()
    p.mmap(BASE, 16)
    off = p.map_swap(BASE, 7, exclusive=True, soft_dirty=True, uffd_wp=True)
    r = pkmm.fork(p, kernel)
    assert p.machine.swap[off].count == 2
    pp, cp = p.pte(BASE), r.child.pte(BASE)
    assert not pp.present and not pp.swp.exclusive and pp.soft_dirty and pp.uffd_wp
    assert not cp.present and cp.swp.offset == off and not cp.swp.exclusive
    assert cp.soft_dirty and not cp.uffd_wp
    assert r.child.rss["MM_SWAPENTS"] == 1 and r.child.mm.on_mmlist
    assert [s.action for s in r.steps] == ["nonpresent"]
    assert r.child.read(BASE) == 7 and p.read(BASE) == 7
    pkmm.check_invariants(p, r.child)


@pytest.mark.parametrize("kind,parent_after", [("write", "migration_read"),
                                               ("read_exclusive", "migration_read"),
                                               ("read", "migration_read")],
                         ids=["T22a", "T22b", "T22c"])
@pytest.mark.parametrize("kernel", COW_VARIANTS)
def test_T22_migration_entries_private(kernel: str, kind: str, parent_after: str) -> None:
    p = pkmm.Process()
    p.mmap(BASE, 16)
    f = p.alloc_folio(0)
    p.map_migration(BASE, f, 0, kind=kind, soft_dirty=True, uffd_wp=True)
    ref, mc = f.refcount, f.page(0).mapcount
    r = pkmm.fork(p, kernel)
    pp, cp = p.pte(BASE), r.child.pte(BASE)
    assert pp.swp.kind == parent_after and pp.soft_dirty and pp.uffd_wp
    assert cp.swp.kind == "migration_read" and cp.soft_dirty and not cp.uffd_wp
    assert r.child.rss["MM_ANONPAGES"] == 1
    assert (f.refcount, f.page(0).mapcount) == (ref, mc)


@pytest.mark.parametrize("kernel", COW_VARIANTS)
def test_T22d_migration_entry_shared_shmem_child_uffd(kernel: str) -> None:
    p = pkmm.Process()
    p.mmap(BASE, 16, backing="shmem", shared=True, uffd_wp=True, uffd_fork=True)
    f = p.alloc_folio(0, backing="shmem")
    p.map_migration(BASE, f, 0, kind="write")
    r = pkmm.fork(p, kernel)
    assert p.pte(BASE).swp.kind == "migration_write"      # not a COW mapping
    assert r.child.pte(BASE).swp.kind == "migration_write"
    assert r.child.rss["MM_SHMEMPAGES"] == 1


def _private_shmem_with_marker(child_uffd: bool, *markers: str) -> pkmm.Process:
    p = pkmm.Process()
    p.mmap(BASE, 16, backing="shmem", uffd_wp=child_uffd, uffd_fork=child_uffd)
    p.map(BASE + 4096, p.alloc_folio(0))            # a COWed page: the VMA has an anon_vma
    p.map_marker(BASE, *markers)
    return p


@pytest.mark.parametrize("kernel", COW_VARIANTS)
def test_T25_pte_markers(kernel: str) -> None:
    r = pkmm.fork(_private_shmem_with_marker(False, "uffd_wp"), kernel)
    assert r.child.pte(BASE) is None                         # (a) dropped
    r = pkmm.fork(_private_shmem_with_marker(True, "uffd_wp"), kernel)
    assert r.child.pte(BASE).swp.markers == {"uffd_wp"}      # (b) kept
    r = pkmm.fork(_private_shmem_with_marker(False, "poisoned"), kernel)
    assert r.child.pte(BASE).swp.markers == {"poisoned"}     # (c) always copied


@pytest.mark.parametrize("kernel", COW_VARIANTS)
def test_T25d_guard_marker_copied_from_v6_13(kernel: str) -> None:
    p = pkmm.Process()
    p.mmap(BASE, 16)
    p.map(BASE + 4096, p.alloc_folio(0))
    p.map_marker(BASE, "guard")
    child = pkmm.fork(p, kernel).child.pte(BASE)
    if spec(kernel) == D:
        assert child is not None and child.swp is not None and child.swp.markers == {"guard"}
    else:                                   # copy_pte_marker() before v6.13 drops GUARD
        assert child is None


# --- T26: VMA-level skips ------------------------------------------------------------------------

@pytest.mark.parametrize("kernel", pkmm.KERNELS)
def test_T26_vma_level_skips(kernel: str) -> None:
    p = pkmm.Process()
    p.mmap(0x100000, 4, dontfork=True)
    p.map(0x100000, p.alloc_folio(0))
    p.mmap(0x200000, 4, wipeonfork=True)
    wf = [p.alloc_folio(0) for _ in range(3)]
    for i, g in enumerate(wf):
        p.map(0x200000 + i * 4096, g)
        p.write(0x200000 + i * 4096, 5)
    p.mmap(0x300000, 4, backing="shmem", shared=True)
    sh = p.alloc_folio(0, backing="shmem")
    p.map(0x300000, sh)
    p.mmap(0x400000, 4, backing="file")
    tx = p.alloc_folio(0, backing="file")
    p.map(0x400000, tx, write=False, dirty=False)
    refs = [g.refcount for g in wf] + [sh.refcount, tx.refcount]
    r = pkmm.fork(p, kernel)
    c = r.child
    assert c.vma(0x100000) is None                                 # (a) no VMA
    assert c.vma(0x200000) is not None and c.vma(0x200000).anon_vma is None
    assert all(c.pte(0x200000 + i * 4096) is None for i in range(3))  # (b) empty
    assert c.read(0x200000) == 0
    assert c.pte(0x300000) is None and c.pte(0x400000) is None     # (c), (d)
    assert [g.refcount for g in wf] + [sh.refcount, tx.refcount] == refs
    assert c.rss["MM_SHMEMPAGES"] == 0 and c.rss["MM_FILEPAGES"] == 0
    assert r.steps == []
    with pytest.raises(pkmm.FaultError):
        c.read(0x100000)
    # refault of a skipped shared/file VMA finds the same page-cache page
    c.read(0x300000)
    assert c.pte(0x300000).pfn == sh.pfn
    pkmm.check_invariants(p, c)


# --- T27: lock-break timing ----------------------------------------------------------------------

def _small_pages(p: pkmm.Process, start: int, n: int) -> None:
    for i in range(n):
        p.map(start + i * 4096, p.alloc_folio(0))


@pytest.mark.parametrize("kernel", COW_VARIANTS)
def test_T27a_sixteen_small_pages_break_every_four(kernel: str) -> None:
    p = pkmm.Process()
    p.mmap(BASE, 16)
    _small_pages(p, BASE, 16)
    r = pkmm.fork(p, kernel, need_resched=True)
    assert (r.passes, r.lock_breaks) == (4, 3)
    breaks = [e.addr for e in r.trace.filter(rule="lock-break")]
    assert breaks == [BASE + 4 * 4096, BASE + 8 * 4096, BASE + 12 * 4096]


@pytest.mark.parametrize("kernel,passes", by_spec({A: 4, B: 1, C: 1, D: 1}))
def test_T27b_one_large_folio(kernel: str, passes: int) -> None:
    p, _ = p_anon_folio(4, npages=16)
    assert pkmm.fork(p, kernel, need_resched=True).passes == passes


@pytest.mark.parametrize("kernel,passes", by_spec({A: 6, B: 3, C: 3, D: 3}))
def test_T27b2_large_folio_then_small_pages(kernel: str, passes: int) -> None:
    p, _ = p_anon_folio(4, npages=24)
    _small_pages(p, BASE + 16 * 4096, 8)
    r = pkmm.fork(p, kernel, need_resched=True)
    assert r.passes == passes
    if spec(kernel) != A:
        assert r.trace.filter(rule="lock-break")[0].addr == BASE + 16 * 4096


@pytest.mark.parametrize("kernel", COW_VARIANTS)
def test_T27c_none_slots_count_one(kernel: str) -> None:
    p = pkmm.Process()
    p.mmap(BASE, 41)
    _small_pages(p, BASE + 40 * 4096, 1)
    r = pkmm.fork(p, kernel, need_resched=True)
    assert r.passes == 2 and r.trace.filter(rule="lock-break")[0].addr == BASE + 32 * 4096


@pytest.mark.parametrize("kernel", COW_VARIANTS)
def test_T27d_mixed_progress(kernel: str) -> None:
    p = pkmm.Process()
    p.mmap(BASE, 8)
    _small_pages(p, BASE + 3 * 4096, 5)
    r = pkmm.fork(p, kernel, need_resched=True)
    # progress 1,2,3,11,19,27,35 -> break before the 5th present PTE (slot 7)
    assert r.trace.filter(rule="lock-break")[0].addr == BASE + 7 * 4096


# --- T28, T29: file pages and PFN maps ---

@pytest.mark.parametrize("kernel", COW_VARIANTS)
def test_T28_private_file_mapping_with_anon_vma(kernel: str) -> None:
    p = pkmm.Process()
    p.mmap(BASE, 16, backing="file")
    pc = p.alloc_folio(0, backing="file")
    p.map(BASE, pc, write=False, dirty=False)
    anon = p.alloc_folio(0)
    p.map(BASE + 4096, anon)
    p.mmap(0x800000, 16, backing="shmem")           # memfd mapped privately
    sm = p.alloc_folio(0, backing="shmem")
    p.map(0x800000, sm, write=False, dirty=False)
    p.map(0x800000 + 4096, p.alloc_folio(0))
    refs = (pc.refcount, sm.refcount)
    r = pkmm.fork(p, kernel)
    c = r.child
    assert r.batches == [1, 1, 1, 1]
    cp = c.pte(BASE)
    assert (cp.pfn, cp.write, cp.dirty, cp.young) == (pc.pfn, 0, 0, 0)
    assert (pc.refcount, sm.refcount) == (refs[0] + 1, refs[1] + 1)
    assert pc.page(0).mapcount == 2 and not anon.page(0).anon_exclusive
    assert dict(c.rss) == {"MM_FILEPAGES": 1, "MM_ANONPAGES": 2, "MM_SWAPENTS": 0,
                           "MM_SHMEMPAGES": 1}


@pytest.mark.parametrize("kernel", COW_VARIANTS)
def test_T29_pfn_maps(kernel: str) -> None:
    p = pkmm.Process()
    p.mmap(BASE, 4, backing="file", shared=True, pfnmap=True)
    p.map_pfn(BASE, 0x42, write=True, dirty=True)
    p.mmap(0x600000, 4, backing="file", pfnmap=True)
    p.map_pfn(0x600000, 0x43, write=True)
    cow = p.alloc_folio(0)
    p.map(0x600000 + 4096, cow)
    r = pkmm.fork(p, kernel)
    a = r.child.pte(BASE)
    assert (a.pfn, a.write, a.dirty, a.young) == (0x42, 1, 0, 0)         # (a)
    assert p.pte(BASE).write and p.pte(BASE).dirty
    assert not p.pte(0x600000).write and not r.child.pte(0x600000).write  # (b)
    assert cow.refcount == 2 and not cow.page(0).anon_exclusive          # (c) = T01
    assert r.child.rss["MM_ANONPAGES"] == 1


# --- T30: soft-dirty

@pytest.mark.parametrize("tracking,sd,expect", [
    (True, [1, 1, 0, 0], {A: ([1] * 4, [1, 1, 0, 0]), B: ([4], [0] * 4),
                          C: ([2, 2], [1, 1, 0, 0]), D: ([2, 2], [1, 1, 0, 0])}),
    (False, [1, 1, 0, 0], {A: ([1] * 4, [1, 1, 0, 0]), B: ([4], [0] * 4),
                           C: ([4], [1] * 4), D: ([4], [1] * 4)}),
    (False, [0, 0, 1, 1], {A: ([1] * 4, [0, 0, 1, 1]), B: ([4], [0] * 4),
                           C: ([4], [0] * 4), D: ([4], [0] * 4)}),
], ids=["T30a", "T30b", "T30c"])
@pytest.mark.parametrize("kernel", COW_VARIANTS)
def test_T30_soft_dirty(kernel: str, tracking: bool, sd: list[int],
                        expect: dict[str, tuple]) -> None:
    p, f = p_anon_folio(2, SD=sd, soft_dirty_tracking=tracking)
    r = pkmm.fork(p, kernel)
    assert (r.batches, child_bits(r, "soft_dirty", 4)) == expect[spec(kernel)]
    assert [int(p.pte(BASE + i * 4096).soft_dirty) for i in range(4)] == sd


# --- T31..T33: failures, KSM ---

@pytest.mark.parametrize("kernel", COW_VARIANTS)
def test_T31_prealloc_failure_fails_fork_without_leaks(kernel: str) -> None:
    p, f = p_anon_folio(0)
    p.pin(f, 0)
    g = p.alloc_folio(0)
    p.map(BASE + 4096, g)
    folios_before = set(p.machine.folios)
    with pytest.raises(pkmm.ForkError) as e:
        pkmm.fork(p, kernel, fail_prealloc=True)
    assert e.value.errno == 12 and e.value.trace is not None
    assert p.machine.mms == [p.mm]
    assert set(p.machine.folios) == folios_before            # nothing leaked
    assert (f.refcount, g.refcount) == (1025, 1)
    pkmm.check_invariants(p)


@pytest.mark.parametrize("kernel", COW_VARIANTS)
def test_T32_ksm_page_is_shared_even_when_pinned_looking(kernel: str) -> None:
    p, f = p_anon_folio(0, W=0, AE=0)
    f.ksm = True
    p.vmsplice(f, 0, refs=1999)
    g = p.alloc_folio(0)
    p.map(BASE + 4096, g)
    p.pin(g, 0)
    r = pkmm.fork(p, kernel)
    assert r.child.pte(BASE).pfn == f.pfn and not r.child.pte(BASE).write
    assert (f.refcount, f.page(0).mapcount) == (2001, 2)


@pytest.mark.parametrize("kernel", COW_VARIANTS)
def test_T33_memory_error_while_copying_a_pinned_page(kernel: str) -> None:
    p, f = p_anon_folio(0)
    p.pin(f, 0)
    f.page(0).hwpoison = True
    if spec(kernel) == D:
        with pytest.raises(pkmm.ForkError):
            pkmm.fork(p, kernel)
        pkmm.check_invariants(p)
    else:
        assert pkmm.fork(p, kernel).copies == 1


# --- T34..T37: after fork ---

@pytest.mark.parametrize("kernel", COW_VARIANTS)
def test_T34_cow_after_small_share(kernel: str) -> None:
    p, f = p_anon_folio(0)
    p.write(BASE, 1)
    r = pkmm.fork(p, kernel)
    c = r.child
    p.write(BASE, 2)                                     # (a) parent first: copy
    assert p.last_fault.kind == "cow-copy"
    pp = p.pte(BASE)
    assert pp.pfn != f.pfn and (pp.write, pp.dirty, pp.young) == (1, 1, 1)
    assert p.page_at(BASE)[0].page(0).anon_exclusive
    assert (f.page(0).mapcount, f.refcount) == (1, 1)
    c.write(BASE, 3)                                     # (b) child second: reuse
    assert c.last_fault.kind == "reuse" and c.pte(BASE).pfn == f.pfn
    assert c.pte(BASE).write and f.page(0).anon_exclusive
    assert (p.read(BASE), c.read(BASE)) == (2, 3)
    pkmm.check_invariants(p, c)
    # (c) child exits before the parent writes: the parent reuses
    q, g = p_anon_folio(0, kernel=kernel)
    r2 = pkmm.fork(q, kernel)
    r2.child.exit()
    q.write(BASE, 9)
    assert q.last_fault.kind == "reuse" and q.pte(BASE).pfn == g.pfn


@pytest.mark.parametrize("kernel", COW_VARIANTS)
def test_T35_cow_on_pte_mapped_large_folio(kernel: str) -> None:
    p, f = p_anon_folio(4)
    r = pkmm.fork(p, kernel)
    p.write(BASE + 3 * 4096, 1)
    assert p.last_fault.kind == "cow-copy"
    assert p.page_at(BASE + 3 * 4096)[0].order == 0
    assert (f.page(3).mapcount, f.refcount) == (1, 31)
    r.child.exit()
    assert f.refcount == 15 and all(f.page(i).mapcount == (i != 3) for i in range(16))
    p.write(BASE + 5 * 4096, 2)
    if spec(kernel) == D:
        assert p.last_fault.kind == "reuse" and f.page(5).anon_exclusive
        assert p.pte(BASE + 5 * 4096).write and p.pte(BASE + 5 * 4096).pfn == f.pfn + 5
    else:
        assert p.last_fault.kind == "cow-copy"
    pkmm.check_invariants(p)


@pytest.mark.parametrize("kernel", COW_VARIANTS)
def test_T36_cow_on_pmd_thp(kernel: str) -> None:
    p, f = _thp(kernel)
    r = pkmm.fork(p, kernel)
    p.write(HUGE + 8 * 4096, 1)
    assert p.pmd(HUGE) is None and r.child.pmd(HUGE) is not None
    assert p.pte(HUGE + 8 * 4096).pfn != f.pfn + 8
    assert p.pte(HUGE + 9 * 4096).pfn == f.pfn + 9
    assert r.child.read(HUGE + 8 * 4096) == 0
    pkmm.check_invariants(p, r.child)
    q = pkmm.Process(kernel)
    q.mmap(HUGE, 512)
    q.map_huge_zero_pmd(HUGE)
    q.write(HUGE, 1)
    if spec(kernel) == D:
        assert q.last_fault.kind == "huge-zero-thp" and q.pmd(HUGE) is not None
    else:
        assert q.pmd(HUGE) is None and q.pte(HUGE + 4096).special


@pytest.mark.parametrize("kernel", COW_VARIANTS)
@pytest.mark.parametrize("child_uffd", [True, False])
def test_T37_uffd_wp_small_page(kernel: str, child_uffd: bool) -> None:
    p, f = p_anon_folio(0, W=0, UW=1, uffd_wp=True, uffd_fork=child_uffd)
    before = p.pte(BASE)
    r = pkmm.fork(p, kernel)
    assert r.child.pte(BASE).uffd_wp == child_uffd
    assert p.pte(BASE) == before


@pytest.mark.parametrize("kernel", COW_VARIANTS)
def test_T38_mmf_has_pinned_is_not_inherited(kernel: str) -> None:
    p, f = p_anon_folio(0)
    p.pin(f, 0)
    c1 = pkmm.fork(p, kernel).child
    assert not c1.has_pinned
    g, _ = c1.page_at(BASE)
    c1.vmsplice(g, 0, refs=1100)                  # >= 1024 refs for unrelated reasons
    r2 = pkmm.fork(c1, kernel)
    assert r2.copies == 0 and r2.child.pte(BASE).pfn == g.pfn


# --- eager-copy baseline: a PMD-mapped THP is copied whole ---------------------------

@pytest.mark.parametrize("pinned", [False, True])
def test_eager_copy_copies_a_pmd_thp_whole(pinned: bool) -> None:
    p, f = _thp("eager-copy", pinned=pinned)
    f.page(3).data = 7
    before = p.pmd(HUGE)
    r = pkmm.fork(p, "eager-copy")
    c = r.child.pmd(HUGE)
    g, _ = r.child.page_at(HUGE)
    assert c is not None and c.pfn != f.pfn and g.order == 9 and c.write
    assert p.pmd(HUGE) == before and f.refcount == 1 + pinned and f.entire_mapcount == 1
    assert (g.refcount, g.entire_mapcount, g.page(0).anon_exclusive) == (1, 1, True)
    assert r.copies == 512 and r.child.rss["MM_ANONPAGES"] == 512
    assert r.child.read(HUGE + 3 * 4096) == 7
    r.child.write(HUGE, 1)
    assert r.child.last_fault.kind == "none"          # no copy-on-write in this baseline
    pkmm.check_invariants(p, r.child)
