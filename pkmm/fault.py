"""After fork: page faults (CoW copy or reuse, zero page, page cache, swap-in) and exit.

Mirrors: mm/memory.c handle_mm_fault() -> handle_pte_fault() -> do_anonymous_page(),
do_read_fault(), do_cow_fault(), do_shared_fault(), do_swap_page(), do_wp_page(),
wp_can_reuse_anon_folio(), __wp_can_reuse_large_anon_folio() (v6.17 only),
wp_page_reuse(), wp_page_copy(); mm/huge_memory.c do_huge_pmd_wp_page();
mm/mmap.c exit_mmap().  Version differences come from :class:`pkmm.kernels.KernelVersion`.
Simplified: fault-around maps only pages already in the page cache; no swap cache (each
swap-in gets its own page), no LRU batches holding extra references; migration completes
when the entry is touched.
Taught in: notebooks/07-after-fork.ipynb
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from .errors import FaultError
from .folio import Folio, Page, folio_put, folio_test_anon, folio_test_large
from .huge_memory import HPAGE_PMD_NR, __split_huge_pmd, zap_huge_pmd
from .kernels import KernelVersion, get_kernel
from .mm import MM_ANONPAGES, MM_SWAPENTS, mm_counter, mm_counter_file
from .pgtable import Pmd, PteTable, pmd_index, pte_index, ptep_get, set_pte_at
from .pte import PMD_SIZE, Pte, is_migration_entry, is_pte_marker, is_swap_entry
from .rmap import (
    folio_add_anon_rmap_ptes,
    folio_add_file_rmap_ptes,
    folio_add_rmap_pmd,
    folio_remove_rmap_ptes,
)
from .vma import VM_MAYSHARE, VM_PFNMAP, VM_SHARED, VM_WRITE, AnonVma, Vma, userfaultfd_wp

if TYPE_CHECKING:  # pragma: no cover
    from .process import Process


@dataclass
class FaultResult:
    """What one read/write did: ``kind`` names the path, ``events`` the decisions."""

    addr: int
    write: bool
    kind: str = "none"          # "none" = no fault: the PTE allowed the access
    events: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def faulted(self) -> bool:
        """Whether the access took a page fault (what a minor-fault counter would see)."""
        return self.kind != "none"

    def note(self, func: str, rule: str, reason: str) -> None:
        """Record a decision."""
        self.events.append((func, rule, reason))

    def __str__(self) -> str:
        op = "write" if self.write else "read"
        lines = [f"{op} {self.addr:#x}: {self.kind}"]
        lines += [f"  {f}: {r} -- {why}" for f, r, why in self.events]
        return "\n".join(lines)


def _anon_vma_prepare(vma: Vma) -> None:
    if vma.anon_vma is None:
        vma.anon_vma = AnonVma()


def _page_of(proc: Process, pfn: int) -> Page | None:
    found = proc.machine.pfn_folio(pfn)
    if found is None or found[0].kind in ("zero", "huge_zero"):
        return None
    return found[0].pages[found[1]]


# --- entry point -----------------------------------------------------------------------

def handle_mm_fault(proc: Process, addr: int, write: bool, value: int | None = None) -> int:
    """Perform one load or store, taking whatever fault the PTE requires; returns the data.

    Mirrors: mm/memory.c handle_mm_fault() / __handle_mm_fault() / handle_pte_fault().
    """
    mm = proc.mm
    vma = mm.find_vma(addr)
    if vma is None:
        raise FaultError(f"{'write' if write else 'read'} at {addr:#x}: no VMA there "
                         f"(SIGSEGV) in {proc.name!r}", "SIGSEGV")
    if write and not vma.vm_flags & VM_WRITE:
        raise FaultError(f"write at {addr:#x}: the VMA is read-only (SIGSEGV)", "SIGSEGV")
    kernel = get_kernel(proc.kernel)
    fr = FaultResult(addr, write)
    proc.faults.append(fr)
    ent = mm.pmds.get(pmd_index(addr))
    if isinstance(ent, Pmd):
        if not write:
            return _access(proc, addr, write, value, fr)
        if do_huge_pmd_wp_page(proc, vma, addr, ent, kernel, fr):
            return _access(proc, addr, write, value, fr)
    pte = ptep_get(mm, addr)
    if pte is None:
        do_pte_missing(proc, vma, addr, write, fr)
    elif not pte.present:
        do_nonpresent(proc, vma, addr, pte, write, fr)
    pte = ptep_get(mm, addr)
    assert pte is not None and pte.present
    if pte.protnone:
        fr.kind = "numa"
        fr.note("do_numa_page", "numa-hint", "NUMA-hinting (protnone) PTE: restore access")
        pte = replace(pte, protnone=False)
        set_pte_at(mm, addr, pte)
    if write and not pte.write:
        if pte.uffd_wp and userfaultfd_wp(vma):
            raise FaultError(f"write at {addr:#x}: uffd-wp protected; the kernel delivers a "
                             "userfault and the writer blocks until the monitor resolves it",
                             "userfault")
        do_wp_page(proc, vma, addr, pte, kernel, fr)
    return _access(proc, addr, write, value, fr)


def _access(proc: Process, addr: int, write: bool, value: int | None,
            fr: FaultResult) -> int:
    """The load/store itself, with the hardware setting the accessed/dirty bits."""
    mm = proc.mm
    ent = mm.pmds.get(pmd_index(addr))
    if isinstance(ent, Pmd):
        if ent.huge_zero:
            return 0
        page = _page_of(proc, ent.pfn + pte_index(addr))
        mm.pmds[pmd_index(addr)] = replace(ent, young=True, dirty=ent.dirty or write)
    else:
        pte = ptep_get(mm, addr)
        assert pte is not None and pte.present
        set_pte_at(mm, addr, replace(pte, young=True, dirty=pte.dirty or write))
        page = _page_of(proc, pte.pfn)
    if page is None:        # zero page or raw PFN: reads as 0, writes cannot happen here
        return 0
    if write:
        assert value is not None
        page.data = value
    return page.data


# --- missing and non-present PTEs ---------------------------------------------------------

def do_pte_missing(proc: Process, vma: Vma, addr: int, write: bool, fr: FaultResult) -> None:
    """Fill an empty slot: zero page / new anon page, or a page-cache page (or its copy)."""
    mm = proc.mm
    if vma.vm_flags & VM_PFNMAP:
        raise FaultError(f"access at {addr:#x}: empty slot in a PFNMAP VMA (SIGBUS)", "SIGBUS")
    if vma.backing == "anon":
        if not write:
            set_pte_at(mm, addr, Pte(pfn=proc.machine.zero_folio.pfn, special=True,
                                     young=True))
            fr.kind = "zero"
            fr.note("do_anonymous_page", "zero-page", "read of never-written anonymous memory "
                    "maps the shared zero page read-only (no anon_vma needed)")
            return
        _anon_vma_prepare(vma)
        new = _new_anon_page(proc, vma, addr, 0)
        fr.kind = "anonymous"
        fr.note("do_anonymous_page", "new-page", f"write to empty anonymous memory: new zeroed "
                f"exclusive page {new.pfn:#x}")
        return
    page = _filemap_fault(proc, vma, addr)
    if write and not vma.vm_flags & VM_SHARED:
        _anon_vma_prepare(vma)
        new = _new_anon_page(proc, vma, addr, page.data)
        fr.kind = "cow-file"
        fr.note("do_cow_fault", "copy", f"write to a private file mapping: copy page-cache "
                f"page {page.pfn:#x} into new anon page {new.pfn:#x}")
        return
    if not write:
        do_fault_around(proc, vma, addr, fr)
    _map_cached_page(proc, vma, addr, page, write)
    fr.kind = "shared-write" if write else "file-read"
    fr.note("do_read_fault" if not write else "do_shared_fault", "page-cache",
            f"map page-cache page {page.pfn:#x} (same page every process sees)")


def _map_cached_page(proc: Process, vma: Vma, addr: int, page: Page, write: bool) -> None:
    """Map a page-cache page with the VMA's protection (``set_pte_range``): writable only
    for a shared writable shmem mapping (no write-notify) or on a write fault."""
    writable = write or (vma.backing == "shmem" and bool(vma.vm_flags & VM_SHARED))
    writable = writable and bool(vma.vm_flags & VM_WRITE)
    set_pte_at(proc.mm, addr, Pte(pfn=page.pfn, write=writable, dirty=write, young=True))
    page.folio.refcount += 1
    folio_add_file_rmap_ptes(page.folio, page.index, 1, vma)
    proc.mm.add_mm_counter(mm_counter_file(page.folio), 1)


FAULT_AROUND_BYTES = 64 * 1024


def do_fault_around(proc: Process, vma: Vma, addr: int, fr: FaultResult) -> None:
    """Also map the neighbours of a read-faulted file page that are already in the page
    cache, within a 64 KiB-aligned window clipped to the VMA and the PMD slice.

    Mirrors: mm/memory.c do_fault_around() -> filemap_map_pages(), v6.8 .. v6.17
    (fault_around_bytes = 64 KiB default).  Pages not in the cache are not read in.
    """
    assert vma.vm_file is not None
    start = max(addr & ~(FAULT_AROUND_BYTES - 1), vma.vm_start, addr & ~(PMD_SIZE - 1))
    end = min((addr & ~(FAULT_AROUND_BYTES - 1)) + FAULT_AROUND_BYTES, vma.vm_end,
              (addr & ~(PMD_SIZE - 1)) + PMD_SIZE)
    mapped = 0
    for a in range(start, end, 4096):
        if a == addr or ptep_get(proc.mm, a) is not None:
            continue
        page = vma.vm_file.cache.get(vma.linear_page_index(a))
        if page is None or page.folio.freed:
            continue
        _map_cached_page(proc, vma, a, page, write=False)
        mapped += 1
    if mapped:
        fr.note("do_fault_around", "fault-around", f"also mapped {mapped} neighbouring "
                "page-cache page(s) already in the cache, so their first access will not "
                "fault")


def _filemap_fault(proc: Process, vma: Vma, addr: int) -> Page:
    """The page cache page for ``addr``'s file offset, read in if missing."""
    assert vma.vm_file is not None
    off = vma.linear_page_index(addr)
    page = vma.vm_file.cache.get(off)
    if page is None or page.folio.freed:
        f = proc.machine.alloc_folio(0, vma.vm_file.kind)
        f.refcount += 1          # the page cache's reference
        page = f.pages[0]
        vma.vm_file.cache[off] = page
    return page


