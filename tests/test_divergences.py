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
