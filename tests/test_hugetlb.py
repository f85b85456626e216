"""hugetlb VMAs: faults, CoW, fork and pins, each rule from mm/hugetlb.c (cited)."""

from __future__ import annotations

import errno

import pytest

import pkmm
from pkmm.kernels import COW_KERNELS

BASE = 0x4000_0000
N = 512             # pages in one 2 MiB huge page


def _private(kernel: str = "v6.17") -> pkmm.Process:
    p = pkmm.Process(kernel)
    p.mmap(BASE, N, hugetlb_kb=2048)
    p.memset(BASE, N, 1)
    return p


def test_first_write_maps_one_writable_exclusive_huge_page() -> None:
    # hugetlb_no_page(): a new zeroed huge page; a write goes on to hugetlb_wp() at once
    p = _private()
    f, i = p.page_at(BASE + 7 * pkmm.PAGE_SIZE)
    assert f.hugetlb and f.order == 9 and i == 7 and f.refcount == 1
    assert f.entire_mapcount == 1 and f.pages[0].anon_exclusive and p.pte(BASE).write
    assert p.vma(BASE).anon_vma is not None and p.rss["MM_ANONPAGES"] == 0   # HugetlbPages
    pkmm.check_invariants(p)


@pytest.mark.parametrize("kernel", COW_KERNELS)
def test_fork_shares_the_huge_page_and_a_write_copies_it_whole(kernel) -> None:
    # copy_hugetlb_page_range(): wrprotect both, entire mapcount + 1, AE cleared;
    # hugetlb_wp(): mapcount 2 -> copy the whole 2 MiB; then the other side reuses
    p = _private(kernel)
    f = p.page_at(BASE)[0]
    c = pkmm.fork(p, kernel=kernel).child
    assert c.page_at(BASE)[0] is f and f.mapcount == 2 and not p.pte(BASE).write
    assert not f.pages[0].anon_exclusive
    c.write(BASE + 3 * pkmm.PAGE_SIZE, 5)
    assert c.last_fault.kind == "hugetlb-copy" and c.page_at(BASE)[0] is not f
    assert c.read_range(BASE, N)[:4] == [1, 1, 1, 5]
    p.write(BASE, 7)
    assert p.last_fault.kind == "hugetlb-reuse" and p.page_at(BASE)[0] is f
    pkmm.check_invariants(p, c)


@pytest.mark.parametrize("kernel", COW_KERNELS)
def test_a_pinned_huge_page_is_copied_for_the_child_at_fork(kernel) -> None:
    # copy_hugetlb_page_range(): hugetlb_try_dup_anon_rmap() fails for a maybe-pinned
    # AnonExclusive page -> hugetlb_install_folio() of a copy, writable for the child
    p = _private(kernel)
    f = p.page_at(BASE)[0]
    pin = p.pin_user_pages(BASE, 1, write=True)
    c = pkmm.fork(p, kernel=kernel).child
    assert c.page_at(BASE)[0] is not f and c.pte(BASE).write and p.pte(BASE).write
    p.write(BASE, 9)
    assert pin.read() == [9] and c.read(BASE) == 1
    pkmm.check_invariants(p, c)


def test_reuse_is_judged_by_mapcount_so_a_pipe_reference_leaks() -> None:
    # hugetlb_wp(): "folio_mapcount(old_folio) == 1" -- "there can still be leaks between
    # processes, for example, with FOLL_GET users" (cow.c marks these cases xfail)
    p = _private()
    c = pkmm.fork(p).child
    pipe = pkmm.Pipe()
    assert pipe.vmsplice(c, BASE, N) == 16
    c.munmap(BASE, N)
    p.memset(BASE, N, 0xFF)
    assert p.last_fault is not None and pipe.read() == [0xFF] * 16


def test_shared_hugetlb_is_not_copied_and_the_child_refaults_the_same_page() -> None:
    f = pkmm.File("huge", "file", hugetlb_kb=2048)
    p = pkmm.Process()
    p.mmap(BASE, N, backing="file", file=f, shared=True, hugetlb_kb=2048)
    p.memset(BASE, N, 3)
    c = pkmm.fork(p).child
    assert c.pte(BASE) is None
    assert c.read(BASE) == 3 and c.page_at(BASE)[0] is p.page_at(BASE)[0]
    pkmm.check_invariants(p, c)


def test_private_hugetlb_file_page_is_copied_on_write_and_unshared_for_a_ro_pin() -> None:
    p = pkmm.Process()
    f = p.memfd_create(N, hugetlb_kb=2048)
    p.mmap(BASE, N, backing="file", file=f, hugetlb_kb=2048)
    p.read(BASE)
    cached = p.page_at(BASE)[0]
    assert cached.kind == "file" and not p.pte(BASE).write
    pin = p.pin_user_pages(BASE, 1)                 # gup_must_unshare(): non-anon in COW
    assert p.page_at(BASE)[0].kind == "anon" and not p.pte(BASE).write
    p.write(BASE, 4)
    assert pin.read() == [4] and cached.pages[0].data == 0
    pkmm.check_invariants(p)


def test_hugetlb_argument_errors() -> None:
    p = pkmm.Process()
    with pytest.raises(pkmm.LayoutError, match="multiples of the huge page"):
        p.mmap(BASE, 100, hugetlb_kb=2048)
    with pytest.raises(pkmm.LayoutError, match="hugetlb_kb=4096"):
        p.mmap(BASE, N, hugetlb_kb=4096)
    with pytest.raises(pkmm.LayoutError, match="hugetlbfs file"):
        p.mmap(BASE, N, backing="file", hugetlb_kb=2048)
    p.mmap(BASE, N, hugetlb_kb=2048)
    p.write(BASE, 1)
    # mm/hugetlb.c hugetlb_vm_op_split(): a VMA split inside a huge page is -EINVAL
    for call in (lambda: p.munmap(BASE + 4096, 1), lambda: p.mprotect(BASE, 1, write=False),
                 lambda: p.madvise(BASE, 1, "MADV_DONTFORK")):
        assert call() == -errno.EINVAL
    assert len(p.vmas) == 1 and p.pte(BASE).write
