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

import pkmm
from pkmm.vma import VM_WRITE, File, Vma

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
    lower = p.mmap(BASE - 16 * P, 16)
    p.write(BASE - 16 * P, 1)
    upper = p.mmap(BASE, 16)
    # pkmm: the model has no VMA split; __split_vma() gives the new VMA the same anon_vma
    upper.anon_vma = lower.anon_vma
    for i in range(16):
        p.read(page(i))


def _d(three_vmas: bool) -> Callable[[pkmm.Process], None]:
    def setup(p: pkmm.Process) -> None:
        f = p.alloc_folio(9)
        if three_vmas:   # mprotect(PROT_READ) of page 100: PMD split, AE kept, 3 VMAs
            p.mmap(BASE, 100)
            p.mmap(page(100), 1, write=False)
            p.mmap(page(101), 411)
            p.map(BASE, f, 0, 100)
            p.map(page(100), f, 100, 1, write=False)
            p.map(page(101), f, 101, 411)
        else:            # ... then mprotect(RW) back: one VMA, PTE-mapped, all writable
            p.mmap(BASE, 512)
            p.map(BASE, f)
        for i in range(512):
            if i != 100 or not three_vmas:
                p.write(page(i), 1)
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
        backing = "file" if kind == "file" else "shmem"
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


def _pin(p: pkmm.Process, first: int, n: int) -> None:
    for i in range(first, first + n):
        p.pin(*_folio_at(p, i))


def _pinned(base: Callable[[pkmm.Process], object], first: int, n: int,
            unpin: bool = False) -> Callable[[pkmm.Process], None]:
    def setup(p: pkmm.Process) -> None:
        base(p)
        _pin(p, first, n)
        if unpin:
            p.unpin(*_folio_at(p, first))
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
    # pkmm: no mprotect in the model; written pages then mprotect(PROT_READ) are the same
    # PFNs, still AnonExclusive, in a read-only VMA with read-only PTEs
    p.mmap(BASE, 16, write=False)
    for i in range(16):
        p.map(page(i), p.alloc_folio(0), write=False)


def mprotect_rw(p: pkmm.Process) -> None:
    """The j1 writer's mprotect(PROT_READ|PROT_WRITE) of the region, in the model.

    pkmm: only VM_WRITE changes.  The kernel would also make a PTE writable at once when
    its page is AnonExclusive; after fork no page of the region is, so no PTE changes.
    """
    vma = p.vma(BASE)
    assert vma is not None
    vma.vm_flags |= VM_WRITE


def _j2(p: pkmm.Process) -> None:
    p.mmap(BASE, 5)
    p.mmap(page(5), 1, write=False)
    p.mmap(page(6), 58)
    for first in range(0, 64, 16):
        f = p.alloc_folio(4)
        if first == 0:   # mprotect(PROT_READ) of page 5 splits folio 0 across 3 VMAs
            p.map(BASE, f, 0, 5)
            p.map(page(5), f, 5, 1, write=False)
            p.map(page(6), f, 6, 10)
        else:
            p.map(page(first), f)
    for i in range(64):
        if i != 5:
            p.write(page(i), 1)


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
}


#: Scenarios the model cannot lay out yet, with the model API each one still needs.  The
#: report shows them as unexpressed (counted against agreement), never as skipped.
MISSING: dict[str, str] = {
    "m1": "Process.mprotect (with the write upgrade)", "m2": "Process.mprotect",
    "u1": "Process.munmap", "u2": "Process.madvise(MADV_DONTNEED)",
    "r1": "Process.mremap", "r2": "Process.mremap",
"p1": "R/W pins that write-fault first (pin(write=True))",
    "p2": "R/W pins that write-fault first (pin(write=True))",
    "t1": "hugetlb VMAs",
    "t2": "hugetlb VMAs and pinned hugetlb copies", "t3": "shared hugetlb VMAs",
    "i3": "Process.madvise(MADV_DONTFORK/MADV_DOFORK)",
    "i4": "Process.madvise(MADV_WIPEONFORK/MADV_KEEPONFORK)",
    "x1": "Process.madvise(MADV_COLLAPSE)",
}


def build(sc: Scenario, kernel: str) -> pkmm.Process:
    """A fresh model process holding ``sc``'s layout at :data:`BASE`."""
    p = pkmm.Process(kernel)
    SETUPS[sc.id](p)
    return p
