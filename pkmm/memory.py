"""The fork copy path shared by every kernel variant: page-table walk and common helpers.

Mirrors: mm/memory.c copy_page_range(), vma_needs_copy(), copy_pmd_range(),
copy_pte_range(), copy_nonpresent_pte(), copy_present_page(), page_copy_prealloc() /
folio_prealloc(), vm_normal_page(); v6.8 .. v6.17.  The present-PTE copy itself (the part
the versions disagree on) lives in one module per version under :mod:`pkmm.kernels`.
Simplified: no locks, mmu notifiers or lazy-MMU mode (they appear as trace events);
the p4d/pud levels are folded; no device-private/-exclusive entries; swap counts
never need a continuation page (no -EIO round).
Taught in: notebooks/02-fork-one-pte-at-a-time.ipynb
"""

from __future__ import annotations

import errno

from .context import ForkContext, Prealloc
from .errors import KernelBug
from .folio import Folio, Page, migration_entry_add
from .huge_memory import copy_huge_pmd
from .hugetlb import copy_hugetlb_page_range
from .mm import MM_ANONPAGES, MM_SWAPENTS, mm_counter, new_rss
from .pgtable import (
    Pmd,
    pmd_addr_end,
    pmd_index,
    pte_alloc,
    pte_index,
    pte_offset_map,
    ptep_get,
    set_pte_at,
)
from .pte import (
    PAGE_SIZE,
    Pte,
    is_migration_entry,
    is_pte_marker,
    is_swap_entry,
    make_pte_marker,
    make_readable_migration_entry,
    pte_clear_uffd_wp,
    pte_mkuffd_wp,
    pte_swp_clear_exclusive,
    pte_wrprotect,
)
from .rmap import alloc_new_anon_page
from .vma import VM_MIXEDMAP, VM_PFNMAP, VM_SHARED, VM_WRITE, Vma, is_cow_mapping, userfaultfd_wp

__all__ = ["EAGAIN", "EHWPOISON", "ENOMEM", "copy_nonpresent_pte",
           "copy_page_range", "copy_pmd_range", "copy_present_page", "copy_pte_marker",
           "copy_pte_range", "folio_prealloc", "page_copy_prealloc", "vm_normal_page",
           "vma_needs_copy"]

EAGAIN = errno.EAGAIN
ENOMEM = errno.ENOMEM
EHWPOISON = errno.EHWPOISON if hasattr(errno, "EHWPOISON") else 133


# --- vm_normal_page -----------------------------------------------------------------------

def vm_normal_page(fc: ForkContext | None, vma: Vma, addr: int, pte: Pte) -> Page | None:
    """Mirrors: mm/memory.c vm_normal_page(), v6.8 .. v6.17, CONFIG_ARCH_HAS_PTE_SPECIAL.

    The struct page behind a present PTE, or None for a special PTE: the shared zero page
    and raw PFN-map entries have no refcounted page, so fork copies them by value.
    """
    if pte.special:
        if fc is not None:
            why = ("PFNMAP/MIXEDMAP entry" if vma.vm_flags & (VM_PFNMAP | VM_MIXEDMAP)
                   else "the shared zero page")
            fc.emit("vm_normal_page", "no-page:special",
                    f"special PTE ({why}): no struct page, nothing to refcount", addr)
        return None
    found = vma.vm_mm.machine.pfn_folio(pte.pfn)
    if found is None:
        if fc is not None:
            fc.emit("vm_normal_page", "no-page:bad-pfn", "pfn has no struct page", addr)
        return None
    folio, i = found
    return folio.pages[i]


# --- preallocation and the pinned-page copy ---------------------------------------------

def _prealloc(fc: ForkContext, src_vma: Vma, addr: int, func: str) -> Folio | None:
    """The allocation both names below perform, its events named ``func``.

    Allocated with the locks dropped, charged to the *parent's* memcg; may fail.
    """
    fc.prealloc_calls += 1
    fail = fc.fail_prealloc
    if fail is True or (fail and fc.prealloc_calls == fail):
        fc.emit(func, "prealloc-failed",
                "allocating the page for the child's copy failed: fork returns -ENOMEM", addr)
        return None
    folio = src_vma.vm_mm.machine.alloc_folio(0, "anon")
    fc.emit(func, "prealloc",
            "locks dropped; allocated one order-0 page (charged to the parent's memcg) "
            "for the next PTE", addr, pfn=folio.pfn)
    return folio


def page_copy_prealloc(fc: ForkContext, src_vma: Vma, addr: int) -> Folio | None:
    """Mirrors: mm/memory.c page_copy_prealloc(), v6.8 (and the seed patch's tree)."""
    return _prealloc(fc, src_vma, addr, "page_copy_prealloc")


