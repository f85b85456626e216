"""Building an address space by hand: PTEs, PMDs, swap and migration entries, markers,
pins -- the state that earlier faults, forks, swapping or GUP would have left.

Simulator concept.  :class:`PteBuilders` holds the layout-building methods of
:class:`pkmm.Process` (which inherits them): every method validates all of its arguments
first and raises :class:`pkmm.LayoutError` (naming the argument and the fix) before
changing anything, then calls the kernel-named functions that change state.
Each call costs the same whatever the size of the layout (no scan of the page tables).
Taught in: notebooks/01-ptes-folios-vmas.ipynb
"""

from __future__ import annotations

from .errors import LayoutError, need
from .folio import Folio, folio_ref_add, folio_test_anon
from .gup import get_user_page_refs, pin_user_page, unpin_user_page
from .machine import Machine
from .mm import MM_SWAPENTS, MmStruct, mm_counter
from .pgtable import (
    Pmd,
    PteTable,
    pgtable_trans_huge_deposit,
    pmd_index,
    pmdp_get,
    pte_index,
    ptep_get,
    set_pmd_at,
    set_pte_at,
)
from .pte import (
    MARKERS,
    PAGE_SIZE,
    PMD_SIZE,
    PTRS_PER_PTE,
    Pte,
    make_pte_marker,
    mk_swap_pte,
    pte_advance_pfn,
)
from .rmap import folio_add_anon_rmap_ptes, folio_add_file_rmap_ptes, folio_add_rmap_pmd
from .vma import VM_PFNMAP, VM_SHARED, VM_WRITE, AnonVma, Vma, is_cow_mapping

__all__ = ["PteBuilders", "page_aligned"]


# Checks on the build path raise explicitly instead of calling need(): its message would
# be formatted on every call, and a million-PTE layout makes a million calls.

def page_aligned(name: str, addr: object) -> int:
    if type(addr) is not int:
        if not isinstance(addr, int) or isinstance(addr, bool):
            raise LayoutError(f"{name}={addr!r}: addresses are ints in bytes")
    if addr < 0:
        raise LayoutError(f"{name}={addr:#x}: addresses are non-negative")
    if addr % PAGE_SIZE:
        raise LayoutError(f"{name}={addr:#x} is not page-aligned; use a multiple of "
                          f"{PAGE_SIZE:#x} (e.g. {addr - addr % PAGE_SIZE:#x})")
    return addr