def _new_anon_page(proc: Process, vma: Vma, addr: int, data: int) -> Folio:
    new = proc.machine.alloc_folio(0, "anon")
    new.pages[0].data = data
    new.refcount += 1
    folio_add_anon_rmap_ptes(new, 0, 1, vma, exclusive=True)
    set_pte_at(proc.mm, addr, Pte(pfn=new.pfn, write=bool(vma.vm_flags & VM_WRITE),
                                  dirty=True, young=True))
    proc.mm.add_mm_counter(MM_ANONPAGES, 1)
    return new


def do_nonpresent(proc: Process, vma: Vma, addr: int, pte: Pte, write: bool,
                  fr: FaultResult) -> None:
    """Swap entries, migration entries and PTE markers (do_swap_page and friends)."""
    mm = proc.mm
    assert pte.swp is not None
    if is_pte_marker(pte):
        markers = pte.swp.markers
        if "poisoned" in markers:
            raise FaultError(f"access at {addr:#x}: poisoned PTE marker (SIGBUS)", "SIGBUS")
        if "guard" in markers:
            raise FaultError(f"access at {addr:#x}: guard region (SIGSEGV)", "SIGSEGV")
        if write and userfaultfd_wp(vma):
            raise FaultError(f"write at {addr:#x}: uffd-wp marker; userfault", "userfault")
        set_pte_at(mm, addr, None)
        fr.note("handle_pte_marker", "uffd-wp-marker", "uffd-wp marker on a none slot: fault "
                "it in like an empty slot")
        do_pte_missing(proc, vma, addr, write, fr)
        return
    if is_swap_entry(pte):
        slot = proc.machine.swap[pte.swp.offset]
        new = proc.machine.alloc_folio(0, "anon")
        new.pages[0].data = slot.data
        new.refcount += 1
        folio_add_anon_rmap_ptes(new, 0, 1, vma, exclusive=True)
        _anon_vma_prepare(vma)
        set_pte_at(mm, addr, Pte(pfn=new.pfn, young=True, dirty=write,
                                 write=write and bool(vma.vm_flags & VM_WRITE),
                                 soft_dirty=pte.soft_dirty,
                                 uffd_wp=pte.uffd_wp and userfaultfd_wp(vma)))
        proc.machine.swap_free(pte.swp.offset)
        mm.add_mm_counter(MM_SWAPENTS, -1)
        mm.add_mm_counter(MM_ANONPAGES, 1)
        fr.kind = "swapin"
        fr.note("do_swap_page", "swapin", f"read swap slot {pte.swp.offset} into new page "
                f"{new.pfn:#x} (pkmm: no swap cache, so this process gets its own copy)")
        return
    if is_migration_entry(pte):
        found = proc.machine.pfn_folio(pte.swp.offset)
        assert found is not None
        folio, i = found
        writable = pte.swp.kind == "migration_write"
        excl = pte.swp.kind != "migration_read" and folio_test_anon(folio)
        set_pte_at(mm, addr, Pte(pfn=pte.swp.offset, write=writable, young=True,
                                 soft_dirty=pte.soft_dirty, uffd_wp=pte.uffd_wp))
        folio.refcount += 1
        if folio_test_anon(folio):
            folio_add_anon_rmap_ptes(folio, i, 1, vma, exclusive=excl)
        else:
            folio_add_file_rmap_ptes(folio, i, 1, vma)
        fr.kind = "migration"
        fr.note("migration_entry_wait", "restored", "migration finished: the PTE maps the "
                "page again" + (" (writable, exclusive)" if writable else " (read-only)"))
        return
    raise FaultError(f"access at {addr:#x}: hardware-poisoned page (SIGBUS)", "SIGBUS")


