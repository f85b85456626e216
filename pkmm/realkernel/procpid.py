"""Read what the kernel exports about another process's memory: /proc/PID/*.

Kernel interfaces (Documentation/admin-guide/mm/pagemap.rst, Documentation/filesystems/proc.rst):
``/proc/PID/stat`` (comm, start time: a recycled PID is noticed), ``/proc/PID/smaps`` (the
maps line of every VMA plus Rss, Anonymous, AnonHugePages, Swap and ``VmFlags``),
``/proc/PID/pagemap`` read with pread (bit 63 present, 62 swap, 61 file page or shmem,
58 guard region (6.15+), 57 uffd-wp, 56 exclusively mapped, 55 soft-dirty, 0-54 the PFN or
swap entry, which read as 0 without CAP_SYS_ADMIN) and its ``PAGEMAP_SCAN`` ioctl (6.7+;
PAGE_IS_PFNZERO and PAGE_IS_HUGE need no privilege), ``/proc/kpageflags`` and
``/proc/kpagecount`` (root only), ``/proc/PID/fdinfo`` of userfaultfd descriptors.
Opening ``pagemap`` needs ptrace read access to the process (its owner, or root).
Taught in: notebooks/10-real-process.ipynb
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import PkmmError

PM_PRESENT, PM_SWAP, PM_FILE = 1 << 63, 1 << 62, 1 << 61
PM_GUARD_REGION, PM_UFFD_WP, PM_MMAP_EXCLUSIVE, PM_SOFT_DIRTY = 1 << 58, 1 << 57, 1 << 56, 1 << 55
PM_PFN_MASK = (1 << 55) - 1

# include/uapi/linux/fs.h: _IOWR('f', 16, struct pm_scan_arg) and the categories used here
PAGEMAP_SCAN = 0xC0606610
PAGE_IS_PRESENT, PAGE_IS_SWAPPED, PAGE_IS_PFNZERO, PAGE_IS_HUGE = 1 << 3, 1 << 4, 1 << 5, 1 << 6

# include/uapi/linux/kernel-page-flags.h (34 is KPF_OWNER_2 = PG_anon_exclusive, not an ABI)
KPF = {"dirty": 4, "anon": 12, "swapbacked": 14, "head": 15, "tail": 16, "huge": 17,
       "ksm": 21, "thp": 22, "zero": 24, "anon_exclusive": 34}


class SnapshotError(PkmmError, ValueError):
    """A process that cannot be read (no such PID, it exited, no permission): says which
    and what to do."""


@dataclass(frozen=True)
class VmaInfo:
    """One VMA as /proc/PID/smaps shows it."""

    start: int
    end: int
    perms: str                      # e.g. "rw-p"
    offset: int
    dev: str                        # "major:minor" of the mapped file ("00:00": none)
    inode: int
    path: str                       # file path, "[heap]", "[stack]", "" ...
    flags: frozenset[str] = frozenset()   # VmFlags mnemonics ("rd", "wr", "dc", ...)
    kb: dict[str, int] = field(default_factory=dict)   # Rss, Anonymous, AnonHugePages ...

    @property
    def npages(self) -> int:
        return (self.end - self.start) >> 12


def parse_smaps(text: str) -> list[VmaInfo]:
    """Parse /proc/PID/smaps.

    >>> v, = parse_smaps("7f00000000-7f00004000 rw-p 00000000 00:00 0 \\nRss: 8 kB\\n"
    ...                  "VmFlags: rd wr mr mw me ac \\n")
    >>> hex(v.start), v.npages, v.perms, v.path, v.kb["Rss"], sorted(v.flags)[:3]
    ('0x7f00000000', 4, 'rw-p', '', 8, ['ac', 'me', 'mr'])
    """
    out: list[VmaInfo] = []
    head: list[str] | None = None
    kb: dict[str, int] = {}
    flags: frozenset[str] = frozenset()

    def flush() -> None:
        if head is not None:
            lo, hi = (int(x, 16) for x in head[0].split("-"))
            out.append(VmaInfo(lo, hi, head[1], int(head[2], 16), head[3], int(head[4]),
                               head[5] if len(head) > 5 else "", flags, kb))

    for line in text.splitlines():
        key = line.split(None, 1)[0] if line.strip() else ""
        if "-" in key and not key.endswith(":"):
            flush()
            head, kb, flags = line.split(None, 5), {}, frozenset()
            if len(head) > 5:
                head[5] = head[5].strip()
        elif key == "VmFlags:":
            flags = frozenset(line.split()[1:])
        elif key.endswith(":") and line.rstrip().endswith("kB"):
            kb[key[:-1]] = int(line.split()[1])
    flush()
    return out


@contextlib.contextmanager
def _proc_errors(pid: int, missing: str, denied: str) -> Iterator[None]:
    """Turn the errors of reading ``/proc/PID/...`` into a SnapshotError that says what to
    do: ``missing`` when the process is gone, ``denied`` when we may not read it."""
    try:
        yield
    except FileNotFoundError:
        raise SnapshotError(f"pid={pid}: {missing}") from None
    except PermissionError:
        raise SnapshotError(f"pid={pid}: {denied}") from None
    except ProcessLookupError:
        raise SnapshotError(f"pid={pid}: the process exited while being read; snapshot a "
                            "process that keeps running") from None


def _proc_read(pid: int, name: str) -> str:
    with _proc_errors(pid, "no such process (it may have exited); pass the PID of a running "
                      "process (see `ps`)", f"not allowed to read /proc/{pid}/{name}; run as "
                      "the process's owner or as root"), open(f"/proc/{pid}/{name}") as f:
        return f.read()


def process_identity(pid: int) -> tuple[str, int]:
    """(comm, start time in clock ticks): the pair that tells a PID's process apart from a
    later one that reuses the number."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        raise SnapshotError(f"pid={pid!r}: a process id is a positive int")
    stat = _proc_read(pid, "stat")
    comm = stat[stat.index("(") + 1:stat.rindex(")")]
    return comm, int(stat[stat.rindex(")") + 2:].split()[19])


