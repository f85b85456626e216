"""The rules a live Linux 6.18 kernel showed (the stored results of pkmm.realkernel), checked
against the "v6.17" model, one test per rule.  Scenario letters are those of
pkmm.realkernel.scenarios.
"""

from __future__ import annotations

import pytest

import pkmm

K = "v6.17"
R = 0x200000


def region(npages: int = 64, **kw) -> pkmm.Process:
    p = pkmm.Process(K)
    p.mmap(R, npages, **kw)
    return p


def fill(p: pkmm.Process, order: int, nfolios: int, start: int = R) -> list[pkmm.Folio]:
    out = []
    for k in range(nfolios):
        f = p.alloc_folio(order)
        p.map(start + k * f.nr_pages * 4096, f)
        out.append(f)
    return out


# Rule 1: whether a VMA is copied depends only on the VMA ---

def test_rule1_which_vmas_are_copied() -> None:
    p = pkmm.Process(K)
    p.mmap(0x1000000, 4, backing="anon", shared=True)              # f: shmem
    p.map(0x1000000, p.alloc_folio(0, backing="shmem"))
    p.mmap(0x2000000, 4, backing="file")                           # g1: clean private file
    p.map(0x2000000, p.alloc_folio(0, backing="file"), write=False, dirty=False)
    p.mmap(0x3000000, 4)                                           # b1: zero pages only
    p.map_zero_page(0x3000000)
    p.mmap(0x4000000, 4, backing="shmem", shared=True, uffd_wp=True)            # k4
    p.map(0x4000000, p.alloc_folio(0, backing="shmem"), uffd_wp=True, write=False)
    p.mmap(0x5000000, 4, backing="shmem", shared=True, uffd_wp=True, uffd_fork=True)  # k3
    p.map(0x5000000, p.alloc_folio(0, backing="shmem"), uffd_wp=True, write=False)
    p.mmap(0x6000000, 4)                                           # b2: zero + a written page
    p.map_zero_page(0x6000000)
    p.map(0x6000000 + 4096, p.alloc_folio(0))
    c = pkmm.fork(p, K).child
    assert c.pte(0x1000000) is None and c.pte(0x2000000) is None
    assert c.pte(0x3000000) is None and c.pte(0x4000000) is None
    assert c.pte(0x5000000).uffd_wp                                # copied, bit kept
    assert c.pte(0x6000000).special and c.pte(0x6000000 + 4096) is not None


def test_rule1_b3_inherited_anon_vma_copies_zero_pages() -> None:
    p = pkmm.Process(K)
    v = p.mmap(R, 16)
    p.map(R + 4096, p.alloc_folio(0))
    assert v.anon_vma is not None
    p2 = pkmm.Process(K)
    p2.mmap(R, 16)
    p2.map_zero_page(R)
    assert pkmm.fork(p2, K).child.pte(R) is None                    # b1
    p.map_zero_page(R)
    assert pkmm.fork(p, K).child.pte(R).special                     # b2
    p3 = pkmm.Process(K)
    p3.mmap(R, 16, anon_vma=True)                                   # b3: inherited by a split
    p3.map_zero_page(R)
    assert pkmm.fork(p3, K).child.pte(R).special


# Rules 2 and 3: copied private anon PTEs and PMDs ---

@pytest.mark.parametrize("order", [0, 2, 4, 6, 9])
def test_rule2_shared_ptes_read_only_ae_cleared_mapcount_2(order: int) -> None:
    p = region(1024)
    folios = fill(p, order, max(1, 16 >> order))
    r = pkmm.fork(p, K)
    for f in folios:
        assert f.order == order                                      # not split by fork
        for i in range(f.nr_pages):
            a = R + (folios.index(f) * f.nr_pages + i) * 4096
            assert r.child.pte(a).pfn == p.pte(a).pfn == f.pfn + i
            assert not r.child.pte(a).write and not p.pte(a).write
            assert f.page(i).mapcount == 2 and not f.page(i).anon_exclusive


