"""After fork: page faults (CoW copy or reuse, zero page, page cache, swap-in).

Mirrors: mm/memory.c handle_mm_fault() -> handle_pte_fault() -> do_anonymous_page(),
do_read_fault(), do_cow_fault(), do_shared_fault(), do_fault_around(), do_swap_page(),
handle_pte_marker(), do_numa_page(), do_wp_page(), wp_can_reuse_anon_folio(),
__wp_can_reuse_large_anon_folio() (v6.17 only), wp_page_reuse(), wp_page_shared(),
wp_page_copy(); mm/migrate.c remove_migration_pte().  PMD leaves go to
:mod:`pkmm.huge_memory`.  Every function works on an mm and its VMAs; where versions
differ it asks the :class:`~pkmm.context.KernelVersion` it is given.
Simplified: fault-around maps only pages already in the page cache; no swap cache (each
swap-in gets its own page), no LRU batches holding extra references; migration completes
when the entry is touched.
Taught in: notebooks/07-after-fork.ipynb
"""

from __future__ import annotations

from .context import FaultResult, KernelVersion
from .errors import FaultError, KernelBug
from .folio import (
    Folio,
    Page,
    folio_get,
    folio_put,
    folio_ref_add,
    folio_test_anon,
    folio_test_large,
    migration_entry_remove,
)
from .huge_memory import (
    do_huge_pmd_anonymous_page,
    do_huge_pmd_wp_page,
    thp_vma_allowable_orders,
    thp_vma_suitable_order,
)
from .hugetlb import hugetlb_fault, hugetlb_page
from .mm import MM_ANONPAGES, MM_SWAPENTS, MmStruct, mm_counter, mm_counter_file
from .pgtable import (
    pmd_hw_mkdirty,
    pmd_mkyoung,
    pmd_none,
    pmdp_get,
    pte_index,
    ptep_get,
    set_pmd_at,
    set_pte_at,
    set_ptes,
)
from .pte import (
    HPAGE_PMD_ORDER,
    PAGE_SIZE,
    PMD_SIZE,
    Pte,
    is_migration_entry,
    is_pte_marker,
    is_swap_entry,
    pte_clear_protnone,
    pte_hw_mkdirty,
    pte_mkdirty,
    pte_mkwrite,
    pte_mkyoung,
)
from .rmap import (
    SetPageAnonExclusive,
    alloc_new_anon_page,
    folio_add_anon_rmap_ptes,
    folio_add_file_rmap_ptes,
    folio_remove_rmap_ptes,
)
from .swap import (
    folio_free_swap,
    folio_test_swapcache,
    read_swap_cache_async,
    swap_cache_get_folio,
)
from .vma import VM_MAYSHARE, VM_PFNMAP, VM_SHARED, VM_WRITE, AnonVma, Vma, userfaultfd_wp

__all__ = ["FAULT_AROUND_BYTES", "__wp_can_reuse_large_anon_folio", "anon_vma_prepare",
           "do_anonymous_page", "do_cow_fault", "do_fault_around", "do_numa_page",
           "do_pte_missing", "do_read_fault", "do_shared_fault", "do_swap_page",
           "do_wp_page", "handle_mm_fault", "handle_pte_marker", "remove_migration_pte",
           "wp_can_reuse_anon_folio", "wp_page_copy", "wp_page_reuse", "wp_page_shared"]

FAULT_AROUND_BYTES = 64 * 1024


def anon_vma_prepare(vma: Vma) -> None:
    """Mirrors: mm/rmap.c anon_vma_prepare(): give the VMA an anon_vma before its first
    anonymous page."""
    if vma.anon_vma is None:
        vma.anon_vma = AnonVma()


def _page_of(mm: MmStruct, pfn: int) -> Page | None:
    found = mm.machine.pfn_folio(pfn)
    if found is None or found[0].kind in ("zero", "huge_zero"):
        return None
    return found[0].pages[found[1]]


