"""Page tables of one mm: PMD slots holding a PTE table or a huge (PMD) mapping.

Mirrors: include/linux/pgtable.h (ptep_get, set_ptes, ptep_set_wrprotect,
wrprotect_ptes, pte_clear) and the pmd_* helpers of include/linux/huge_mm.h.
Simplified: the upper levels (pgd/p4d/pud) are a dict keyed by PMD index; no locks.
Taught in: notebooks/01-ptes-folios-vmas.ipynb
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .pte import PAGE_SHIFT, PMD_SHIFT, PMD_SIZE, PTRS_PER_PTE, Pte, pte_advance_pfn

if TYPE_CHECKING:  # pragma: no cover
    from .mm import MmStruct


class PteTable:
    """One page-table page: 512 slots, ``None`` for pte_none."""

    __slots__ = ("ptes",)

    def __init__(self) -> None:
        self.ptes: list[Pte | None] = [None] * PTRS_PER_PTE


@dataclass(frozen=True, slots=True)
class Pmd:
    """A PMD leaf (``pmd_trans_huge``) mapping an order-9 folio or the huge zero page."""

    pfn: int
    write: bool = False
    dirty: bool = False
    young: bool = False
    soft_dirty: bool = False
    uffd_wp: bool = False
    huge_zero: bool = False

    def __repr__(self) -> str:
        bits = [b for b, on in (("W", self.write), ("D", self.dirty), ("A", self.young),
                                ("SD", self.soft_dirty), ("UW", self.uffd_wp),
                                ("ZERO", self.huge_zero)) if on]
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
    return replace(pmd, write=False)


def pmd_mkold(pmd: Pmd) -> Pmd:
    """Clear the accessed bit of a PMD value."""
    return replace(pmd, young=False)


def pmd_clear_uffd_wp(pmd: Pmd) -> Pmd:
    """Clear the uffd-wp bit of a PMD value."""
    return replace(pmd, uffd_wp=False)


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
    assert t is None, "pte_alloc over a huge PMD"
    t = PteTable()
    mm.pmds[i] = t
    mm.nr_ptes += 1
    return t


def ptep_get(mm: MmStruct, addr: int) -> Pte | None:
    """Read the PTE at ``addr`` (None for pte_none or no table)."""
    t = pte_offset_map(mm, addr)
    return None if t is None else t.ptes[pte_index(addr)]


def set_pte_at(mm: MmStruct, addr: int, pte: Pte | None) -> None:
    """Write one slot (None clears it: ``pte_clear``)."""
    pte_alloc(mm, addr).ptes[pte_index(addr)] = pte


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
    assert t is not None
    i = pte_index(addr)
    for k in range(i, i + nr):
        p = t.ptes[k]
        if p is not None and p.write:
            t.ptes[k] = replace(p, write=False)
