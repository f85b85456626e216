"""GUP: R/O and R/W long-term pins, GUP-fast's refusals, vmsplice pipes, clear_refs --
each rule from mm/gup.c / mm/internal.h / mm/memory.c (cited per test)."""

from __future__ import annotations

import pytest

import pkmm
from pkmm.gup import FOLL_LONGTERM, FOLL_PIN, gup_must_unshare, pin_user_page
from pkmm.kernels import COW_KERNELS

BASE = 0x4000_0000
P = pkmm.PAGE_SIZE


def _anon(kernel: str = "v6.17", n: int = 1) -> pkmm.Process:
    p = pkmm.Process(kernel)
    p.mmap(BASE, n)
    p.memset(BASE, n, 1)
    return p


@pytest.mark.parametrize("kernel", COW_KERNELS)
def test_ro_pin_of_a_shared_anon_page_unshares_it_into_a_copy(kernel) -> None:
    # mm/internal.h gup_must_unshare(): an anon page must be AnonExclusive; do_wp_page()
    # with FAULT_FLAG_UNSHARE copies it (wp_page_copy maps the copy read-only)
    p = _anon(kernel)
    c = pkmm.fork(p, kernel=kernel).child
    old = p.page_at(BASE)
    pin = p.pin_user_pages(BASE, 1)
    new = p.page_at(BASE)
    assert new != old and new[0].pages[0].anon_exclusive and not p.pte(BASE).write
    assert p.faults[-1].kind == "unshare-copy"
    p.write(BASE, 0xFF)                       # reuses the exclusive page: the pin sees it
    assert p.faults[-1].kind == "reuse"
    assert pin.read() == [0xFF] and c.read(BASE) == 1
    pkmm.check_invariants(p, c)


@pytest.mark.parametrize("kernel", COW_KERNELS)
def test_ro_pin_of_a_previously_shared_page_reuses_it(kernel) -> None:
    # do_wp_page(): refcount 1 -> wp_can_reuse_anon_folio(); unshare sets AE, PTE stays RO
    p = _anon(kernel)
    pkmm.fork(p, kernel=kernel).child.exit()
    old = p.page_at(BASE)
    p.pin_user_pages(BASE, 1)
    assert p.page_at(BASE) == old and old[0].pages[0].anon_exclusive
    assert not p.pte(BASE).write and p.faults[-1].kind == "unshare"


def test_ro_pin_of_an_exclusive_read_only_page_needs_no_fault() -> None:
    p = _anon()
    p.clear_soft_dirty()                       # write-protects the PTE
    faults = len(p.faults)
    pin = p.pin_user_pages(BASE, 1)
    assert len(p.faults) == faults and not p.pte(BASE).write
    p.write(BASE, 7)
    assert pin.read() == [7]


@pytest.mark.parametrize("fast", [False, True])
def test_ro_pin_of_the_zero_page_and_of_a_private_page_cache_page_unshares(fast) -> None:
    # gup_must_unshare(): "We only care about R/O long-term pining ... writable private
    # ('COW') mappings where we have to break COW early" -- GUP-fast cannot ask the VMA
    p = pkmm.Process()
    p.mmap(BASE, 1)
    p.read(BASE)
    p.mmap(BASE + P, 1, backing="file")
    p.read(BASE + P)
    zero, cache = p.pin_user_pages(BASE, 1, fast=fast), p.pin_user_pages(BASE + P, 1,
                                                                         fast=fast)
    for a in (BASE, BASE + P):
        f, i = p.page_at(a)
        assert f.kind == "anon" and f.pages[i].anon_exclusive and not p.pte(a).write
    if fast:
        assert any(e[0] == "gup_fast" for fr in p.faults for e in fr.events)
    p.write(BASE, 3)
    p.write(BASE + P, 4)
    assert zero.read() == [3] and cache.read() == [4]
    pkmm.check_invariants(p)


def test_ro_pin_of_a_shared_mapping_page_keeps_the_page_cache_page() -> None:
    p = pkmm.Process()
    p.mmap(BASE, 1, shared=True)
    p.write(BASE, 1)
    f = p.page_at(BASE)[0]
    pin = p.pin_user_pages(BASE, 1)
    assert pin.pages == [(f, 0)] and f.kind == "shmem"