def test_rule2_j2_folio_spanning_three_vmas_is_shared() -> None:
    p = pkmm.Process(K)
    p.mmap(R, 5)
    p.mmap(R + 5 * 4096, 1, write=False)
    p.mmap(R + 6 * 4096, 10)
    f = p.alloc_folio(4)
    p.map(R, f, 0, 5)
    p.map(R + 5 * 4096, f, 5, 1, write=False)
    p.map(R + 6 * 4096, f, 6, 10)
    r = pkmm.fork(p, K)
    assert all(f.page(i).mapcount == 2 for i in range(16))
    assert r.batches == [5, 1, 10]                   # batches never cross a VMA


def test_rule3_pmd_thp_shared_as_a_pmd() -> None:
    p = region(512)
    f = p.alloc_folio(9)
    p.map_pmd(R, f)
    r = pkmm.fork(p, K)
    assert r.child.pmd(R) is not None and p.pmd(R) is not None
    assert all(f.page(i).mapcount == 2 for i in (0, 1, 255, 511))


# Rule 4: zero pages ---

def test_rule4_zero_pages_never_counted_never_reused() -> None:
    p = region(16)
    p.map_zero_page(R)
    p.map(R + 4096, p.alloc_folio(0))
    r = pkmm.fork(p, K)
    assert p.machine.zero_folio.mapcount == 0
    r.child.write(R, 1)
    assert r.child.last_fault.kind == "cow-copy" and not r.child.pte(R).special
    r.child.exit()
    p.write(R, 2)                                        # still a new page after exit
    assert p.last_fault.kind == "cow-copy" and not p.pte(R).special


def test_rule4_huge_zero_write_allocates_a_whole_thp() -> None:
    p = region(512)
    p.map_huge_zero_pmd(R)
    r = pkmm.fork(p, K)
    r.child.write(R + 3 * 4096, 1)
    assert r.child.last_fault.kind == "huge-zero-thp"
    g, _ = r.child.page_at(R)
    assert g.order == 9 and r.child.pmd(R).write and p.pmd(R).huge_zero


# Rules 5 and 6: first and second writers ---

@pytest.mark.parametrize("order", [0, 4, 9])
def test_rule5_first_writer_copies_one_4k_page(order: int) -> None:
    p = region(512)
    f = p.alloc_folio(order)
    if order == 9:
        p.map_pmd(R, f)
    else:
        p.map(R, f)
    r = pkmm.fork(p, K)
    r.child.write(R + 3 * 4096, 1)
    g, _ = r.child.page_at(R + 3 * 4096)
    assert g is not f and g.order == 0
    assert r.child.last_fault.faulted
    if order == 9:
        assert r.child.pmd(R) is None and p.pmd(R) is not None   # writer's PMD split


def test_rule6_second_writer_small_reuses_large_copies_until_exclusive() -> None:
    p = region(64)
    small = fill(p, 0, 1)[0]
    big = p.alloc_folio(4)
    p.map(R + 16 * 4096, big)
    r = pkmm.fork(p, K)
    c = r.child
    c.write(R, 1)
    p.write(R, 2)
    assert p.last_fault.kind == "reuse" and p.pte(R).pfn == small.pfn
    c.write(R + 19 * 4096, 1)
    p.write(R + 19 * 4096, 2)
    assert p.last_fault.kind == "cow-copy"          # child still maps the rest of big
    c.exit()
    p.write(R + 21 * 4096, 3)
    assert p.last_fault.kind == "reuse" and big.page(5).anon_exclusive   # exclusive again


def test_rule6_page_cache_pages_never_reused() -> None:
    p = pkmm.Process(K)
    p.mmap(R, 4, backing="file")
    f = p.alloc_folio(0, backing="file")
    p.map(R, f, write=False, dirty=False)
    p.map(R + 4096, p.alloc_folio(0))
    r = pkmm.fork(p, K)
    r.child.write(R, 1)
    p.write(R, 2)
    assert p.last_fault.kind == "cow-copy" and p.page_at(R)[0].kind == "anon"
    assert r.child.page_at(R)[0] is not p.page_at(R)[0]


