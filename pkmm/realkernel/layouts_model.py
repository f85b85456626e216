"""Build each scenario's layout in the pkmm model, the way the real probe builds it.

Simulator concept (no kernel file): the model counterpart of
:mod:`pkmm.realkernel.layouts_real`.  Pages the real probe faults in with a store or a
load are faulted in here with ``Process.write`` / ``Process.read`` (so the model's fault
path builds them); large folios, which the model's anonymous fault does not allocate,
are allocated and mapped explicitly with the bits the kernel's THP fault gives them.
Taught in: notebooks/09-real-kernel-lab.ipynb
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import pkmm
from pkmm.vma import File, Vma

from .layouts_real import FILE_BYTE
from .scenarios import Scenario

BASE = 0x4000_0000     # 2 MiB aligned, like the real region
P = pkmm.PAGE_SIZE


def page(i: int) -> int:
    return BASE + i * P


def _written(p: pkmm.Process, npages: int) -> Vma:
    v = p.mmap(BASE, npages)
    for i in range(npages):
        p.write(page(i), 1)
    return v


def _large(p: pkmm.Process, npages: int, order: int, *, pmd: bool = False) -> Vma:
    """THP fault: order-``order`` folios, writable, AnonExclusive (or one PMD)."""
    v = p.mmap(BASE, npages)
    for first in range(0, npages, 1 << order):
        f = p.alloc_folio(order)
        (p.map_pmd(page(first), f) if pmd else p.map(page(first), f))
    for i in range(npages):
        p.write(page(i), 1)
    return v


def _b1(p: pkmm.Process) -> None:
    p.mmap(BASE, 16)
    for i in range(16):
        p.read(page(i))


def _b2(p: pkmm.Process) -> None:
    p.mmap(BASE, 16)
    for i in range(15):
        p.read(page(i))
    p.write(page(15), 1)


def _b3(p: pkmm.Process) -> None:
    # a 32-page VMA whose page 0 gets the anon_vma; MADV_NOHUGEPAGE on the upper half
    # splits the VMA and the never-written upper half (the region) keeps that anon_vma
    p.mmap(BASE - 16 * P, 32)
    p.write(BASE - 16 * P, 1)
    p.madvise(BASE, 16, "MADV_NOHUGEPAGE")
    for i in range(16):
        p.read(page(i))


def _d(three_vmas: bool) -> Callable[[pkmm.Process], None]:
    def setup(p: pkmm.Process) -> None:
        _large(p, 512, 9, pmd=True)
        p.mprotect(page(100), 1, write=False)   # splits the PMD, keeps the folio: 3 VMAs
        if not three_vmas:                      # ... and back: one VMA, page 100 (AE)
            p.mprotect(page(100), 1, write=True)   # is made writable at once
    return setup


def _e2(p: pkmm.Process) -> None:
    p.mmap(BASE, 512)
    p.map_huge_zero_pmd(BASE)


def _shared(p: pkmm.Process, *, uffd_wp: bool = False, uffd_fork: bool = False) -> None:
    p.mmap(BASE, 16, shared=True, uffd_wp=uffd_wp, uffd_fork=uffd_fork)
    for i in range(16):
        if uffd_wp:      # UFFDIO_WRITEPROTECT: present PTEs become read-only + uffd-wp
            p.map(page(i), p.alloc_folio(0, backing="shmem"), write=False, uffd_wp=True)
        else:
            p.write(page(i), 1)


def _file(kind: str, cow_page: int | None) -> Callable[[pkmm.Process], None]:
    def setup(p: pkmm.Process) -> None:
        backing: Literal["file", "shmem"] = "file" if kind == "file" else "shmem"
        f = File(f"lab-{kind}", "file" if kind == "file" else "shmem")
        for i in range(16):   # pwrite + fsync: the page cache holds the file's bytes
            folio = p.alloc_folio(0, backing=backing)
            folio.pages[0].data = FILE_BYTE
            f.cache[i] = folio.pages[0]
        p.mmap(BASE, 16, backing=backing, file=f)
        for i in range(16):
            p.read(page(i))
        if cow_page is not None:
            p.write(page(cow_page), 1)
    return setup


def _folio_at(p: pkmm.Process, i: int) -> tuple[pkmm.Folio, int]:
    found = p.page_at(page(i))
    assert found is not None, f"_folio_at: page {i} not mapped"
    return found


def _pin(p: pkmm.Process, first: int, n: int) -> pkmm.UserPin:
    """io_uring's fixed buffer: pin_user_pages(FOLL_WRITE | FOLL_LONGTERM)."""
    return p.pin_user_pages(page(first), n, write=True)