def _new_anon_page(vma: Vma, addr: int, data: int) -> Folio:
    """alloc_new_anon_page() for a fault: out of memory is VM_FAULT_OOM."""
    new = alloc_new_anon_page(vma, [data])
    if new is None:
        raise FaultError(f"fault at {addr:#x}: out of memory (VM_FAULT_OOM)", "SIGKILL")
    return new


# --- entry point -----------------------------------------------------------------------

def handle_mm_fault(mm: MmStruct, addr: int, write: bool, kernel: KernelVersion,
                    fr: FaultResult, value: int | None = None, *,
                    unshare: bool = False) -> int:
    """Perform one load or store in ``mm``, taking whatever fault the PTE requires;
    returns the data (the page's contents after a store).

    ``unshare`` is FAULT_FLAG_UNSHARE: GUP asking for an exclusive anon page behind a
    read-only PTE (for a R/O long-term pin) without making it writable.
    Mirrors: mm/memory.c handle_mm_fault() / __handle_mm_fault() / handle_pte_fault()
    (and the arch fault handler's VMA lookup and permission check before it).
    """
    vma = mm.find_vma(addr)
    if vma is None:
        raise FaultError(f"{'write' if write else 'read'} at {addr:#x}: no VMA there "
                         f"(SIGSEGV) in {mm.owner!r}", "SIGSEGV")
    if write and not vma.vm_flags & VM_WRITE:
        raise FaultError(f"write at {addr:#x}: the VMA is read-only (SIGSEGV)", "SIGSEGV")
    wp = write or unshare
    if vma.hugetlb_kb:
        hugetlb_fault(vma, addr, write, unshare, fr)
        return _access(mm, addr, write, value, vma)
    pmd = pmdp_get(mm, addr)
    if pmd is not None:
        if not wp or do_huge_pmd_wp_page(vma, addr, pmd, kernel, fr, unshare):
            return _access(mm, addr, write, value)
    elif pmd_none(mm, addr) and thp_vma_allowable_orders(vma, range(HPAGE_PMD_ORDER,
                                                                    HPAGE_PMD_ORDER + 1)):
        # kernel: __handle_mm_fault: "if (pmd_none(*vmf.pmd) && thp_vma_allowable_order(
        # vma, vm_flags, TVA_IN_PF | TVA_ENFORCE_SYSFS, PMD_ORDER))" -> create_huge_pmd()
        if do_huge_pmd_anonymous_page(vma, addr, write, fr):
            return _access(mm, addr, write, value)
    pte = ptep_get(mm, addr)
    if pte is None:
        do_pte_missing(vma, addr, write, fr)
    elif not pte.present:
        do_nonpresent(vma, addr, pte, write, fr)
    pte = ptep_get(mm, addr)
    if pte is None or not pte.present:
        raise KernelBug(f"handle_mm_fault: no present PTE at {addr:#x} after the fault")
    if pte.protnone:
        pte = do_numa_page(vma, addr, pte, fr)
    if wp and not pte.write:
        if write and pte.uffd_wp and userfaultfd_wp(vma):
            raise FaultError(f"write at {addr:#x}: uffd-wp protected; the kernel delivers a "
                             "userfault and the writer blocks until the monitor resolves it",
                             "userfault")
        do_wp_page(vma, addr, pte, kernel, fr, unshare)
    return _access(mm, addr, write, value)


def _access(mm: MmStruct, addr: int, write: bool, value: int | None,
            vma: Vma | None = None) -> int:
    """The load/store itself, with the hardware setting the accessed/dirty bits."""
    pmd = pmdp_get(mm, addr)
    if vma is not None and vma.hugetlb_kb:
        found = hugetlb_page(vma, addr)
        if found is None:
            raise KernelBug(f"_access: no huge page at {addr:#x} after the fault")
        page: Page | None = found[0].pages[found[1]]
    elif pmd is not None:
        if pmd.huge_zero:
            return 0
        page = _page_of(mm, pmd.pfn + pte_index(addr))
        pmd = pmd_mkyoung(pmd)
        set_pmd_at(mm, addr, pmd_hw_mkdirty(pmd) if write else pmd)
    else:
        pte = ptep_get(mm, addr)
        if pte is None or not pte.present:
            raise KernelBug(f"_access: no present PTE at {addr:#x}")
        pte = pte_mkyoung(pte)
        set_pte_at(mm, addr, pte_hw_mkdirty(pte) if write else pte)
        page = _page_of(mm, pte.pfn)
    if page is None:        # zero page or raw PFN: reads as 0, writes cannot happen here
        return 0
    if write and value is not None:    # (None: GUP's write fault, which stores nothing)
        page.data = value
    return page.data


