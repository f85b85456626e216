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

import errno
from typing import TYPE_CHECKING

from .errors import need
from .folio import Page, folio_ref_add
from .madvise import ADVICES, do_madvise
from .mmap import do_munmap
from .mprotect import clear_refs_soft_dirty, do_mprotect
from .mremap import do_mremap
from .pgtable import huge_ptep_get, pmdp_get, ptep_get
from .pins import UserPin, pin_user_pages
from .pte import PAGE_SIZE, PMD_SIZE, is_swap_entry
from .vma import File, check_range

if TYPE_CHECKING:  # pragma: no cover
    from .mm import MmStruct

__all__ = ["MemorySyscalls"]

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
        a = start
        while a < end:
            self.write(a, value)
            # pkmm: the rest of a writable huge mapping takes these stores without a fault
            rest = self._huge_leaf_pages(a, end, write=True)
            for page in rest:
                if page is not None:
                    page.data = value
            a += (1 + len(rest)) * PAGE_SIZE

    def read_range(self, addr: int, npages: int) -> list[int]:
        """Load every page of the range (what a memcpy from it reads)."""
        start, end = self._mapped_range("read_range", addr, npages)
        out: list[int] = []
        a = start
        while a < end:
            out.append(self.read(a))
            rest = self._huge_leaf_pages(a, end, write=False)
            out += [0 if page is None else page.data for page in rest]
            a += (1 + len(rest)) * PAGE_SIZE
        return out

    def _huge_leaf_pages(self, addr: int, end: int, write: bool) -> list[Page | None]:
        """The pages after ``addr`` (up to ``end``) that the same PMD or hugetlb entry maps,
        if an access to them cannot fault (present, and writable for a store); [] else.
        The huge zero page's pages are None (they read as 0)."""
        mm = self.mm
        vma = mm.find_vma(addr)
        if vma is None:
            return []
        if vma.hugetlb_kb:
            size = vma.hugetlb_kb << 10
            hpte = huge_ptep_get(mm, addr & ~(size - 1))
            if hpte is None or (write and not hpte.write):
                return []
            pfn, zero = hpte.pfn, False
        else:
            size = PMD_SIZE
            pmd = pmdp_get(mm, addr)
            if pmd is None or (write and not pmd.write):
                return []
            pfn, zero = pmd.pfn, pmd.huge_zero
        first = addr & ~(size - 1)
        n = (min(end, first + size) - addr) // PAGE_SIZE - 1
        found = mm.machine.pfn_folio(pfn)
        if n <= 0 or found is None:
            return []
        if zero:
            return [None] * n
        base = (addr - first) // PAGE_SIZE + 1
        return list(found[0].pages[base:base + n])

    # -- system calls ---------------------------------------------------------------
    def _hugetlb_misaligned(self, start: int, end: int) -> bool:
        """A hugetlb VMA in the range whose huge pages the range would cut (-EINVAL)."""
        return any(v.hugetlb_kb and (start % (v.hugetlb_kb << 10) or end % (v.hugetlb_kb << 10))
                   for v in self.mm.vmas if v.vm_start < end and v.vm_end > start)

    def munmap(self, addr: int, npages: int) -> int:
        """``munmap(addr, npages * 4096)``: drop the range's mappings and VMAs (a hole in
        the range is fine, as for the kernel); 0, or -EINVAL when it cuts a huge page."""
        self._alive("munmap")
        start, end = check_range("munmap", addr, npages)
        if self._hugetlb_misaligned(start, end):
            return -errno.EINVAL
        do_munmap(self.mm, start, end)
        return 0

    def madvise(self, addr: int, npages: int, advice: str) -> int:
        """``madvise(addr, npages * 4096, advice)``; returns 0 or a negative errno (as the
        system call would).  ``advice`` is one of :data:`pkmm.MADVISE`."""
        need(isinstance(advice, str) and advice in ADVICES,
             f"madvise: advice={advice!r}: use one of {', '.join(ADVICES)}")
        start, end = self._mapped_range("madvise", addr, npages)
        if self._hugetlb_misaligned(start, end):
            return -errno.EINVAL
        return do_madvise(self.mm, start, end, advice)

    def mprotect(self, addr: int, npages: int, *, write: bool) -> int:
        """``mprotect(addr, npages * 4096, PROT_READ | (PROT_WRITE if write))``; returns
        0 or -EACCES.  Making a private range writable upgrades only the PTEs a write fault
        would reuse (AnonExclusive pages): see :mod:`pkmm.mprotect`."""
        need(isinstance(write, bool), f"mprotect: write={write!r}: True or False")
        start, end = self._mapped_range("mprotect", addr, npages)
        if self._hugetlb_misaligned(start, end):
            return -errno.EINVAL
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

    # -- GUP -------------------------------------------------------------------------
    def pin_user_pages(self, addr: int, npages: int, *, write: bool = False,
                       fast: bool = False) -> UserPin:
        """A long-term FOLL_PIN on every page of the range, R/O or (``write``) R/W,
        through GUP-fast first with ``fast``.  GUP faults as the kernel's does: a R/W pin
        write-faults a read-only entry first (CoW), a R/O pin unshares a page a later
        write could CoW away (gup_must_unshare()).  Sets MMF_HAS_PINNED."""
        need(isinstance(write, bool), f"pin_user_pages: write={write!r}: True or False")
        need(isinstance(fast, bool), f"pin_user_pages: fast={fast!r}: True or False")
        start, _ = self._mapped_range("pin_user_pages", addr, npages)
        return pin_user_pages(self, start, npages, write=write, fast=fast)  # type: ignore[arg-type]

    def clear_soft_dirty(self) -> None:
        """``echo 4 > /proc/PID/clear_refs``: soft-dirty tracking on for every VMA, every
        PTE clean of soft-dirty and write-protected (so the next write is noticed).

        Mirrors: fs/proc/task_mmu.c clear_refs_write(CLEAR_REFS_SOFT_DIRTY) ->
        clear_soft_dirty() / clear_soft_dirty_pmd(), x86 with CONFIG_MEM_SOFT_DIRTY.
        """
        self._alive("clear_soft_dirty")
        clear_refs_soft_dirty(self.mm)

    def is_swapped(self, addr: int) -> bool:
        """pagemap bit 62 (cow.c's pagemap_is_swapped()): a swap entry maps ``addr``."""
        check_range("is_swapped", addr, 1)
        pte = ptep_get(self.mm, addr)
        return pte is not None and is_swap_entry(pte)

    # -- files with pages already in their page cache ----------------------------------
    def memfd_create(self, npages: int, *, hugetlb_kb: int = 0) -> File:
        """``memfd_create()`` + ``fallocate(fd, 0, 0, npages * 4096)``: a shmem file (or,
        with ``hugetlb_kb``, a MFD_HUGETLB hugetlbfs file) whose page cache already holds
        ``npages`` zeroed pages, for :meth:`mmap` with ``file=``."""
        return self._new_file("shmem", npages, hugetlb_kb)

    def tmpfile(self, npages: int) -> File:
        """``tmpfile()`` + ``fallocate``: a regular file with ``npages`` zeroed pages in
        its page cache."""
        return self._new_file("file", npages, 0)

    def _new_file(self, kind: str, npages: int, hugetlb_kb: int) -> File:
        self._alive("memfd_create" if kind == "shmem" else "tmpfile")
        check_range("fallocate", 0, npages)
        need(hugetlb_kb in (0, 2048, 1 << 20) and not isinstance(hugetlb_kb, bool),
             f"hugetlb_kb={hugetlb_kb!r}: 0, 2048 or 1048576")
        step = max(hugetlb_kb // 4, 1)
        need(npages % step == 0, f"npages={npages}: a hugetlbfs file holds whole huge pages "
             f"({step} pages each)")
        f = File(f"{self.name}-memfd" if kind == "shmem" else f"{self.name}-tmpfile",
                 "file" if hugetlb_kb else kind, hugetlb_kb=hugetlb_kb)  # type: ignore[arg-type]
        machine = self.mm.machine
        for off in range(0, npages, step):
            folio = (machine.alloc_hugetlb_folio((hugetlb_kb // 4).bit_length() - 1, "file")
                     if hugetlb_kb else machine.alloc_folio(0, kind))  # type: ignore[arg-type]
            folio_ref_add(folio, folio.nr_pages)     # the page cache's references
            f.cache[off] = folio.pages[0]
        return f