def read_smaps(pid: int) -> list[VmaInfo]:
    """Every VMA of ``pid`` (an exited process has none: that raises SnapshotError)."""
    vmas = parse_smaps(_proc_read(pid, "smaps"))
    if not vmas:
        raise SnapshotError(f"pid={pid}: the process has no memory map (a kernel thread or "
                            "a process that is exiting); pass a user process")
    return vmas


class _ScanArg(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint64) for n in (
        "size", "flags", "start", "end", "walk_end", "vec", "vec_len", "max_pages",
        "category_inverted", "category_mask", "category_anyof_mask", "return_mask")]


class _Region(ctypes.Structure):
    _fields_ = [("start", ctypes.c_uint64), ("end", ctypes.c_uint64),
                ("categories", ctypes.c_uint64)]


class Pagemap:
    """An open /proc/PID/pagemap: raw entries, and the PAGEMAP_SCAN ioctl where it exists."""

    def __init__(self, pid: int, show_pfn: bool = True) -> None:
        self.pid = pid
        # show_pfn=False reads what a user without CAP_SYS_ADMIN gets: the kernel's
        # pagemap_read() then zeroes the frame field (bits 0-54: PFN, or swap type and
        # offset) of every entry and keeps the flag bits
        self.frame_mask = 0 if show_pfn else PM_PFN_MASK
        with _proc_errors(pid, "no such process; pass a running process's PID",
                          f"not allowed to open /proc/{pid}/pagemap (it needs ptrace access: "
                          "the same user, or root)"):
            self.fd = os.open(f"/proc/{pid}/pagemap", os.O_RDONLY)
        self.scan_ok: bool | None = None     # None: not tried yet

    def close(self) -> None:
        os.close(self.fd)

    def entries(self, start: int, npages: int) -> Any:
        """The raw 64-bit entries of ``npages`` pages from ``start`` (numpy uint64)."""
        import numpy as np
        want = 8 * npages
        data = os.pread(self.fd, want, 8 * (start >> 12))
        if len(data) != want:
            raise SnapshotError(f"pid={self.pid}: the process exited while its pagemap was "
                                "read; snapshot a process that keeps running")
        raw = np.frombuffer(data, dtype="<u8")
        return raw & np.uint64(~self.frame_mask & (1 << 64) - 1) if self.frame_mask else raw

    def scan(self, start: int, end: int, anyof: int) -> list[tuple[int, int, int]] | None:
        """PAGEMAP_SCAN: (start, end, categories) of the pages in [start, end) having any
        category of ``anyof``; None when the kernel has no PAGEMAP_SCAN (before 6.7)."""
        if self.scan_ok is False:
            return None
        vec = (_Region * 512)()
        out: list[tuple[int, int, int]] = []
        arg = _ScanArg(size=ctypes.sizeof(_ScanArg), start=start, end=end,
                       vec=ctypes.addressof(vec), vec_len=512, category_anyof_mask=anyof,
                       return_mask=anyof)
        while arg.start < end:
            try:
                n = fcntl.ioctl(self.fd, PAGEMAP_SCAN, arg)
            except OSError as e:
                if e.errno in (errno.ENOTTY, errno.EINVAL) and self.scan_ok is None:
                    self.scan_ok = False
                    return None
                raise SnapshotError(f"pid={self.pid}: PAGEMAP_SCAN failed ({e.strerror}); "
                                    "the process may have exited") from None
            self.scan_ok = True
            out.extend((vec[i].start, vec[i].end, vec[i].categories) for i in range(n))
            if arg.walk_end <= arg.start:
                break
            arg.start = arg.walk_end
        return out