def do_numa_page(vma: Vma, addr: int, pte: Pte, fr: FaultResult) -> Pte:
    """Mirrors: mm/memory.c do_numa_page(): a NUMA-hinting (protnone) PTE gets its
    access back (pkmm: no migration to another node)."""
    fr.kind = "numa"
    fr.note("do_numa_page", "numa-hint", "NUMA-hinting (protnone) PTE: restore access")
    pte = pte_clear_protnone(pte)
    set_pte_at(vma.vm_mm, addr, pte)
    return pte


# --- missing and non-present PTEs ---------------------------------------------------------

def do_pte_missing(vma: Vma, addr: int, write: bool, fr: FaultResult) -> None:
    """Mirrors: mm/memory.c do_pte_missing(): an empty slot, anonymous or file-backed."""
    if vma.vm_flags & VM_PFNMAP:
        raise FaultError(f"access at {addr:#x}: empty slot in a PFNMAP VMA (SIGBUS)", "SIGBUS")
    if vma.backing == "anon":
        do_anonymous_page(vma, addr, write, fr)
    elif not write:
        do_read_fault(vma, addr, fr)
    elif not vma.vm_flags & VM_SHARED:
        do_cow_fault(vma, addr, fr)
    else:
        do_shared_fault(vma, addr, fr)


def do_anonymous_page(vma: Vma, addr: int, write: bool, fr: FaultResult) -> None:
    """Mirrors: mm/memory.c do_anonymous_page(): a read maps the shared zero page, a
    write a new zeroed exclusive page."""
    mm = vma.vm_mm
    if not write:
        set_pte_at(mm, addr, Pte(pfn=mm.machine.zero_folio.pfn, special=True, young=True))
        fr.kind = "zero"
        fr.note("do_anonymous_page", "zero-page", "read of never-written anonymous memory "
                "maps the shared zero page read-only (no anon_vma needed)")
        return
    anon_vma_prepare(vma)
    order = alloc_anon_folio_order(vma, addr)
    start = addr & ~((PAGE_SIZE << order) - 1)
    new = alloc_new_anon_page(vma, order=order) if order else None
    if new is None:             # order 0, or the mTHP allocation failed: one page
        order, start = 0, addr
        new = _new_anon_page(vma, addr, 0)
    nr = new.nr_pages
    folio_ref_add(new, nr - 1)  # kernel: folio_ref_add(folio, nr_pages - 1)
    # kernel: "if (vma->vm_flags & VM_WRITE) entry = pte_mkwrite(pte_mkdirty(entry))"
    writable = bool(vma.vm_flags & VM_WRITE)
    set_ptes(mm, start, Pte(pfn=new.pfn, write=writable, dirty=writable,
                            soft_dirty=writable, young=True), nr)
    mm.add_mm_counter(MM_ANONPAGES, nr)
    fr.kind = "anonymous"
    fr.note("do_anonymous_page", "new-page" if nr == 1 else "new-mthp",
            f"write to empty anonymous memory: new zeroed exclusive page {new.pfn:#x}"
            if nr == 1 else f"write to empty anonymous memory: new zeroed exclusive "
            f"{nr * 4} KiB folio {new.pfn:#x} (mTHP), all {nr} PTEs mapped at once")


