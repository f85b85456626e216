"""A process the tests start and then snapshot: one region of each kind fork treats
differently, each between PROT_NONE guards so none merges with another.

Used by tests/test_snapshot.py and tests/test_forksim.py.  ``as_user`` drops the child to
another uid with os.setuid (root only) after every module it needs is imported: the
interpreter of the venv may not be readable by that user.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import pwd
import signal
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

from pkmm.realkernel import libc as lc

KIB = 1024
PR_SET_DUMPABLE = 4
REGIONS = {            # name: (KiB, how it is populated)
    "anon4k": (1024, "written, 4K pages"),
    "zero": (1024, "page 0 written, the others only read: zero pages"),
    "onlyzero": (256, "only read: zero pages in a VMA without anon_vma"),
    "file": (256, "private file mapping: read, page 0 written (CoW)"),
    "shared": (256, "MAP_SHARED|MAP_ANONYMOUS, written (shmem)"),
    "dontfork": (64, "written, MADV_DONTFORK"),
    "wipe": (64, "written, MADV_WIPEONFORK"),
    "readonly": (64, "written, then mprotect(PROT_READ)"),
}


def nobody() -> int | None:
    """The uid of ``nobody`` when this process may switch to it (root), else None."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("nobody").pw_uid
    except KeyError:
        return None


def become(uid: int) -> None:
    """setuid to ``uid`` and stay inspectable by that uid (a credential change clears
    the dumpable flag, and pagemap needs ptrace access)."""
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)


def build(directory: str) -> dict[str, list[int]]:
    """Map and populate every region of :data:`REGIONS` in this process."""
    out = {}
    for name, (kib, _) in REGIONS.items():
        size = kib * KIB
        base = lc.mmap(0, size + 2 * lc.PMD_SIZE, lc.PROT_NONE,
                       lc.MAP_PRIVATE | lc.MAP_ANONYMOUS | lc.MAP_NORESERVE)
        a = base + lc.PMD_SIZE
        npages = size // lc.PAGE_SIZE
        fixed = lc.MAP_FIXED | lc.MAP_PRIVATE
        if name == "file":
            fd, path = tempfile.mkstemp(dir=directory)
            os.write(fd, b"f" * size)
            lc.mmap(a, size, lc.PROT_RW, fixed, fd)
            os.close(fd)
            os.unlink(path)
        elif name == "shared":
            lc.mmap(a, size, lc.PROT_RW, lc.MAP_FIXED | lc.MAP_SHARED | lc.MAP_ANONYMOUS)
        else:
            lc.mmap(a, size, lc.PROT_RW, fixed | lc.MAP_ANONYMOUS)
            lc.madvise(a, size, lc.MADV_NOHUGEPAGE)
        for i in range(npages):
            p = a + i * lc.PAGE_SIZE
            if name in ("zero", "onlyzero", "file") and (i or name == "onlyzero"):
                lc.peek(p)
            else:
                lc.poke(p, 1)
        advice = {"dontfork": lc.MADV_DONTFORK, "wipe": lc.MADV_WIPEONFORK}.get(name)
        if advice:
            lc.madvise(a, size, advice)
        if name == "readonly":
            lc.mprotect(a, size, lc.PROT_READ)
        out[name] = [a, a + size]
    return out


@contextlib.contextmanager
def target(as_user: int | None = None,
           extra: Callable[[], dict[str, Any]] | None = None) -> Iterator[tuple[int, dict]]:
    """Start the target; yield (pid, regions); kill and reap it afterwards."""
    directory = tempfile.mkdtemp()
    os.chmod(directory, 0o777)
    r, w = os.pipe()
    hold_r, hold_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.close(hold_w)
            lc.set_pdeathsig(signal.SIGKILL)
            if as_user is not None:
                become(as_user)
            regions: dict[str, Any] = build(directory)
            if extra is not None:
                regions.update(extra())
            os.write(w, json.dumps(regions).encode())
            os.close(w)
            os.read(hold_r, 1)          # until the test closes its end
        finally:
            os._exit(0)
    os.close(w)
    os.close(hold_r)
    try:
        with os.fdopen(r) as f:
            regions = json.loads(f.read())
        yield pid, regions
    finally:
        os.close(hold_w)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.rmdir(directory)


def in_child(fn: Callable[[], Any], as_user: int | None = None) -> Any:
    """Run ``fn`` in a forked child (optionally as ``as_user``); return its JSON result,
    or re-raise its exception as ``RuntimeError("<type>: <message>")``."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            if as_user is not None:
                become(as_user)
            try:
                out = {"ok": fn()}
            except Exception as e:  # reported to the parent
                out = {"error": type(e).__name__, "message": str(e)}
            data = json.dumps(out).encode()
            while data:
                data = data[os.write(w, data):]
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        data = f.read()
    os.waitpid(pid, 0)
    res = json.loads(data)
    if "error" in res:
        raise RuntimeError(f"{res['error']}: {res['message']}")
    return res["ok"]
