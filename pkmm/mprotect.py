"""mprotect(): new VMA protection, and PTEs rewritten to match -- with the write upgrade.

Mirrors: mm/mprotect.c do_mprotect_pkey() -> mprotect_fixup() -> change_protection() ->
change_pte_range() / change_huge_pmd(), can_change_pte_writable(),
vma_wants_manual_pte_write_upgrade(); v6.8 .. v6.17.
Simplified: read permission always stays (PROT_READ or PROT_READ|PROT_WRITE); no pkeys,
NUMA hinting or uffd-wp changes (the MM_CP_PROT_NUMA / MM_CP_UFFD_WP callers).
Taught in: notebooks/05-shared-vs-private.ipynb

Why it matters for copy-on-write: making a private mapping writable again does not simply
set every PTE writable (``vm_page_prot`` of a private mapping has no write bit).  Only a
PTE that a write fault would reuse anyway -- an AnonExclusive anon page, with no
soft-dirty or uffd-wp tracking asking for the fault -- is upgraded at once (cow.c's
"mprotect() optimization" cases); a page a fork left shared stays read-only, so the next
write still copies.
"""

from __future__ import annotations

import errno
from dataclasses import replace

from .folio import folio_maybe_dma_pinned, folio_test_anon
from .huge_memory import __split_huge_pmd, pmd_folio
from .hugetlb import hugetlb_change_protection
from .mm import MmStruct
from .mmap import vma_merge_around, vma_modify
from .pgtable import (
    Pmd,
    pmd_addr_end,
    pmd_clear_soft_dirty,
    pmd_mkwrite,
    pmd_wrprotect,
    pmdp_get,
    pte_index,
    pte_offset_map,
    set_pmd_at,
)
from .pte import (
    PAGE_SIZE,
    PMD_SHIFT,
    PMD_SIZE,
    Pte,
    SwpKind,
    is_migration_entry,
    pte_clear_protnone,
    pte_clear_soft_dirty,
    pte_mkwrite,
    pte_wrprotect,
)
from .vma import (
    VM_MAYSHARE,
    VM_MAYWRITE,
    VM_SHARED,
    VM_SOFTDIRTY,
    VM_UFFD_WP,
    VM_WRITE,
    Vma,
    is_cow_mapping,
    vma_soft_dirty_enabled,
)

__all__ = ["can_change_pte_writable", "change_protection", "clear_refs_soft_dirty",
           "do_mprotect", "mprotect_fixup"]


def vma_wants_manual_pte_write_upgrade(vma: Vma) -> bool:
    """Mirrors: include/linux/mm.h vma_wants_manual_pte_write_upgrade(): a private
    writable mapping (and a shared one that needs write notification) has no write bit
    in vm_page_prot, so writability is decided PTE by PTE."""
    if vma.vm_flags & VM_SHARED:
        return vma.backing == "file"    # pkmm: a shared file mapping wants writenotify
    return bool(vma.vm_flags & VM_WRITE)


def _pte_needs_write_fault(vma: Vma, pte: Pte) -> bool:
    """pte_needs_soft_dirty_wp() / userfaultfd_pte_wp(): tracking asks for the fault."""
    return (vma_soft_dirty_enabled(vma) and not pte.soft_dirty) or (
        bool(vma.vm_flags & VM_UFFD_WP) and pte.uffd_wp)


def can_change_pte_writable(vma: Vma, addr: int, pte: Pte) -> bool:
    """May mprotect() map this PTE writable now, as its write fault would?

    Mirrors: mm/mprotect.c can_change_pte_writable(), v6.8 .. v6.17.
    """
    if pte.protnone or _pte_needs_write_fault(vma, pte):
        return False
    if not vma.vm_flags & VM_SHARED:
        # kernel: "Writable MAP_PRIVATE mapping: We can only special-case on exclusive
        # anonymous pages, because we know that our write-fault handler similarly would
        # map them writable without any additional checks while holding the PT lock."
        found = None if pte.special else vma.vm_mm.machine.pfn_folio(pte.pfn)
        if found is None:
            return False
        folio, i = found
        return folio_test_anon(folio) and folio.pages[i].anon_exclusive
    # kernel: "Writable MAP_SHARED mapping: 'clean' might indicate that the FS still
    # needs a real write-fault for writenotify"
    return pte.dirty


def _change_pte(vma: Vma, addr: int, pte: Pte, try_writable: bool) -> Pte:
    """change_pte_range() for one entry."""
    if not pte.present:
        if is_migration_entry(pte) and pte.swp is not None and \
                pte.swp.kind == "migration_write" and not vma.vm_flags & VM_WRITE:
            # kernel: "A protection check is difficult so just be safe and disable write"
            found = vma.vm_mm.machine.pfn_folio(pte.swp.offset)
            excl = found is not None and folio_test_anon(found[0])
            kind: SwpKind = "migration_read_exclusive" if excl else "migration_read"
            return pte._replace(swp=replace(pte.swp, kind=kind))
        return pte
    # pte_modify(oldpte, vm_get_page_prot(newflags)): the write bit comes from the new
    # protection, which has it only for a shared mapping without write notification
    base_write = bool(vma.vm_flags & VM_WRITE) and bool(vma.vm_flags & VM_SHARED) and \
        not vma_wants_manual_pte_write_upgrade(vma)
    new = pte_mkwrite(pte) if base_write else pte_wrprotect(pte)
    new = pte_clear_protnone(new)
    if try_writable and not new.write and can_change_pte_writable(vma, addr, new):
        new = pte_mkwrite(new)
    return new