def folio_prealloc(fc: ForkContext, src_vma: Vma, addr: int) -> Folio | None:
    """Mirrors: mm/memory.c folio_prealloc(src_mm, vma, addr, need_zero=false), v6.9+.

    The same allocation under its new name: Kefeng Wang's "mm: memory: rename
    page_copy_prealloc() to folio_prealloc()" added ``need_zero`` for other callers.
    """
    return _prealloc(fc, src_vma, addr, "folio_prealloc")


#: the allocator each variant's copy_pte_range() calls, by ``KernelVersion.prealloc_func``
PREALLOC = {"page_copy_prealloc": page_copy_prealloc, "folio_prealloc": folio_prealloc}


def copy_present_page(fc: ForkContext, dst_vma: Vma, src_vma: Vma, pte: Pte, addr: int,
                      rss: dict[str, int], prealloc: Prealloc, page: Page) -> int:
    """Give the child a private copy of a maybe-pinned anon page; the parent keeps the page.

    Mirrors: mm/memory.c copy_present_page(), v6.8 .. v6.17 (v6.17: -EHWPOISON on a
    source memory error, without consuming the preallocated page).
    Returns 0 when copied, -EAGAIN when no preallocated page is held.
    Taught in: notebooks/04-pinned-pages.ipynb
    """
    new = prealloc.folio
    if new is None:
        fc.emit("copy_present_page", "need-prealloc",
                "page must be copied but no preallocated page is held: return -EAGAIN", addr)
        return -EAGAIN
    if page.hwpoison and fc.kernel.hwpoison_copy:
        fc.emit("copy_present_page", "hwpoison",
                "copy_mc_user_highpage hit a memory error: -EHWPOISON, fork fails", addr)
        return -EHWPOISON
    # kernel: "We have a prealloc page, all good!  Take it over and copy the page & arm it."
    prealloc.folio = None
    alloc_new_anon_page(dst_vma, [page.data], folio=new)
    rss[MM_ANONPAGES] += 1
    child = Pte(pfn=new.pfn, young=True, dirty=True, soft_dirty=True,   # pte_mkdirty()
                write=bool(dst_vma.vm_flags & VM_WRITE))  # maybe_mkwrite
    if userfaultfd_wp(dst_vma) and pte.uffd_wp:
        child = pte_wrprotect(pte_mkuffd_wp(child))  # x86: uffd-wp implies read-only
    set_pte_at(dst_vma.vm_mm, addr, child)
    fc.copies += 1
    fc.ops["page_copies"] += 1
    fc.ops["pte_writes"] += 1
    fc.emit("copy_present_page", "copied",
            "child gets a private, exclusive, writable copy; the parent's PTE and its "
            "(maybe pinned) page stay untouched", addr, nr=1, new_pfn=new.pfn)
    return 0


# --- non-present entries ------------------------------------------------------------------

def copy_pte_marker(fc: ForkContext, markers: frozenset[str], dst_vma: Vma) -> frozenset[str]:
    """Mirrors: include/linux/mm_inline.h copy_pte_marker() (GUARD copied from v6.13)."""
    keep = {"poisoned", "guard"} if fc.kernel.guard_markers else {"poisoned"}
    dst = set(markers & keep)
    if "uffd_wp" in markers and userfaultfd_wp(dst_vma):
        dst.add("uffd_wp")
    return frozenset(dst)


