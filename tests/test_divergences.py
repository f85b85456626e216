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
