"""Rebuild a scenario's layout in a live probe process and time that process's fork().

Kernel interfaces: mmap (private/shared anonymous, private/shared file mappings of a
sparse temporary file), MADV_POPULATE_WRITE / MADV_POPULATE_READ (fault pages in the way
a write or a read does), MADV_HUGEPAGE / MADV_NOHUGEPAGE, MADV_DONTNEED (unmap the pages
of a large folio the layout does not map), MADV_DONTFORK / MADV_WIPEONFORK, mprotect, the
THP/mTHP ``enabled`` knobs (only through :func:`pkmm.realkernel.thp.thp_settings`, one
folio size at a time, restored after each group), fork(2) timed with CLOCK_MONOTONIC.
Taught in: notebooks/10-real-process.ipynb

The layout is rebuilt as far as a process can ask for it: anon folios of each order (the
knobs of one size at a time), PMD-mapped and PTE-mapped THPs, zero pages, page-cache pages
and their anonymous CoW copies in private file mappings.  What fork() never copies (VMAs
without an anon_vma) is mapped but not populated; what cannot be asked for (raw PFN maps,
swap entries, uffd-wp) is left out and listed in ``left_out``; runs marked ``pinned`` are
pinned by an io_uring fixed buffer, as the probe scenarios h1-h7 pin pages.  The prediction is
then made on what was really obtained: the probe is snapshotted after the build.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import tempfile
from dataclasses import dataclass, field
from typing import Any

from ..scenario import Scenario
from . import libc as lc
from . import thp
from .plan import Group, Plan, plan_replay
from .probe import kill_and_reap, write_all
from .timing import fork_ns, json_lines

TIMEOUT_S = 600.0

__all__ = ["LiveLayout", "replay_fork"]


@dataclass
class LiveLayout:
    """A scenario rebuilt in probe process ``pid``; :meth:`close` kills and reaps it."""

    scenario: Scenario
    pid: int = 0
    spans: list[tuple[int, int]] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)
    baseline_ns: list[int] = field(default_factory=list)
    pinned: list[tuple[int, int]] = field(default_factory=list)   # live pinned ranges
    bare: Scenario | None = None       # the probe before the build (its baseline's layout)
    _cmd: int = -1
    _replies: Any = None

    def start(self, progress: bool | None = None) -> LiveLayout:
        """Fork the probe, place every VMA, populate group by group under its knobs."""
        from ..progress import progress as bar
        plan = plan_replay(self.scenario)
        self.left_out = list(plan.left_out)
        cmd_r, self._cmd = os.pipe()
        out_r, out_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            code = 1
            try:
                os.close(self._cmd)
                os.close(out_r)
                lc.set_pdeathsig(signal.SIGKILL)
                _Probe(plan, out_w).serve(cmd_r)
                code = 0
            finally:
                os._exit(code)
        os.close(cmd_r)
        os.close(out_w)
        self._replies = json_lines(os.fdopen(out_r, "rb", buffering=0), TIMEOUT_S,
                                    "replay probe")
        try:
            self.baseline_ns = self._ask({"do": "time", "n": 9})["ns"]
            from .snapshot import snapshot
            self.bare = snapshot(self.pid)     # the probe itself, before any build
            self.spans = [tuple(s) for s in self._ask({"do": "place"})["spans"]]
            for g in bar(plan.groups, desc="replay", enabled=progress):
                with thp.thp_settings(g.knobs):
                    self._ask({"do": "populate", "group": g.index})
            self.pinned = [tuple(p) for p in self._ask({"do": "finish"})["pinned"]]
        except BaseException:
            self.close()
            raise
        return self

    def _ask(self, cmd: dict[str, Any]) -> dict[str, Any]:
        write_all(self._cmd, (json.dumps(cmd) + "\n").encode())
        reply: dict[str, Any] = next(self._replies, {"error": "the probe died"})
        if "error" in reply:
            raise RuntimeError(f"replay probe: {cmd['do']}: {reply['error']}")
        return reply

    def obtained(self) -> Scenario:
        """A snapshot of what the probe really holds, restricted to the replayed VMAs."""
        from .snapshot import snapshot
        # touching reservations merge their PROT_NONE guards into one VMA: take the union
        spans: list[tuple[int, int]] = []
        for lo, hi in sorted(self.spans):
            if spans and lo <= spans[-1][1]:
                spans[-1] = (spans[-1][0], max(hi, spans[-1][1]))
            else:
                spans.append((lo, hi))
        got = snapshot(self.pid, within=spans)
        if self.pinned:   # pins are not exported: mark the runs we pinned ourselves
            for r in got.runs:
                end = r["addr"] + r["npages"] * lc.PAGE_SIZE
                if any(lo <= r["addr"] and end <= hi for lo, hi in self.pinned):
                    r["pinned"] = True
            got.approximations.append("pinned: the runs this replay pinned with io_uring "
                                      "fixed buffers (pins are not exported)")
        return got

    def fork_ns(self, n: int = 15, *, warm: bool = True) -> list[int]:
        """``n`` timed forks of the probe (after one untimed warm-up fork when ``warm``:
        every anon PTE is then read-only, the REPEAT state the model sees next)."""
        return list(self._ask({"do": "time", "n": n, "warm": warm})["ns"])

    def close(self) -> None:
        if self.pid:
            kill_and_reap(self.pid)
            self.pid = 0
        if self._cmd >= 0:
            os.close(self._cmd)
            self._cmd = -1


def replay_fork(sc: Scenario, *, rounds: int = 15,
                progress: bool | None = None) -> dict[str, Any]:
    """Rebuild ``sc`` live, warm it up with one fork, snapshot it, time ``rounds`` forks.

    Returns ``obtained`` (the snapshot scenario, REPEAT state), the samples, the probe's
    baseline (fork before anything was built, and after the teardown), ``bare`` (the
    probe's own layout when its baseline was taken), ``streams`` (where the kernel put
    each VMA's pages, as the snapshot read them: None if hidden) and
    ``net_min_ns`` = min(samples) - min(baseline), plus what was ``left_out``.
    """
    live = LiveLayout(sc).start(progress)
    try:
        live.fork_ns(1, warm=False)          # the warm-up: parent PTEs now read-only
        got = live.obtained()
        samples = live.fork_ns(rounds, warm=False)
        base = live.baseline_ns + live._ask({"do": "teardown_time", "n": 9})["ns"]
    finally:
        live.close()
    return {"obtained": got, "bare": live.bare, "samples_ns": samples, "baseline_ns": base,
            "streams": got.source.get("streams"),
            "net_min_ns": min(samples) - min(base),
            "net_median_ns": statistics.median(samples) - statistics.median(base),
            "left_out": live.left_out}


class _Probe:
    """The probe process: answers commands from the caller, one JSON line each."""

    def __init__(self, plan: Plan, out: int) -> None:
        self.plan, self.out = plan, out
        self.base: list[int] = []          # live address of each planned VMA
        self.reservations: list[tuple[int, int]] = []
        self.pins: list[Any] = []          # io_uring fixed buffers: pins that live with us

    def serve(self, cmd_fd: int) -> None:
        with os.fdopen(cmd_fd, "r") as cmds:
            for line in cmds:
                cmd = json.loads(line)
                try:
                    reply = getattr(self, "do_" + cmd["do"])(cmd)
                except OSError as e:
                    reply = {"error": f"{type(e).__name__}: {e}"}
                write_all(self.out, (json.dumps(reply) + "\n").encode())

    def do_time(self, cmd: dict[str, Any]) -> dict[str, Any]:
        if cmd.get("warm"):
            fork_ns()
        return {"ns": [fork_ns() for _ in range(cmd["n"])]}

    def do_place(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Reserve each chain of touching VMAs, keeping addr % 2 MiB, then map its VMAs."""
        spans = []
        self.base = [0] * len(self.plan.vmas)
        for chain in self.plan.chains:
            first, last = self.plan.vmas[chain[0]], self.plan.vmas[chain[-1]]
            size = last.end - first.start
            total = size + 3 * lc.PMD_SIZE
            res = lc.mmap(0, total, lc.PROT_NONE,
                          lc.MAP_PRIVATE | lc.MAP_ANONYMOUS | lc.MAP_NORESERVE)
            self.reservations.append((res, total))
            at = res + lc.PMD_SIZE
            at += (first.start - at) % lc.PMD_SIZE
            for k in chain:
                self.base[k] = at + self.plan.vmas[k].start - first.start
                self._map(k)
            # the snapshot takes the guards too: they are VMAs fork duplicates
            spans.append((res, res + total))
        return {"spans": spans}

    def _map(self, k: int) -> None:
        v = self.plan.vmas[k]
        flags = lc.MAP_FIXED | (lc.MAP_SHARED if v.shared else lc.MAP_PRIVATE)
        size = v.end - v.start
        if v.backing == "anon":
            lc.mmap(self.base[k], size, lc.PROT_RW, flags | lc.MAP_ANONYMOUS)
            return
        if v.backing == "shmem":
            fd = os.memfd_create("pkmm-replay", os.MFD_CLOEXEC)
        else:
            fd, path = tempfile.mkstemp(prefix="pkmm-replay-", dir=_disk_tmp())
            os.unlink(path)
        try:
            os.ftruncate(fd, size)     # sparse: reading it fills the page cache, no disk I/O
            lc.mmap(self.base[k], size, lc.PROT_RW, flags, fd)
        finally:
            os.close(fd)               # the mapping keeps the file; a process may have
            #                            more file VMAs than open descriptors

    def do_populate(self, cmd: dict[str, Any]) -> dict[str, Any]:
        g: Group = self.plan.groups[cmd["group"]]
        for k in g.hugepage:
            v = self.plan.vmas[k]
            lc.madvise(self.base[k], v.end - v.start, lc.MADV_HUGEPAGE)
        for op, k, page, n in g.ops:
            addr = self.base[k] + page * lc.PAGE_SIZE
            if op == "split":      # PTE-map each PMD THP, keep the folio (see timing.py)
                for a in range(addr, addr + n * lc.PAGE_SIZE, lc.PMD_SIZE):
                    lc.mprotect(a, lc.PAGE_SIZE, lc.PROT_READ)
                    lc.mprotect(a, lc.PAGE_SIZE, lc.PROT_RW)
            else:
                lc.madvise(addr, n * lc.PAGE_SIZE, {"write": lc.MADV_POPULATE_WRITE,
                                                    "read": lc.MADV_POPULATE_READ}[op])
        for k in g.hugepage:   # at once: khugepaged would collapse PTE-mapped THPs again
            v = self.plan.vmas[k]
            lc.madvise(self.base[k], v.end - v.start, lc.MADV_NOHUGEPAGE)
        return {"ok": True}

    def do_finish(self, cmd: dict[str, Any]) -> dict[str, Any]:
        pinned = []
        for advice, k, page, n in self.plan.finish:
            addr = self.base[k] + page * lc.PAGE_SIZE
            if advice == "readonly":
                lc.mprotect(addr, n * lc.PAGE_SIZE, lc.PROT_READ)
            elif advice == "pin":
                from .pins import IoUringPin
                self.pins.append(IoUringPin(addr, n * lc.PAGE_SIZE))
                pinned.append((addr, addr + n * lc.PAGE_SIZE))
            else:
                lc.madvise(addr, n * lc.PAGE_SIZE, advice)
        return {"pinned": pinned}

    def do_teardown_time(self, cmd: dict[str, Any]) -> dict[str, Any]:
        for pin in self.pins:
            pin.close()
        self.pins.clear()
        for res, total in self.reservations:
            lc.munmap(res, total)
        self.reservations.clear()
        return self.do_time(cmd)


def _disk_tmp() -> str:
    """A directory on a disk filesystem (page-cache pages, not shmem) for file VMAs."""
    from .support import fs_type
    for d in ("/var/tmp", tempfile.gettempdir()):
        if os.path.isdir(d) and os.access(d, os.W_OK) and fs_type(d) not in ("tmpfs",):
            return d
    return tempfile.gettempdir()
