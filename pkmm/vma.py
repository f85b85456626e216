"""Virtual memory areas and the VMA predicates the fork path tests.

Mirrors: include/linux/mm_types.h (struct vm_area_struct), include/linux/mm.h
(VM_* flags, is_cow_mapping, vma_is_anonymous), include/linux/userfaultfd_k.h
(userfaultfd_wp), mm/internal.h (vma_soft_dirty_enabled).
Simplified: no vm_ops, mempolicy or locking; ``anon_vma`` is an identity token.
Taught in: notebooks/01-ptes-folios-vmas.ipynb
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from .errors import LayoutError, need
from .pte import PAGE_SIZE

if TYPE_CHECKING:  # pragma: no cover
    from .folio import Page
    from .mm import MmStruct

__all__ = ["MAX_PAGES", "TASK_SIZE", "AnonVma", "Backing", "File", "VM_DONTCOPY",
           "VM_HUGEPAGE", "VM_LOCKED", "VM_NOHUGEPAGE", "check_range", "VM_MAYREAD", "VM_MAYSHARE",
           "VM_MAYWRITE", "VM_MIXEDMAP", "VM_PFNMAP", "VM_READ", "VM_SHARED", "VM_SOFTDIRTY",
           "VM_UFFD_WP", "VM_WIPEONFORK", "VM_WRITE", "VmFlags", "Vma", "is_cow_mapping",
           "userfaultfd_wp", "vma_is_anonymous", "vma_soft_dirty_enabled"]

Backing = Literal["anon", "file", "shmem"]


class VmFlags(enum.IntFlag):
    """The ``vm_flags`` bits pkmm models (values are pkmm's own, names are the kernel's).

    ``Vma.vm_flags`` is a plain int, as in the kernel (``VmFlags(vma.vm_flags)`` names its
    bits): the fork path tests flags per PTE, and enum arithmetic there costs more than
    the rest of the copy.
    """

    VM_NONE = 0
    VM_READ = 1 << 0
    VM_WRITE = 1 << 1
    VM_SHARED = 1 << 3
    VM_MAYREAD = 1 << 4
    VM_MAYWRITE = 1 << 5
    VM_MAYSHARE = 1 << 7
    VM_UFFD_WP = 1 << 12
    VM_PFNMAP = 1 << 10
    VM_LOCKED = 1 << 13
    VM_HUGEPAGE = 1 << 29
    VM_NOHUGEPAGE = 1 << 30
    VM_DONTCOPY = 1 << 17
    VM_MIXEDMAP = 1 << 28
    VM_WIPEONFORK = 1 << 26
    VM_SOFTDIRTY = 1 << 27


VM_READ = int(VmFlags.VM_READ)
VM_WRITE = int(VmFlags.VM_WRITE)
VM_SHARED = int(VmFlags.VM_SHARED)
VM_MAYREAD = int(VmFlags.VM_MAYREAD)
VM_MAYWRITE = int(VmFlags.VM_MAYWRITE)
VM_MAYSHARE = int(VmFlags.VM_MAYSHARE)
VM_UFFD_WP = int(VmFlags.VM_UFFD_WP)
VM_PFNMAP = int(VmFlags.VM_PFNMAP)
VM_MIXEDMAP = int(VmFlags.VM_MIXEDMAP)
VM_LOCKED = int(VmFlags.VM_LOCKED)
VM_DONTCOPY = int(VmFlags.VM_DONTCOPY)
VM_WIPEONFORK = int(VmFlags.VM_WIPEONFORK)
VM_SOFTDIRTY = int(VmFlags.VM_SOFTDIRTY)
VM_HUGEPAGE = int(VmFlags.VM_HUGEPAGE)
VM_NOHUGEPAGE = int(VmFlags.VM_NOHUGEPAGE)


class AnonVma:
    """``struct anon_vma``: exists once a VMA may hold private anonymous pages."""

    def __init__(self, parent: AnonVma | None = None) -> None:
        self.parent = parent    # anon_vma_fork links the child's to the parent's

    def __repr__(self) -> str:
        return "AnonVma(child)" if self.parent else "AnonVma()"


@dataclass(eq=False)
class File:
    """A file (or shmem inode) and its page cache: file offset (in pages) -> page."""

    name: str
    kind: Literal["file", "shmem"]
    cache: dict[int, Page] = field(default_factory=dict)
    hugetlb_kb: int = 0         # a hugetlbfs file: its huge page size (the cache holds
                                # the head page of each huge page at its first offset)


@dataclass(eq=False)
class Vma:
    """``struct vm_area_struct``: [vm_start, vm_end) of one mm."""

    vm_mm: MmStruct
    vm_start: int
    vm_end: int
    vm_flags: int
    backing: Backing
    vm_file: File | None = None
    vm_pgoff: int = 0
    anon_vma: AnonVma | None = None
    uffd_fork: bool = False     # the userfaultfd context has UFFD_FEATURE_EVENT_FORK
    hugetlb_kb: int = 0         # a hugetlb VMA (VM_HUGETLB): its huge page size, in KiB

    @property
    def npages(self) -> int:
        """Size in pages."""
        return (self.vm_end - self.vm_start) // PAGE_SIZE

    def contains(self, addr: int) -> bool:
        """``vm_start <= addr < vm_end``."""
        return self.vm_start <= addr < self.vm_end

    def linear_page_index(self, addr: int) -> int:
        """``linear_page_index``: the file offset (in pages) that ``addr`` maps."""
        return self.vm_pgoff + (addr - self.vm_start) // PAGE_SIZE

    def describe(self) -> str:
        """A one-line summary for tables: kind, range and the flags that matter at fork."""
        kind = ("shared " if self.vm_flags & VM_SHARED else "private ") + self.backing
        extra = [n for n, f in (("uffd-wp", VM_UFFD_WP), ("pfnmap", VM_PFNMAP),
                                ("dontfork", VM_DONTCOPY), ("wipeonfork", VM_WIPEONFORK))
                 if self.vm_flags & f]
        if self.anon_vma is not None:
            extra.append("anon_vma")
        if not self.vm_flags & VM_WRITE:
            extra.append("read-only")
        return (f"{kind} [{self.vm_start:#x}, {self.vm_end:#x})"
                + (f" {' '.join(extra)}" if extra else ""))

    def __repr__(self) -> str:
        return f"Vma({self.describe()})"


def is_cow_mapping(flags: int) -> bool:
    """``is_cow_mapping``: private and may become writable.

    >>> is_cow_mapping(VM_READ | VM_WRITE | VM_MAYWRITE)
    True
    >>> is_cow_mapping(VM_SHARED | VM_MAYSHARE | VM_WRITE | VM_MAYWRITE)
    False
    """
    return (flags & (VM_SHARED | VM_MAYWRITE)) == VM_MAYWRITE


def vma_is_anonymous(vma: Vma) -> bool:
    """No ``vm_ops``: a private or shared-less anonymous VMA (shmem has vm_ops)."""
    return vma.backing == "anon" and not vma.vm_flags & VM_SHARED


def userfaultfd_wp(vma: Vma) -> bool:
    """The VMA is registered for userfaultfd write-protect."""
    return vma.vm_flags & VM_UFFD_WP != 0


def vma_soft_dirty_enabled(vma: Vma) -> bool:
    """Soft-dirty tracking is on: VM_SOFTDIRTY *clear* (set means "all dirty")."""
    return not vma.vm_flags & VM_SOFTDIRTY


#: x86-64 with 4-level paging: user addresses end at TASK_SIZE_MAX = 2**47 - 4 KiB
#: (arch/x86/include/asm/page_64_types.h).
TASK_SIZE = (1 << 47) - PAGE_SIZE
MAX_PAGES = TASK_SIZE // PAGE_SIZE


def check_range(what: str, addr: object, npages: object) -> tuple[int, int]:
    """``addr`` page-aligned, ``npages`` >= 1, the range inside the user address space;
    returns (start, end)."""
    if not isinstance(addr, int) or isinstance(addr, bool):
        raise LayoutError(f"{what}: addr={addr!r}: addresses are ints in bytes")
    if not isinstance(npages, int) or isinstance(npages, bool):
        raise LayoutError(f"{what}: npages={npages!r}: a page count is an int")
    need(addr >= 0 and addr % PAGE_SIZE == 0,
         f"{what}: addr={addr:#x} must be a non-negative multiple of {PAGE_SIZE:#x}")
    need(1 <= npages <= MAX_PAGES, f"{what}: npages={npages}: use 1..{MAX_PAGES:#x}")
    end = addr + npages * PAGE_SIZE
    need(end <= TASK_SIZE, f"{what}: [{addr:#x}, {end:#x}) runs past the 47-bit user address "
         f"space (ends at {TASK_SIZE:#x}); pick a lower address")
    return addr, end
