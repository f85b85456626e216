"""Build each scenario's memory layout in this (real) process.

Kernel interfaces: mmap/mprotect/munmap/mremap/madvise (MADV_HUGEPAGE, MADV_NOHUGEPAGE,
MADV_DONTFORK, MADV_DOFORK, MADV_WIPEONFORK, MADV_KEEPONFORK, MADV_DONTNEED, MADV_PAGEOUT,
MADV_COLLAPSE), MAP_HUGETLB and hugetlb memfds, MAP_SHARED|MAP_ANONYMOUS, MAP_PRIVATE
file mappings (ext4 and tmpfs),
io_uring pins, vmsplice references, userfaultfd-wp (see pkmm.realkernel.probe).
Taught in: notebooks/09-real-kernel-lab.ipynb

Every region sits between PROT_NONE guard VMAs (a reservation that the region is mapped
into with MAP_FIXED): a fresh region can then never merge with, and inherit the anon_vma
of, a neighbouring anonymous VMA (scenario b3 shows why that matters).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field

from . import libc as lc
from .libc import PAGE_SIZE, PMD_SIZE, PROT_NONE, PROT_READ, PROT_RW, poke
from .pins import IoUringPin, PipeRefs, UffdWp
from .scenarios import Scenario

GUARD = PMD_SIZE
FILE_BYTE = 0x61   # 'a': the content of the file scenarios g1-g4


class LayoutNotObtained(RuntimeError):
    """The kernel did not give the layout asked for (e.g. no free 64K folio)."""


@dataclass
class Region:
    """A scenario's region in this process and what must live (and be closed) with it."""

    addr: int
    npages: int
    span: tuple[int, int] = (0, 0)   # the whole guarded reservation
    closers: list[Callable[[], None]] = field(default_factory=list)
    uffd: UffdWp | None = None

    def page(self, i: int) -> int:
        return self.addr + i * PAGE_SIZE

    def close(self) -> None:
        for fn in reversed(self.closers):
            fn()
        self.closers.clear()


def reserve(npages: int) -> Region:
    """A 2 MiB-aligned PROT_NONE reservation with >= 2 MiB of guard on each side."""
    size = npages * PAGE_SIZE
    total = size + 2 * GUARD + PMD_SIZE
    base = lc.mmap(0, total, PROT_NONE, lc.MAP_PRIVATE | lc.MAP_ANONYMOUS | lc.MAP_NORESERVE)
    addr = (base + GUARD + PMD_SIZE - 1) & ~(PMD_SIZE - 1)
    region = Region(addr, npages, (base, base + total))
    region.closers.append(lambda: lc.munmap(base, total))
    return region


def map_anon(r: Region, first: int, npages: int, *, shared: bool = False) -> None:
    flags = lc.MAP_FIXED | lc.MAP_ANONYMOUS | (lc.MAP_SHARED if shared else lc.MAP_PRIVATE)
    lc.mmap(r.page(first), npages * PAGE_SIZE, PROT_RW, flags)


def write_pages(r: Region, pages: range | list[int], value: int = 1) -> None:
    for i in pages:
        poke(r.page(i), value)


def read_pages(r: Region, pages: range | list[int]) -> None:
    for i in pages:
        lc.peek(r.page(i))


def madvise(r: Region, first: int, npages: int, advice: int) -> None:
    lc.madvise(r.page(first), npages * PAGE_SIZE, advice)