def alloc_anon_folio_order(vma: Vma, addr: int) -> int:
    """The largest mTHP order below PMD size that the THP settings allow here, whose
    aligned range lies in the VMA and has every PTE slot empty (0: an order-0 page).

    Mirrors: mm/memory.c alloc_anon_folio(), v6.8 .. v6.17: "Find the highest order where
    the aligned range is completely pte_none()".
    """
    for order in thp_vma_allowable_orders(vma, range(1, HPAGE_PMD_ORDER)):
        size = PAGE_SIZE << order
        start = addr & ~(size - 1)
        if thp_vma_suitable_order(vma, addr, order) and all(
                ptep_get(vma.vm_mm, a) is None for a in range(start, start + size, PAGE_SIZE)):
            return order
    return 0


def do_read_fault(vma: Vma, addr: int, fr: FaultResult) -> None:
    """Mirrors: mm/memory.c do_read_fault(): map the page-cache page (and, by
    do_fault_around(), its cached neighbours)."""
    page = _filemap_fault(vma, addr)
    do_fault_around(vma, addr, fr)
    _map_cached_page(vma, addr, page, write=False)
    fr.kind = "file-read"
    fr.note("do_read_fault", "page-cache", f"map page-cache page {page.pfn:#x} (same page "
            "every process sees)")


def do_shared_fault(vma: Vma, addr: int, fr: FaultResult) -> None:
    """Mirrors: mm/memory.c do_shared_fault(): a write maps the page-cache page itself."""
    page = _filemap_fault(vma, addr)
    _map_cached_page(vma, addr, page, write=True)
    fr.kind = "shared-write"
    fr.note("do_shared_fault", "page-cache", f"map page-cache page {page.pfn:#x} (same page "
            "every process sees)")


def do_cow_fault(vma: Vma, addr: int, fr: FaultResult) -> None:
    """Mirrors: mm/memory.c do_cow_fault(): a write to a private file mapping copies the
    page-cache page into a new anon page."""
    page = _filemap_fault(vma, addr)
    anon_vma_prepare(vma)
    new = _new_anon_page(vma, addr, page.data)
    set_pte_at(vma.vm_mm, addr, Pte(pfn=new.pfn, write=bool(vma.vm_flags & VM_WRITE),
                                    dirty=True, soft_dirty=True, young=True))
    vma.vm_mm.add_mm_counter(MM_ANONPAGES, 1)
    fr.kind = "cow-file"
    fr.note("do_cow_fault", "copy", f"write to a private file mapping: copy page-cache "
            f"page {page.pfn:#x} into new anon page {new.pfn:#x}")


def _map_cached_page(vma: Vma, addr: int, page: Page, write: bool) -> None:
    """Map a page-cache page with the VMA's protection (``set_pte_range``): writable only
    for a shared writable shmem mapping (no write-notify) or on a write fault."""
    writable = write or (vma.backing == "shmem" and bool(vma.vm_flags & VM_SHARED))
    writable = writable and bool(vma.vm_flags & VM_WRITE)
    set_pte_at(vma.vm_mm, addr, Pte(pfn=page.pfn, write=writable, dirty=write,
                                    soft_dirty=write, young=True))   # pte_mkdirty on write
    folio_get(page.folio)
    folio_add_file_rmap_ptes(page.folio, page.index, 1, vma)
    vma.vm_mm.add_mm_counter(mm_counter_file(page.folio), 1)


