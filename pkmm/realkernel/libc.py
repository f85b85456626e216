"""Thin ctypes bindings to the libc calls and raw syscalls the lab needs.

Kernel interfaces: mmap(2), munmap(2), mprotect(2), madvise(2), mremap(2), memfd_create(2),
vmsplice(2), prctl(2),
and the raw syscalls io_uring_setup (425), io_uring_register (427) and userfaultfd (323)
of x86-64 / most 64-bit ABIs.  Memory is touched one byte at a time through ctypes so a
single store is a single page access.
Taught in: notebooks/09-real-kernel-lab.ipynb
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

PAGE_SIZE = 4096
PMD_SIZE = 2 << 20

PROT_NONE, PROT_READ, PROT_WRITE = 0, 1, 2
PROT_RW = PROT_READ | PROT_WRITE
MAP_SHARED, MAP_PRIVATE, MAP_FIXED, MAP_ANONYMOUS = 0x01, 0x02, 0x10, 0x20
MAP_NORESERVE = 0x4000
MAP_HUGETLB = 0x40000
MADV_DONTNEED = 4
MADV_DONTFORK = 10
MADV_DOFORK = 11
MADV_HUGEPAGE = 14
MADV_NOHUGEPAGE = 15
MADV_WIPEONFORK = 18
MADV_KEEPONFORK = 19
MADV_PAGEOUT = 21
MADV_POPULATE_READ = 22
MADV_POPULATE_WRITE = 23
MADV_COLLAPSE = 25
MREMAP_MAYMOVE, MREMAP_FIXED = 1, 2
MFD_HUGETLB = 4

SYS_MREMAP = 25
SYS_VMSPLICE = 278
SYS_MEMFD_CREATE = 319
SYS_USERFAULTFD = 323
SYS_IO_URING_SETUP = 425
SYS_IO_URING_REGISTER = 427
PR_SET_PDEATHSIG = 1
F_SETPIPE_SZ = 1031


class RealKernelUnavailable(RuntimeError):
    """This machine cannot run a probe; ``reason`` says why (shown as "skipped: reason")."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


def _load_libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    lib.mmap.restype = ctypes.c_void_p
    lib.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                         ctypes.c_int, ctypes.c_long]
    lib.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    lib.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    lib.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    lib.syscall.restype = ctypes.c_long
    lib.prctl.restype = ctypes.c_int
    return lib


_libc = _load_libc()


def libc() -> ctypes.CDLL:
    """The loaded C library, or :class:`RealKernelUnavailable` off Linux."""
    if _libc is None:
        raise RealKernelUnavailable(f"not Linux (sys.platform={sys.platform!r})")
    return _libc


def _check(ret: int, what: str) -> int:
    if ret == -1:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


def mmap(addr: int, length: int, prot: int, flags: int, fd: int = -1, offset: int = 0) -> int:
    """mmap(2); returns the address or raises OSError (never returns MAP_FAILED)."""
    ret = libc().mmap(addr or None, length, prot, flags, fd, offset)
    if ret is None or ret == ctypes.c_void_p(-1).value:
        err = ctypes.get_errno()
        raise OSError(err, f"mmap(len={length:#x}, prot={prot}, flags={flags:#x}): "
                           f"{os.strerror(err)}")
    return int(ret)


def munmap(addr: int, length: int) -> None:
    _check(libc().munmap(addr, length), f"munmap({addr:#x}, {length:#x})")


def mprotect(addr: int, length: int, prot: int) -> None:
    _check(libc().mprotect(addr, length, prot), f"mprotect({addr:#x}, {length:#x}, {prot})")


def madvise(addr: int, length: int, advice: int) -> None:
    _check(libc().madvise(addr, length, advice), f"madvise({addr:#x}, {length:#x}, {advice})")


def mremap(old: int, old_len: int, new_len: int, flags: int, new: int = 0) -> int:
    """mremap(2) (raw syscall: the fifth argument is only read with MREMAP_FIXED)."""
    return syscall(SYS_MREMAP, old, old_len, new_len, flags, new)


def memfd_create(name: str, flags: int = 0) -> int:
    """memfd_create(2): an anonymous shmem (or, with MFD_HUGETLB, hugetlbfs) file."""
    return syscall(SYS_MEMFD_CREATE, ctypes.c_char_p(name.encode()), flags)


def syscall(nr: int, *args: int | ctypes._CData | None) -> int:
    """A raw syscall; integer arguments are passed as C longs."""
    cargs = [ctypes.c_long(a) if isinstance(a, int) else a for a in args]
    return _check(libc().syscall(ctypes.c_long(nr), *cargs), f"syscall({nr})")


def vmsplice(fd: int, addr: int, length: int) -> int:
    """vmsplice(2) one iovec into a pipe: takes a plain (unpinned) page reference."""
    iov = _Iovec(addr, length)
    return syscall(SYS_VMSPLICE, fd, ctypes.pointer(iov), 1, 0)


def set_pdeathsig(sig: int) -> None:
    """prctl(PR_SET_PDEATHSIG): this process gets ``sig`` when its parent dies."""
    libc().prctl(PR_SET_PDEATHSIG, ctypes.c_ulong(sig), 0, 0, 0)


def poke(addr: int, value: int) -> None:
    """One single-byte store."""
    ctypes.c_ubyte.from_address(addr).value = value


def peek(addr: int) -> int:
    """One single-byte load."""
    return int(ctypes.c_ubyte.from_address(addr).value)


def iovec(addr: int, length: int) -> _Iovec:
    return _Iovec(addr, length)
