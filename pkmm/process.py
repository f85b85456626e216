"""A simulated process: the learner's handle on one mm.

Simulator concept.  Every method validates its arguments first and raises
:class:`pkmm.LayoutError` (naming the argument and the fix) before changing anything,
then calls the kernel-named functions that change state.
Taught in: notebooks/01-ptes-folios-vmas.ipynb
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType

from .builders import PteBuilders, page_aligned
from .context import FaultResult, KernelVersion
from .errors import LayoutError, need
from .fault import handle_mm_fault
from .folio import Folio, folio_ref_add
from .gup import dma_write as gup_dma_write
from .kernels import DEFAULT_KERNEL, get_kernel
from .machine import Machine
from .mm import MmStruct
from .mmap import exit_mmap
from .pgtable import (
    Pmd,
    pmdp_get,
    pte_index,
    ptep_get,
)
from .pte import (
    PAGE_SIZE,
    Pte,
)
from .vma import (
    VM_DONTCOPY,
    VM_MAYREAD,
    VM_MAYSHARE,
    VM_MAYWRITE,
    VM_PFNMAP,
    VM_READ,
    VM_SHARED,
    VM_SOFTDIRTY,
    VM_UFFD_WP,
    VM_WIPEONFORK,
    VM_WRITE,
    AnonVma,
    Backing,
    File,
    Vma,
)

__all__ = ["BACKINGS", "Process", "dma_write"]

BACKINGS = ("anon", "file", "shmem")


class Process(PteBuilders):
    """One process (its mm), on a :class:`~pkmm.machine.Machine` shared with its family."""

    def __init__(self, kernel: str = DEFAULT_KERNEL, *, machine: Machine | None = None,
                 name: str = "parent") -> None:
        self.version: KernelVersion = get_kernel(kernel)
        need(machine is None or isinstance(machine, Machine),
             f"machine={machine!r}: pass a pkmm.Machine (or nothing for a new one)")
        need(isinstance(name, str), f"name={name!r}: a process name is a string")
        self.machine = machine if machine is not None else Machine()
        self.mm = MmStruct(self.machine, owner=name)
        self.name = name
        self.exited = False
        self.faults: list[FaultResult] = []
        self._nfiles = 0

    @property
    def kernel(self) -> str:
        """The name of the kernel variant whose fault path this process runs."""
        return self.version.name

    @kernel.setter
    def kernel(self, name: str) -> None:
        self.version = get_kernel(name)

    @property
    def pins(self) -> list[tuple[Folio, int]]:
        """The FOLL_PIN references this process took: (folio, page) per pin."""
        return self.mm.pins

    @property
    def gup_refs(self) -> list[tuple[Folio, int]]:
        """The plain (vmsplice) references this process holds, one entry per reference."""
        return self.mm.gup_refs

    def __repr__(self) -> str:
        state = " exited" if self.exited else ""
        return f"Process({self.name}, {len(self.mm.vmas)} VMAs, kernel={self.kernel}{state})"

    # -- address space ---------------------------------------------------------------
    def mmap(self, start: int, npages: int, *, backing: Backing = "anon",
             shared: bool = False, write: bool = True, uffd_wp: bool = False,
             uffd_fork: bool = False, pfnmap: bool = False, dontfork: bool = False,
             wipeonfork: bool = False, soft_dirty_tracking: bool = False,
             file: File | None = None, pgoff: int = 0, anon_vma: bool = False) -> Vma:
        """Create a VMA of ``npages`` pages at ``start`` (``mmap`` + ``madvise``).

        ``shared`` with ``backing="anon"`` is MAP_SHARED|MAP_ANONYMOUS, i.e. shmem.
        ``uffd_wp`` registers userfaultfd write-protect; ``uffd_fork`` says the context
        has UFFD_FEATURE_EVENT_FORK (the child keeps its uffd-wp registration).
        ``soft_dirty_tracking`` clears VM_SOFTDIRTY (tracking on; the kernel default is off).
        ``anon_vma`` starts the VMA with an anon_vma, as if a page had been CoWed in it
        before, or as a VMA split hands one down (real-kernel scenario b3): fork then
        copies its page tables even when it holds no anonymous page.
        """
        self._alive("mmap")
        page_aligned("start", start)
        need(isinstance(npages, int) and npages >= 1,
             f"npages={npages!r}: a VMA needs at least one page")
        need(backing in BACKINGS, f"backing={backing!r}: use one of {', '.join(BACKINGS)}")
        need(not uffd_fork or uffd_wp, "uffd_fork=True needs uffd_wp=True (EVENT_FORK is a "
             "feature of the userfaultfd context the VMA is registered with)")
        need(not wipeonfork or (backing == "anon" and not shared),
             "wipeonfork=True: MADV_WIPEONFORK applies only to private anonymous VMAs")
        end = start + npages * PAGE_SIZE
        for v in self.mm.vma_neighbours(start):
            if v is not None and end > v.vm_start and start < v.vm_end:
                raise LayoutError(f"mmap(start={start:#x}, npages={npages}) overlaps "
                                  f"{v.describe()}; pick a free range (e.g. start="
                                  f"{max(x.vm_end for x in self.mm.vmas):#x})")
        flags = VM_READ | VM_MAYREAD | VM_MAYWRITE
        if write:
            flags |= VM_WRITE
        if shared:
            flags |= VM_SHARED | VM_MAYSHARE
        if not soft_dirty_tracking:
            flags |= VM_SOFTDIRTY
        for on, bit in ((uffd_wp, VM_UFFD_WP), (pfnmap, VM_PFNMAP), (dontfork, VM_DONTCOPY),
                        (wipeonfork, VM_WIPEONFORK)):
            if on:
                flags |= bit
        kind: Backing = "shmem" if backing == "anon" and shared else backing
        vfile = file
        if kind != "anon" and vfile is None:
            self._nfiles += 1
            vfile = File(f"{self.name}-{kind}{self._nfiles}", "shmem" if kind == "shmem"
                         else "file")
        need(vfile is None or vfile.kind == ("shmem" if kind == "shmem" else "file"),
             f"file={vfile!r} does not match backing={backing!r}")
        vma = Vma(self.mm, start, end, flags, kind, vfile, pgoff,
                  anon_vma=AnonVma() if anon_vma else None, uffd_fork=uffd_fork)
        self.mm.insert_vma(vma)
        return vma

    def alloc_folio(self, order: int = 0, *, backing: Backing = "anon") -> Folio:
        """A fresh folio of ``2**order`` physically contiguous pages (not mapped yet)."""
        if self.exited:
            self._alive("alloc_folio")
        if backing not in BACKINGS:
            raise LayoutError(f"backing={backing!r}: use one of {', '.join(BACKINGS)}")
        if type(order) is not int:
            raise LayoutError(f"order={order!r}: a folio order is an int 0..9")
        f = self.machine.alloc_folio(order, backing)
        if backing != "anon":
            folio_ref_add(f, f.nr_pages)    # the page cache's references
        return f

    def vma(self, addr: int) -> Vma | None:
        """The VMA containing ``addr``."""
        return self.mm.find_vma(addr)

    @property
    def vmas(self) -> list[Vma]:
        """The VMAs in address order."""
        return list(self.mm.vmas)

    # -- looking at state ------------------------------------------------------------
    def pte(self, addr: int) -> Pte | None:
        """The PTE at ``addr`` (None for an empty slot).  Inside a PMD mapping: a read-only
        view of the PMD for that page (``.pmd`` is True)."""
        page_aligned("addr", addr)
        t = pmdp_get(self.mm, addr)
        if t is not None:
            return Pte(pfn=t.pfn + pte_index(addr), write=t.write,
                       dirty=t.dirty, young=t.young, soft_dirty=t.soft_dirty,
                       uffd_wp=t.uffd_wp, special=t.huge_zero, pmd=True)
        return ptep_get(self.mm, addr)

    def pmd(self, addr: int) -> Pmd | None:
        """The PMD leaf covering ``addr`` (None when PTE-mapped or empty)."""
        return pmdp_get(self.mm, addr)

    def page_at(self, addr: int) -> tuple[Folio, int] | None:
        """The (folio, page index) mapped at ``addr``, if any."""
        p = self.pte(addr)
        if p is None or not p.present:
            return None
        return self.machine.pfn_folio(p.pfn)

    def ptes(self, start: int | None = None, end: int | None = None) -> Iterator[
            tuple[int, Pte | None]]:
        """(addr, pte) for every slot of every VMA in [start, end)."""
        for v in self.mm.vmas:
            a = max(v.vm_start, start or 0)
            e = min(v.vm_end, end if end is not None else v.vm_end)
            while a < e:
                yield a, self.pte(a)
                a += PAGE_SIZE

    @property
    def rss(self) -> Mapping[str, int]:
        """The mm's rss counters (read-only view)."""
        return MappingProxyType(self.mm.rss)

    @property
    def has_pinned(self) -> bool:
        """MMF_HAS_PINNED."""
        return self.mm.has_pinned

    @property
    def last_fault(self) -> FaultResult | None:
        """What the last read/write did (None before any)."""
        return self.faults[-1] if self.faults else None

    # -- running ---------------------------------------------------------------------
    def read(self, addr: int) -> int:
        """Load from ``addr`` (page-granular data), faulting as the kernel would."""
        self._alive("read")
        need(isinstance(addr, int) and not isinstance(addr, bool) and addr >= 0,
             f"addr={addr!r}: a non-negative int")
        return self._fault(addr - addr % PAGE_SIZE, False, None)

    def write(self, addr: int, value: int) -> None:
        """Store ``value`` at ``addr``'s page, faulting (CoW copy or reuse) as needed."""
        self._alive("write")
        need(isinstance(addr, int) and not isinstance(addr, bool) and addr >= 0,
             f"addr={addr!r}: a non-negative int")
        need(isinstance(value, int) and not isinstance(value, bool),
             f"value={value!r}: pages hold ints")
        self._fault(addr - addr % PAGE_SIZE, True, value)

    def _fault(self, addr: int, write: bool, value: int | None) -> int:
        fr = FaultResult(addr, write)
        self.faults.append(fr)
        return handle_mm_fault(self.mm, addr, write, self.version, fr, value)

    def exit(self) -> None:
        """Tear the process down: unmap everything, drop its pins (``exit_mmap``)."""
        self._alive("exit")
        exit_mmap(self.mm)
        self.exited = True


def dma_write(f: Folio, page: int, value: int) -> None:
    """A device writes ``value`` into page ``page`` of ``f`` through its long-term pin.

    The device does not look at page tables: whichever process still maps this page sees
    the write; one that CoW-replaced it does not (the fork-vs-GUP data-loss story).
    Taught in: notebooks/04-pinned-pages.ipynb
    """
    need(isinstance(f, Folio) and not f.freed, "dma_write: pass a live folio")
    need(isinstance(page, int) and 0 <= page < f.nr_pages, f"page={page!r} out of range")
    need(any((f, page) in mm.pins for mm in f.machine.mms),
         f"dma_write: page {page} of this folio is not pinned; a device may only write into "
         "pinned memory (p.pin(f, page) first)")
    need(isinstance(value, int) and not isinstance(value, bool),
         f"value={value!r}: pages hold ints")
    gup_dma_write(f, page, value)

