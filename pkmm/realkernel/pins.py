"""Extra references on user pages: long-term pins, plain GUP references, uffd-wp.

Kernel interfaces: io_uring fixed buffers (``io_uring_setup`` 425 + ``io_uring_register``
427 with IORING_REGISTER_BUFFERS / IORING_UNREGISTER_BUFFERS) pin pages with
FOLL_WRITE|FOLL_LONGTERM and set MMF_HAS_PINNED on the mm for good; ``vmsplice`` into a
pipe takes one plain reference per pipe buffer; ``userfaultfd`` (323) with
UFFDIO_REGISTER_MODE_WP + UFFDIO_WRITEPROTECT sets the uffd-wp PTE bit (pagemap bit 57).
Taught in: notebooks/09-real-kernel-lab.ipynb
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import struct
import threading

from .libc import (
    F_SETPIPE_SZ,
    SYS_IO_URING_REGISTER,
    SYS_IO_URING_SETUP,
    SYS_USERFAULTFD,
    iovec,
    syscall,
    vmsplice,
)

IORING_REGISTER_BUFFERS = 0
IORING_UNREGISTER_BUFFERS = 1
_IO_URING_PARAMS_SIZE = 120

UFFD_API = 0xAA
UFFD_FEATURE_EVENT_FORK = 1 << 1
UFFD_FEATURE_WP_HUGETLBFS_SHMEM = 1 << 12
UFFDIO_API = 0xC018AA3F            # _IOWR(0xAA, 0x3F, struct uffdio_api)
UFFDIO_REGISTER = 0xC020AA00       # _IOWR(0xAA, 0x00, struct uffdio_register)
UFFDIO_WRITEPROTECT = 0xC018AA06   # _IOWR(0xAA, 0x06, struct uffdio_writeprotect)
UFFDIO_REGISTER_MODE_WP = 1 << 1
UFFDIO_WRITEPROTECT_MODE_WP = 1 << 0
UFFD_EVENT_FORK = 0x13
O_CLOEXEC = 0o2000000


class IoUringPin:
    """A long-term pin of [addr, addr+length) held by an io_uring fixed buffer."""

    def __init__(self, addr: int, length: int) -> None:
        params = ctypes.create_string_buffer(_IO_URING_PARAMS_SIZE)
        self.fd = syscall(SYS_IO_URING_SETUP, 1, params)
        self._iov = iovec(addr, length)
        try:
            syscall(SYS_IO_URING_REGISTER, self.fd, IORING_REGISTER_BUFFERS,
                    ctypes.pointer(self._iov), 1)
        except OSError:
            os.close(self.fd)
            raise
        self.pinned = True

    def unpin(self) -> None:
        """IORING_UNREGISTER_BUFFERS (MMF_HAS_PINNED stays set on the mm)."""
        if self.pinned:
            syscall(SYS_IO_URING_REGISTER, self.fd, IORING_UNREGISTER_BUFFERS, None, 0)
            self.pinned = False

    def close(self) -> None:
        os.close(self.fd)   # ring teardown (and unpin) completes asynchronously


def io_uring_usable() -> str | None:
    """None if a fixed buffer can be registered here, else the reason it cannot."""
    buf = ctypes.create_string_buffer(4096)
    try:
        pin = IoUringPin(ctypes.addressof(buf), 4096)
    except OSError as e:
        return f"io_uring fixed buffers unavailable ({e.strerror})"
    pin.unpin()
    pin.close()
    return None


class PipeRefs:
    """Hold ``n`` plain references on the page at ``addr`` via vmsplice into pipes."""

    def __init__(self, addr: int, n: int, page_size: int = 4096) -> None:
        self.pipes: list[tuple[int, int]] = []
        left = n
        while left:
            r, w = os.pipe()
            self.pipes.append((r, w))
            slots = fcntl.fcntl(w, F_SETPIPE_SZ, 1 << 20) // page_size
            for _ in range(min(slots, left)):
                vmsplice(w, addr, page_size)
                left -= 1

    def close(self) -> None:
        for r, w in self.pipes:
            os.close(r)
            os.close(w)


class UffdWp:
    """userfaultfd write-protection of a range; ``event_fork`` keeps it in fork children.

    With UFFD_FEATURE_EVENT_FORK, fork() waits until the monitor reads the fork event, so
    a reader thread is started by :meth:`expect_fork`; the child's new uffd is kept open
    (closing it would unregister the child's range and clear its uffd-wp bits).
    """

    def __init__(self, addr: int, length: int, *, event_fork: bool, shmem: bool) -> None:
        self.fd = syscall(SYS_USERFAULTFD, O_CLOEXEC)
        self.event_fork = event_fork
        self.child_fds: list[int] = []
        self._reader: threading.Thread | None = None
        features = (UFFD_FEATURE_EVENT_FORK if event_fork else 0) | \
                   (UFFD_FEATURE_WP_HUGETLBFS_SHMEM if shmem else 0)
        try:
            self._ioctl(UFFDIO_API, struct.pack("QQQ", UFFD_API, features, 0))
            self._ioctl(UFFDIO_REGISTER, struct.pack("QQQQ", addr, length,
                                                     UFFDIO_REGISTER_MODE_WP, 0))
            self._ioctl(UFFDIO_WRITEPROTECT, struct.pack("QQQ", addr, length,
                                                         UFFDIO_WRITEPROTECT_MODE_WP))
        except OSError:
            os.close(self.fd)
            raise

    def _ioctl(self, request: int, arg: bytes) -> bytes:
        buf = bytearray(arg)
        fcntl.ioctl(self.fd, request, buf)
        return bytes(buf)

    def expect_fork(self) -> None:
        def read_fork_event() -> None:
            msg = os.read(self.fd, 32)
            if msg[0] == UFFD_EVENT_FORK:
                self.child_fds.append(struct.unpack_from("I", msg, 8)[0])
        self._reader = threading.Thread(target=read_fork_event, daemon=True)
        self._reader.start()

    def join(self, timeout: float = 5.0) -> None:
        if self._reader is not None:
            self._reader.join(timeout)

    def close(self) -> None:
        for fd in [*self.child_fds, self.fd]:
            os.close(fd)
