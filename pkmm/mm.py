"""The mm of one process: VMAs, page tables, rss counters and mm flags.

Mirrors: include/linux/mm_types.h (struct mm_struct), include/linux/mm.h
(add_mm_counter, mm_counter_file), include/linux/sched/coredump.h (MMF_HAS_PINNED).
Taught in: notebooks/01-ptes-folios-vmas.ipynb
"""

from __future__ import annotations

import bisect
from collections import Counter
from typing import TYPE_CHECKING

from .folio import Folio, folio_test_swapbacked
from .pgtable import Pmd, PteTable
from .pte import Pte

if TYPE_CHECKING:  # pragma: no cover
    from .machine import Machine
    from .vma import Vma

__all__ = ["MM_ANONPAGES", "MM_FILEPAGES", "MM_SHMEMPAGES", "MM_SWAPENTS", "MmStruct",
           "NR_MM_COUNTERS", "mm_counter", "mm_counter_file", "mm_dec_nr_ptes",
           "mm_inc_nr_ptes", "new_rss"]

MM_FILEPAGES = "MM_FILEPAGES"
MM_ANONPAGES = "MM_ANONPAGES"
MM_SWAPENTS = "MM_SWAPENTS"
MM_SHMEMPAGES = "MM_SHMEMPAGES"
NR_MM_COUNTERS = (MM_FILEPAGES, MM_ANONPAGES, MM_SWAPENTS, MM_SHMEMPAGES)


def new_rss() -> dict[str, int]:
    """A zeroed rss vector (``int rss[NR_MM_COUNTERS]``)."""
    return dict.fromkeys(NR_MM_COUNTERS, 0)


def mm_counter_file(folio: Folio) -> str:
    """``mm_counter_file``: shmem (swap-backed) pages count as SHMEM, others as FILE."""
    return MM_SHMEMPAGES if folio_test_swapbacked(folio) else MM_FILEPAGES


def mm_inc_nr_ptes(mm: MmStruct) -> None:
    """``mm_inc_nr_ptes``: one more page-table page."""
    mm.nr_ptes += 1


def mm_dec_nr_ptes(mm: MmStruct) -> None:
    """``mm_dec_nr_ptes``: one page-table page fewer."""
    mm.nr_ptes -= 1


def mm_counter(folio: Folio) -> str:
    """``mm_counter``: ANON for anon folios, else the file counter."""
    return MM_ANONPAGES if folio.kind == "anon" else mm_counter_file(folio)


class MmStruct:
    """``struct mm_struct``."""

    def __init__(self, machine: Machine, owner: str = "") -> None:
        self.machine = machine
        self.owner = owner                         # pkmm: the process's name, for messages
        self.mm_id = machine.new_mm_id()
        self.vmas: list[Vma] = []                  # sorted by vm_start, never overlapping
        self._starts: list[int] = []               # vm_start of each VMA, for bisect
        self.pmds: dict[int, PteTable | Pmd] = {}  # PMD index -> table or huge leaf
        self.deposited: dict[int, bool] = {}       # PMD index -> a PTE table is deposited
        self.hugetlb: dict[int, Pte] = {}          # huge page address -> its huge PTE
        self.rss = dict.fromkeys(NR_MM_COUNTERS, 0)
        self.has_pinned = False                    # MMF_HAS_PINNED
        self.nr_ptes = 0                           # page-table pages (mm_inc_nr_ptes)
        self.huge_zero_ref = False                 # MMF_HUGE_ZERO_PAGE
        self.on_mmlist = False                     # on the swapoff list
        # pkmm: references taken through this mm's page tables and dropped at exit: FOLL_PIN
        # pins (mm->pinned_vm counts them) and plain FOLL_GET references (vmsplice)
        self.pins: Counter[tuple[Folio, int]] = Counter()   # (folio, page) -> pins
        self.gup_refs: list[tuple[Folio, int]] = []
        machine.mms.append(self)                   # live until exit_mmap()

    def find_vma(self, addr: int) -> Vma | None:
        """``vma_lookup``: the VMA containing ``addr``."""
        i = bisect.bisect_right(self._starts, addr) - 1
        if i >= 0 and self.vmas[i].contains(addr):
            return self.vmas[i]
        return None

    def insert_vma(self, vma: Vma) -> None:
        """Link a VMA in address order (callers checked it does not overlap)."""
        i = bisect.bisect_left(self._starts, vma.vm_start)
        self.vmas.insert(i, vma)
        self._starts.insert(i, vma.vm_start)

    def remove_vma(self, vma: Vma) -> None:
        """Unlink a VMA (split, merge and munmap keep the list sorted and disjoint)."""
        i = self.vmas.index(vma)
        del self.vmas[i]
        del self._starts[i]

    def vma_neighbours(self, start: int) -> tuple[Vma | None, Vma | None]:
        """The VMA starting at or before ``start`` and the one after it (for overlap
        checks in O(log n))."""
        i = bisect.bisect_right(self._starts, start)
        return (self.vmas[i - 1] if i else None,
                self.vmas[i] if i < len(self.vmas) else None)

    def add_mm_rss_vec(self, rss: dict[str, int]) -> None:
        """``add_mm_rss_vec``: fold a local rss vector into the mm's counters."""
        for k, v in rss.items():
            if v:
                self.rss[k] += v

    def add_mm_counter(self, member: str, value: int) -> None:
        """``add_mm_counter``."""
        self.rss[member] += value
