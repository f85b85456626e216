"""The divergences an independent reading of v6.8, v6.9 and v6.17 found around the fork
copy path, each written from the kernel function it cites and checked on the variant(s)
it applies to (and, where versions differ, that the others behave as their source does).
"""

from __future__ import annotations

import pkmm

BASE = 0x4000_0000
P = pkmm.PAGE_SIZE


def _mthp(kernel: str, order: int = 4) -> pkmm.Process:
    m = pkmm.Machine()
    m.thp.set_order(order, "always")
    p = pkmm.Process(kernel, machine=m)
    p.mmap(BASE, 1 << order)
    p.memset(BASE, 1 << order, 1)
    assert p.page_at(BASE)[0].order == order
    return p


# --- 1. v6.8 wp_can_reuse_anon_folio() has no folio_test_large() check --------------------

def test_1_v6_8_reuses_a_large_folio_mapped_once_v6_9_and_v6_17_copy() -> None:
    # mm/memory.c v6.8 wp_can_reuse_anon_folio(): refcount 1 -> reuse, large or not;
    # v6.9: "if (folio_test_large(folio)) return false;"; v6.17
    # __wp_can_reuse_large_anon_folio(): "if (folio_large_mapcount(folio) <= 1) return
    # false" -- "Let's just free up a large folio if only a single page is mapped."
    got = {}
    for kernel in ("v6.8", "batch-v3", "v6.9", "v6.17"):
        p = _mthp(kernel)
        f = p.page_at(BASE)[0]
        pkmm.fork(p, kernel=kernel).child.exit()
        p.madvise(BASE + P, 15, "MADV_DONTNEED")
        assert f.refcount == 1 and not f.pages[0].anon_exclusive
        p.write(BASE, 2)
        got[kernel] = p.last_fault.kind
        pkmm.check_invariants(p)
    assert got == {"v6.8": "reuse", "batch-v3": "reuse", "v6.9": "cow-copy",
                   "v6.17": "cow-copy"}


def test_1_v6_8_still_copies_a_large_folio_with_other_pages_mapped() -> None:
    p = _mthp("v6.8")
    pkmm.fork(p, kernel="v6.8").child.exit()
    p.write(BASE, 2)            # refcount 16 > 3: copy (spec T35, A)
    assert p.last_fault.kind == "cow-copy"


# --- 2. v6.17 two-slot MM-id tracking ---------------------------------------------------

def test_2_v6_17_grandchild_outliving_parent_and_child_still_copies() -> None:
    # include/linux/rmap.h folio_add_return_large_mapcount() fills only a free slot; the
    # "maybe mapped shared" bit clears only when one slot holds every mapping
    # (folio_sub_return_large_mapcount()); __wp_can_reuse_large_anon_folio() then
    # refuses: P forks C, C forks G, P and C exit, G writes -> copy.
    p = _mthp("v6.17")
    f = p.page_at(BASE)[0]
    c = pkmm.fork(p, kernel="v6.17").child
    g = pkmm.fork(c, kernel="v6.17").child
    assert f.mm_ids == [p.mm.mm_id, c.mm.mm_id]        # no slot for G
    p.exit()
    c.exit()
    assert f.mm_ids == [None, None] and f.mm_ids_shared
    assert f.refcount == f.mapcount == 16               # G alone maps it ...
    g.write(BASE + 3 * P, 5)
    assert g.last_fault.kind == "cow-copy"              # ... yet the kernel copies
    pkmm.check_invariants(g)


def test_2_v6_17_parent_alone_after_child_exit_reuses() -> None:
    # the same tracking clears the bit when the parent's slot holds every mapping
    p = _mthp("v6.17")
    f = p.page_at(BASE)[0]
    pkmm.fork(p, kernel="v6.17").child.exit()
    assert f.mm_ids == [p.mm.mm_id, None] and not f.mm_ids_shared
    p.write(BASE + 3 * P, 5)
    assert p.last_fault.kind == "reuse"


def test_2_partial_unmap_by_the_slot_owner_keeps_the_bit() -> None:
    # folio_sub_return_large_mapcount(): "goto out" while the slot still has mappings --
    # the bit is not re-evaluated then, only when a slot empties
    p = _mthp("v6.17")
    f = p.page_at(BASE)[0]
    c = pkmm.fork(p, kernel="v6.17").child
    c.madvise(BASE, 8, "MADV_DONTNEED")
    assert f.mm_ids_shared and f.mm_id_mapcount == [16, 8]
    c.madvise(BASE + 8 * P, 8, "MADV_DONTNEED")      # C's slot empties: P holds all
    assert not f.mm_ids_shared and f.mm_ids == [p.mm.mm_id, None]


