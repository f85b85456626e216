"""Run one scenario on the real kernel: build, fork, script, observe both processes.

Kernel interfaces: fork(2), waitpid(2), prctl(PR_SET_PDEATHSIG), plus everything
:mod:`pkmm.realkernel.procfs` reads.  It does what a small C probe of the same steps would.
Taught in: notebooks/09-real-kernel-lab.ipynb

Process tree per scenario: the caller forks a *runner* (the scenario's parent, a fresh mm:
MMF_HAS_PINNED is not inherited, so pins of one scenario cannot leak into the next), the
runner builds the layout and forks the scenario's *child*, which serves "observe" and
"access" commands over a pipe.  Both die with their parent (PDEATHSIG) and the caller
kills and reaps the runner in a ``finally``: no process outlives :func:`probe`.
"""

from __future__ import annotations

import faulthandler
import json
import os
import resource
import select
import signal
import time
from dataclasses import asdict
from typing import Any

from . import libc as lc
from .layouts_real import Region, build
from .observe import PageObs, Step, label_steps
from .procfs import (
    KPF_ANON,
    KPF_ANON_EXCLUSIVE,
    KPF_COMPOUND_HEAD,
    KPF_COMPOUND_TAIL,
    KPF_HUGE,
    KPF_THP,
    KPF_ZERO_PAGE,
    PageReader,
    RawPage,
    anon_huge_kb,
    counted_access,
    is_mapped,
)
from .scenarios import Scenario, run_script

TIMEOUT_S = 30.0


def page_obs(p: RawPage) -> PageObs:
    if p.pfn is None:
        return PageObs(uwp=p.uffd_wp, swapped=p.swapped)
    return PageObs(p.pfn, p.exclusive, p.count, p.kflag(KPF_ANON_EXCLUSIVE), p.kflag(KPF_ANON),
                   p.kflag(KPF_COMPOUND_HEAD), p.kflag(KPF_COMPOUND_TAIL), p.kflag(KPF_THP),
                   p.kflag(KPF_ZERO_PAGE), p.file, p.uffd_wp, hugetlb=p.kflag(KPF_HUGE))


class _Local:
    """Observe and access the region from inside the current process."""

    def __init__(self, region: Region, scratch: int, mprotect_first: bool) -> None:
        self.r, self.scratch, self.mprotect_first = region, scratch, mprotect_first
        self.reader = PageReader()   # opened here: pagemap describes the opener's mm

    def observe(self) -> dict[str, Any]:
        pages = [asdict(page_obs(p)) for p in self.reader.read(self.r.addr, self.r.npages)]
        end = self.r.page(self.r.npages)
        return {"pages": pages, "ahp_kb": anon_huge_kb(self.r.addr, end)}

    def access(self, page: int, write: bool) -> dict[str, Any]:
        addr = self.r.page(page)
        op: dict[str, Any] = {"kind": "write" if write else "read", "page": page}
        if not is_mapped(addr):
            op["signal"] = _access_in_grandchild(addr, write)
            return op
        if write and self.mprotect_first:
            lc.mprotect(self.r.addr, self.r.npages * lc.PAGE_SIZE, lc.PROT_RW)
            self.mprotect_first = False
        op["faults"], value = counted_access(addr, self.scratch, write=write,
                                             skip=self.r.span)
        if not write:
            op["value"] = value
        return op


def _access_in_grandchild(addr: int, write: bool) -> str:
    """Touch an address outside every VMA in a throw-away process; report how it died."""
    pid = os.fork()
    if pid == 0:
        try:
            faulthandler.disable()
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            lc.poke(addr, 1) if write else lc.peek(addr)
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return signal.Signals(os.WTERMSIG(status)).name
    return f"exit {os.WEXITSTATUS(status)}"


def _serve_child(local: _Local, cmd_fd: int, out_fd: int) -> None:
    """The scenario's child: answer commands until told to exit."""
    cmds = os.fdopen(cmd_fd, "r")
    for line in cmds:
        cmd = json.loads(line)
        if cmd["do"] == "exit":
            return
        reply = local.observe() if cmd["do"] == "observe" else \
            local.access(cmd["page"], cmd["write"])
        os.write(out_fd, (json.dumps(reply) + "\n").encode())