def test_rule6_h7_pinned_folio_not_reused_after_child_exit() -> None:
    p = region(64)
    f = p.alloc_folio(4)
    p.map(R, f)
    pkmm.fork(p, K).child.exit()                     # throw-away fork: AE cleared
    p.write(R + 5 * 4096, 1)                         # reuse: page 5 AE + writable
    assert p.last_fault.kind == "reuse"
    p.pin(f, 5)
    r = pkmm.fork(p, K)
    assert r.copies == 1                              # only the AE page 5 is copied
    assert r.child.pte(R + 5 * 4096).pfn != f.pfn + 5
    assert r.child.pte(R + 4 * 4096).pfn == f.pfn + 4
    r.child.exit()
    p.write(R + 6 * 4096, 2)
    assert p.last_fault.kind == "cow-copy"           # extra pin reference blocks reuse


# Rule 7: pinned pages ---

@pytest.mark.parametrize("order,pinned_page,copies", [(0, 0, 1), (4, 3, 16), (9, 3, 512)])
def test_rule7_pinned_folio_copied_whole_parent_keeps_it(order: int, pinned_page: int,
                                                         copies: int) -> None:
    p = region(512)
    f = p.alloc_folio(order)
    if order == 9:
        p.map_pmd(R, f)
    else:
        p.map(R, f)
    p.pin(f, pinned_page)
    r = pkmm.fork(p, K)
    assert r.copies == copies
    for i in range(f.nr_pages):
        a = R + i * 4096
        assert p.pte(a).pfn == f.pfn + i and p.pte(a).write
        assert f.page(i).anon_exclusive and f.page(i).mapcount == 1
        assert r.child.page_at(a)[0].order == 0
    p.write(R + pinned_page * 4096, 9)
    assert p.last_fault.kind == "none"               # no fault on the pinned page


def test_rule7_h5_refcount_heuristic_needs_mmf_has_pinned() -> None:
    def layout(pin_other: bool) -> tuple[pkmm.Process, pkmm.Folio]:
        p = region(16)
        f, g = fill(p, 0, 2)
        p.vmsplice(f, 0, refs=1280)
        if pin_other:
            p.pin(g, 0)
        return p, f
    p, f = layout(False)
    assert pkmm.fork(p, K).child.pte(R).pfn == f.pfn             # h5a: shared
    p, f = layout(True)
    assert pkmm.fork(p, K).child.pte(R).pfn != f.pfn             # h5b: copied


def test_rule7_h4_unpin_before_fork_restores_sharing() -> None:
    p = region(16)
    f = fill(p, 0, 1)[0]
    p.pin(f, 0)
    p.unpin(f, 0)
    assert p.has_pinned
    r = pkmm.fork(p, K)
    assert r.copies == 0 and r.child.pte(R).pfn == f.pfn


# Rule 8: uffd-wp --------------------------------------------------------------------------------

@pytest.mark.parametrize("event_fork", [False, True])
def test_rule8_uffd_wp_bit_only_with_event_fork(event_fork: bool) -> None:
    p = region(16, uffd_wp=True, uffd_fork=event_fork)
    p.map(R, p.alloc_folio(0), write=False, uffd_wp=True)
    r = pkmm.fork(p, K)
    assert r.child.pte(R).uffd_wp == event_fork and p.pte(R).uffd_wp


# i1/i2: DONTFORK and WIPEONFORK leave the parent untouched ---

@pytest.mark.parametrize("kw", [{"dontfork": True}, {"wipeonfork": True}])
def test_i1_i2_parent_untouched(kw: dict) -> None:
    p = region(4, **kw)
    f = fill(p, 0, 1)[0]
    r = pkmm.fork(p, K)
    assert p.pte(R).write and f.page(0).anon_exclusive and f.page(0).mapcount == 1
    if "wipeonfork" in kw:
        assert r.child.read(R) == 0
    else:
        with pytest.raises(pkmm.FaultError):
            r.child.read(R)
