"""Page tables of one mm: PMD slots holding a PTE table or a huge (PMD) mapping.

Mirrors: include/linux/pgtable.h (ptep_get, set_ptes, ptep_set_wrprotect,
wrprotect_ptes, ptep_get_and_clear, pmdp_get, set_pmd_at, pmdp_set_wrprotect,
pmdp_huge_get_and_clear, pgtable_trans_huge_deposit/withdraw), mm/memory.c
(__pte_alloc, pmd_populate) and the pmd_* value helpers of include/linux/huge_mm.h.
Simplified: the upper levels (pgd/p4d/pud) are a dict keyed by PMD index; no locks; a
deposited page table is a flag per PMD slot.
Taught in: notebooks/01-ptes-folios-vmas.ipynb

Only the functions below the "table slot access" line write a page table.  The batch
scans read a table's slots directly (``table.ptes[i]``), as the kernel reads through a
``pte_t *``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from .errors import KernelBug
from .pte import (
    PAGE_SHIFT,
    PMD_SHIFT,
    PMD_SIZE,
    PTE_BITS,
    PTRS_PER_PTE,
    Pte,
    pte_advance_pfn,
    pte_wrprotect,
)

if TYPE_CHECKING:  # pragma: no cover
    from .mm import MmStruct

__all__ = ["huge_ptep_get", "huge_ptep_get_and_clear", "pmd_clear_soft_dirty",
           "pmd_mksoft_dirty", "pmdp_collapse_flush", "set_huge_pte_at",
           "Pmd", "PteTable", "free_pgtables", "free_pte_table", "pgtable_trans_huge_deposit",
           "pgtable_trans_huge_move",
           "pmd_none",
           "pgtable_trans_huge_withdraw", "pmd_addr_end", "pmd_clear_uffd_wp", "pmd_index",
           "pmd_hw_mkdirty",
           "pmd_mkdirty", "pmd_mkold", "pmd_mkwrite", "pmd_mkyoung", "pmd_populate",
           "pmd_wrprotect", "pmdp_get", "pmdp_huge_get_and_clear", "pmdp_set_wrprotect",
           "pte_alloc", "pte_index", "pte_offset_map", "ptep_get", "ptep_get_and_clear",
           "ptep_set_wrprotect", "set_pmd_at", "set_pte_at", "set_ptes", "wrprotect_ptes"]


class PteTable:
    """One page-table page: 512 slots, ``None`` for pte_none."""

    __slots__ = ("ptes",)

    def __init__(self) -> None:
        self.ptes: list[Pte | None] = [None] * PTRS_PER_PTE


class Pmd(NamedTuple):
    """A PMD leaf (``pmd_trans_huge``) mapping an order-9 folio or the huge zero page."""

    pfn: int
    write: bool = False
    dirty: bool = False
    young: bool = False
    soft_dirty: bool = False
    uffd_wp: bool = False
    huge_zero: bool = False

    def __repr__(self) -> str:
        bits = [b.letter for b in PTE_BITS if b.pmd and getattr(self, b.name)]
        if self.huge_zero:
            bits.append("ZERO")
        return f"Pmd(pfn={self.pfn:#x}{' ' + ' '.join(bits) if bits else ''})"


def pmd_index(addr: int) -> int:
    """Which PMD slot covers ``addr``."""
    return addr >> PMD_SHIFT


def pte_index(addr: int) -> int:
    """Which slot of its PTE table ``addr`` uses.

    >>> pte_index(0x201000)
    1
    """
    return (addr >> PAGE_SHIFT) & (PTRS_PER_PTE - 1)


def pmd_addr_end(addr: int, end: int) -> int:
    """End of the PMD slice containing ``addr``, capped at ``end``.

    >>> hex(pmd_addr_end(0x1ff000, 0x400000))
    '0x200000'
    """
    boundary = (addr + PMD_SIZE) & ~(PMD_SIZE - 1)
    return min(boundary, end)


def pmd_wrprotect(pmd: Pmd) -> Pmd:
    """Clear the write bit of a PMD value."""
    return pmd._replace(write=False)


def pmd_mkold(pmd: Pmd) -> Pmd:
    """Clear the accessed bit of a PMD value."""
    return pmd._replace(young=False)


def pmd_clear_uffd_wp(pmd: Pmd) -> Pmd:
    """Clear the uffd-wp bit of a PMD value."""
    return pmd._replace(uffd_wp=False)


def pmd_mkyoung(pmd: Pmd) -> Pmd:
    """Set the accessed bit of a PMD value."""
    return pmd._replace(young=True)


def pmd_mkdirty(pmd: Pmd) -> Pmd:
    """Set the dirty bit of a PMD value -- and on x86 its soft-dirty bit (pmd_mkdirty())."""
    return pmd._replace(dirty=True, soft_dirty=True)


def pmd_hw_mkdirty(pmd: Pmd) -> Pmd:
    """The CPU's store through a writable PMD: the dirty bit only."""
    return pmd._replace(dirty=True)