def _pinned(base: Callable[[pkmm.Process], object], first: int, n: int,
            unpin: bool = False) -> Callable[[pkmm.Process], None]:
    def setup(p: pkmm.Process) -> None:
        base(p)
        pin = _pin(p, first, n)
        if unpin:
            pin.unpin()
    return setup


def _h5(pin_page8: bool) -> Callable[[pkmm.Process], None]:
    def setup(p: pkmm.Process) -> None:
        _written(p, 16)
        p.vmsplice(*_folio_at(p, 2), refs=1280)
        if pin_page8:
            _pin(p, 8, 1)
    return setup


def _throwaway_fork(p: pkmm.Process) -> None:
    pkmm.fork(p, kernel=p.kernel).child.exit()


def _h7(p: pkmm.Process) -> None:
    _large(p, 64, 4)
    _throwaway_fork(p)
    p.write(page(5), 1)
    _pin(p, 5, 1)


def _j1(p: pkmm.Process) -> None:
    _written(p, 16)
    p.mprotect(BASE, 16, write=False)


def mprotect_rw(p: pkmm.Process) -> None:
    """The j1 writer's mprotect(PROT_READ|PROT_WRITE) of the region (after fork no page is
    AnonExclusive, so the write upgrade changes no PTE)."""
    p.mprotect(BASE, 16, write=True)


def _j2(p: pkmm.Process) -> None:
    _large(p, 64, 4)
    p.mprotect(page(5), 1, write=False)     # splits folio 0 across 3 VMAs


def _j3(p: pkmm.Process) -> None:
    _large(p, 64, 4)
    _throwaway_fork(p)
    for i in (0, 2, 2, 16):
        p.write(page(i), 1)


def _k(shmem: bool, event_fork: bool) -> Callable[[pkmm.Process], None]:
    def setup(p: pkmm.Process) -> None:
        if shmem:
            _shared(p, uffd_wp=True, uffd_fork=event_fork)
            return
        p.mmap(BASE, 16, uffd_wp=True, uffd_fork=event_fork)
        for i in range(16):
            p.map(page(i), p.alloc_folio(0), write=False, uffd_wp=True)
    return setup


def _dontfork(p: pkmm.Process) -> None:
    p.mmap(BASE, 16, dontfork=True)
    for i in range(16):
        p.write(page(i), 1)


def _wipeonfork(p: pkmm.Process) -> None:
    p.mmap(BASE, 16, wipeonfork=True)
    for i in range(16):
        p.write(page(i), 1)


def _paged_out(base: Callable[[pkmm.Process], object]) -> Callable[[pkmm.Process], None]:
    """The layout, then MADV_PAGEOUT of the region (the probe checks every page went out;
    the 6.18 swapfile takes order-0 entries only, so a large folio is split first)."""
    def setup(p: pkmm.Process) -> None:
        base(p)
        p.madvise(BASE, p.vmas[-1].npages, "MADV_PAGEOUT")
    return setup


def _n(npages: int) -> Callable[[pkmm.Process], object]:
    return lambda p: _written(p, npages)


def _o(npages: int, order: int, pmd: bool = False) -> Callable[[pkmm.Process], object]:
    return lambda p: _large(p, npages, order, pmd=pmd)


def _zero_pages(p: pkmm.Process) -> None:
    p.mmap(BASE, 16)
    for i in range(16):
        p.read(page(i))


