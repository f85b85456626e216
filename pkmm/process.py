"""A simulated process: the learner's handle on one mm.

Simulator concept.  Every method validates its arguments first and raises
:class:`pkmm.LayoutError` (naming the argument and the fix) before changing anything,
then calls the kernel-named functions that change state.
Taught in: notebooks/01-ptes-folios-vmas.ipynb
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType

from .context import FaultResult, KernelVersion
from .errors import LayoutError, need
from .fault import handle_mm_fault
from .folio import Folio, folio_ref_add, folio_test_anon
from .gup import dma_write as gup_dma_write
from .gup import get_user_page_refs, pin_user_page, unpin_user_page
from .kernels import DEFAULT_KERNEL, get_kernel
from .machine import Machine
from .mm import MM_SWAPENTS, MmStruct, mm_counter
from .mmap import exit_mmap
from .pgtable import (
    Pmd,
    pgtable_trans_huge_deposit,
    pmd_index,
    pmdp_get,
    pte_index,
    ptep_get,
    set_pmd_at,
    set_pte_at,
)
from .pte import MARKERS, PAGE_SIZE, PMD_SIZE, Pte, make_pte_marker, mk_swap_pte
from .rmap import folio_add_anon_rmap_ptes, folio_add_file_rmap_ptes, folio_add_rmap_pmd
from .syscalls import MemorySyscalls
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
    VmFlags,
    is_cow_mapping,
)

__all__ = ["BACKINGS", "Process", "dma_write"]

BACKINGS = ("anon", "file", "shmem")


def _page_aligned(name: str, addr: object) -> int:
    if not isinstance(addr, int) or isinstance(addr, bool):
        raise LayoutError(f"{name}={addr!r}: addresses are ints in bytes")
    need(addr >= 0, f"{name}={addr:#x}: addresses are non-negative")
    need(addr % PAGE_SIZE == 0,
         f"{name}={addr:#x} is not page-aligned; use a multiple of {PAGE_SIZE:#x} "
         f"(e.g. {addr - addr % PAGE_SIZE:#x})")
    return addr


class Process(MemorySyscalls):
    """One process (its mm), on a :class:`~pkmm.machine.Machine` shared with its family.

    The memory system calls (munmap, madvise, mprotect, mremap) and range access
    (memset, read_range) come from :class:`pkmm.syscalls.MemorySyscalls`.
    """

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

    def _alive(self, what: str) -> None:
        if self.exited:
            raise LayoutError(f"{what}: process {self.name!r} has exited; use a live process")

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
        _page_aligned("start", start)
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
        vma = Vma(self.mm, start, end, VmFlags(flags), kind, vfile, pgoff,
                  anon_vma=AnonVma() if anon_vma else None, uffd_fork=uffd_fork)
        self.mm.insert_vma(vma)
        return vma

    def alloc_folio(self, order: int = 0, *, backing: Backing = "anon") -> Folio:
        """A fresh folio of ``2**order`` physically contiguous pages (not mapped yet)."""
        self._alive("alloc_folio")
        need(backing in BACKINGS, f"backing={backing!r}: use one of {', '.join(BACKINGS)}")
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

    def _range_vma(self, what: str, addr: int, nr: int) -> Vma:
        vma = self.mm.find_vma(addr)
        need(vma is not None, f"{what}: addr={addr:#x} is not inside any VMA of "
             f"{self.name!r}; mmap a region there first")
        if vma is None:
            raise LayoutError(f"{what}: addr={addr:#x} is not inside any VMA")
        last = addr + nr * PAGE_SIZE
        need(last <= vma.vm_end, f"{what}: {nr} page(s) from addr={addr:#x} run past the VMA "
             f"end {vma.vm_end:#x}; map fewer pages or enlarge the VMA")
        return vma

    def _slots_free(self, what: str, addr: int, nr: int) -> None:
        for k in range(nr):
            a = addr + k * PAGE_SIZE
            need(not isinstance(self.mm.pmds.get(pmd_index(a)), Pmd),
                 f"{what}: {a:#x} is inside a PMD mapping; pick another address")
            need(ptep_get(self.mm, a) is None,
                 f"{what}: a PTE is already present at {a:#x}; each slot can be mapped once")

    # -- building PTEs ---------------------------------------------------------------
    def map(self, addr: int, f: Folio, page: int = 0, nr: int | None = None, *,
            write: bool | None = None, dirty: bool = True, young: bool = True,
            soft_dirty: bool = False, uffd_wp: bool = False, protnone: bool = False,
            anon_exclusive: bool = True) -> None:
        """Map ``nr`` pages of ``f`` starting at page ``page``, at consecutive addresses.

        Anon pages become AnonExclusive (``anon_exclusive=False`` builds a page that an
        earlier fork left shared).  ``write`` defaults to "as writable as the kernel can
        map it": writable, except in a read-only VMA, for a page-cache page in a private
        mapping, a uffd-wp or protnone PTE, or a shared (non-AE) private anon page, which
        are always read-only.  ``write=True`` on such a PTE raises a LayoutError that
        says why it cannot be writable.
        """
        explicit = write is not None
        self._alive("map")
        _page_aligned("addr", addr)
        need(isinstance(f, Folio) and not f.freed, f"f={f!r}: pass a live folio from "
             "alloc_folio()")
        need(f.kind not in ("zero", "huge_zero"), "f: use map_zero_page() for the zero page")
        need(isinstance(page, int) and 0 <= page < f.nr_pages,
             f"page={page!r}: folio of order {f.order} has pages 0..{f.nr_pages - 1}")
        nr = f.nr_pages - page if nr is None else nr
        need(isinstance(nr, int) and nr >= 1, f"nr={nr!r}: map at least one page")
        need(page + nr <= f.nr_pages, f"page={page}, nr={nr} maps past the folio's end "
             f"(order {f.order} has {f.nr_pages} pages); use nr <= {f.nr_pages - page}")
        vma = self._range_vma("map", addr, nr)
        self._check_backing(vma, f)
        anon = folio_test_anon(f)
        cow = is_cow_mapping(vma.vm_flags)
        why_ro = (f"the VMA at {vma.vm_start:#x} is read-only" if not vma.vm_flags & VM_WRITE
                  else "protnone=True PTEs are never writable (NUMA hinting removed access)"
                  if protnone else
                  "uffd_wp=True PTEs are write-protected (that is how userfaultfd catches "
                  "the write)" if uffd_wp else
                  f"a {f.kind} page-cache page in a private mapping is always mapped "
                  "read-only (a write must CoW it into an anon page first)"
                  if cow and not anon else
                  "anon_exclusive=False: a writable private anon PTE always maps an "
                  "exclusive page" if anon and cow and not anon_exclusive else "")
        if explicit and write:
            need(not why_ro, f"write=True is impossible here: {why_ro}; pass write=False")
        writable = bool(write if explicit else True) and not why_ro
        if anon:
            for i in range(page, page + nr):
                need((f.pages[i].mapcount == 0 or not anon_exclusive)
                     and not self._maps_page(f, i),
                     f"page {i} of this anon folio is already mapped; an anon page is mapped "
                     "once per mm, and an AnonExclusive one by one mm (fork shares it for "
                     "you)")
        self._slots_free("map", addr, nr)
        if vma.vm_file is not None and not anon:
            for k in range(nr):
                off = vma.linear_page_index(addr + k * PAGE_SIZE)
                cached = vma.vm_file.cache.get(off)
                need(cached is None or cached is f.pages[page + k],
                     f"map: file offset {off} of {vma.vm_file.name} already caches another "
                     "page; a file page can only be mapped at its own offset")
        # state changes from here on
        for k in range(nr):
            set_pte_at(self.mm, addr + k * PAGE_SIZE,
                       Pte(pfn=f.pfn + page + k, write=writable, dirty=dirty, young=young,
                           soft_dirty=soft_dirty, uffd_wp=uffd_wp, protnone=protnone))
        folio_ref_add(f, nr)
        if anon:
            if vma.anon_vma is None:
                vma.anon_vma = AnonVma()        # anon_vma_prepare
            folio_add_anon_rmap_ptes(f, page, nr, vma, exclusive=anon_exclusive)
        else:
            folio_add_file_rmap_ptes(f, page, nr, vma)
            file = vma.vm_file
            if file is None:
                raise LayoutError(f"map: the {vma.backing} VMA at {vma.vm_start:#x} has no file")
            for k in range(nr):
                file.cache[vma.linear_page_index(addr + k * PAGE_SIZE)] = f.pages[page + k]
        self.mm.add_mm_counter(mm_counter(f), nr)

    def _check_backing(self, vma: Vma, f: Folio) -> None:
        if folio_test_anon(f):
            need(not vma.vm_flags & VM_SHARED, f"an anon folio cannot be mapped into the "
                 f"shared VMA at {vma.vm_start:#x}; shared memory is shmem: allocate with "
                 "backing='shmem'")
        elif vma.backing == "anon":
            need(False, f"a {f.kind} folio cannot be mapped into the anonymous VMA at "
                 f"{vma.vm_start:#x}; mmap it with backing={f.kind!r}")
        else:
            need(f.kind == vma.backing, f"a {f.kind} folio cannot be mapped into the "
                 f"{vma.backing} VMA at {vma.vm_start:#x}; allocate it with "
                 f"backing={vma.backing!r}")

    def map_pmd(self, addr: int, f: Folio, *, write: bool | None = None,
                dirty: bool = True) -> None:
        """Map an order-9 folio with one PMD at a 2 MiB-aligned address (``write`` as in
        :meth:`map`: writable unless the VMA is read-only or it is a file THP in a private
        mapping)."""
        self._alive("map_pmd")
        _page_aligned("addr", addr)
        need(addr % PMD_SIZE == 0, f"map_pmd: addr={addr:#x} is not 2 MiB aligned; use "
             f"{addr - addr % PMD_SIZE:#x} or {addr - addr % PMD_SIZE + PMD_SIZE:#x}")
        need(isinstance(f, Folio) and f.order == 9 and not f.freed,
             f"map_pmd: f must be a live order-9 folio (got order "
             f"{getattr(f, 'order', '?')}); alloc_folio(9)")
        need(f.mapcount == 0, "map_pmd: folio already mapped; map a fresh folio")
        vma = self._range_vma("map_pmd", addr, 512)
        self._check_backing(vma, f)
        anon = folio_test_anon(f)
        why_ro = ("the VMA is read-only" if not vma.vm_flags & VM_WRITE else
                  "a file THP in a private mapping is mapped read-only"
                  if not anon and is_cow_mapping(vma.vm_flags) else "")
        need(not (write and why_ro), f"write=True is impossible here: {why_ro}; "
             "pass write=False")
        writable = (True if write is None else write) and not why_ro
        need(pmd_index(addr) not in self.mm.pmds,
             f"map_pmd: the 2 MiB range at {addr:#x} already has PTEs or a PMD")
        set_pmd_at(self.mm, addr, Pmd(pfn=f.pfn, write=writable, dirty=dirty, young=True))
        if anon:
            pgtable_trans_huge_deposit(self.mm, addr)
            if vma.anon_vma is None:
                vma.anon_vma = AnonVma()
        folio_ref_add(f, 1)
        folio_add_rmap_pmd(f, vma, exclusive=True)
        self.mm.add_mm_counter(mm_counter(f), f.nr_pages)

    def map_zero_page(self, addr: int) -> None:
        """Map the shared zero page read-only (what a read fault in private anon memory does)."""
        self._alive("map_zero_page")
        _page_aligned("addr", addr)
        vma = self._range_vma("map_zero_page", addr, 1)
        need(vma.backing == "anon" and not vma.vm_flags & VM_SHARED,
             "map_zero_page: the zero page is mapped only in private anonymous VMAs")
        self._slots_free("map_zero_page", addr, 1)
        set_pte_at(self.mm, addr, Pte(pfn=self.machine.zero_folio.pfn, special=True,
                                      young=True))

    def map_huge_zero_pmd(self, addr: int) -> None:
        """Map the huge zero page with a read-only PMD (a read fault in a THP region)."""
        self._alive("map_huge_zero_pmd")
        _page_aligned("addr", addr)
        need(addr % PMD_SIZE == 0, f"addr={addr:#x} is not 2 MiB aligned")
        vma = self._range_vma("map_huge_zero_pmd", addr, 512)
        need(vma.backing == "anon" and not vma.vm_flags & VM_SHARED,
             "the huge zero page is mapped only in private anonymous VMAs")
        need(pmd_index(addr) not in self.mm.pmds, "the 2 MiB range already has PTEs or a PMD")
        set_pmd_at(self.mm, addr, Pmd(pfn=self.machine.huge_zero_folio.pfn, young=True,
                                      huge_zero=True))
        pgtable_trans_huge_deposit(self.mm, addr)
        self.mm.huge_zero_ref = True
        if vma.anon_vma is None:
            # kernel: do_huge_pmd_anonymous_page() prepares the anon_vma *before* it maps
            # the huge zero page (unlike the 4 KiB zero page), so such a VMA is copied
            vma.anon_vma = AnonVma()

    def map_pfn(self, addr: int, pfn: int, *, write: bool = True, dirty: bool = False) -> None:
        """A raw PFN-map entry (``remap_pfn_range``): a special PTE with no struct page."""
        self._alive("map_pfn")
        _page_aligned("addr", addr)
        vma = self._range_vma("map_pfn", addr, 1)
        need(vma.vm_flags & VM_PFNMAP, "map_pfn: the VMA must be created with pfnmap=True")
        need(isinstance(pfn, int) and pfn >= 0, f"pfn={pfn!r}: a non-negative int")
        need(self.machine.pfn_folio(pfn) is None, f"pfn={pfn:#x} belongs to a folio pkmm "
             "allocated; PFN maps point at device memory (pick a pfn below 0x1000)")
        need(not (write and not vma.vm_flags & VM_WRITE), "write=True in a read-only VMA")
        self._slots_free("map_pfn", addr, 1)
        set_pte_at(self.mm, addr, Pte(pfn=pfn, write=write, dirty=dirty, young=True,
                                      special=True))

    def map_swap(self, addr: int, value: int = 0, *, exclusive: bool = True,
                 soft_dirty: bool = False, uffd_wp: bool = False) -> int:
        """A swap entry at ``addr`` whose slot holds ``value``; returns the swap offset."""
        self._alive("map_swap")
        _page_aligned("addr", addr)
        vma = self._range_vma("map_swap", addr, 1)
        need(vma.backing == "anon" or not vma.vm_flags & VM_SHARED,
             "map_swap: shmem keeps swapped pages in the page cache, not in PTEs; use a "
             "private mapping")
        self._slots_free("map_swap", addr, 1)
        off = self.machine.swap_alloc(value)
        set_pte_at(self.mm, addr, mk_swap_pte("swap", off, exclusive=exclusive,
                                              soft_dirty=soft_dirty, uffd_wp=uffd_wp))
        self.mm.add_mm_counter(MM_SWAPENTS, 1)
        if vma.anon_vma is None:
            vma.anon_vma = AnonVma()
        return off

    def map_migration(self, addr: int, f: Folio, page: int = 0, *, kind: str = "write",
                      soft_dirty: bool = False, uffd_wp: bool = False) -> None:
        """A migration entry for page ``page`` of ``f`` (the page is being migrated)."""
        self._alive("map_migration")
        _page_aligned("addr", addr)
        need(kind in ("read", "read_exclusive", "write"),
             f"kind={kind!r}: use 'read', 'read_exclusive' or 'write'")
        need(isinstance(f, Folio) and 0 <= page < f.nr_pages, f"page={page!r} out of range")
        vma = self._range_vma("map_migration", addr, 1)
        self._check_backing(vma, f)
        self._slots_free("map_migration", addr, 1)
        set_pte_at(self.mm, addr, mk_swap_pte(f"migration_{kind}", f.pfn + page,  # type: ignore[arg-type]
                                              soft_dirty=soft_dirty, uffd_wp=uffd_wp))
        self.mm.add_mm_counter(mm_counter(f), 1)
        f.fresh = False
        if folio_test_anon(f) and vma.anon_vma is None:
            vma.anon_vma = AnonVma()

    def map_marker(self, addr: int, *markers: str) -> None:
        """A PTE marker (``uffd_wp``, ``poisoned`` and/or ``guard``) at ``addr``."""
        self._alive("map_marker")
        _page_aligned("addr", addr)
        need(markers and all(m in MARKERS for m in markers),
             f"markers={markers!r}: give one or more of {', '.join(MARKERS)}")
        self._range_vma("map_marker", addr, 1)
        self._slots_free("map_marker", addr, 1)
        set_pte_at(self.mm, addr, make_pte_marker(frozenset(markers)))

    # -- pins (GUP FOLL_PIN | FOLL_LONGTERM) -----------------------------------------
    def _maps_page(self, f: Folio, page: int) -> bool:
        """Whether this mm maps page ``page`` of ``f``.  O(1) unless this mm maps other
        pages of the same large folio (then its page tables are searched)."""
        if f.pages[page].mapcount == 0 or not f.mm_mapcount.get(self.mm.mm_id):
            return False
        if f.order == 0:
            return True     # this mm maps the folio, and it has one page
        pfn = f.pfn + page
        for t in self.mm.pmds.values():
            if isinstance(t, Pmd):
                if not t.huge_zero and t.pfn <= pfn < t.pfn + f.nr_pages:
                    return True
            elif any(p is not None and p.present and p.pfn == pfn for p in t.ptes):
                return True
        return False

    def pin(self, f: Folio, page: int = 0) -> None:
        """Take a FOLL_PIN|FOLL_LONGTERM reference on page ``page`` of ``f`` (like io_uring
        fixed buffers or RDMA).  Sets MMF_HAS_PINNED on this mm, for good."""
        self._alive("pin")
        need(isinstance(f, Folio) and not f.freed, "pin: pass a live folio")
        need(isinstance(page, int) and 0 <= page < f.nr_pages, f"page={page!r} out of range")
        need(self._maps_page(f, page), f"pin: {self.name!r} does not map page {page} of "
             "this folio; GUP pins pages through the pinning process's page tables")
        need(not folio_test_anon(f) or f.pages[page].anon_exclusive
             or (f.entire_mapcount and f.pages[0].anon_exclusive),
             f"pin: page {page} is not AnonExclusive (it is shared after a fork); GUP would "
             "first unshare it with a fault -- write to it first, then pin")
        need(f.kind not in ("zero", "huge_zero"), "pin: the zero page cannot be pinned for "
             "a device to write into; write to the page first")
        need(folio_test_anon(f) or not self._cow_maps_page(f, page),
             f"pin: page {page} is a {f.kind} page-cache page mapped in a private (COW) "
             "mapping; a long-term pin would first unshare it into an anon page "
             "(gup_must_unshare) -- use pin_user_pages(addr, 1), which does that")
        pin_user_page(self.mm, f, page)

    def _cow_maps_page(self, f: Folio, page: int) -> bool:
        """Whether this mm maps page ``page`` of ``f`` in a COW (private) mapping."""
        pfn = f.pfn + page
        return any(pte is not None and pte.present and pte.pfn == pfn and
                   (v := self.mm.find_vma(a)) is not None and is_cow_mapping(v.vm_flags)
                   for a, pte in self.ptes())

    def unpin(self, f: Folio, page: int = 0) -> None:
        """Drop a pin taken with :meth:`pin` (MMF_HAS_PINNED stays set)."""
        self._alive("unpin")
        need((f, page) in self.pins, f"unpin: {self.name!r} holds no pin on page {page} of "
             "this folio")
        unpin_user_page(self.mm, f, page)

    def vmsplice(self, f: Folio, page: int = 0, refs: int = 1) -> None:
        """Hold ``refs`` plain (FOLL_GET) references on a mapped page, as vmsplice() into a
        pipe does.  Unlike :meth:`pin` this does *not* set MMF_HAS_PINNED; 1024 of them
        make a small folio look pinned to ``folio_maybe_dma_pinned`` (spec T03, h5)."""
        self._alive("vmsplice")
        need(isinstance(f, Folio) and not f.freed, "vmsplice: pass a live folio")
        need(isinstance(page, int) and 0 <= page < f.nr_pages, f"page={page!r} out of range")
        need(isinstance(refs, int) and refs >= 1, f"refs={refs!r}: at least 1")
        need(self._maps_page(f, page), f"vmsplice: {self.name!r} does not map page {page} "
             "of this folio")
        get_user_page_refs(self.mm, f, page, refs)

    # -- looking at state ------------------------------------------------------------
    def pte(self, addr: int) -> Pte | None:
        """The PTE at ``addr`` (None for an empty slot).  Inside a PMD mapping: a read-only
        view of the PMD for that page (``.pmd`` is True)."""
        _page_aligned("addr", addr)
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