def copy_nonpresent_pte(fc: ForkContext, dst_vma: Vma, src_vma: Vma, addr: int,
                        rss: dict[str, int]) -> int:
    """Copy one swap / migration / marker entry.  Never batched; costs 8 progress units.

    Mirrors: mm/memory.c copy_nonpresent_pte(), v6.8 .. v6.17.
    Simplified: no device-private/-exclusive entries; swap_duplicate never needs a
    continuation page (so no -EIO).
    Taught in: notebooks/01-ptes-folios-vmas.ipynb
    """
    f = "copy_nonpresent_pte"
    src_mm, dst_mm = src_vma.vm_mm, dst_vma.vm_mm
    orig = ptep_get(src_mm, addr)
    if orig is None or orig.swp is None:
        raise KernelBug(f"copy_nonpresent_pte: no non-present entry at {addr:#x}")
    pte = orig
    if is_swap_entry(orig):
        src_mm.machine.swap_duplicate(orig.swp.offset)
        dst_mm.on_mmlist = True
        if orig.swp.exclusive:
            # kernel: the swapped-out page is now shared: clear exclusive in the parent too
            pte = pte_swp_clear_exclusive(orig)
            set_pte_at(src_mm, addr, pte)
        rss[MM_SWAPENTS] += 1
        why = "swap entry: swap count + 1, swap-exclusive cleared in parent and child"
    elif is_migration_entry(orig):
        found = src_mm.machine.pfn_folio(orig.swp.offset)
        if found is None:
            raise KernelBug(f"copy_nonpresent_pte: migration entry at {addr:#x} points at "
                            f"freed pfn {orig.swp.offset:#x}")
        rss[mm_counter(found[0])] += 1
        # kernel: no reference for the child's entry (the migration holds the folio);
        # pkmm counts the entry so the migration ends with the last one
        migration_entry_add(found[0])
        why = "migration entry: counted in rss; no refcount/mapcount (page is unmapped)"
        if orig.swp.kind != "migration_read" and is_cow_mapping(dst_vma.vm_flags):
            # kernel: COW mappings require pages in both parent and child to be read-only
            pte = make_readable_migration_entry(orig)
            set_pte_at(src_mm, addr, pte)
            why += "; writable/exclusive entry made plain readable in the parent (COW)"
    elif is_pte_marker(orig):
        m = copy_pte_marker(fc, orig.swp.markers, dst_vma)
        if m:
            set_pte_at(dst_mm, addr, make_pte_marker(m))
        dropped = sorted(orig.swp.markers - m)
        why = ("PTE marker: copy_pte_marker keeps " + (",".join(sorted(m)) or "nothing")
               + (f", drops {','.join(dropped)}" if dropped else ""))
        fc.emit(f, "marker", why, addr, nr=1)
        fc.step(addr, 1, "nonpresent", why, f)
        return 0
    else:
        why = "hwpoison entry: copied as-is (no dedicated branch)"
    if not userfaultfd_wp(dst_vma):
        pte = pte_clear_uffd_wp(pte)
    set_pte_at(dst_mm, addr, pte)
    fc.ops["pte_writes"] += 1
    fc.emit(f, orig.swp.kind, why, addr, nr=1)
    fc.step(addr, 1, "nonpresent", why, f)
    return 0


# --- the per-page-table loop ----------------------------------------------------------------

#: copy_pte_range()'s lock-break accounting (kernel: ``progress``): need_resched() is
#: checked once progress reaches PROGRESS_BREAK; a none slot adds PROGRESS_NONE, every
#: entry copied PROGRESS_ENTRY (named so that the bulk path counts the same checks).
PROGRESS_BREAK, PROGRESS_NONE, PROGRESS_ENTRY = 32, 1, 8

def copy_pte_range(fc: ForkContext, dst_vma: Vma, src_vma: Vma, addr: int, end: int) -> int:
    """Copy the PTEs of [addr, end), one PMD slice of one VMA, for the child.

    Mirrors: mm/memory.c copy_pte_range(), v6.8 .. v6.17 (one loop; the version's
    ``copy_present_pte(s)`` decides how many PTEs one call handles).
    Lock break: once ``progress`` reaches 32 (+1 per none slot, +8 per copied entry) the
    loop may drop its locks; pkmm breaks there only when ``need_resched`` is set.
    -EAGAIN: drop the locks, preallocate one page, and retry *at the same slot*.
    Returns 0, or a negative errno that makes fork fail with ENOMEM.
    """
    f = "copy_pte_range"
    src_mm, dst_mm = src_vma.vm_mm, dst_vma.vm_mm
    prealloc = Prealloc()
    ret = 0
    while True:  # again:
        progress = 0
        rss = fc.rss = new_rss()
        src_table = pte_offset_map(src_mm, addr)
        if src_table is None:
            return 0
        pte_alloc(dst_mm, addr)
        fc.passes += 1
        while True:
            if progress >= PROGRESS_BREAK:   # kernel: if (progress >= 32)
                fc.ops["lockbreak_checks"] += 1
                progress = 0
                if fc.need_resched:
                    fc.lock_breaks += 1
                    fc.emit(f, "lock-break", "progress reached 32 and need_resched(): "
                            "drop both PTE locks, reschedule, resume here", addr)
                    break
            ptent = src_table.ptes[pte_index(addr)]
            fc.ops["pte_reads"] += 1
            if ptent is None:
                progress += PROGRESS_NONE
                addr += PAGE_SIZE
            elif not ptent.present:
                ret = copy_nonpresent_pte(fc, dst_vma, src_vma, addr, rss)
                progress += PROGRESS_ENTRY
                addr += PAGE_SIZE
            else:
                max_nr = (end - addr) // PAGE_SIZE
                ret = fc.kernel.copy_present(fc, dst_vma, src_vma, ptent, addr, max_nr,
                                             rss, prealloc)
                if ret < 0:
                    break
                if prealloc.folio is not None:
                    # kernel: "pre-alloc page cannot be reused by next time so as to
                    # strictly follow mempolicy"
                    _free_prealloc(fc, prealloc, addr, wasted=True)
                progress += PROGRESS_ENTRY * ret
                addr += PAGE_SIZE * ret
                ret = 0
            if addr == end:
                break
        dst_mm.add_mm_rss_vec(rss)
        fc.rss = None
        fc.ops["rss_updates"] += 1
        if ret == -EAGAIN:
            fc.eagain += 1
            fc.ops["eagain_rounds"] += 1
            prealloc.folio = PREALLOC[fc.kernel.prealloc_func](fc, src_vma, addr)
            if prealloc.folio is None:
                return -ENOMEM
        elif ret < 0:
            fc.emit(f, "error", f"copy failed with errno {-ret}: fork fails with ENOMEM",
                    addr)
            _free_prealloc(fc, prealloc, addr, wasted=False)
            return ret
        ret = 0
        if addr == end:
            break
    _free_prealloc(fc, prealloc, addr, wasted=False)
    return 0