def _hugetlb(p: pkmm.Process, *, shared: bool) -> None:
    """MAP_PRIVATE|MAP_ANONYMOUS|MAP_HUGETLB, or a MFD_HUGETLB memfd (ftruncate'd, no
    pages yet) mapped MAP_SHARED; every page written."""
    f = File("lab-hugetlb", "file", hugetlb_kb=2048) if shared else None
    p.mmap(BASE, 512, hugetlb_kb=2048, shared=shared, file=f,
           backing="file" if shared else "anon")
    for i in range(512):
        p.write(page(i), 1)


SETUPS: dict[str, Callable[[pkmm.Process], object]] = {
    "a": _n(16), "b1": _b1, "b2": _b2, "b3": _b3, "c": _o(64, 4), "c2": _o(64, 4),
    "d1": _d(True), "d2": _d(False), "e": _o(512, 9, pmd=True), "e2": _e2,
    "f": _shared, "g1": _file("file", None), "g2": _file("shmem", None),
    "g3": _file("file", 1), "g4": _file("shmem", 1),
    "h1": _pinned(_n(16), 2, 1), "h2": _pinned(_o(64, 4), 3, 1),
    "h3": _pinned(_o(512, 9, pmd=True), 3, 1), "h4": _pinned(_n(16), 2, 1, unpin=True),
    "h5a": _h5(False), "h5b": _h5(True), "h6": _pinned(_o(64, 4), 0, 16), "h7": _h7,
    "i1": _dontfork, "i2": _wipeonfork, "j1": _j1, "j2": _j2, "j3": _j3,
    "k1": _k(False, False), "k2": _k(False, True), "k3": _k(True, True),
    "k4": _k(True, False), "p3": _pinned(_shared, 2, 2),
    "s1": _paged_out(_n(16)), "s2": _paged_out(_o(16, 4)),
    "t1": lambda p: _hugetlb(p, shared=False), "t2": _pinned(
        lambda p: _hugetlb(p, shared=False), 3, 1),
    "t3": lambda p: _hugetlb(p, shared=True),
    "p1": _pinned(_zero_pages, 2, 2), "p2": _pinned(_file("file", None), 2, 2),
    "mp1": lambda p: _mprotect_ro_rw(_written(p, 16).vm_start, p),
    "mp2": lambda p: _mprotect_ro_rw(_written(p, 16).vm_start, p, throwaway=True),
    "u1": lambda p: (_large(p, 16, 4), p.munmap(page(4), 4)),
    "u2": lambda p: (_large(p, 16, 4), p.madvise(page(1), 15, "MADV_DONTNEED")),
    "r1": lambda p: (_large(p, 16, 4), p.mremap(page(8), 8, page(24))),
    "r2": lambda p: (_large(p, 512, 9, pmd=True), p.mremap(page(256), 256, page(768))),
    "i3": lambda p: _advised(p, "MADV_DONTFORK", "MADV_DOFORK"),
    "i4": lambda p: _advised(p, "MADV_WIPEONFORK", "MADV_KEEPONFORK"),
    "x1": lambda p: (_d(False)(p), p.madvise(BASE, 512, "MADV_COLLAPSE")),
}


def _mprotect_ro_rw(start: int, p: pkmm.Process, throwaway: bool = False) -> None:
    """mprotect(PROT_READ) then mprotect(PROT_READ|PROT_WRITE) of the region (after a
    throwaway fork when asked: then no page is AnonExclusive and none is upgraded)."""
    if throwaway:
        _throwaway_fork(p)
    p.mprotect(start, 16, write=False)
    p.mprotect(start, 16, write=True)


def _advised(p: pkmm.Process, first: str, then: str) -> None:
    _written(p, 16)
    p.madvise(BASE, 16, first)
    p.madvise(BASE, 16, then)


def build(sc: Scenario, kernel: str) -> pkmm.Process:
    """A fresh model process holding ``sc``'s layout at :data:`BASE`."""
    p = pkmm.Process(kernel)
    SETUPS[sc.id](p)
    return p
