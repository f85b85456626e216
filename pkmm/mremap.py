"""mremap() to a fixed address: move a range's VMA and page-table entries elsewhere.

Mirrors: mm/mremap.c mremap_to() -> move_vma() -> copy_vma() (mm/vma.c) ->
move_page_tables() -> move_huge_pmd() / move_ptes(), v6.8 .. v6.17, for
MREMAP_MAYMOVE | MREMAP_FIXED with the old size.
Simplified: no resizing, no MREMAP_DONTUNMAP; a PTE table is moved entry by entry (the
kernel may move a whole table with move_normal_pmd() -- same result).
Taught in: notebooks/05-shared-vs-private.ipynb

The pages do not move: the same folio, its mapcount, refcount and AnonExclusive bits stay
as they were; only where this mm maps them changes.  Moving half of a large folio leaves
it mapped from two places -- what cow.c's "partially mremap()'ed THP" cases fork.
"""

from __future__ import annotations

import errno
from dataclasses import replace

from .huge_memory import __split_huge_pmd
from .mm import MmStruct
from .mmap import do_munmap, vma_merge_around, vma_modify
from .pgtable import (
    Pmd,
    pgtable_trans_huge_move,
    pmd_mksoft_dirty,
    pmdp_get,
    pmdp_huge_get_and_clear,
    pte_index,
    pte_offset_map,
    ptep_get_and_clear,
    set_pmd_at,
    set_pte_at,
)
from .pte import PAGE_SIZE, PMD_SIZE, Pte, pte_clear_uffd_wp, pte_mksoft_dirty
from .vma import Vma, userfaultfd_wp

__all__ = ["do_mremap", "move_page_tables", "move_vma"]


def move_soft_dirty_pte(pte: Pte) -> Pte:
    """Mirrors: mm/mremap.c move_soft_dirty_pte() (x86, CONFIG_MEM_SOFT_DIRTY): a moved
    entry is soft-dirty -- the new address has not been reported clean."""
    return pte_mksoft_dirty(pte)


def move_soft_dirty_pmd(pmd: Pmd) -> Pmd:
    """Mirrors: include/linux/huge_mm.h move_soft_dirty_pmd(): as for a PTE."""
    return pmd_mksoft_dirty(pmd)


def move_ptes(old: Vma, old_addr: int, new: Vma, new_addr: int, nr: int) -> None:
    """Move ``nr`` entries (inside one PTE table on each side).

    Mirrors: mm/mremap.c move_ptes(): get_and_clear at the old address, set at the new;
    uffd-wp is dropped when the new VMA is not registered.
    """
    mm = old.vm_mm
    table = pte_offset_map(mm, old_addr)
    if table is None:
        return
    for k in range(nr):
        pte = ptep_get_and_clear(table, pte_index(old_addr) + k)
        if pte is None:
            continue
        pte = move_soft_dirty_pte(pte)
        if not userfaultfd_wp(new):
            pte = pte_clear_uffd_wp(pte)
        set_pte_at(mm, new_addr + k * PAGE_SIZE, pte)


def move_page_tables(old: Vma, old_addr: int, new: Vma, new_addr: int, length: int) -> None:
    """Move every entry of [old_addr, old_addr + length) to ``new_addr``.

    Mirrors: mm/mremap.c move_page_tables(): a PMD leaf moves whole when the extent
    covers it at both ends (move_huge_pmd()), else it is split and its PTEs move.
    """
    mm = old.vm_mm
    done = 0
    while done < length:
        src, dst = old_addr + done, new_addr + done
        extent = min(length - done, PMD_SIZE - src % PMD_SIZE, PMD_SIZE - dst % PMD_SIZE)
        pmd = pmdp_get(mm, src)
        if pmd is not None:
            if extent == PMD_SIZE:       # move_huge_pmd()
                set_pmd_at(mm, dst, move_soft_dirty_pmd(pmdp_huge_get_and_clear(mm, src)))
                pgtable_trans_huge_move(mm, src, dst)
                done += extent
                continue
            __split_huge_pmd(mm, old, src & ~(PMD_SIZE - 1))
        move_ptes(old, src, new, dst, extent // PAGE_SIZE)
        done += extent


def move_vma(vma: Vma, old_addr: int, length: int, new_addr: int) -> Vma:
    """Give [old_addr, old_addr + length) of ``vma`` a new VMA at ``new_addr``, move the
    entries, unmap the old range.  Mirrors: mm/mremap.c move_vma() with copy_vma()."""
    mm = vma.vm_mm
    vma = vma_modify(vma, old_addr, old_addr + length)
    new = replace(vma, vm_start=new_addr, vm_end=new_addr + length)
    mm.insert_vma(new)
    move_page_tables(vma, old_addr, new, new_addr, length)
    do_munmap(mm, old_addr, old_addr + length)
    return vma_merge_around(new)


def do_mremap(mm: MmStruct, old_addr: int, length: int, new_addr: int) -> int:
    """``mremap(old_addr, length, length, MREMAP_MAYMOVE | MREMAP_FIXED, new_addr)``:
    0, or -EINVAL when the ranges overlap or the old one is not inside one VMA, or -EFAULT
    when it is not mapped.  Mirrors: mm/mremap.c mremap_to(), v6.8 .. v6.17."""
    vma = mm.find_vma(old_addr)
    if vma is None:
        return -errno.EFAULT
    if old_addr + length > vma.vm_end or (new_addr < old_addr + length and
                                          old_addr < new_addr + length):
        return -errno.EINVAL
    if vma.hugetlb_kb and (old_addr | new_addr | length) % (vma.hugetlb_kb * 1024):
        return -errno.EINVAL
    # kernel: "MREMAP_FIXED ... do_munmap(mm, new_addr, new_len, ...)" first
    do_munmap(mm, new_addr, new_addr + length)
    move_vma(vma, old_addr, length, new_addr)
    return 0