# --- write-protect faults -------------------------------------------------------------------

def wp_can_reuse_anon_folio(folio: Folio, kernel: KernelVersion,
                            fr: FaultResult) -> bool:
    """May a write fault reuse this (not AnonExclusive) anon page in place?

    Mirrors: mm/memory.c wp_can_reuse_anon_folio(); large folios go to
    __wp_can_reuse_large_anon_folio() in v6.17 only.
    """
    f = "wp_can_reuse_anon_folio"
    if folio_test_large(folio):
        if kernel.large_folio_reuse:
            return __wp_can_reuse_large_anon_folio(folio, fr)
        # kernel (<= v6.14): "let's just consistently not reuse subpages even if we could
        # reuse in that scenario, and give back a large folio a bit sooner."
        fr.note(f, "no:large", "large folio: this version never reuses a subpage; copy")
        return False
    if folio.ksm or folio.refcount > 3:
        fr.note(f, "no:refcount", f"refcount {folio.refcount} > 3 (or KSM): someone else "
                "holds the page; copy")
        return False
    if folio.refcount > 1:
        fr.note(f, "no:refcount", f"refcount {folio.refcount} > 1: another process still "
                "maps it, or it is pinned/referenced; copy")
        return False
    fr.note(f, "yes", "refcount == 1: the only reference is this mapping; reuse")
    return True


