"""THP faults, mprotect, madvise and munmap, each rule checked against the kernel function
it mirrors (file and function cited per test)."""

from __future__ import annotations

import errno

import pytest

import pkmm
from pkmm.kernels import COW_KERNELS

BASE = 0x4000_0000
P = pkmm.PAGE_SIZE


def thp_machine(order: int | None = None, pmd: str = "inherit") -> pkmm.Machine:
    m = pkmm.Machine()
    m.thp.set_order(9, pmd)
    if order is not None:
        m.thp.set_order(order, "always")
    return m


# --- THP at fault time -------------------------------------------------------------------

def test_default_settings_are_the_live_machines_and_change_nothing_without_madvise() -> None:
    # /sys/kernel/mm/transparent_hugepage on the 6.18 machine: enabled=madvise, only the
    # 2 MiB size inherits; a VMA without MADV_HUGEPAGE gets order-0 pages
    p = pkmm.Process()
    p.mmap(BASE, 512)
    p.write(BASE, 1)
    assert p.page_at(BASE)[0].order == 0 and p.pmd(BASE) is None


@pytest.mark.parametrize("kernel", pkmm.KERNELS)
def test_anon_fault_allocates_the_largest_enabled_mthp_whose_range_is_empty(kernel) -> None:
    # mm/memory.c alloc_anon_folio(): "Find the highest order where the aligned range is
    # completely pte_none()" -- orders 4 and 3 enabled, one PTE already in the 64K range
    m = thp_machine(4)
    m.thp.set_order(3, "always")
    p = pkmm.Process(kernel, machine=m)
    p.mmap(BASE, 32)
    p.write(BASE + 20 * P, 7)            # 64K range [16, 32) is empty: order 4
    f = p.page_at(BASE + 20 * P)[0]
    assert f.order == 4 and f.refcount == 16 and p.rss["MM_ANONPAGES"] == 16
    assert all(p.pte(BASE + i * P).write for i in range(16, 32))
    assert all(pg.anon_exclusive for pg in f.pages)
    p.map(BASE + 15 * P, p.alloc_folio(0))    # [0, 16) is not empty any more ...
    p.write(BASE + 3 * P, 1)                  # ... so order 3 around page 3
    assert p.page_at(BASE + 3 * P)[0].order == 3
    p.write(BASE + 12 * P, 1)                 # [8, 16) holds page 15: order 0
    assert p.page_at(BASE + 12 * P)[0].order == 0
    pkmm.check_invariants(p)


def test_mthp_must_fit_in_the_vma_and_reads_map_the_zero_page() -> None:
    # include/linux/huge_mm.h thp_vma_suitable_order(): the aligned range inside the VMA
    p = pkmm.Process(machine=thp_machine(4))
    p.mmap(BASE + 8 * P, 16)              # no 64K-aligned 16 pages inside
    p.write(BASE + 8 * P, 1)
    assert p.page_at(BASE + 8 * P)[0].order == 0
    assert p.read(BASE + 9 * P) == 0 and p.pte(BASE + 9 * P).special   # zero page


def test_pmd_thp_needs_madv_hugepage_when_enabled_is_madvise() -> None:
    # mm/huge_memory.c __thp_vma_allowable_orders(): "inherit" follows enabled=madvise
    p = pkmm.Process(machine=thp_machine())
    p.mmap(BASE, 512)
    p.write(BASE, 1)
    assert p.pmd(BASE) is None
    q = pkmm.Process(machine=p.machine)
    q.mmap(BASE, 512)
    assert q.madvise(BASE, 512, "MADV_HUGEPAGE") == 0
    q.write(BASE + 5 * P, 3)
    pmd = q.pmd(BASE)
    assert pmd is not None and pmd.write and not pmd.huge_zero
    assert q.rss["MM_ANONPAGES"] == 512 and q.read(BASE + 5 * P) == 3
    assert q.madvise(BASE, 512, "MADV_NOHUGEPAGE") == 0
    pkmm.check_invariants(p, q)