class RealBackend:
    """:class:`pkmm.realkernel.scenarios.Backend` on the running kernel (in the runner)."""

    def __init__(self, sc: Scenario, region: Region) -> None:
        self.sc, self.r = sc, region
        scratch = lc.mmap(0, lc.PAGE_SIZE, lc.PROT_RW, lc.MAP_PRIVATE | lc.MAP_ANONYMOUS)
        lc.poke(scratch, 1)
        self.local = _Local(region, scratch, sc.writer_mprotect)
        self.pid = 0
        self._cmd_w = self._out_r = -1
        self._out: Any = None

    def _step(self, name: str, who: str, data: dict[str, Any],
              op: dict[str, Any] | None = None) -> Step:
        return Step(name, who, [PageObs(**p) for p in data["pages"]], data["ahp_kb"], op)

    def _ask(self, cmd: dict[str, Any]) -> dict[str, Any]:
        os.write(self._cmd_w, (json.dumps(cmd) + "\n").encode())
        line = self._out.readline()
        if not line:
            raise RuntimeError(f"scenario {self.sc.id}: child died during {cmd}")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def observe(self, name: str, who: str) -> Step:
        data = self.local.observe() if who == "parent" else self._ask({"do": "observe"})
        return self._step(name, who, data)

    def access(self, name: str, who: str, page: int, *, write: bool) -> Step:
        if who == "parent":
            op = self.local.access(page, write)
            return self._step(name, who, self.local.observe(), op)
        op = self._ask({"do": "access", "page": page, "write": write})
        return self._step(name, who, self._ask({"do": "observe"}), op)

    def fork(self) -> None:
        cmd_r, self._cmd_w = os.pipe()
        self._out_r, out_w = os.pipe()
        if self.r.uffd is not None and self.r.uffd.event_fork:
            self.r.uffd.expect_fork()   # fork() waits until the fork event is read
        self.pid = os.fork()
        if self.pid == 0:
            try:
                lc.set_pdeathsig(signal.SIGKILL)
                os.close(self._cmd_w)
                os.close(self._out_r)
                self.local.reader = PageReader()   # the child's own pagemap
                _serve_child(self.local, cmd_r, out_w)
            finally:
                os._exit(0)
        os.close(cmd_r)
        os.close(out_w)
        self._out = os.fdopen(self._out_r, "r")
        if self.r.uffd is not None:
            self.r.uffd.join()

    def child_exit(self) -> None:
        if self.pid:
            os.write(self._cmd_w, b'{"do": "exit"}\n')
            os.waitpid(self.pid, 0)
            self.pid = 0
            os.close(self._cmd_w)
            self._out.close()

    def kill_child(self) -> None:
        if self.pid:
            kill_and_reap(self.pid)
            self.pid = 0


def kill_and_reap(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _run_in_runner(sc: Scenario) -> dict[str, Any]:
    region = build(sc)
    be = RealBackend(sc, region)
    try:
        steps = run_script(sc, be)
    finally:
        be.kill_child()
        region.close()
    label_steps(steps)
    return {"steps": [_step_json(s) for s in steps]}


def _step_json(s: Step) -> dict[str, Any]:
    return {"name": s.name, "who": s.who, "op": s.op, "ahp_kb": s.ahp_kb, "cells": s.cells,
            "pages": [asdict(p) for p in s.pages]}


def probe(sc: Scenario, timeout: float = TIMEOUT_S) -> dict[str, Any]:
    """Run ``sc`` on this kernel in a fresh runner process; the labelled steps as JSON.

    Raises :class:`pkmm.realkernel.layouts_real.LayoutNotObtained` (re-raised from the
    runner) or ``RuntimeError`` when the runner failed or timed out.
    """
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(r)
            lc.set_pdeathsig(signal.SIGKILL)
            try:
                out: dict[str, Any] = _run_in_runner(sc)
            except Exception as e:  # reported to the caller, who re-raises it
                out = {"error": type(e).__name__, "message": str(e)}
            write_all(w, json.dumps(out).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    try:
        data = read_all(r, timeout, sc.id)
    finally:
        os.close(r)
        kill_and_reap(pid)
    result: dict[str, Any] = json.loads(data)
    if "error" in result:
        if result["error"] == "LayoutNotObtained":
            from .layouts_real import LayoutNotObtained
            raise LayoutNotObtained(result["message"])
        raise RuntimeError(f"scenario {sc.id}: {result['error']}: {result['message']}")
    return result


def write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]


def read_all(fd: int, timeout: float, what: str) -> bytes:
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise RuntimeError(f"scenario {what}: runner timed out after {timeout:.0f} s")
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