def pmd_mksoft_dirty(pmd: Pmd) -> Pmd:
    """Set the soft-dirty bit of a PMD value."""
    return pmd._replace(soft_dirty=True)


def pmd_clear_soft_dirty(pmd: Pmd) -> Pmd:
    """Clear the soft-dirty bit of a PMD value."""
    return pmd._replace(soft_dirty=False)


def pmd_mkwrite(pmd: Pmd) -> Pmd:
    """Set the write bit of a PMD value.

    >>> pmd_mkwrite(Pmd(pfn=0x200))
    Pmd(pfn=0x200 W)
    """
    return pmd._replace(write=True)


# --- table slot access: only these functions change a page table ---------------------

def pte_offset_map(mm: MmStruct, addr: int) -> PteTable | None:
    """The PTE table covering ``addr``, or None (no table, or a huge PMD there)."""
    t = mm.pmds.get(pmd_index(addr))
    return t if isinstance(t, PteTable) else None


def pte_alloc(mm: MmStruct, addr: int) -> PteTable:
    """``pte_alloc``: the PTE table covering ``addr``, allocating it (nr_ptes + 1)."""
    i = pmd_index(addr)
    t = mm.pmds.get(i)
    if isinstance(t, PteTable):
        return t
    if t is not None:
        raise KernelBug(f"pte_alloc: {addr:#x} is covered by a huge PMD")
    t = PteTable()
    mm.pmds[i] = t
    mm.nr_ptes += 1                 # mm_inc_nr_ptes()
    return t


def pmd_populate(mm: MmStruct, addr: int, table: PteTable) -> None:
    """Install ``table`` as the PTE table of the PMD slot covering ``addr`` (replacing a
    huge PMD that was just cleared, as a split does; no new page-table page)."""
    mm.pmds[pmd_index(addr)] = table


def pmd_none(mm: MmStruct, addr: int) -> bool:
    """``pmd_none``: neither a PTE table nor a PMD leaf covers ``addr``."""
    return pmd_index(addr) not in mm.pmds


def pmdp_get(mm: MmStruct, addr: int) -> Pmd | None:
    """The PMD leaf covering ``addr`` (None: a PTE table or nothing there)."""
    t = mm.pmds.get(pmd_index(addr))
    return t if isinstance(t, Pmd) else None


def set_pmd_at(mm: MmStruct, addr: int, pmd: Pmd) -> None:
    """Write a PMD leaf into the (empty or huge) slot covering ``addr``."""
    i = pmd_index(addr)
    if isinstance(mm.pmds.get(i), PteTable):
        raise KernelBug(f"set_pmd_at: {addr:#x} already has a PTE table")
    mm.pmds[i] = pmd


def pmdp_set_wrprotect(mm: MmStruct, addr: int) -> None:
    """Write-protect the PMD leaf covering ``addr`` in place."""
    pmd = pmdp_get(mm, addr)
    if pmd is None:
        raise KernelBug(f"pmdp_set_wrprotect: no PMD leaf at {addr:#x}")
    mm.pmds[pmd_index(addr)] = pmd_wrprotect(pmd)


def pmdp_huge_get_and_clear(mm: MmStruct, addr: int) -> Pmd:
    """Remove the PMD leaf covering ``addr`` and return it."""
    pmd = pmdp_get(mm, addr)
    if pmd is None:
        raise KernelBug(f"pmdp_huge_get_and_clear: no PMD leaf at {addr:#x}")
    del mm.pmds[pmd_index(addr)]
    return pmd


def pgtable_trans_huge_deposit(mm: MmStruct, addr: int) -> None:
    """Deposit a page table with a new PMD mapping (so a later split cannot fail)."""
    mm.deposited[pmd_index(addr)] = True
    mm.nr_ptes += 1                 # mm_inc_nr_ptes(): the deposited table is a page table