# --- 3. swap-in after fork goes through the swap cache ------------------------------------

def _paged_out(kernel: str, n: int = 2) -> pkmm.Process:
    p = pkmm.Process(kernel)
    p.mmap(BASE, n)
    p.memset(BASE, n, 1)
    assert p.madvise(BASE, n, "MADV_PAGEOUT") == 0
    assert all(p.is_swapped(BASE + i * P) for i in range(n))
    return p


def test_3_pageout_keeps_the_page_in_the_swap_cache_with_an_exclusive_entry() -> None:
    # mm/rmap.c try_to_unmap_one(): "if (anon_exclusive) swp_pte = pte_swp_mkexclusive()"
    p = _paged_out("v6.17")
    pte = p.pte(BASE)
    assert pte.swp.exclusive and p.rss["MM_SWAPENTS"] == 2 and p.rss["MM_ANONPAGES"] == 0
    slot = p.machine.swap[pte.swp.offset]
    assert slot.count == 1 and slot.cache is not None and slot.cache.refcount == 1
    p.write(BASE, 5)                       # exclusive entry: back writable, same page
    assert p.page_at(BASE)[0] is slot.cache and p.pte(BASE).write
    assert pte.swp.offset not in p.machine.swap          # should_try_to_free_swap()
    pkmm.check_invariants(p)


def test_3_swap_in_after_fork_is_shared_read_only_and_a_write_copies() -> None:
    # mm/memory.c do_swap_page(): fork cleared pte_swp_exclusive; the folio is found in
    # the swap cache and "folio_ref_count(folio) == 1" fails -> mapped read-only, not
    # exclusive; wp_can_reuse_anon_folio(): folio_free_swap() fails while the parent's
    # entry refers to the slot -> copy (live: realkernel scenario s1)
    for kernel in COW:
        p = _paged_out(kernel)
        c = pkmm.fork(p, kernel=kernel).child
        assert not p.pte(BASE).swp.exclusive and not c.pte(BASE).swp.exclusive
        assert c.read(BASE) == 1
        cached, i = c.page_at(BASE)
        assert not c.pte(BASE).write and not cached.pages[i].anon_exclusive
        assert cached.swap is not None and cached.refcount == 2      # map + swap cache
        c.write(BASE, 2)
        assert c.last_fault.kind == "cow-copy" and c.page_at(BASE)[0] is not cached
        p.write(BASE, 3)                   # the parent's entry was the last: reuse the page
        assert p.page_at(BASE)[0] is cached and cached.swap is None
        assert c.read(BASE) == 2 and p.read(BASE) == 3
        pkmm.check_invariants(p, c)


def test_3_exit_frees_swap_slots_and_an_unmapped_swap_cache_page() -> None:
    # mm/swapfile.c free_swap_and_cache_nr(): the last entry gone, the cached folio that
    # nobody maps is reclaimed with it
    p = _paged_out("v6.17")
    c = pkmm.fork(p).child
    cached = p.machine.swap[p.pte(BASE).swp.offset].cache
    p.exit()
    assert not cached.freed
    c.exit()
    assert cached.freed and not c.machine.swap


COW = ("v6.8", "batch-v3", "v6.9", "v6.17")


# --- 4. v6.17 guard markers: the VMA is copied, the child keeps the guard ----------------

def test_4_a_vma_holding_only_a_guard_is_copied_and_v6_17_keeps_the_guard() -> None:
    # mm/madvise.c madvise_guard_install() (v6.13+): anon_vma_prepare() "so that on fork,
    # we copy page tables correctly"; include/linux/mm_inline.h copy_pte_marker() keeps
    # PTE_MARKER_GUARD from v6.13 -- earlier variants (no guard regions) drop it
    got = {}
    for kernel in ("v6.9", "v6.17"):
        p = pkmm.Process(kernel)
        p.mmap(BASE, 4)
        p.map_marker(BASE + P, "guard")
        assert p.vma(BASE).anon_vma is not None
        c = pkmm.fork(p, kernel=kernel).child
        got[kernel] = c.pte(BASE + P)
    assert got["v6.17"] is not None and "guard" in got["v6.17"].swp.markers
    assert got["v6.9"] is None