class KPages:
    """/proc/kpageflags and /proc/kpagecount (root only), read for sets of PFNs."""

    def __init__(self) -> None:
        self.flags_fd = os.open("/proc/kpageflags", os.O_RDONLY)
        try:
            self.count_fd = os.open("/proc/kpagecount", os.O_RDONLY)
        except OSError:
            os.close(self.flags_fd)
            raise

    def close(self) -> None:
        os.close(self.flags_fd)
        os.close(self.count_fd)

    def read(self, fd: int, pfns: Any) -> Any:
        """Entries at each PFN of ``pfns`` (a sorted unique numpy array), one pread per
        physically contiguous run."""
        import numpy as np
        out = np.zeros(len(pfns), dtype="<u8")
        if not len(pfns):
            return out
        breaks = np.flatnonzero(np.diff(pfns) != 1) + 1
        for lo, hi in zip(np.r_[0, breaks].tolist(), np.r_[breaks, len(pfns)].tolist(),
                          strict=True):
            data = os.pread(fd, 8 * (hi - lo), 8 * int(pfns[lo]))
            out[lo:lo + len(data) // 8] = np.frombuffer(data, dtype="<u8")
        return out

    def window(self, pfn: int, n: int) -> Any:
        """kpageflags of the ``n`` pfns from ``pfn``."""
        import numpy as np
        return np.frombuffer(os.pread(self.flags_fd, 8 * n, 8 * pfn), dtype="<u8")


def open_kpages() -> tuple[KPages | None, str]:
    """KPages, or None and why not (not root, or no such files)."""
    try:
        return KPages(), ""
    except OSError as e:
        return None, f"/proc/kpageflags not readable ({e.strerror}; it needs root)"


def uffd_event_fork(pid: int) -> list[bool]:
    """For each userfaultfd descriptor of ``pid``: does its context have
    UFFD_FEATURE_EVENT_FORK (fdinfo ``API:`` line: api:features:ioctls, hex)?"""
    found = []
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return []
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") != "anon_inode:[userfaultfd]":
                continue
            info = _proc_read(pid, f"fdinfo/{fd}")
        except (OSError, SnapshotError):
            continue
        for line in info.splitlines():
            if line.startswith("API:"):
                found.append(bool(int(line.split()[1].split(":")[1], 16) & 2))
    return found


def swap_total_kb() -> int:
    """SwapTotal of /proc/meminfo (kB): 0 on a machine without swap."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("SwapTotal:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def shmem_devices(pid: int) -> set[str]:
    """maps-style "MM:mm" (hex) device numbers of the tmpfs mounts the process sees."""
    out = set()
    try:
        with open(f"/proc/{pid}/mountinfo") as f:
            for line in f:
                parts = line.split()
                fstype = parts[parts.index("-") + 1]
                if fstype in ("tmpfs", "shmem", "ramfs"):
                    major, minor = (int(x) for x in parts[2].split(":"))
                    out.add(f"{major:02x}:{minor:02x}")
    except (OSError, ValueError, IndexError):
        pass
    return out


__all__ = ["KPF", "KPages", "Pagemap", "SnapshotError", "VmaInfo", "open_kpages",
           "parse_smaps", "process_identity", "read_smaps", "shmem_devices",
           "swap_total_kb", "uffd_event_fork"]