def pgtable_trans_huge_withdraw(mm: MmStruct, addr: int) -> bool:
    """Take back the table deposited for the PMD at ``addr`` (False: none was)."""
    return mm.deposited.pop(pmd_index(addr), False)


def pgtable_trans_huge_move(mm: MmStruct, old_addr: int, new_addr: int) -> None:
    """The table deposited with a PMD moves with it (mremap's move_huge_pmd())."""
    if mm.deposited.pop(pmd_index(old_addr), False):
        mm.deposited[pmd_index(new_addr)] = True


def huge_ptep_get(mm: MmStruct, haddr: int) -> Pte | None:
    """The huge PTE (hugetlb) of the huge page at ``haddr``; None when none is there."""
    return mm.hugetlb.get(haddr)


def set_huge_pte_at(mm: MmStruct, haddr: int, pte: Pte) -> None:
    """Write the huge PTE of the huge page at ``haddr`` (``set_huge_pte_at``)."""
    mm.hugetlb[haddr] = pte


def huge_ptep_get_and_clear(mm: MmStruct, haddr: int) -> Pte | None:
    """Clear the huge PTE at ``haddr`` and return it."""
    return mm.hugetlb.pop(haddr, None)


def pmdp_collapse_flush(mm: MmStruct, addr: int) -> PteTable:
    """Take the PTE table covering ``addr`` out of its PMD slot (khugepaged, before it
    installs a huge PMD there and deposits the table): nr_ptes - 1 until deposited."""
    t = mm.pmds.get(pmd_index(addr))
    if not isinstance(t, PteTable):
        raise KernelBug(f"pmdp_collapse_flush: no PTE table at {addr:#x}")
    del mm.pmds[pmd_index(addr)]
    mm.nr_ptes -= 1
    return t


def free_pte_table(mm: MmStruct, addr: int) -> None:
    """Free the (empty) PTE table covering ``addr``: nr_ptes - 1 (``free_pte_range``)."""
    t = mm.pmds.get(pmd_index(addr))
    if not isinstance(t, PteTable) or any(p is not None for p in t.ptes):
        raise KernelBug(f"free_pte_table: no empty PTE table at {addr:#x}")
    del mm.pmds[pmd_index(addr)]
    mm.nr_ptes -= 1                 # mm_dec_nr_ptes()


def free_pgtables(mm: MmStruct) -> None:
    """Drop every (now empty) page table and deposited table: nr_ptes back to 0."""
    mm.pmds.clear()
    mm.deposited.clear()
    mm.nr_ptes = 0


def ptep_get(mm: MmStruct, addr: int) -> Pte | None:
    """Read the PTE at ``addr`` (None for pte_none or no table)."""
    t = pte_offset_map(mm, addr)
    return None if t is None else t.ptes[pte_index(addr)]


def set_pte_at(mm: MmStruct, addr: int, pte: Pte | None) -> None:
    """Write one slot (None clears it: ``pte_clear``)."""
    pte_alloc(mm, addr).ptes[pte_index(addr)] = pte


def ptep_get_and_clear(table: PteTable, i: int) -> Pte | None:
    """Clear slot ``i`` of ``table`` and return what it held (the zap loop's read)."""
    p = table.ptes[i]
    table.ptes[i] = None
    return p


def set_ptes(mm: MmStruct, addr: int, pte: Pte, nr: int) -> None:
    """``set_ptes``: ``nr`` consecutive slots from one value, the pfn advancing by one each.

    Callers guarantee the range stays inside one PTE table (one PMD slice).
    """
    t = pte_alloc(mm, addr)
    i = pte_index(addr)
    for k in range(nr):
        t.ptes[i + k] = pte_advance_pfn(pte, k) if k else pte


def ptep_set_wrprotect(mm: MmStruct, addr: int) -> None:
    """Write-protect the PTE at ``addr`` in place."""
    wrprotect_ptes(mm, addr, 1)


def wrprotect_ptes(mm: MmStruct, addr: int, nr: int) -> None:
    """``wrprotect_ptes``: clear the write bit of ``nr`` consecutive present PTEs."""
    t = pte_offset_map(mm, addr)
    if t is None:
        raise KernelBug(f"wrprotect_ptes: no PTE table at {addr:#x}")
    i = pte_index(addr)
    for k in range(i, i + nr):
        p = t.ptes[k]
        if p is not None and p.write:
            t.ptes[k] = pte_wrprotect(p)