def test_read_of_a_thp_range_maps_the_huge_zero_page_unless_disabled() -> None:
    # do_huge_pmd_anonymous_page(): a read maps the huge zero folio when use_zero_page;
    # otherwise it allocates a THP like a write would
    m = thp_machine()
    p = pkmm.Process(machine=m)
    p.mmap(BASE, 512)
    p.madvise(BASE, 512, "MADV_HUGEPAGE")
    assert p.read(BASE) == 0 and p.pmd(BASE).huge_zero
    assert p.vma(BASE).anon_vma is not None      # vmf_anon_prepare() came first
    m.thp.use_zero_page = False
    q = pkmm.Process(machine=m)
    q.mmap(BASE, 512)
    q.madvise(BASE, 512, "MADV_HUGEPAGE")
    q.read(BASE)
    assert q.pmd(BASE) is not None and not q.pmd(BASE).huge_zero


def test_thp_settings_refuse_bad_values() -> None:
    t = pkmm.Machine().thp
    for call, words in ((lambda: t.set_order(1, "always"), "orders 2..9"),
                        (lambda: t.set_order(True, "always"), "order=True"),
                        (lambda: t.set_order(4, "sometimes"), "value='sometimes'"),
                        (lambda: t.set_enabled("inherit"), "enabled='inherit'")):
        with pytest.raises(pkmm.LayoutError, match=words):
            call()


# --- mprotect --------------------------------------------------------------------------

def _written(p: pkmm.Process, n: int = 4) -> None:
    p.mmap(BASE, n)
    p.memset(BASE, n, 1)


def test_mprotect_rw_upgrades_only_anon_exclusive_ptes() -> None:
    # mm/mprotect.c can_change_pte_writable(): "Writable MAP_PRIVATE mapping: We can only
    # special-case on exclusive anonymous pages"
    p = pkmm.Process()
    _written(p)
    p.munmap(BASE + 3 * P, 1)
    p.mmap(BASE + 3 * P, 1)
    p.read(BASE + 3 * P)                       # the zero page: no struct page to upgrade
    assert p.mprotect(BASE, 4, write=False) == 0
    assert not any(p.pte(BASE + i * P).write for i in range(4))
    assert p.mprotect(BASE, 4, write=True) == 0
    assert [p.pte(BASE + i * P).write for i in range(4)] == [True, True, True, False]
    p.write(BASE, 2)
    assert not p.last_fault.faulted           # upgraded: the store needs no fault
    pkmm.check_invariants(p)


@pytest.mark.parametrize("kernel", COW_KERNELS)
def test_mprotect_rw_after_fork_leaves_shared_pages_read_only(kernel) -> None:
    p = pkmm.Process(kernel)
    _written(p)
    c = pkmm.fork(p, kernel=kernel).child
    p.mprotect(BASE, 4, write=False)
    p.mprotect(BASE, 4, write=True)
    assert not p.pte(BASE).write               # not AnonExclusive: the write must fault
    p.write(BASE, 9)
    assert c.read(BASE) == 1                   # and the child keeps its data
    pkmm.check_invariants(p, c)


def test_soft_dirty_tracking_blocks_the_write_upgrade() -> None:
    # can_change_pte_writable(): "Do we need write faults for softdirty tracking?"
    p = pkmm.Process()
    p.mmap(BASE, 2, soft_dirty_tracking=True)
    p.map(BASE, p.alloc_folio(0), soft_dirty=False)
    p.map(BASE + P, p.alloc_folio(0), soft_dirty=True)
    p.mprotect(BASE, 2, write=False)
    p.mprotect(BASE, 2, write=True)
    assert [p.pte(BASE).write, p.pte(BASE + P).write] == [False, True]


