"""The memory system calls a process can make after its layout is built: munmap, madvise,
mprotect, mremap -- and memset/memcmp-style access to whole ranges.

Simulator concept: a mixin of :class:`pkmm.Process`.  Each method validates its arguments
and the range (a :class:`pkmm.LayoutError` naming the argument and the fix, before any
state changes), then calls the kernel-named function of the system call: mm/vma.c
do_vmi_munmap() (:func:`pkmm.mmap.do_munmap`), mm/madvise.c do_madvise()
(:func:`pkmm.madvise.do_madvise`), mm/mprotect.c do_mprotect_pkey()
(:func:`pkmm.mprotect.do_mprotect`).
Taught in: notebooks/05-shared-vs-private.ipynb
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import LayoutError, need
from .madvise import ADVICES, do_madvise
from .mmap import do_munmap
from .mprotect import do_mprotect
from .mremap import do_mremap
from .pte import PAGE_SIZE

if TYPE_CHECKING:  # pragma: no cover
    from .mm import MmStruct

__all__ = ["MAX_PAGES", "MemorySyscalls", "TASK_SIZE"]

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


class MemorySyscalls:
    """munmap / madvise / mprotect / mremap and range access for :class:`pkmm.Process`."""

    mm: MmStruct
    name: str

    if TYPE_CHECKING:  # pragma: no cover - Process defines these
        def _alive(self, what: str) -> None: ...
        def read(self, addr: int) -> int: ...
        def write(self, addr: int, value: int) -> None: ...

    def _mapped_range(self, what: str, addr: object, npages: object) -> tuple[int, int]:
        """The range, checked to be covered by VMAs without a hole."""
        self._alive(what)
        start, end = check_range(what, addr, npages)
        a = start
        while a < end:
            vma = self.mm.find_vma(a)
            need(vma is not None, f"{what}: {a:#x} is not inside any VMA of {self.name!r}; "
                 "the whole range must be mapped")
            assert vma is not None
            a = vma.vm_end
        return start, end

    # -- whole-range access (cow.c's memset / memcpy) ----------------------------------
    def memset(self, addr: int, npages: int, value: int) -> None:
        """Store ``value`` into every page of the range, faulting as each store must."""
        need(isinstance(value, int) and not isinstance(value, bool),
             f"memset: value={value!r}: pages hold ints")
        start, end = self._mapped_range("memset", addr, npages)
        for a in range(start, end, PAGE_SIZE):
            self.write(a, value)

    def read_range(self, addr: int, npages: int) -> list[int]:
        """Load every page of the range (what a memcpy from it reads)."""
        start, end = self._mapped_range("read_range", addr, npages)
        return [self.read(a) for a in range(start, end, PAGE_SIZE)]

    # -- system calls ---------------------------------------------------------------
    def munmap(self, addr: int, npages: int) -> None:
        """``munmap(addr, npages * 4096)``: drop the range's mappings and VMAs (a hole in
        the range is fine, as for the kernel)."""
        self._alive("munmap")
        start, end = check_range("munmap", addr, npages)
        do_munmap(self.mm, start, end)

    def madvise(self, addr: int, npages: int, advice: str) -> int:
        """``madvise(addr, npages * 4096, advice)``; returns 0 or a negative errno (as the
        system call would).  ``advice`` is one of :data:`pkmm.MADVISE`."""
        need(isinstance(advice, str) and advice in ADVICES,
             f"madvise: advice={advice!r}: use one of {', '.join(ADVICES)}")
        start, end = self._mapped_range("madvise", addr, npages)
        return do_madvise(self.mm, start, end, advice)

    def mprotect(self, addr: int, npages: int, *, write: bool) -> int:
        """``mprotect(addr, npages * 4096, PROT_READ | (PROT_WRITE if write))``; returns
        0 or -EACCES.  Making a private range writable upgrades only the PTEs a write fault
        would reuse (AnonExclusive pages): see :mod:`pkmm.mprotect`."""
        need(isinstance(write, bool), f"mprotect: write={write!r}: True or False")
        start, end = self._mapped_range("mprotect", addr, npages)
        return do_mprotect(self.mm, start, end, write)

    def mremap(self, addr: int, npages: int, new_addr: int) -> int:
        """``mremap(addr, n, n, MREMAP_MAYMOVE | MREMAP_FIXED, new_addr)`` with ``n =
        npages * 4096``: the range's mappings move (the pages stay the same); whatever was
        mapped at the target is unmapped first.  Returns 0 or a negative errno."""
        self._alive("mremap")
        start, end = check_range("mremap", addr, npages)
        check_range("mremap", new_addr, npages)
        vma = self.mm.find_vma(start)
        need(vma is not None and end <= vma.vm_end, f"mremap: [{start:#x}, {end:#x}) is "
             "not inside one VMA; mremap moves (part of) a single mapping")
        return do_mremap(self.mm, start, end - start, new_addr)