def do_fault_around(vma: Vma, addr: int, fr: FaultResult) -> None:
    """Also map the neighbours of a read-faulted file page that are already in the page
    cache, in a 64 KiB window -- aligned, or starting at the VMA when that starts later --
    clipped to the VMA and the PMD slice.

    Mirrors: mm/memory.c do_fault_around() -> filemap_map_pages(), v6.8 .. v6.17
    (fault_around_bytes = 64 KiB default).  Pages not in the cache are not read in.
    """
    cache = vma.vm_file.cache if vma.vm_file is not None else {}
    # kernel: "from_pte = max(ALIGN_DOWN(pte_off, nr_pages), pte_off - min(pte_off,
    # vma_off)); to_pte = min3(from_pte + nr_pages, PTRS_PER_PTE, pte_off +
    # vma_pages(vma) - vma_off) - 1" -- the window starts aligned (or at the VMA) and
    # spans nr_pages from there, clipped to the VMA and the PTE table
    start = max(addr & ~(FAULT_AROUND_BYTES - 1), vma.vm_start, addr & ~(PMD_SIZE - 1))
    end = min(start + FAULT_AROUND_BYTES, vma.vm_end, (addr & ~(PMD_SIZE - 1)) + PMD_SIZE)
    mapped = 0
    for a in range(start, end, PAGE_SIZE):
        if a == addr or ptep_get(vma.vm_mm, a) is not None:
            continue
        page = cache.get(vma.linear_page_index(a))
        if page is None or page.folio.freed:
            continue
        _map_cached_page(vma, a, page, write=False)
        mapped += 1
    if mapped:
        fr.note("do_fault_around", "fault-around", f"also mapped {mapped} neighbouring "
                "page-cache page(s) already in the cache, so their first access will not "
                "fault")


def _filemap_fault(vma: Vma, addr: int) -> Page:
    """The page cache page for ``addr``'s file offset, read in if missing (filemap_fault)."""
    if vma.vm_file is None:
        raise KernelBug(f"_filemap_fault: {vma!r} has no file")
    off = vma.linear_page_index(addr)
    page = vma.vm_file.cache.get(off)
    if page is None or page.folio.freed:
        f = vma.vm_mm.machine.alloc_folio(0, vma.vm_file.kind)
        folio_get(f)             # the page cache's reference
        page = f.pages[0]
        vma.vm_file.cache[off] = page
    return page


def do_nonpresent(vma: Vma, addr: int, pte: Pte, write: bool, fr: FaultResult) -> None:
    """Swap entries, migration entries and PTE markers: what do_swap_page() dispatches."""
    swp = pte.swp
    if swp is None:
        raise KernelBug(f"do_nonpresent: {pte!r} has no swap payload")
    if is_pte_marker(pte):
        handle_pte_marker(vma, addr, pte, write, fr)
    elif is_swap_entry(pte):
        do_swap_page(vma, addr, pte, write, fr)
    elif is_migration_entry(pte):
        remove_migration_pte(vma, addr, pte, fr)
    else:
        raise FaultError(f"access at {addr:#x}: hardware-poisoned page (SIGBUS)", "SIGBUS")


def handle_pte_marker(vma: Vma, addr: int, pte: Pte, write: bool, fr: FaultResult) -> None:
    """Mirrors: mm/memory.c handle_pte_marker(): poison and guard markers signal; a
    uffd-wp marker on a none slot faults like the empty slot it stands for."""
    markers = pte.swp.markers if pte.swp is not None else frozenset()
    if "poisoned" in markers:
        raise FaultError(f"access at {addr:#x}: poisoned PTE marker (SIGBUS)", "SIGBUS")
    if "guard" in markers:
        raise FaultError(f"access at {addr:#x}: guard region (SIGSEGV)", "SIGSEGV")
    if write and userfaultfd_wp(vma):
        raise FaultError(f"write at {addr:#x}: uffd-wp marker; userfault", "userfault")
    set_pte_at(vma.vm_mm, addr, None)
    fr.note("handle_pte_marker", "uffd-wp-marker", "uffd-wp marker on a none slot: fault "
            "it in like an empty slot")
    do_pte_missing(vma, addr, write, fr)