def test_mprotect_splits_and_merges_vmas_and_splits_a_partly_covered_pmd() -> None:
    # mm/mprotect.c change_pmd_range(): "if (next - addr != HPAGE_PMD_SIZE)" split
    p = pkmm.Process(machine=thp_machine())
    p.mmap(BASE, 512)
    p.madvise(BASE, 512, "MADV_HUGEPAGE")
    p.memset(BASE, 512, 1)
    f = p.page_at(BASE)[0]
    p.mprotect(BASE + P, 1, write=False)
    assert p.pmd(BASE) is None and len(p.vmas) == 3
    assert f.pages[1].anon_exclusive and not p.pte(BASE + P).write
    p.mprotect(BASE + P, 1, write=True)
    assert len(p.vmas) == 1 and p.pte(BASE + P).write     # merged; AE page upgraded
    assert p.page_at(BASE + 511 * P)[0] is f and f.entire_mapcount == 0
    pkmm.check_invariants(p)


def test_mprotect_whole_pmd_keeps_it_and_upgrades_an_exclusive_thp() -> None:
    p = pkmm.Process(machine=thp_machine())
    p.mmap(BASE, 512)
    p.madvise(BASE, 512, "MADV_HUGEPAGE")
    p.write(BASE, 1)
    p.mprotect(BASE, 512, write=False)
    assert p.pmd(BASE) is not None and not p.pmd(BASE).write
    p.mprotect(BASE, 512, write=True)
    assert p.pmd(BASE).write


def test_mprotect_write_needs_may_write() -> None:
    p = pkmm.Process()
    p.mmap(BASE, 1, backing="file", shared=True, write=False)
    p.vma(BASE).vm_flags &= ~pkmm.vma.VM_MAYWRITE     # a file opened O_RDONLY
    assert p.mprotect(BASE, 1, write=True) == -errno.EACCES


# --- madvise and munmap ---------------------------------------------------------------

def test_dontfork_splits_and_dofork_merges_back() -> None:
    # mm/madvise.c madvise_update_vma() -> vma_modify_flags(), then the merge
    p = pkmm.Process()
    _written(p, 8)
    assert p.madvise(BASE + 2 * P, 2, "MADV_DONTFORK") == 0
    assert [v.npages for v in p.vmas] == [2, 2, 4]
    c = pkmm.fork(p).child
    assert [v.npages for v in c.vmas] == [2, 4]   # dup_mmap skips the VM_DONTCOPY VMA
    assert p.madvise(BASE + 2 * P, 2, "MADV_DOFORK") == 0
    assert [v.npages for v in p.vmas] == [8]
    pkmm.check_invariants(p, c)


def test_wipeonfork_keeponfork_and_their_einval() -> None:
    # madvise_vma_behavior(): "MADV_WIPEONFORK is only supported on anonymous memory"
    p = pkmm.Process()
    _written(p)
    p.mmap(BASE + 4 * P, 1, shared=True)
    assert p.madvise(BASE + 4 * P, 1, "MADV_WIPEONFORK") == -errno.EINVAL
    assert p.madvise(BASE, 4, "MADV_WIPEONFORK") == 0
    c = pkmm.fork(p).child
    assert c.read(BASE) == 0
    assert p.madvise(BASE, 4, "MADV_KEEPONFORK") == 0
    assert pkmm.fork(p).child.read(BASE) == 1


def test_dontneed_drops_pages_and_splits_a_partly_covered_pmd() -> None:
    # mm/memory.c zap_pmd_range(): a partial range splits the PMD, then zaps PTEs
    p = pkmm.Process(machine=thp_machine())
    p.mmap(BASE, 512)
    p.madvise(BASE, 512, "MADV_HUGEPAGE")
    p.memset(BASE, 512, 1)
    f = p.page_at(BASE)[0]
    assert p.madvise(BASE + P, 511, "MADV_DONTNEED") == 0
    assert p.pmd(BASE) is None and p.pte(BASE + P) is None
    assert f.refcount == 1 and f.mapcount == 1 and p.rss["MM_ANONPAGES"] == 1
    assert p.read(BASE + P) == 0                   # refaults as new memory
    assert p.madvise(BASE, 512, "MADV_DONTNEED") == 0 and f.freed
    pkmm.check_invariants(p)


