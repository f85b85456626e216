"""Machine-wide settings a probe may need for a while: swap space, hugetlb pages, swap
readahead.  Each is a context manager that restores the old state on every exit path.

Kernel interfaces: swapon(8)/swapoff(8) on a swapfile in /var/tmp, the hugetlb pools
``/sys/kernel/mm/hugepages/hugepages-<N>kB/nr_hugepages`` (Documentation/admin-guide/mm/
hugetlbpage.rst) and ``/proc/sys/vm/page-cluster`` (swap readahead: 2**N pages).
Taught in: notebooks/09-real-kernel-lab.ipynb

Callers hold the machine-wide lock of :func:`pkmm.realkernel.thp.thp_settings` while any
of these is entered, so two runs never see (or save as "original") each other's values.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

HUGEPAGES = Path("/sys/kernel/mm/hugepages")
PAGE_CLUSTER = Path("/proc/sys/vm/page-cluster")


@contextlib.contextmanager
def hugetlb_reserved(want: dict[int, int]) -> Iterator[dict[str, int]]:
    """Raise each pool to ``want[size_kb]`` pages; yields what the kernel gave, restores."""
    saved: dict[Path, str] = {}
    got: dict[str, int] = {}
    try:
        for kb, n in want.items():
            knob = HUGEPAGES / f"hugepages-{kb}kB" / "nr_hugepages"
            if not knob.exists():
                continue
            saved[knob] = knob.read_text().strip()
            if int(saved[knob]) < n:
                knob.write_text(str(n))
            got[f"{kb}kB"] = int(knob.read_text())
        yield got
    finally:
        for knob, value in saved.items():
            knob.write_text(value)


@contextlib.contextmanager
def temporary_swap(mib: int) -> Iterator[str | None]:
    """A swapfile of ``mib`` MiB for the block (yields its path, or None if swapon failed)."""
    if not (shutil.which("mkswap") and shutil.which("swapon")):
        yield None
        return
    fd, path = tempfile.mkstemp(prefix="pkmm-cowc-", suffix=".swap", dir="/var/tmp")
    active = False
    try:
        os.posix_fallocate(fd, 0, mib << 20)
        os.fchmod(fd, 0o600)
        os.close(fd)
        fd = -1
        subprocess.run(["mkswap", path], check=True, capture_output=True)
        active = subprocess.run(["swapon", path], capture_output=True).returncode == 0
        yield path if active else None
    finally:
        if fd >= 0:
            os.close(fd)
        if active:
            subprocess.run(["swapoff", path], check=True, capture_output=True)
        os.unlink(path)


@contextlib.contextmanager
def page_cluster(value: int) -> Iterator[None]:
    """Set swap readahead to ``2**value`` pages for the block (0: read only the faulting
    page, so which pages sit in the swap cache is decided by faults alone)."""
    old = PAGE_CLUSTER.read_text().strip()
    try:
        PAGE_CLUSTER.write_text(str(value))
        yield
    finally:
        PAGE_CLUSTER.write_text(old)


def swap_usable() -> str | None:
    """None if a temporary swapfile can be enabled here, else why not."""
    if os.geteuid() != 0:
        return "swap: enabling a swapfile needs root"
    if not (shutil.which("mkswap") and shutil.which("swapon") and shutil.which("swapoff")):
        return "swap: mkswap/swapon/swapoff not installed (util-linux)"
    if not Path("/proc/swaps").exists():
        return "swap: kernel without CONFIG_SWAP"
    return None


def hugetlb_usable(kb: int = 2048) -> str | None:
    """None if the ``kb`` hugetlb pool can be raised here, else why not."""
    knob = HUGEPAGES / f"hugepages-{kb}kB" / "nr_hugepages"
    if not knob.exists():
        return f"hugetlb: no {kb} kB hugetlb pool (CONFIG_HUGETLBFS off?)"
    if not os.access(knob, os.W_OK):
        return "hugetlb: reserving huge pages needs root"
    return None