def do_swap_page(vma: Vma, addr: int, pte: Pte, write: bool, fr: FaultResult) -> None:
    """Bring a swapped-out page back: from the swap cache if it is still there, else read
    into a new swap-cache page; exclusive (and, if writable, mapped writable) only if the
    swap entry says so or nobody else could hold it.  A write that finds it shared goes
    on to do_wp_page().

    Mirrors: mm/memory.c do_swap_page() with should_try_to_free_swap(), v6.8 .. v6.17.
    Simplified: no SWP_SYNCHRONOUS_IO skip-the-cache path (a swapfile is not
    synchronous), no readahead, no large folios in the swap cache.
    """
    f = "do_swap_page"
    mm = vma.vm_mm
    if pte.swp is None:
        raise KernelBug(f"do_swap_page: {pte!r} is not a swap entry")
    off = pte.swp.offset
    folio = swap_cache_get_folio(mm.machine, off)
    found = folio is not None
    if folio is None:
        folio = read_swap_cache_async(mm.machine, off)
    folio_get(folio)                            # the lookup's reference: the mapping's
    anon_vma_prepare(vma)
    exclusive = pte.swp.exclusive               # pte_swp_exclusive(vmf->orig_pte)
    mm.machine.swap_free(off)                   # swap_free_nr()
    mm.add_mm_counter(MM_SWAPENTS, -1)
    # kernel: should_try_to_free_swap(): "If we want to map a page that's in the
    # swapcache writable, we have to detect via the refcount if we're really the
    # exclusive user": "folio_ref_count(folio) == (1 + folio_nr_pages(folio))"
    freed = write and folio.refcount == 1 + folio.nr_pages and folio_free_swap(folio)
    # kernel: "(exclusive || folio_ref_count(folio) == 1)"
    exclusive = exclusive or folio.refcount == 1
    writable = exclusive and bool(vma.vm_flags & VM_WRITE) and not (
        pte.uffd_wp and userfaultfd_wp(vma))
    folio_add_anon_rmap_ptes(folio, 0, 1, vma, exclusive=exclusive)
    set_pte_at(mm, addr, Pte(pfn=folio.pfn, young=True, write=writable,
                             dirty=writable and write,
                             soft_dirty=pte.soft_dirty or (writable and write),
                             uffd_wp=pte.uffd_wp and userfaultfd_wp(vma)))
    mm.add_mm_counter(MM_ANONPAGES, 1)
    fr.kind = "swapin"
    fr.note(f, "swapcache" if found else "read", (
        f"swap slot {off}: " + ("page still in the swap cache" if found else
                                "read into a new swap-cache page") +
        f" {folio.pfn:#x}" + ("; swap cache dropped (no other user)" if freed else "") +
        ("; exclusive" + (", mapped writable" if writable else "") if exclusive else
         "; not exclusive (the entry was shared by fork): mapped read-only")))


def remove_migration_pte(vma: Vma, addr: int, pte: Pte, fr: FaultResult) -> None:
    """Mirrors: mm/migrate.c remove_migration_pte(): the migration finished, the PTE maps
    the page again (pkmm: migration completes when a fault waits for it)."""
    mm = vma.vm_mm
    found = mm.machine.pfn_folio(pte.swp.offset) if pte.swp is not None else None
    if found is None or pte.swp is None:
        raise KernelBug(f"remove_migration_pte: {pte!r} points at no page")
    folio, i = found
    writable = pte.swp.kind == "migration_write"
    excl = pte.swp.kind != "migration_read" and folio_test_anon(folio)
    set_pte_at(mm, addr, Pte(pfn=pte.swp.offset, write=writable, young=True,
                             soft_dirty=pte.soft_dirty, uffd_wp=pte.uffd_wp))
    folio_get(folio)
    if folio_test_anon(folio):
        folio_add_anon_rmap_ptes(folio, i, 1, vma, exclusive=excl)
    else:
        folio_add_file_rmap_ptes(folio, i, 1, vma)
    migration_entry_remove(folio)       # the last restored entry ends the migration
    fr.kind = "migration"
    fr.note("remove_migration_pte", "restored", "migration finished: the PTE maps the "
            "page again" + (" (writable, exclusive)" if writable else " (read-only)"))


# --- write-protect faults -------------------------------------------------------------------