def __wp_can_reuse_large_anon_folio(folio: Folio, fr: FaultResult) -> bool:
    """Mirrors: mm/memory.c __wp_can_reuse_large_anon_folio(), v6.17 (CONFIG_MM_ID)."""
    f = "__wp_can_reuse_large_anon_folio"
    if folio.large_mapcount <= 1:
        fr.note(f, "no:single-page", "only one page of the large folio is mapped: better "
                "to copy and let the folio be freed")
        return False
    if folio.maybe_mapped_shared:
        fr.note(f, "no:mapped-shared", "another mm still maps part of this folio "
                "(maybe mapped shared); copy")
        return False
    if folio.large_mapcount != folio.refcount:
        fr.note(f, "no:extra-refs", f"refcount {folio.refcount} != large mapcount "
                f"{folio.large_mapcount}: extra references (a pin?); copy")
        return False
    fr.note(f, "yes", "every reference is a mapping of this mm: the folio is exclusive; "
            "reuse")
    return True


def do_wp_page(proc: Process, vma: Vma, addr: int, pte: Pte, kernel: KernelVersion,
               fr: FaultResult) -> None:
    """Write to a present, read-only PTE: reuse the page or copy it (copy-on-write).

    Mirrors: mm/memory.c do_wp_page(), v6.8 .. v6.17.
    """
    f = "do_wp_page"
    page = None if pte.special else _page_of(proc, pte.pfn)
    if vma.vm_flags & (VM_SHARED | VM_MAYSHARE):
        set_pte_at(proc.mm, addr, replace(pte, write=True, dirty=True, young=True))
        fr.kind = "shared"
        fr.note("wp_page_shared", "make-writable", "shared mapping: no copy, just make the "
                "PTE writable (and dirty)")
        return
    if page is not None and folio_test_anon(page.folio):
        if page.anon_exclusive:
            fr.note(f, "reuse:exclusive", "page is AnonExclusive: nobody else can map it")
            wp_page_reuse(proc, addr, pte, page, fr)
            return
        if wp_can_reuse_anon_folio(page.folio, kernel, fr):
            page.anon_exclusive = True
            wp_page_reuse(proc, addr, pte, page, fr)
            return
    wp_page_copy(proc, vma, addr, pte, page, fr)