def change_protection(vma: Vma, start: int, end: int, try_writable: bool) -> int:
    """Rewrite the PTEs and PMD leaves of [start, end) for ``vma``'s new protection;
    returns how many entries became writable.

    Mirrors: mm/mprotect.c change_protection() -> change_pmd_range() (a PMD leaf only
    partly in the range is split first) -> change_pte_range() / change_huge_pmd().
    """
    mm = vma.vm_mm
    if vma.hugetlb_kb:
        hugetlb_change_protection(vma, start, end)
        return 0
    upgraded = 0
    addr = start
    while addr < end:
        nxt = pmd_addr_end(addr, end)
        pmd = pmdp_get(mm, addr)
        if pmd is not None and nxt - addr != PMD_SIZE:
            __split_huge_pmd(mm, vma, addr & ~(PMD_SIZE - 1))
        elif pmd is not None:
            upgraded += _change_huge_pmd(vma, addr, pmd, try_writable)
            addr = nxt
            continue
        table = pte_offset_map(mm, addr)
        if table is not None:
            for i in range(pte_index(addr), pte_index(addr) + (nxt - addr) // PAGE_SIZE):
                old = table.ptes[i]
                if old is None:
                    continue
                a = (addr & ~(PMD_SIZE - 1)) + i * PAGE_SIZE
                new = _change_pte(vma, a, old, try_writable)
                upgraded += new.write and not old.write
                table.ptes[i] = new
        addr = nxt
    return upgraded


def _change_huge_pmd(vma: Vma, haddr: int, pmd: Pmd, try_writable: bool) -> int:
    """Mirrors: mm/huge_memory.c change_huge_pmd() with can_change_pmd_writable()."""
    new = pmd_wrprotect(pmd)
    if try_writable and not pmd.huge_zero and not vma.vm_flags & VM_SHARED:
        folio = pmd_folio(vma.vm_mm, pmd)
        if folio_test_anon(folio) and folio.pages[0].anon_exclusive and not (
                vma_soft_dirty_enabled(vma) and not pmd.soft_dirty):
            new = pmd_mkwrite(new)
    set_pmd_at(vma.vm_mm, haddr, new)
    return int(new.write and not pmd.write)


def mprotect_fixup(vma: Vma, start: int, end: int, write: bool) -> Vma:
    """Give [start, end) of ``vma`` the new protection: split, set the flags, rewrite the
    page tables, merge again.  Mirrors: mm/mprotect.c mprotect_fixup()."""
    flags = vma.vm_flags | VM_WRITE if write else vma.vm_flags & ~VM_WRITE
    if flags == vma.vm_flags:
        return vma
    vma = vma_modify(vma, start, end)
    vma.vm_flags = flags
    change_protection(vma, start, end, vma_wants_manual_pte_write_upgrade(vma))
    return vma_merge_around(vma)


def do_mprotect(mm: MmStruct, start: int, end: int, write: bool) -> int:
    """``mprotect(start, end - start, PROT_READ[|PROT_WRITE])``: 0, or -EACCES when a
    VMA may not become writable (a read-only file opened O_RDONLY, a shared mapping
    without VM_MAYWRITE).  The caller checked that the range is mapped.

    Mirrors: mm/mprotect.c do_mprotect_pkey(), v6.8 .. v6.17.
    """
    vmas = [v for v in mm.vmas if v.vm_start < end and v.vm_end > start]
    if write and any(not v.vm_flags & VM_MAYWRITE or (
            v.vm_flags & VM_MAYSHARE and not v.vm_flags & VM_MAYWRITE) for v in vmas):
        return -errno.EACCES
    for vma in vmas:
        mprotect_fixup(vma, max(start, vma.vm_start), min(end, vma.vm_end), write)
    return 0


def clear_refs_soft_dirty(mm: MmStruct) -> None:
    """``echo 4 > /proc/PID/clear_refs``: turn soft-dirty tracking on everywhere and start
    clean: clear VM_SOFTDIRTY, and write-protect and clean every present entry -- except
    a maybe-pinned page in a COW mapping, which a write-protect would CoW away from its
    pin (pte_is_pinned()).

    Mirrors: fs/proc/task_mmu.c clear_refs_write(CLEAR_REFS_SOFT_DIRTY) ->
    clear_soft_dirty() / clear_soft_dirty_pmd(), v6.8 .. v6.17 (x86, MEM_SOFT_DIRTY).
    """
    for vma in mm.vmas:
        vma.vm_flags &= ~VM_SOFTDIRTY
        if vma.hugetlb_kb:
            continue            # kernel: clear_refs_walk_ops has no hugetlb_entry
        for idx in range(vma.vm_start >> PMD_SHIFT, ((vma.vm_end - 1) >> PMD_SHIFT) + 1):
            base = idx << PMD_SHIFT
            pmd = pmdp_get(mm, base)
            if pmd is not None:
                set_pmd_at(mm, base, pmd_clear_soft_dirty(pmd_wrprotect(pmd)))
                continue
            table = pte_offset_map(mm, base)
            if table is None:
                continue
            lo = max(vma.vm_start, base)
            hi = min(vma.vm_end, base + PMD_SIZE)
            for i in range(pte_index(lo), pte_index(lo) + (hi - lo) // PAGE_SIZE):
                pte = table.ptes[i]
                if pte is None or (pte.present and _pte_is_pinned(vma, pte)):
                    continue
                table.ptes[i] = pte_clear_soft_dirty(pte_wrprotect(pte) if pte.present
                                                     else pte)


def _pte_is_pinned(vma: Vma, pte: Pte) -> bool:
    """Mirrors: fs/proc/task_mmu.c pte_is_pinned()."""
    if not is_cow_mapping(vma.vm_flags) or not vma.vm_mm.has_pinned or pte.special:
        return False
    found = vma.vm_mm.machine.pfn_folio(pte.pfn)
    return found is not None and folio_maybe_dma_pinned(found[0])