# --- 5. a PMD-mapped file / shmem THP is in the page cache ------------------------------

def test_5_shared_shmem_thp_child_finds_the_same_folio() -> None:
    # mm/huge_memory.c copy_huge_pmd(): "Skip if it can be refilled on fault" -- the
    # child's fault finds the THP in the page cache (mm/shmem.c shmem_fault)
    p = pkmm.Process()
    p.mmap(BASE, 512, shared=True)
    f = p.alloc_folio(9, backing="shmem")
    p.map_pmd(BASE, f)
    p.write(BASE + 3 * P, 42)
    pkmm.check_invariants(p)
    c = pkmm.fork(p).child
    assert c.pte(BASE + 3 * P) is None
    assert c.read(BASE + 3 * P) == 42 and c.page_at(BASE + 3 * P) == (f, 3)
    pkmm.check_invariants(p, c)


# --- 6. do_fault_around() clamps its window to the VMA -----------------------------------

def test_6_fault_around_window_starts_at_the_vma_and_spans_16_pages() -> None:
    # mm/memory.c do_fault_around(): from_pte = max(ALIGN_DOWN(pte_off, 16), VMA start);
    # to_pte = from_pte + 16 (clipped): a VMA starting at slot 5 maps slots 5..20
    p = pkmm.Process()
    f = pkmm.File("f", "file")
    for off in range(32):
        folio = p.alloc_folio(0, backing="file")
        f.cache[off] = folio.pages[0]
    p.mmap(BASE + 5 * P, 27, backing="file", file=f)
    p.read(BASE + 6 * P)
    mapped = [i for i in range(5, 32) if p.pte(BASE + i * P) is not None]
    assert mapped == list(range(5, 21))


# --- 7. x86 pte_mkdirty() also sets soft-dirty --------------------------------------------

def test_7_copies_reuse_and_new_pages_are_soft_dirty_but_hardware_stores_are_not() -> None:
    # arch/x86/include/asm/pgtable.h pte_mkdirty(): _PAGE_DIRTY | _PAGE_SOFT_DIRTY, used by
    # copy_present_page(), wp_page_copy(), wp_page_reuse(), do_anonymous_page(); the CPU
    # setting D on a store through a writable PTE leaves soft-dirty alone
    p = pkmm.Process("v6.17")
    p.mmap(BASE, 3)
    p.write(BASE, 1)
    assert p.pte(BASE).soft_dirty                            # do_anonymous_page
    f = p.alloc_folio(0)
    p.map(BASE + P, f, dirty=False)
    p.write(BASE + P, 2)
    assert p.pte(BASE + P).dirty and not p.pte(BASE + P).soft_dirty     # the CPU
    p.pin_user_pages(BASE + 2 * P, 1, write=True)
    r = pkmm.fork(p, kernel="v6.17")
    assert r.child.pte(BASE + 2 * P).soft_dirty             # copy_present_page
    r.child.write(BASE, 3)
    assert r.child.last_fault.kind == "cow-copy" and r.child.pte(BASE).soft_dirty
    p.clear_soft_dirty()
    p.write(BASE, 4)                                        # wp_page_reuse
    assert p.last_fault.kind == "reuse" and p.pte(BASE).soft_dirty


# --- 8. x86 __split_huge_zero_page_pmd() builds young PTEs ---------------------------------

def test_8_splitting_the_huge_zero_pmd_gives_young_zero_page_ptes() -> None:
    # mm/huge_memory.c __split_huge_zero_page_pmd(): pfn_pte(my_zero_pfn(addr),
    # vma->vm_page_prot) -- PAGE_COPY has _PAGE_ACCESSED on x86 -- whatever the PMD's A
    p = pkmm.Process("v6.9")
    p.mmap(BASE, 512)
    p.map_huge_zero_pmd(BASE)
    c = pkmm.fork(p, kernel="v6.9").child
    assert not c.pmd(BASE).young                             # the child's PMD is old
    c.write(BASE, 1)                                         # v6.9: split, then 4 KiB
    assert c.pmd(BASE) is None and c.pte(BASE + P).special and c.pte(BASE + P).young