def wp_page_reuse(proc: Process, addr: int, pte: Pte, page: Page, fr: FaultResult) -> None:
    """Mirrors: mm/memory.c wp_page_reuse(): same page, now young, dirty and writable."""
    set_pte_at(proc.mm, addr, replace(pte, write=True, dirty=True, young=True))
    fr.kind = "reuse"
    fr.note("wp_page_reuse", "reuse", f"page {page.pfn:#x} reused in place (now "
            "AnonExclusive, writable): no copy")


def wp_page_copy(proc: Process, vma: Vma, addr: int, pte: Pte, page: Page | None,
                 fr: FaultResult) -> None:
    """Mirrors: mm/memory.c wp_page_copy(): a new order-0 page, even for a large folio."""
    _anon_vma_prepare(vma)
    data = page.data if page is not None else 0
    new = proc.machine.alloc_folio(0, "anon")
    new.pages[0].data = data
    new.refcount += 1
    folio_add_anon_rmap_ptes(new, 0, 1, vma, exclusive=True)
    set_pte_at(proc.mm, addr, Pte(pfn=new.pfn, write=True, dirty=True, young=True))
    mm = proc.mm
    mm.add_mm_counter(MM_ANONPAGES, 1)
    if page is not None:
        old = page.folio
        folio_remove_rmap_ptes(old, page.index, 1, mm)
        mm.add_mm_counter(mm_counter(old), -1)
        folio_put(old)
    src = ("the zero page" if pte.special else f"page {pte.pfn:#x}")
    fr.kind = "cow-copy"
    fr.note("wp_page_copy", "copy", f"copy {src} into new exclusive order-0 page "
            f"{new.pfn:#x}; the old page loses this mapping")