def wp_can_reuse_anon_folio(folio: Folio, kernel: KernelVersion,
                            fr: FaultResult) -> bool:
    """May a write fault reuse this (not AnonExclusive) anon page in place?

    Mirrors: mm/memory.c wp_can_reuse_anon_folio(): v6.8 applies the refcount test to
    every folio (a large folio whose other pages are unmapped, refcount 1, is reused);
    v6.9 .. v6.14 never reuse a large folio; v6.15+ ask
    __wp_can_reuse_large_anon_folio().
    """
    f = "wp_can_reuse_anon_folio"
    if folio_test_large(folio):
        if kernel.wp_large_folio == "exclusive":
            return __wp_can_reuse_large_anon_folio(folio, fr)
        if kernel.wp_large_folio == "never":
            # kernel (v6.9 .. v6.14): "let's just consistently not reuse subpages even if
            # we could reuse in that scenario, and give back a large folio a bit sooner."
            fr.note(f, "no:large", "large folio: this version never reuses a subpage; copy")
            return False
    if folio.ksm or folio.refcount > 3:
        fr.note(f, "no:refcount", f"refcount {folio.refcount} > 3 (or KSM): someone else "
                "holds the page; copy")
        return False
    cache = folio_test_swapcache(folio)
    if folio.refcount > 1 + cache:
        fr.note(f, "no:refcount", f"refcount {folio.refcount} > {1 + cache}: another process "
                "still maps it, or it is pinned/referenced; copy")
        return False
    # kernel: "if (folio_test_swapcache(folio)) folio_free_swap(folio);" -- which fails
    # while a swap entry (another process's, since fork) still refers to the slot
    if cache and not folio_free_swap(folio):
        fr.note(f, "no:swapcache", "the page is in the swap cache and a swap entry still "
                "refers to its slot: the swap cache keeps a reference; copy")
        return False
    fr.note(f, "yes", "refcount == 1: the only reference is this mapping; reuse"
            + (" (v6.8: the test a large folio gets too)" if folio_test_large(folio) else ""))
    return True


def __wp_can_reuse_large_anon_folio(folio: Folio, fr: FaultResult) -> bool:
    """Mirrors: mm/memory.c __wp_can_reuse_large_anon_folio(), v6.17 (CONFIG_MM_ID)."""
    f = "__wp_can_reuse_large_anon_folio"
    if folio.large_mapcount <= 1:
        fr.note(f, "no:single-page", "only one page of the large folio is mapped: copy "
                "it, so that the folio's last mapping goes and the whole folio can be freed")
        return False
    if folio.mm_ids_shared:
        # folio_test_large_maybe_mapped_shared(): the MM-id tracking bit, which stays set
        # while mms it never had a slot for still map the folio
        # say which of the two ways set it holds here: mappings the two MM-id slots do
        # not account for belong to a process the folio could not record
        recorded = sum(n for mm, n in zip(folio.mm_ids, folio.mm_id_mapcount, strict=True)
                       if mm is not None)
        who = ("a process the folio could not record (it records two) still maps "
               f"{folio.large_mapcount - recorded} of its {folio.large_mapcount} mappings"
               if recorded < folio.large_mapcount else
               "another process maps part of it")
        fr.note(f, "no:mapped-shared", f"the folio is \"maybe mapped shared\": {who}; copy")
        return False
    if folio.large_mapcount != folio.refcount:
        fr.note(f, "no:extra-refs", f"refcount {folio.refcount} != large mapcount "
                f"{folio.large_mapcount}: extra references (a pin?); copy")
        return False
    fr.note(f, "yes", f"refcount {folio.refcount} == large mapcount {folio.large_mapcount}, "
            "not maybe mapped shared: every reference is a mapping by this process, so the folio "
            "is exclusive; reuse")
    return True