def test_munmap_splits_vmas_frees_tables_and_faults_after() -> None:
    p = pkmm.Process()
    p.mmap(BASE, 4)
    p.mmap(BASE + pkmm.PMD_SIZE, 4)
    p.memset(BASE, 4, 1)
    p.memset(BASE + pkmm.PMD_SIZE, 4, 1)
    tables = p.mm.nr_ptes
    p.munmap(BASE + P, 2)
    assert [(v.vm_start, v.npages) for v in p.vmas][:2] == [(BASE, 1), (BASE + 3 * P, 1)]
    assert p.mm.nr_ptes == tables                  # the PMD range is still in use
    p.munmap(BASE + pkmm.PMD_SIZE, 4)
    assert p.mm.nr_ptes == tables - 1              # free_pgtables(): nothing left there
    with pytest.raises(pkmm.FaultError, match="no VMA"):
        p.read(BASE + P)
    pkmm.check_invariants(p)


@pytest.mark.parametrize("call,words", [
    (lambda p: p.madvise(BASE, 1, "MADV_FREE"), "advice='MADV_FREE'"),
    (lambda p: p.madvise(BASE + 1, 1, "MADV_DONTFORK"), "multiple of"),
    (lambda p: p.madvise(BASE, 9, "MADV_DONTFORK"), "not inside any VMA"),
    (lambda p: p.madvise(BASE, True, "MADV_DONTFORK"), "npages=True"),
    (lambda p: p.mprotect(BASE, 1, write="yes"), "write='yes'"),
    (lambda p: p.mprotect(BASE, 0, write=True), "npages=0"),
    (lambda p: p.munmap(1 << 47, 1), "47-bit"),
    (lambda p: p.munmap(BASE, 1 << 40), "npages"),
    (lambda p: p.memset(BASE, 2, 1.5), "value=1.5"),
])
def test_bad_arguments_change_nothing(call, words: str) -> None:
    p = pkmm.Process()
    _written(p)
    before = [v.describe() for v in p.vmas], [p.pte(BASE + i * P) for i in range(4)]
    with pytest.raises(pkmm.LayoutError, match=words):
        call(p)
    assert ([v.describe() for v in p.vmas], [p.pte(BASE + i * P) for i in range(4)]) == before


# --- mremap --------------------------------------------------------------------------

@pytest.mark.parametrize("kernel", COW_KERNELS)
def test_mremap_moves_half_a_large_folio_and_fork_still_isolates(kernel) -> None:
    # mm/mremap.c move_ptes(): the same pages, now mapped from a second VMA
    p = pkmm.Process(kernel, machine=thp_machine(4))
    p.mmap(BASE, 16)
    p.memset(BASE, 16, 1)
    f = p.page_at(BASE)[0]
    far = BASE + 0x10_0000
    assert p.mremap(BASE + 8 * P, 8, far) == 0
    assert [v.npages for v in p.vmas] == [8, 8] and p.pte(BASE + 8 * P) is None
    assert p.page_at(far + 3 * P) == (f, 11) and f.mapcount == 16
    assert p.pte(far).soft_dirty            # x86 move_soft_dirty_pte()
    c = pkmm.fork(p, kernel=kernel).child
    p.memset(far, 8, 0xFF)
    assert c.read_range(far, 8) == [1] * 8
    pkmm.check_invariants(p, c)


