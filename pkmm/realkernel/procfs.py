"""Read what the kernel exports about one process's pages.

Kernel interfaces (Documentation/admin-guide/mm/pagemap.rst):
``/proc/self/pagemap`` (bit 63 present, 62 swapped, 61 file/shared-anon, 57 uffd-wp, 56 exclusively
mapped, 0-54 PFN — PFNs need CAP_SYS_ADMIN), ``/proc/kpageflags`` (per-PFN flags; bit 34
is KPF_OWNER_2, the kernel-hacking alias of PG_anon_exclusive, reported for the folio's
head page), ``/proc/kpagecount`` (precise per-page mapcount), ``/proc/self/smaps``
(``AnonHugePages`` = PMD-mapped anon THP) and getrusage(2) ``ru_minflt``.
Taught in: notebooks/09-real-kernel-lab.ipynb

The pagemap file must be opened by the process it describes: a descriptor inherited
across fork() still reads the parent's mm, so every process opens its own.
"""

from __future__ import annotations

import os
import resource
import struct
from collections.abc import Callable
from dataclasses import dataclass

from .libc import MADV_POPULATE_WRITE, PAGE_SIZE, madvise, peek, poke

PM_PRESENT = 1 << 63
PM_SWAP = 1 << 62
PM_FILE = 1 << 61
PM_UFFD_WP = 1 << 57
PM_MMAP_EXCLUSIVE = 1 << 56
PM_PFN_MASK = (1 << 55) - 1

KPF_ANON = 12
KPF_COMPOUND_HEAD = 15
KPF_COMPOUND_TAIL = 16
KPF_HUGE = 17
KPF_THP = 22
KPF_ZERO_PAGE = 24
KPF_ANON_EXCLUSIVE = 34   # KPF_OWNER_2 aliases PG_anon_exclusive (not an ABI)


@dataclass(frozen=True, slots=True)
class RawPage:
    """What the kernel reports for one virtual page in one process."""

    pfn: int | None          # None: no present PTE
    file: bool               # pagemap bit 61
    uffd_wp: bool            # pagemap bit 57
    exclusive: bool          # pagemap bit 56
    count: int               # /proc/kpagecount
    kflags: int              # /proc/kpageflags
    swapped: bool = False    # pagemap bit 62

    def kflag(self, bit: int) -> bool:
        return bool(self.kflags >> bit & 1)


class PageReader:
    """Open pagemap of *this* process plus kpageflags/kpagecount; read a region's pages."""

    def __init__(self) -> None:
        self._pagemap = os.open("/proc/self/pagemap", os.O_RDONLY)
        self._kflags = os.open("/proc/kpageflags", os.O_RDONLY)
        self._kcount = os.open("/proc/kpagecount", os.O_RDONLY)

    def close(self) -> None:
        for fd in (self._pagemap, self._kflags, self._kcount):
            os.close(fd)

    def read(self, addr: int, npages: int) -> list[RawPage]:
        """Read ``npages`` pages starting at virtual address ``addr``."""
        raw = os.pread(self._pagemap, 8 * npages, 8 * (addr // PAGE_SIZE))
        return [self._page(e) for e in struct.unpack(f"<{npages}Q", raw)]

    def _page(self, entry: int) -> RawPage:
        if not entry & PM_PRESENT:
            return RawPage(None, False, bool(entry & PM_UFFD_WP), False, 0, 0,
                           bool(entry & PM_SWAP))
        pfn = entry & PM_PFN_MASK
        kflags, = struct.unpack("<Q", os.pread(self._kflags, 8, 8 * pfn))
        count, = struct.unpack("<Q", os.pread(self._kcount, 8, 8 * pfn))
        return RawPage(pfn, bool(entry & PM_FILE), bool(entry & PM_UFFD_WP),
                       bool(entry & PM_MMAP_EXCLUSIVE), count, kflags)


def anon_huge_kb(start: int, end: int) -> int:
    """Sum of smaps ``AnonHugePages`` (kB) over the VMAs inside [start, end)."""
    total, inside = 0, False
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split(None, 1)[0]
            if "-" in head and not head.endswith(":"):
                lo, hi = (int(x, 16) for x in head.split("-"))
                inside = lo >= start and hi <= end
            elif inside and head == "AnonHugePages:":
                total += int(line.split()[1])
    return total


def is_mapped(addr: int) -> bool:
    """Whether ``addr`` lies in a VMA of this process (from /proc/self/maps)."""
    with open("/proc/self/maps") as f:
        for line in f:
            lo, hi = (int(x, 16) for x in line.split(None, 1)[0].split("-"))
            if lo <= addr < hi:
                return True
    return False


def populate_private_writable(skip: tuple[int, int]) -> None:
    """MADV_POPULATE_WRITE every private writable VMA of this process outside ``skip``.

    After fork the interpreter's heap and stack are copy-on-write shared, and new heap
    pools are touched for the first time as Python runs: both would add minor faults to a
    bracket around one store.  Breaking CoW and populating everything first leaves the
    bracket counting the probed page only.
    """
    with open("/proc/self/maps") as f:
        lines = f.readlines()
    for line in lines:
        fields = line.split()
        lo, hi = (int(x, 16) for x in fields[0].split("-"))
        if fields[1][:2] != "rw" or fields[1][3] != "p" or (lo < skip[1] and hi > skip[0]):
            continue
        try:
            madvise(lo, hi - lo, MADV_POPULATE_WRITE)
        except OSError:
            pass   # e.g. a VMA that went away meanwhile: best effort


def minflt() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _bracket(access: Callable[[], object]) -> tuple[int, object]:
    before = minflt()
    result = access()
    return minflt() - before, result


def counted_access(addr: int, scratch: int, *, write: bool, value: int = 1,
                   skip: tuple[int, int] = (0, 0)) -> tuple[int, int]:
    """One single-byte store (or load) at ``addr``, bracketed by minor-fault counts.

    Returns ``(faults, byte)``.  After fork the interpreter's own heap is write-protected
    too, so the bracket is first run on ``scratch`` (a page private to this process) until
    it counts no fault: the fault count then belongs to the access at ``addr`` alone.
    ``skip`` is the address range not to pre-populate (the probed region and its guards).
    """
    populate_private_writable(skip)
    for _ in range(50):
        n, _ = _bracket(lambda: poke(scratch, value) if write else peek(scratch))
        if n == 0 and _bracket(lambda: poke(scratch, value) if write else peek(scratch))[0] == 0:
            break
    if write:
        faults, _ = _bracket(lambda: poke(addr, value))
        return faults, value
    faults, byte = _bracket(lambda: peek(addr))
    assert isinstance(byte, int)
    return faults, byte