def do_wp_page(vma: Vma, addr: int, pte: Pte, kernel: KernelVersion,
               fr: FaultResult, unshare: bool = False) -> None:
    """Write to a present, read-only PTE: reuse the page or copy it (copy-on-write).
    With ``unshare`` (a R/O long-term pin), make the page exclusive the same way but
    leave the PTE read-only.

    Mirrors: mm/memory.c do_wp_page(), v6.8 .. v6.17.
    """
    f = "do_wp_page"
    page = None if pte.special else _page_of(vma.vm_mm, pte.pfn)
    if vma.vm_flags & (VM_SHARED | VM_MAYSHARE):
        wp_page_shared(vma, addr, pte, fr)
        return
    if page is not None and folio_test_anon(page.folio):
        reuse = page.anon_exclusive
        if reuse:
            fr.note(f, "reuse:exclusive", "page is AnonExclusive: nobody else can map it")
        elif wp_can_reuse_anon_folio(page.folio, kernel, fr):
            SetPageAnonExclusive(page)
            reuse = True
        if reuse and unshare:
            fr.kind = "unshare"
            fr.note(f, "unshare:exclusive", "FAULT_FLAG_UNSHARE: the page is (now) "
                    "AnonExclusive; the PTE stays read-only")
            return
        if reuse:
            wp_page_reuse(vma, addr, pte, page, fr)
            return
    wp_page_copy(vma, addr, pte, page, fr, unshare)


def _mkwrite(pte: Pte) -> Pte:
    return pte_mkyoung(pte_mkdirty(pte_mkwrite(pte)))


def wp_page_shared(vma: Vma, addr: int, pte: Pte, fr: FaultResult) -> None:
    """Mirrors: mm/memory.c wp_page_shared(): a shared mapping needs no copy; the PTE
    just becomes writable (and dirty)."""
    set_pte_at(vma.vm_mm, addr, _mkwrite(pte))
    fr.kind = "shared"
    fr.note("wp_page_shared", "make-writable", "shared mapping: no copy, just make the PTE "
            "writable (and dirty)")


def wp_page_reuse(vma: Vma, addr: int, pte: Pte, page: Page, fr: FaultResult) -> None:
    """Mirrors: mm/memory.c wp_page_reuse(): same page, now young, dirty and writable."""
    set_pte_at(vma.vm_mm, addr, _mkwrite(pte))
    fr.kind = "reuse"
    fr.note("wp_page_reuse", "reuse", f"page {page.pfn:#x} reused in place (now "
            "AnonExclusive, writable): no copy")


def wp_page_copy(vma: Vma, addr: int, pte: Pte, page: Page | None,
                 fr: FaultResult, unshare: bool = False) -> None:
    """Mirrors: mm/memory.c wp_page_copy(): a new order-0 page, even for a large folio;
    mapped writable and dirty -- or, to unshare, read-only (keeping soft-dirty and
    uffd-wp) so that a later write still faults."""
    mm = vma.vm_mm
    anon_vma_prepare(vma)
    new = _new_anon_page(vma, addr, page.data if page is not None else 0)
    if unshare:
        set_pte_at(mm, addr, Pte(pfn=new.pfn, young=True, soft_dirty=pte.soft_dirty,
                                 uffd_wp=pte.uffd_wp))
    else:
        set_pte_at(mm, addr, Pte(pfn=new.pfn, write=True, dirty=True, soft_dirty=True,
                                 young=True))     # maybe_mkwrite(pte_mkdirty(entry))
    mm.add_mm_counter(MM_ANONPAGES, 1)
    if page is not None:
        old = page.folio
        folio_remove_rmap_ptes(old, page.index, 1, mm)
        mm.add_mm_counter(mm_counter(old), -1)
        folio_put(old)
    fr.kind = "unshare-copy" if unshare else "cow-copy"
    # kernel: folio_prealloc(..., pfn_is_zero) allocates a zeroed folio for the zero pfn
    # and skips __wp_page_copy_user(): nothing is copied from the zero page
    what = (f"write to the zero page: new zero-filled exclusive order-0 page {new.pfn:#x} "
            "(nothing copied)" if pte.special else
            f"copy page {pte.pfn:#x} into new exclusive order-0 page {new.pfn:#x}")
    fr.note("wp_page_copy", "copy", f"{what}; the old page loses this mapping"
            + ("; mapped read-only (FAULT_FLAG_UNSHARE)" if unshare else ""))
