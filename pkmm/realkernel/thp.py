"""Transparent huge page sysfs knobs: read them, change them, and always put them back.

Kernel interface: ``/sys/kernel/mm/transparent_hugepage/enabled`` and the per-size
``hugepages-<N>kB/enabled`` knobs of multi-size THP (Documentation/admin-guide/mm/transhuge.rst).
Only sizes that have an anon ``enabled`` knob are usable (``hugepages-8kB`` exists for
shmem only on x86-64).
Taught in: notebooks/09-real-kernel-lab.ipynb

:func:`thp_settings` saves every knob before changing one and restores every changed
value on exit — also on an exception, ``KeyboardInterrupt``, SIGTERM or SIGHUP (turned into
an exception while the block runs).  A lock file serialises concurrent users on one machine,
so two runs never save each other's temporary values as "original".
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import signal
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import FrameType

THP_DIR = Path("/sys/kernel/mm/transparent_hugepage")
LOCK_PATHS = (Path("/run/lock/pkmm-thp.lock"), Path("/tmp/pkmm-thp.lock"))
_SIZE_RE = re.compile(r"hugepages-(\d+)kB$")


class ThpSettingsInterrupted(KeyboardInterrupt):
    """SIGTERM/SIGHUP arrived while THP knobs were changed; they were restored."""


def knob_path(size: str) -> Path:
    """``"global"`` or a size like ``"64kB"`` -> its ``enabled`` file."""
    return THP_DIR / "enabled" if size == "global" else THP_DIR / f"hugepages-{size}" / "enabled"


def read_knob(path: Path) -> str:
    """The bracketed (active) value of a sysfs choice file.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "enabled"
    >>> _ = p.write_text("always inherit madvise [never]\\n")
    >>> read_knob(p)
    'never'
    """
    m = re.search(r"\[(\w+)\]", path.read_text())
    if m is None:
        raise ValueError(f"read_knob: no [active] value in {path}")
    return m.group(1)


def anon_sizes_kb() -> list[int]:
    """Sizes (kB) with an anon mTHP ``enabled`` knob, ascending; [] without THP."""
    if not THP_DIR.is_dir():
        return []
    sizes = [int(m.group(1)) for d in THP_DIR.iterdir()
             if (m := _SIZE_RE.match(d.name)) and (d / "enabled").exists()]
    return sorted(sizes)


def snapshot() -> dict[str, str]:
    """Every anon THP ``enabled`` value now: {"global": ..., "64kB": ..., ...}."""
    if not THP_DIR.is_dir():
        return {}
    values = {"global": read_knob(knob_path("global"))}
    for kb in anon_sizes_kb():
        values[f"{kb}kB"] = read_knob(knob_path(f"{kb}kB"))
    return values


def writable() -> bool:
    """Whether this process may change the knobs (root and sysfs mounted read-write)."""
    return THP_DIR.is_dir() and os.access(knob_path("global"), os.W_OK)


def _write(size: str, value: str) -> None:
    knob_path(size).write_text(value)


def _open_lock() -> int:
    for path in LOCK_PATHS:
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            continue
    raise OSError("thp_settings: cannot create a lock file in /run/lock or /tmp")


# flock() locks belong to an open file: a second open+flock in the same process would wait
# for itself.  So the process keeps one descriptor and counts how deep it is nested.
_held = threading.local()


@contextlib.contextmanager
def held() -> Iterator[None]:
    """Hold the machine-wide lock for the block without changing anything.

    Reentrant within a thread: :func:`thp_settings` inside it reuses the lock.  Use it to
    read the knobs while no other pkmm run on this machine may be changing them (e.g. to
    check that a run restored them)."""
    depth = getattr(_held, "depth", 0)
    owner = os.getpid()
    if depth and getattr(_held, "pid", None) == owner:
        _held.depth = depth + 1
        try:
            yield
        finally:
            _held.depth -= 1
        return
    lock = _open_lock()
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _held.depth, _held.pid = 1, owner
        try:
            yield
        finally:
            if os.getpid() == owner:
                _held.depth = 0
    finally:
        if os.getpid() == owner:
            os.close(lock)   # closing drops the flock


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    """Turn SIGTERM/SIGHUP into an exception so ``finally`` blocks run (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    owner = os.getpid()

    def handler(signum: int, frame: FrameType | None) -> None:
        if os.getpid() == owner:
            raise ThpSettingsInterrupted(f"signal {signum}")
        os._exit(128 + signum)   # a forked child: never unwind into the parent's finally

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextlib.contextmanager
def thp_settings(changes: Mapping[str, str]) -> Iterator[dict[str, str]]:
    """Apply ``{"global"|"<N>kB": value}`` for the block; restore everything afterwards.

    Yields the snapshot taken before any change.  Raises ``PermissionError`` when the
    knobs are not writable.
    """
    if changes and not writable():
        raise PermissionError("thp_settings: THP sysfs knobs are not writable (need root)")
    owner = os.getpid()
    saved: dict[str, str] = {}
    blocked = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    with held(), _signals_raise():
        saved = snapshot()
        try:
            old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
            try:
                for size, value in changes.items():
                    if saved.get(size) != value:
                        _write(size, value)
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
            yield dict(saved)
        finally:
            if os.getpid() == owner:
                _restore(saved, blocked)


def _restore(saved: Mapping[str, str], blocked: set[signal.Signals]) -> None:
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
    try:
        for size, value in saved.items():
            if read_knob(knob_path(size)) != value:
                _write(size, value)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)


def only_size(kb: int | None, *, pmd: bool = False) -> dict[str, str]:
    """Knob changes that leave exactly one anon folio size available to MADV_HUGEPAGE.

    ``kb=None`` disables every size (4 KiB pages); ``pmd=True`` enables 2 MiB only.
    """
    out: dict[str, str] = {}
    for size in anon_sizes_kb():
        want = "inherit" if (pmd and size == 2048) else ("madvise" if size == kb else "never")
        out[f"{size}kB"] = want
    if pmd:
        out["global"] = "madvise"
    return out