def throwaway_fork() -> None:
    """fork + immediate exit: leaves every anon PTE read-only and not AnonExclusive."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)


def _anon(r: Region, advice: int = lc.MADV_NOHUGEPAGE) -> None:
    map_anon(r, 0, r.npages)
    madvise(r, 0, r.npages, advice)


def _file(r: Region, directory: str, cow_page: int | None) -> None:
    fd, path = tempfile.mkstemp(prefix="pkmm-rk-", dir=directory)
    try:
        for i in range(r.npages):   # page by page: order-0 page-cache folios, as scenario g1 saw
            os.pwrite(fd, bytes([FILE_BYTE]) * PAGE_SIZE, i * PAGE_SIZE)
        os.fsync(fd)
        lc.mmap(r.page(0), r.npages * PAGE_SIZE, PROT_RW, lc.MAP_PRIVATE | lc.MAP_FIXED, fd)
    finally:
        os.close(fd)
        os.unlink(path)
    read_pages(r, range(r.npages))
    if cow_page is not None:
        poke(r.page(cow_page), 1)


def _pin(r: Region, first: int, npages: int) -> IoUringPin:
    pin = IoUringPin(r.page(first), npages * PAGE_SIZE)
    r.closers.append(pin.close)
    return pin


def _uffd(r: Region, *, event_fork: bool, shmem: bool) -> None:
    r.uffd = UffdWp(r.addr, r.npages * PAGE_SIZE, event_fork=event_fork, shmem=shmem)
    r.closers.append(r.uffd.close)


def _written(advice: int, folio_pages: int = 1) -> Callable[[Region], None]:
    def setup(r: Region) -> None:
        _anon(r, advice)
        write_pages(r, range(r.npages))
        expect_folios(r, folio_pages)
    return setup


def expect_folios(r: Region, folio_pages: int) -> None:
    """Raise :class:`LayoutNotObtained` unless every page sits in a folio of that size."""
    from .procfs import KPF_COMPOUND_HEAD, KPF_THP, PageReader
    reader = PageReader()
    try:
        pages = reader.read(r.addr, r.npages)
    finally:
        reader.close()
    for i, p in enumerate(pages):
        large = folio_pages > 1
        head_ok = p.kflag(KPF_COMPOUND_HEAD) == (large and i % folio_pages == 0)
        if p.pfn is None or p.kflag(KPF_THP) != large or not head_ok:
            raise LayoutNotObtained(f"page {i}: wanted a {folio_pages * 4}K folio, the kernel "
                                    "gave another size (memory fragmented or THP disabled?)")


_4K = _written(lc.MADV_NOHUGEPAGE)
_64K = _written(lc.MADV_HUGEPAGE, 16)
_2M = _written(lc.MADV_HUGEPAGE, 512)


def _b1(r: Region) -> None:
    _anon(r)
    read_pages(r, range(r.npages))


def _b2(r: Region) -> None:
    _anon(r)
    read_pages(r, range(r.npages - 1))
    poke(r.page(r.npages - 1), 1)


def _b3(r: Region) -> None:
    # A 32-page VMA whose page 0 gets the anon_vma; MADV_NOHUGEPAGE on the upper half
    # splits the VMA and the never-written upper half (the region) keeps that anon_vma.
    map_anon(r, -r.npages, 2 * r.npages)
    poke(r.page(-r.npages), 1)
    madvise(r, 0, r.npages, lc.MADV_NOHUGEPAGE)
    read_pages(r, range(r.npages))


def _d(remerge: bool) -> Callable[[Region], None]:
    def setup(r: Region) -> None:
        _2M(r)
        lc.mprotect(r.page(100), PAGE_SIZE, PROT_READ)   # splits the PMD, keeps the folio
        if remerge:
            lc.mprotect(r.page(100), PAGE_SIZE, PROT_RW)
    return setup


def _e2(r: Region) -> None:
    _anon(r, lc.MADV_HUGEPAGE)
    read_pages(r, range(r.npages))


def _shared(r: Region) -> None:
    map_anon(r, 0, r.npages, shared=True)
    write_pages(r, range(r.npages))


def _pinned(base: Callable[[Region], None], first: int, n: int,
            unpin: bool = False) -> Callable[[Region], None]:
    def setup(r: Region) -> None:
        base(r)
        pin = _pin(r, first, n)
        if unpin:
            pin.unpin()
    return setup


def _h5(pin_page8: bool) -> Callable[[Region], None]:
    def setup(r: Region) -> None:
        _4K(r)
        refs = PipeRefs(r.page(2), 1280)
        r.closers.append(refs.close)
        if pin_page8:
            _pin(r, 8, 1)
    return setup


def _h7(r: Region) -> None:
    _64K(r)
    throwaway_fork()
    poke(r.page(5), 1)   # wp-fault reuse: page 5 writable + AnonExclusive again
    _pin(r, 5, 1)


def _with_advice(advice: int) -> Callable[[Region], None]:
    def setup(r: Region) -> None:
        _4K(r)
        madvise(r, 0, r.npages, advice)
    return setup


def _j1(r: Region) -> None:
    _4K(r)
    lc.mprotect(r.addr, r.npages * PAGE_SIZE, PROT_READ)


def _j2(r: Region) -> None:
    _64K(r)
    lc.mprotect(r.page(5), PAGE_SIZE, PROT_READ)


def _j3(r: Region) -> None:
    _64K(r)
    throwaway_fork()
    for i in (0, 2, 2, 16):
        poke(r.page(i), 1)


def _k(shmem: bool, event_fork: bool) -> Callable[[Region], None]:
    def setup(r: Region) -> None:
        (_shared if shmem else _4K)(r)
        _uffd(r, event_fork=event_fork, shmem=shmem)
    return setup


def _mp1(r: Region) -> None:
    _4K(r)
    lc.mprotect(r.addr, r.npages * PAGE_SIZE, PROT_READ)
    lc.mprotect(r.addr, r.npages * PAGE_SIZE, PROT_RW)   # AE pages: writable again at once


def _mp2(r: Region) -> None:
    _4K(r)
    throwaway_fork()                                      # no page is AE any more
    lc.mprotect(r.addr, r.npages * PAGE_SIZE, PROT_READ)
    lc.mprotect(r.addr, r.npages * PAGE_SIZE, PROT_RW)


def _u1(r: Region) -> None:
    _64K(r)
    lc.munmap(r.page(4), 4 * PAGE_SIZE)
    lc.mmap(r.page(4), 4 * PAGE_SIZE, PROT_NONE,    # keep the hole reserved (see r1)
            lc.MAP_PRIVATE | lc.MAP_ANONYMOUS | lc.MAP_FIXED | lc.MAP_NORESERVE)


def _u2(r: Region) -> None:
    _64K(r)
    madvise(r, 1, r.npages - 1, lc.MADV_DONTNEED)


def _mremap_upper_half(r: Region, folio_pages: int, to: int) -> None:
    half = folio_pages // 2
    new = lc.mremap(r.page(half), half * PAGE_SIZE, half * PAGE_SIZE,
                    lc.MREMAP_MAYMOVE | lc.MREMAP_FIXED, r.page(to))
    if new != r.page(to):
        raise LayoutNotObtained(f"mremap moved the pages to {new:#x}, not {r.page(to):#x}")
    # refill the hole left behind, or the allocator may put its own memory there (and
    # the reservation's munmap would take it away)
    lc.mmap(r.page(half), half * PAGE_SIZE, PROT_NONE,
            lc.MAP_PRIVATE | lc.MAP_ANONYMOUS | lc.MAP_FIXED | lc.MAP_NORESERVE)


def _r1(r: Region) -> None:
    map_anon(r, 0, 16)
    madvise(r, 0, 16, lc.MADV_HUGEPAGE)
    write_pages(r, range(16))
    _expect_folio(r, 0, 16)
    _mremap_upper_half(r, 16, 24)


def _r2(r: Region) -> None:
    map_anon(r, 0, 512)
    madvise(r, 0, 512, lc.MADV_HUGEPAGE)
    write_pages(r, range(512))
    _expect_folio(r, 0, 512)
    _mremap_upper_half(r, 512, 768)


def _expect_folio(r: Region, first: int, folio_pages: int) -> None:
    sub = Region(r.page(first), folio_pages)
    expect_folios(sub, folio_pages)


def _pageout(r: Region) -> None:
    from .procfs import PageReader
    madvise(r, 0, r.npages, lc.MADV_PAGEOUT)
    reader = PageReader()
    try:
        pages = reader.read(r.addr, r.npages)
    finally:
        reader.close()
    if not all(p.swapped for p in pages):
        raise LayoutNotObtained("MADV_PAGEOUT did not swap every page out")


def _s1(r: Region) -> None:
    _4K(r)
    _pageout(r)


def _s2(r: Region) -> None:
    _64K(r)
    _pageout(r)


def _p1(r: Region) -> None:
    _anon(r)
    read_pages(r, range(r.npages))     # every page maps the shared zero page
    _pin(r, 2, 2)                      # FOLL_WRITE: write-faults pages 2 and 3 first


def _p2(r: Region) -> None:
    _file(r, "/var/tmp", None)         # read: page-cache pages, mapped read-only
    _pin(r, 2, 2)                      # FOLL_WRITE: CoW into anon pages first


def _p3(r: Region) -> None:
    _shared(r)
    _pin(r, 2, 2)


def _hugetlb(r: Region, *, shared: bool) -> None:
    if shared:
        fd = lc.memfd_create("pkmm-rk", lc.MFD_HUGETLB)
        try:
            os.ftruncate(fd, r.npages * PAGE_SIZE)
            lc.mmap(r.addr, r.npages * PAGE_SIZE, PROT_RW, lc.MAP_SHARED | lc.MAP_FIXED, fd)
        finally:
            os.close(fd)
    else:
        lc.mmap(r.addr, r.npages * PAGE_SIZE, PROT_RW,
                lc.MAP_PRIVATE | lc.MAP_ANONYMOUS | lc.MAP_FIXED | lc.MAP_HUGETLB)
    write_pages(r, range(r.npages))


def _t2(r: Region) -> None:
    _hugetlb(r, shared=False)
    _pin(r, 3, 1)


def _i3(r: Region) -> None:
    _with_advice(lc.MADV_DONTFORK)(r)
    madvise(r, 0, r.npages, lc.MADV_DOFORK)


def _i4(r: Region) -> None:
    _with_advice(lc.MADV_WIPEONFORK)(r)
    madvise(r, 0, r.npages, lc.MADV_KEEPONFORK)


def _x1(r: Region) -> None:
    _d(True)(r)                        # PTE-mapped 2M THP, one VMA again after mprotect(RW)
    madvise(r, 0, r.npages, lc.MADV_COLLAPSE)
    expect_folios(r, 512)


SETUPS: dict[str, Callable[[Region], None]] = {
    "a": _4K, "b1": _b1, "b2": _b2,
    "b3": _b3, "c": _64K, "c2": _64K, "d1": _d(False), "d2": _d(True), "e": _2M, "e2": _e2,
    "f": _shared,
    "g1": lambda r: _file(r, "/var/tmp", None), "g2": lambda r: _file(r, "/dev/shm", None),
    "g3": lambda r: _file(r, "/var/tmp", 1), "g4": lambda r: _file(r, "/dev/shm", 1),
    "h1": _pinned(_4K, 2, 1), "h2": _pinned(_64K, 3, 1), "h3": _pinned(_2M, 3, 1),
    "h4": _pinned(_4K, 2, 1, unpin=True), "h5a": _h5(False), "h5b": _h5(True),
    "h6": _pinned(_64K, 0, 16), "h7": _h7,
    "i1": _with_advice(lc.MADV_DONTFORK), "i2": _with_advice(lc.MADV_WIPEONFORK),
    "j1": _j1, "j2": _j2, "j3": _j3,
    "k1": _k(False, False), "k2": _k(False, True), "k3": _k(True, True), "k4": _k(True, False),
    "mp1": _mp1, "mp2": _mp2, "u1": _u1, "u2": _u2, "r1": _r1, "r2": _r2, "s1": _s1, "s2": _s2,
    "p1": _p1, "p2": _p2, "p3": _p3, "t1": lambda r: _hugetlb(r, shared=False), "t2": _t2,
    "t3": lambda r: _hugetlb(r, shared=True), "i3": _i3, "i4": _i4, "x1": _x1,
}


def build(sc: Scenario) -> Region:
    """Reserve guarded space and build ``sc``'s layout in it (closes it again on error)."""
    r = reserve(sc.npages)
    try:
        SETUPS[sc.id](r)
    except BaseException:
        r.close()
        raise
    return r
