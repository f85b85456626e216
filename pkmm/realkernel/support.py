"""What this machine lets the lab probe, and why not when it doesn't.

Kernel interfaces: uname(2), ``/proc/self/pagemap`` (are PFNs visible? they read as 0
without CAP_SYS_ADMIN), ``/proc/kpageflags``, the THP sysfs directory and its
``use_zero_page`` knob, io_uring, userfaultfd, ``/proc/mounts``.
Taught in: notebooks/09-real-kernel-lab.ipynb
"""

from __future__ import annotations

import functools
import os
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import thp
from .scenarios import Scenario

FOLIO_KNOBS = {"4K": "", "64K": "64kB", "2M": "2048kB"}


@dataclass(frozen=True)
class Machine:
    """The running kernel and machine, and each capability: None = usable, else why not."""

    kernel: str
    arch: str
    cpus: int
    mem_gib: float
    thp_sizes_kb: tuple[int, ...]
    caps: dict[str, str | None] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return {"kernel": self.kernel, "arch": self.arch, "cpus": self.cpus,
                "mem_gib": self.mem_gib, "thp_sizes_kb": list(self.thp_sizes_kb),
                "cpu": _cpu_model(), "skipped_capabilities":
                    {k: v for k, v in self.caps.items() if v is not None}}

    def probe_ready(self) -> str | None:
        """None if scenarios can be probed at all, else the reason (e.g. not root)."""
        for cap in ("linux", "pagemap_pfns", "kpageflags"):
            if self.caps.get(cap):
                return self.caps[cap]
        return None

    def skip_reason(self, sc: Scenario) -> str | None:
        """Why ``sc`` cannot be probed here, or None."""
        base = self.probe_ready()
        if base:
            return base
        folio_cap = {"64K": "mthp_64k", "2M": "thp_2m"}.get(sc.folio)
        for cap in ((folio_cap,) if folio_cap else ()) + sc.needs:
            if self.caps.get(cap):
                return self.caps[cap]
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_gib() -> float:
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        return round(kb / (1 << 20), 1)
    except (OSError, ValueError, IndexError):
        return 0.0


def fs_type(path: str) -> str:
    """Filesystem type of ``path`` from /proc/mounts (longest matching mount point)."""
    best, kind = "", "unknown"
    real = os.path.realpath(path)
    with open("/proc/mounts") as f:
        for line in f:
            _, mnt, fstype = line.split()[:3]
            inside = real == mnt or real.startswith(mnt.rstrip("/") + "/")
            if inside and len(mnt) >= len(best):
                best, kind = mnt, fstype
    return kind


def _pfns_visible() -> str | None:
    from . import libc as lc
    from .procfs import PageReader
    addr = lc.mmap(0, lc.PAGE_SIZE, lc.PROT_RW, lc.MAP_PRIVATE | lc.MAP_ANONYMOUS)
    try:
        lc.poke(addr, 1)
        reader = PageReader()
        try:
            pfn = reader.read(addr, 1)[0].pfn
        finally:
            reader.close()
    except OSError as e:
        return f"cannot read /proc/self/pagemap or /proc/kpage* ({e.strerror}); need root"
    finally:
        lc.munmap(addr, lc.PAGE_SIZE)
    return None if pfn else "pagemap hides PFNs (need CAP_SYS_ADMIN: run as root)"


def _uffd_usable() -> str | None:
    from . import libc as lc
    from .pins import UffdWp
    addr = lc.mmap(0, lc.PAGE_SIZE, lc.PROT_RW, lc.MAP_PRIVATE | lc.MAP_ANONYMOUS)
    try:
        lc.poke(addr, 1)
        UffdWp(addr, lc.PAGE_SIZE, event_fork=False, shmem=False).close()
    except OSError as e:
        return f"userfaultfd write-protect unavailable ({e.strerror})"
    finally:
        lc.munmap(addr, lc.PAGE_SIZE)
    return None


def _thp_caps(sizes: list[int]) -> dict[str, str | None]:
    if not sizes:
        return {"mthp_64k": "no transparent huge pages (CONFIG_TRANSPARENT_HUGEPAGE off)",
                "thp_2m": "no transparent huge pages (CONFIG_TRANSPARENT_HUGEPAGE off)",
                "hzero": "no transparent huge pages"}
    knobs = None if thp.writable() else "THP sysfs knobs not writable (need root)"
    zero = thp.THP_DIR / "use_zero_page"
    hz = None if zero.exists() and zero.read_text().strip() == "1" else \
        "huge zero page disabled (transparent_hugepage/use_zero_page is 0)"
    return {"mthp_64k": knobs if 64 in sizes else "kernel has no 64K anon mTHP size",
            "thp_2m": knobs if 2048 in sizes else "kernel has no 2M anon THP size",
            "hzero": hz}


def _in_child(check: Callable[[], str | None]) -> str | None:
    """Run ``check`` in a forked process: a test pin would set MMF_HAS_PINNED on our mm
    for good (and change what fork() does with it from then on)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.write(w, (check() or "").encode()[:4000])
        finally:
            os._exit(0)
    os.close(w)
    try:
        with os.fdopen(r, "rb") as f:
            out = f.read().decode()
    finally:
        os.waitpid(pid, 0)
    return out or None


@functools.lru_cache(maxsize=1)
def detect() -> Machine:
    """Detect once per process what the lab can do on this machine."""
    caps: dict[str, str | None] = {"linux": None if sys.platform.startswith("linux")
                                   else f"not Linux ({sys.platform})"}
    sizes = thp.anon_sizes_kb() if caps["linux"] is None else []
    if caps["linux"] is None:
        from .pins import io_uring_usable
        caps["pagemap_pfns"] = _pfns_visible()
        caps["kpageflags"] = None if os.access("/proc/kpageflags", os.R_OK) else \
            "/proc/kpageflags not readable (need root)"
        caps.update(_thp_caps(sizes))
        caps["io_uring"] = _in_child(io_uring_usable)
        caps["uffd"] = _in_child(_uffd_usable)
        caps["ext4"] = None if fs_type("/var/tmp") == "ext4" else \
            f"/var/tmp is {fs_type('/var/tmp')}, not ext4"
        caps["tmpfs"] = None if fs_type("/dev/shm") == "tmpfs" else "/dev/shm is not tmpfs"
        from .sysconf import hugetlb_usable, swap_usable
        caps["swap"] = swap_usable()
        caps["hugetlb"] = hugetlb_usable()
    return Machine(platform.release(), platform.machine(), os.cpu_count() or 1, _mem_gib(),
                   tuple(sizes), caps)