def test_mremap_of_a_whole_pmd_moves_it_and_of_half_splits_it() -> None:
    # move_page_tables(): move_huge_pmd() when the extent is a whole PMD, else split
    m = thp_machine(pmd="always")
    p = pkmm.Process(machine=m)
    p.mmap(BASE, 512)
    p.memset(BASE, 512, 1)
    tables = p.mm.nr_ptes
    assert p.mremap(BASE, 512, BASE + 4 * pkmm.PMD_SIZE) == 0
    assert p.pmd(BASE + 4 * pkmm.PMD_SIZE) is not None and p.mm.nr_ptes == tables
    q = pkmm.Process(machine=m)
    q.mmap(BASE, 512)
    q.memset(BASE, 512, 1)
    assert q.mremap(BASE + 256 * P, 256, BASE + 4 * pkmm.PMD_SIZE) == 0
    assert q.pmd(BASE) is None and q.page_at(BASE + 4 * pkmm.PMD_SIZE)[1] == 256
    pkmm.check_invariants(p, q)


def test_mremap_unmaps_the_target_and_refuses_overlap() -> None:
    p = pkmm.Process()
    _written(p, 8)
    p.mmap(BASE + 16 * P, 2)
    p.memset(BASE + 16 * P, 2, 7)
    assert p.mremap(BASE, 2, BASE + 16 * P) == 0       # MREMAP_FIXED: target unmapped
    assert p.read_range(BASE + 16 * P, 2) == [1, 1]
    assert p.mremap(BASE + 2 * P, 4, BASE + 4 * P) == -errno.EINVAL
    with pytest.raises(pkmm.LayoutError, match="not inside one VMA"):
        p.mremap(BASE + 7 * P, 2, BASE + 40 * P)
    pkmm.check_invariants(p)


# --- MADV_COLLAPSE --------------------------------------------------------------------

@pytest.mark.parametrize("kernel", COW_KERNELS)
def test_collapse_after_fork_copies_into_a_new_exclusive_thp(kernel) -> None:
    # mm/khugepaged.c collapse_huge_page(): a new THP, mapped by one PMD in this mm only;
    # the child keeps the old pages (no max_ptes_shared limit for MADV_COLLAPSE)
    p = pkmm.Process(kernel, machine=thp_machine())
    p.mmap(BASE, 512)
    p.madvise(BASE, 512, "MADV_HUGEPAGE")
    p.memset(BASE, 512, 1)
    p.mprotect(BASE + P, 1, write=False)      # PTE-map it (cow.c's trick)
    p.mprotect(BASE + P, 1, write=True)
    old = p.page_at(BASE)[0]
    c = pkmm.fork(p, kernel=kernel).child
    tables = p.mm.nr_ptes
    assert p.madvise(BASE, 512, "MADV_COLLAPSE") == 0
    new = p.pmd(BASE)
    assert new is not None and new.write and p.page_at(BASE)[0] is not old
    assert p.page_at(BASE)[0].pages[0].anon_exclusive and p.mm.nr_ptes == tables
    p.memset(BASE, 512, 0xFF)
    assert c.read_range(BASE, 512) == [1] * 512 and c.page_at(BASE)[0] is old
    pkmm.check_invariants(p, c)


def test_collapse_refuses_pinned_pages_and_non_thp_vmas() -> None:
    # is_refcount_suitable(): "Check if the page has any GUP (or other external) pins"
    p = pkmm.Process(machine=thp_machine())
    p.mmap(BASE, 512)
    p.memset(BASE, 512, 1)
    p.pin_user_pages(BASE + 3 * P, 1, write=True)
    assert p.madvise(BASE, 512, "MADV_COLLAPSE") == -errno.EAGAIN and p.pmd(BASE) is None
    q = pkmm.Process()
    q.mmap(BASE, 512)
    q.memset(BASE, 512, 1)
    q.madvise(BASE, 512, "MADV_NOHUGEPAGE")
    assert q.madvise(BASE, 512, "MADV_COLLAPSE") == -errno.EINVAL
    pkmm.check_invariants(p, q)