class PteBuilders:
    """The layout-building methods of :class:`pkmm.Process` (one mm on one machine)."""

    mm: MmStruct
    machine: Machine
    name: str
    exited: bool

    def _alive(self, what: str) -> None:
        if self.exited:
            raise LayoutError(f"{what}: process {self.name!r} has exited; use a live process")

    def _range_vma(self, what: str, addr: int, nr: int) -> Vma:
        vma = self.mm.find_vma(addr)
        if vma is None:
            raise LayoutError(f"{what}: addr={addr:#x} is not inside any VMA of "
                              f"{self.name!r}; mmap a region there first")
        if addr + nr * PAGE_SIZE > vma.vm_end:
            raise LayoutError(f"{what}: {nr} page(s) from addr={addr:#x} run past the VMA "
                              f"end {vma.vm_end:#x}; map fewer pages or enlarge the VMA")
        return vma

    def _slots_free(self, what: str, addr: int, nr: int) -> None:
        table = self.mm.pmds.get(pmd_index(addr))
        if table is None or (isinstance(table, PteTable) and
                             pte_index(addr) + nr <= PTRS_PER_PTE and
                             not any(table.ptes[pte_index(addr):pte_index(addr) + nr])):
            return          # the common case: one table (or none yet), every slot empty
        for k in range(nr):
            a = addr + k * PAGE_SIZE
            if pmdp_get(self.mm, a) is not None:
                raise LayoutError(f"{what}: {a:#x} is inside a PMD mapping; pick another "
                                  "address")
            if ptep_get(self.mm, a) is not None:
                raise LayoutError(f"{what}: a PTE is already present at {a:#x}; each slot "
                                  "can be mapped once")

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
        if self.exited:
            self._alive("map")
        page_aligned("addr", addr)
        if not isinstance(f, Folio) or f.freed:
            raise LayoutError(f"f={f!r}: pass a live folio from alloc_folio()")
        if f.kind in ("zero", "huge_zero"):
            raise LayoutError("f: use map_zero_page() for the zero page")
        npg = f.nr_pages
        if type(page) is not int or not 0 <= page < npg:
            raise LayoutError(f"page={page!r}: folio of order {f.order} has pages "
                              f"0..{npg - 1}")
        nr = npg - page if nr is None else nr
        if type(nr) is not int or nr < 1:
            raise LayoutError(f"nr={nr!r}: map at least one page")
        if page + nr > npg:
            raise LayoutError(f"page={page}, nr={nr} maps past the folio's end (order "
                              f"{f.order} has {npg} pages); use nr <= {npg - page}")
        if not (type(dirty) is bool and type(young) is bool and type(soft_dirty) is bool
                and type(uffd_wp) is bool and type(protnone) is bool
                and type(anon_exclusive) is bool and (write is None or type(write) is bool)):
            for name, bit in (("write", write), ("dirty", dirty), ("young", young),
                              ("soft_dirty", soft_dirty), ("uffd_wp", uffd_wp),
                              ("protnone", protnone), ("anon_exclusive", anon_exclusive)):
                if bit is not None and type(bit) is not bool:
                    raise LayoutError(f"{name}={bit!r}: pass True or False")
        vma = self._range_vma("map", addr, nr)
        self._check_backing(vma, f)
        anon = folio_test_anon(f)
        why_ro = self._why_read_only(vma, f, protnone, uffd_wp, anon_exclusive)
        if explicit and write and why_ro:
            raise LayoutError(f"write=True is impossible here: {why_ro}; pass write=False")
        writable = bool(write if explicit else True) and not why_ro
        if anon and not f.fresh:     # a fresh folio maps nowhere yet
            for i in range(page, page + nr):
                if (f.pages[i].mapcount and anon_exclusive) or self._maps_page(f, i):
                    raise LayoutError(f"page {i} of this anon folio is already mapped; an "
                                      "anon page is mapped once per mm, and an AnonExclusive "
                                      "one by one mm (fork shares it for you)")
        self._slots_free("map", addr, nr)
        if vma.vm_file is not None and not anon:
            for k in range(nr):
                off = vma.linear_page_index(addr + k * PAGE_SIZE)
                cached = vma.vm_file.cache.get(off)
                if cached is not None and cached is not f.pages[page + k]:
                    raise LayoutError(f"map: file offset {off} of {vma.vm_file.name} "
                                      "already caches another page; a file page can only be "
                                      "mapped at its own offset")
        # state changes from here on
        first = Pte(f.pfn + page, True, writable, dirty, young, soft_dirty, uffd_wp, protnone)
        for k in range(nr):
            set_pte_at(self.mm, addr + k * PAGE_SIZE, pte_advance_pfn(first, k) if k else first)
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

    @staticmethod
    def _why_read_only(vma: Vma, f: Folio, protnone: bool, uffd_wp: bool,
                       anon_exclusive: bool) -> str:
        """Why no PTE of ``f`` in ``vma`` with these bits can be writable ("" if it can)."""
        anon = folio_test_anon(f)
        cow = is_cow_mapping(vma.vm_flags)
        if not vma.vm_flags & VM_WRITE:
            return f"the VMA at {vma.vm_start:#x} is read-only"
        if protnone:
            return "protnone=True PTEs are never writable (NUMA hinting removed access)"
        if uffd_wp:
            return ("uffd_wp=True PTEs are write-protected (that is how userfaultfd catches "
                    "the write)")
        if cow and not anon:
            return (f"a {f.kind} page-cache page in a private mapping is always mapped "
                    "read-only (a write must CoW it into an anon page first)")
        if anon and cow and not anon_exclusive:
            return ("anon_exclusive=False: a writable private anon PTE always maps an "
                    "exclusive page")
        return ""

    def _check_backing(self, vma: Vma, f: Folio) -> None:
        if folio_test_anon(f):
            if vma.vm_flags & VM_SHARED:
                raise LayoutError(f"an anon folio cannot be mapped into the shared VMA at "
                                  f"{vma.vm_start:#x}; shared memory is shmem: allocate "
                                  "with backing='shmem'")
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
        page_aligned("addr", addr)
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
        page_aligned("addr", addr)
        vma = self._range_vma("map_zero_page", addr, 1)
        need(vma.backing == "anon" and not vma.vm_flags & VM_SHARED,
             "map_zero_page: the zero page is mapped only in private anonymous VMAs")
        self._slots_free("map_zero_page", addr, 1)
        set_pte_at(self.mm, addr, Pte(pfn=self.machine.zero_folio.pfn, special=True,
                                      young=True))

    def map_huge_zero_pmd(self, addr: int) -> None:
        """Map the huge zero page with a read-only PMD (a read fault in a THP region)."""
        self._alive("map_huge_zero_pmd")
        page_aligned("addr", addr)
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
        page_aligned("addr", addr)
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
        page_aligned("addr", addr)
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
        page_aligned("addr", addr)
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
        page_aligned("addr", addr)
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
        pin_user_page(self.mm, f, page)

    def unpin(self, f: Folio, page: int = 0) -> None:
        """Drop a pin taken with :meth:`pin` (MMF_HAS_PINNED stays set)."""
        self._alive("unpin")
        need((f, page) in self.mm.pins, f"unpin: {self.name!r} holds no pin on page {page} of "
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