def _free_prealloc(fc: ForkContext, prealloc: Prealloc, addr: int, wasted: bool) -> None:
    """Free an unconsumed preallocated page (it is never carried to a later slot)."""
    if prealloc.folio is None:
        return
    prealloc.folio.machine.free_folio(prealloc.folio)
    prealloc.folio = None
    if wasted:
        fc.wasted += 1
        fc.emit("copy_pte_range", "prealloc-wasted",
                "the preallocated page was not needed for this slot: freed (never reused "
                "for a later address)", addr)


# --- upper levels ---------------------------------------------------------------------------

def copy_pmd_range(fc: ForkContext, dst_vma: Vma, src_vma: Vma, addr: int, end: int) -> int:
    """Walk PMD slices; PMD leaves go to copy_huge_pmd, tables to copy_pte_range.

    Mirrors: mm/memory.c copy_pmd_range(), v6.8 .. v6.17.  Any failure below becomes -ENOMEM.
    """
    src_mm = src_vma.vm_mm
    while addr < end:
        nxt = pmd_addr_end(addr, end)
        entry = src_mm.pmds.get(pmd_index(addr))
        if isinstance(entry, Pmd):
            err = (fc.kernel.copy_huge or copy_huge_pmd)(fc, dst_vma, src_vma, addr)
            if err == -ENOMEM:
                return -ENOMEM
            if err == 0:
                addr = nxt
                continue
            # -EAGAIN: the parent's PMD was split; fall through to the PTE table
        if pte_offset_map(src_mm, addr) is not None:
            if copy_pte_range(fc, dst_vma, src_vma, addr, nxt):
                return -ENOMEM
        addr = nxt
    return 0


def vma_needs_copy(fc: ForkContext, dst_vma: Vma, src_vma: Vma) -> bool:
    """Mirrors: mm/memory.c vma_needs_copy(), v6.8 .. v6.17.

    kernel: "Don't copy ptes where a page fault will fill them correctly."
    """
    f = "vma_needs_copy"
    a = src_vma.vm_start
    if userfaultfd_wp(dst_vma):
        fc.emit(f, "copy:uffd-wp", "child VMA is uffd-wp registered: the uffd-wp bits live "
                "only in the page tables, so they must be copied", a)
        return True
    if src_vma.vm_flags & (VM_PFNMAP | VM_MIXEDMAP):
        fc.emit(f, "copy:pfnmap", "PFNMAP/MIXEDMAP: raw PFN entries cannot be refaulted", a)
        return True
    if src_vma.anon_vma is not None:
        fc.emit(f, "copy:anon_vma", "VMA has an anon_vma: it may hold private anonymous "
                "pages that no fault could recreate", a)
        return True
    why = ("shared mapping" if src_vma.vm_flags & VM_SHARED else "private mapping without anon_vma")
    fc.emit(f, "skip", f"{why}: page faults will fill the child's PTEs correctly, so "
            "nothing is copied", a)
    return False


def copy_page_range(fc: ForkContext, dst_vma: Vma, src_vma: Vma) -> int:
    """Copy the page tables of one VMA, or decide that they need not be copied.

    Mirrors: mm/memory.c copy_page_range(), v6.8 .. v6.17 (PFN memtype tracking and
    mmu notifiers are trace events only): a hugetlb VMA goes to
    copy_hugetlb_page_range().
    """
    if not vma_needs_copy(fc, dst_vma, src_vma):
        return 0
    if src_vma.hugetlb_kb:
        # kernel: "if (is_vm_hugetlb_page(src_vma)) return copy_hugetlb_page_range(...)"
        return copy_hugetlb_page_range(fc, dst_vma, src_vma)
    if is_cow_mapping(src_vma.vm_flags):
        fc.emit("copy_page_range", "cow:write_protect_seq",
                "COW mapping: raise the parent's write_protect_seq so GUP-fast cannot pin "
                "pages while fork decides what to share; notify secondary MMUs",
                src_vma.vm_start)
    return copy_pmd_range(fc, dst_vma, src_vma, src_vma.vm_start, src_vma.vm_end)