def do_huge_pmd_wp_page(proc: Process, vma: Vma, addr: int, pmd: Pmd, kernel: KernelVersion,
                        fr: FaultResult) -> bool:
    """Write to a read-only PMD mapping.  True when handled at PMD level, False when the
    PMD was split (or zapped) and the PTE path must finish the fault.

    Mirrors: mm/huge_memory.c do_huge_pmd_wp_page() / do_huge_zero_wp_pmd(), v6.8..v6.17.
    """
    f = "do_huge_pmd_wp_page"
    mm = proc.mm
    haddr = addr & ~(PMD_SIZE - 1)
    if pmd.write:
        return True
    if pmd.huge_zero:
        if kernel.huge_zero_wp_thp:
            new = proc.machine.alloc_folio(9, "anon")
            new.refcount += 1
            _anon_vma_prepare(vma)
            mm.pmds[pmd_index(haddr)] = Pmd(pfn=new.pfn, write=True, dirty=True, young=True)
            folio_add_rmap_pmd(new, vma, exclusive=True)
            mm.add_mm_counter(MM_ANONPAGES, HPAGE_PMD_NR)
            fr.kind = "huge-zero-thp"
            fr.note("do_huge_zero_wp_pmd", "new-thp", "write to the huge zero page: allocate "
                    "and map a whole new zeroed 2 MiB THP")
            return True
        __split_huge_pmd(mm, vma, haddr)
        fr.kind = "split-pmd"
        fr.note(f, "split-huge-zero", "write to the huge zero page: split it into 512 zero-"
                "page PTEs and fault one 4 KiB page")
        return False
    page = _page_of(proc, pmd.pfn)
    assert page is not None
    folio = page.folio
    if not folio_test_anon(folio):
        zap_huge_pmd(mm, haddr)
        fr.note(f, "zap-file-thp", "private file THP: drop the PMD and fault 4 KiB")
        return False
    head = folio.pages[0]
    if head.anon_exclusive or folio.refcount == 1:
        head.anon_exclusive = True
        mm.pmds[pmd_index(haddr)] = replace(pmd, write=True, dirty=True, young=True)
        fr.kind = "thp-reuse"
        fr.note(f, "reuse", "head page AnonExclusive (or refcount 1): reuse the whole PMD")
        return True
    __split_huge_pmd(mm, vma, haddr)
    fr.note(f, "split", f"THP shared (refcount {folio.refcount}): split this process's PMD "
            "into PTEs; the PTE path copies one 4 KiB page")
    return False


# --- teardown ------------------------------------------------------------------------------

def exit_mmap(proc: Process) -> None:
    """Unmap every VMA, drop the process's pins, and leave the machine.

    Mirrors: mm/mmap.c exit_mmap() -> unmap_vmas() -> zap_pte_range() / zap_huge_pmd().
    """
    from .process import _unpin
    mm = proc.mm
    for idx, ent in sorted(mm.pmds.items()):
        if isinstance(ent, Pmd):
            zap_huge_pmd(mm, idx * PMD_SIZE)
            continue
        assert isinstance(ent, PteTable)
        for i, pte in enumerate(ent.ptes):
            if pte is None:
                continue
            ent.ptes[i] = None
            zap_pte(proc, pte)
    mm.pmds.clear()
    mm.nr_ptes = 0
    for f, _ in proc.pins:
        _unpin(f)
    proc.pins.clear()
    for f, _ in proc.gup_refs:
        f.gup_refs -= 1
        folio_put(f)
    proc.gup_refs.clear()
    proc.exited = True
    if proc in proc.machine.processes:
        proc.machine.processes.remove(proc)


def zap_pte(proc: Process, pte: Pte) -> None:
    """Drop whatever one PTE held: a mapping and reference, a swap slot, an rss count."""
    mm = proc.mm
    if pte.present:
        page = None if pte.special else _page_of(proc, pte.pfn)
        if page is None:
            return
        folio = page.folio
        folio_remove_rmap_ptes(folio, page.index, 1, mm)
        mm.add_mm_counter(mm_counter(folio), -1)
        folio_put(folio)
        return
    assert pte.swp is not None
    if is_swap_entry(pte):
        proc.machine.swap_free(pte.swp.offset)
        mm.add_mm_counter(MM_SWAPENTS, -1)
    elif is_migration_entry(pte):
        found = proc.machine.pfn_folio(pte.swp.offset)
        if found is not None:
            mm.add_mm_counter(mm_counter(found[0]), -1)