@pytest.mark.parametrize("kernel", COW_KERNELS)
def test_rw_pin_write_faults_first(kernel) -> None:
    # follow_page_pte(): FOLL_WRITE on a read-only PTE -> faultin_page(FAULT_FLAG_WRITE)
    p = pkmm.Process(kernel)
    p.mmap(BASE, 2)
    p.read(BASE)                               # zero page
    p.write(BASE + P, 1)
    c = pkmm.fork(p, kernel=kernel).child
    pin = p.pin_user_pages(BASE, 2, write=True)
    assert all(p.pte(BASE + i * P).write for i in range(2))
    assert [p.faults[i].kind for i in (-2, -1)] == ["cow-copy", "cow-copy"]
    pin.dma_write(1, 9)
    assert p.read(BASE + P) == 9 and c.read(BASE + P) == 1
    with pytest.raises(pkmm.LayoutError, match="read-only"):
        p.pin_user_pages(BASE, 1).dma_write(0, 1)
    pkmm.check_invariants(p, c)


def test_pin_errors() -> None:
    p = pkmm.Process()
    p.mmap(BASE, 1, write=False)
    with pytest.raises(pkmm.FaultError, match="cannot be pinned"):
        p.pin_user_pages(BASE, 1, write=True)
    p.mmap(BASE + P, 1, backing="file", shared=True)
    with pytest.raises(pkmm.FaultError, match="shared file"):   # writable_file_mapping_
        p.pin_user_pages(BASE + P, 1, write=True)                # allowed()
    with pytest.raises(pkmm.LayoutError, match="fast=1"):
        p.pin_user_pages(BASE, 1, fast=1)


def test_invariant_catches_a_long_term_pin_on_a_page_cache_page_in_a_cow_mapping() -> None:
    p = pkmm.Process()
    p.mmap(BASE, 1, backing="file")
    p.read(BASE)
    f = p.page_at(BASE)[0]
    assert gup_must_unshare(p.vma(BASE), frozenset({FOLL_PIN, FOLL_LONGTERM}), f, 0)
    with pytest.raises(pkmm.LayoutError, match="gup_must_unshare"):
        p.pin(f, 0)
    pin_user_page(p.mm, f, 0)                  # what GUP without unsharing would do
    with pytest.raises(pkmm.InvariantError, match="not an AnonExclusive anon page"):
        pkmm.check_invariants(p)


@pytest.mark.parametrize("kernel", COW_KERNELS)
def test_a_pipe_keeps_its_pages_after_the_process_exits(kernel) -> None:
    # fs/splice.c vmsplice_to_pipe(): plain page references in the pipe buffers; one
    # vmsplice into a fresh pipe takes at most PIPE_DEF_BUFFERS (16) pages
    p = _anon(kernel, 20)
    first = p.page_at(BASE)[0]
    pipe = pkmm.Pipe()
    assert pipe.vmsplice(p, BASE, 20) == 16
    c = pkmm.fork(p, kernel=kernel).child
    p.munmap(BASE, 20)
    c.memset(BASE, 20, 0xFF)                   # refcount > 1: the child copies
    p.exit()
    pkmm.check_invariants(c)                   # the pipe's references are counted
    assert not first.freed and first.gup_refs == 1
    assert pipe.read() == [1] * 16 and first.freed


def test_clear_soft_dirty_enables_tracking_and_skips_pinned_ptes() -> None:
    # fs/proc/task_mmu.c clear_soft_dirty(): pte_is_pinned() PTEs are left alone
    p = _anon(n=2)
    p.pin_user_pages(BASE + P, 1, write=True)
    p.clear_soft_dirty()
    assert not p.vma(BASE).vm_flags & pkmm.vma.VM_SOFTDIRTY
    assert not p.pte(BASE).write and p.pte(BASE + P).write
    p.mprotect(BASE, 2, write=False)
    p.mprotect(BASE, 2, write=True)            # tracking on: no write upgrade
    assert not p.pte(BASE).write
