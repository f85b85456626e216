"""Real fork() latency of a private anonymous region, per folio layout.

Kernel interfaces: fork(2) timed with CLOCK_MONOTONIC (``time.perf_counter_ns``), mmap +
MADV_HUGEPAGE/NOHUGEPAGE + MADV_POPULATE_WRITE, the mTHP ``hugepages-*kB/enabled`` knobs
(exactly one size enabled while measuring, restored afterwards), mprotect to PTE-map a
PMD THP, and pagemap/kpageflags/smaps to check the layout really was obtained.
Taught in: notebooks/09-real-kernel-lab.ipynb

Python's ``os.fork`` costs more than a C fork (a bigger process to copy, interpreter
hooks), so every measurement also times forking the same worker *before* the region
exists (``baseline_ns``) and reports the region's share, ``net_ns = median - baseline``.
Measurements run in a forked worker process that dies with its caller; its children
exit at once and are reaped before the next sample.
"""

from __future__ import annotations

import json
import os
import select
import signal
import statistics
import sys
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

from . import libc as lc
from . import thp
from .probe import kill_and_reap, write_all

FOLIOS = ("4K", "16K", "32K", "64K", "128K", "256K", "512K", "1M", "2M-pte", "2M-pmd")
MODES = ("fresh", "repeat")


def folio_pages(folio: str) -> int:
    """Base pages per folio for a layout name.

    >>> folio_pages("4K"), folio_pages("64K"), folio_pages("1M"), folio_pages("2M-pmd")
    (1, 16, 256, 512)
    """
    if folio not in FOLIOS:
        raise ValueError(f"folio={folio!r}: use one of {', '.join(FOLIOS)}")
    if folio.startswith("2M"):
        return 512
    return (1024 if folio.endswith("M") else 1) * int(folio[:-1]) // 4


def _knobs(folio: str) -> dict[str, str]:
    if folio == "4K":
        return {}
    if folio.startswith("2M"):
        return thp.only_size(None, pmd=True)
    return thp.only_size(folio_pages(folio) * 4)


def unavailable(size_bytes: int, folio: str) -> str | None:
    """Why :func:`measure_fork` cannot run this layout here, or None."""
    if not sys.platform.startswith("linux"):
        return f"not Linux ({sys.platform})"
    if folio != "4K":
        kb = 2048 if folio.startswith("2M") else folio_pages(folio) * 4
        if kb not in thp.anon_sizes_kb():
            return f"kernel has no {kb}K anonymous THP size"
        if not thp.writable():
            return "THP sysfs knobs not writable (need root)"
    avail = _mem_available()
    if avail is not None and size_bytes * 5 // 4 > avail:
        return f"needs {size_bytes >> 20} MiB, only {avail >> 20} MiB available"
    return None


def _mem_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def fork_ns(quiet: bool = True) -> int:
    """One fork() timed alone; the child exits at once.  Where allowed (root) the parent
    runs SCHED_FIFO for just that call, so the other users of a shared machine cannot
    preempt it half-way; with ``quiet`` it first waits (up to half a second) until the other
    CPUs are idle, so their memory traffic does not slow the copy (:func:`wait_quiet`)."""
    if quiet:
        wait_quiet()
    rt = _realtime(True)
    try:
        t0 = time.perf_counter_ns()
        pid = os.fork()
        t1 = time.perf_counter_ns()
        if pid == 0:
            os._exit(0)
    finally:
        if rt:
            _realtime(False)
    os.waitpid(pid, 0)
    return t1 - t0


def _cpu_times() -> dict[str, tuple[int, int]]:
    """Per CPU (busy, total) jiffies from /proc/stat; busy includes steal time."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                name, *v = line.split()
                t = [int(x) for x in v[:8]]
                out[name] = (t[0] + t[1] + t[2] + t[5] + t[6] + t[7], sum(t))
    return out


def wait_quiet(window: float = 0.04, busy: float = 0.15, timeout: float = 0.5) -> bool:
    """Wait until every CPU but this one was less than ``busy`` busy over ``window``
    seconds (or ``timeout`` passed); True if it got quiet."""
    try:
        me = f"cpu{int(open('/proc/self/stat').read().rsplit(')', 1)[1].split()[36])}"
    except (OSError, ValueError, IndexError):
        return False
    deadline = time.monotonic() + timeout
    while True:
        a = _cpu_times()
        time.sleep(window)
        b = _cpu_times()
        loads = [(b[c][0] - a[c][0]) / max(b[c][1] - a[c][1], 1) for c in b if c != me]
        if not loads or max(loads) < busy:
            return True
        if time.monotonic() > deadline:
            return False


def _realtime(on: bool) -> bool:
    """Switch this process to SCHED_FIFO priority 1 (or back); False if not allowed."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO if on else os.SCHED_OTHER,
                              os.sched_param(1 if on else 0))
        return True
    except (OSError, AttributeError):
        return False


class _Region:
    """A 2 MiB-aligned anon region between PROT_NONE guards, populated as ``folio`` says."""

    def __init__(self, size: int, folio: str) -> None:
        self.size, self.folio = size, folio
        self.total = size + 2 * lc.PMD_SIZE
        self.base = lc.mmap(0, self.total, lc.PROT_NONE,
                            lc.MAP_PRIVATE | lc.MAP_ANONYMOUS | lc.MAP_NORESERVE)
        self.addr = (self.base + lc.PMD_SIZE) & ~(lc.PMD_SIZE - 1)
        self.populate()

    def populate(self) -> None:
        lc.mmap(self.addr, self.size, lc.PROT_RW,
                lc.MAP_PRIVATE | lc.MAP_ANONYMOUS | lc.MAP_FIXED)
        huge = self.folio != "4K"
        lc.madvise(self.addr, self.size, lc.MADV_HUGEPAGE if huge else lc.MADV_NOHUGEPAGE)
        lc.madvise(self.addr, self.size, lc.MADV_POPULATE_WRITE)
        if self.folio == "2M-pte":
            # split each PMD (the folio stays whole), then keep khugepaged away
            for a in range(self.addr, self.addr + self.size, lc.PMD_SIZE):
                lc.mprotect(a, lc.PAGE_SIZE, lc.PROT_READ)
                lc.mprotect(a, lc.PAGE_SIZE, lc.PROT_RW)
            lc.madvise(self.addr, self.size, lc.MADV_NOHUGEPAGE)

    def check(self) -> str | None:
        """None if the folio layout is as asked (sampled), else what was found."""
        from .procfs import KPF_COMPOUND_HEAD, KPF_THP, PageReader, anon_huge_kb
        ahp = anon_huge_kb(self.addr, self.addr + self.size) * 1024
        want_ahp = self.size if self.folio == "2M-pmd" else 0
        if ahp != want_ahp:
            return f"AnonHugePages {ahp >> 10} kB, expected {want_ahp >> 10} kB"
        n = folio_pages(self.folio)
        try:
            reader = PageReader()
        except OSError:
            return None            # not root: only the smaps check is possible
        try:
            pages = reader.read(self.addr, min(self.size // lc.PAGE_SIZE, 4096))
        finally:
            reader.close()
        for i, p in enumerate(pages):
            head = p.kflag(KPF_COMPOUND_HEAD)
            if p.pfn and (p.kflag(KPF_THP) != (n > 1) or (n > 1 and head != (i % n == 0))):
                return f"page {i} is not in a {n * 4}K folio"
        return None

    def close(self) -> None:
        lc.munmap(self.base, self.total)


def _sample(size: int, layout: str, mode: str
            ) -> tuple[int, str | None, dict[int, int] | None]:
    """One timed fork of a freshly built ``layout`` region (REPEAT: after one warm-up
    fork), the layout check, and where the kernel put the region's pages (its struct-page
    streams, :mod:`pkmm.realkernel.placement`; None for a PMD-mapped region, whose fork
    touches no per-page struct page, or where the frames are hidden)."""
    from .placement import region_streams
    region = _Region(size, layout)
    try:
        if mode == "repeat":
            fork_ns()          # PTEs read-only, no longer AnonExclusive
        ns = fork_ns()
        # read after the timed fork: fork moves no page, and the read must not disturb it
        streams = None if layout == "2M-pmd" else region_streams(
            os.getpid(), [(region.addr, size >> 12)])
        return ns, region.check(), streams
    finally:
        region.close()


def _sample_server(out: int, cmds: int, size: int, mode: str) -> None:
    """In the worker: for each command line ``{"layout": L}`` build L afresh, time one
    fork, reply ``{"layout", "ns", "layout_check"}``; "baseline" forks with no region."""
    fork_ns()
    with os.fdopen(cmds, "r") as f:
        for line in f:
            lay = json.loads(line)["layout"]
            ns, check, streams = (fork_ns(), None, None) if lay == "baseline" else \
                _sample(size, lay, mode)
            write_all(out, (json.dumps({"layout": lay, "ns": ns, "layout_check": check,
                                        "streams": streams}) + "\n").encode())


def interleaving(folios: list[str], ref: str, rounds: int) -> list[str]:
    """The order of samples: per round one baseline, then ``ref`` before every other
    layout, the other layouts rotated by one each round.

    >>> interleaving(["16K", "64K"], "4K", 2)
    ['baseline', '4K', '16K', '4K', '64K', 'baseline', '4K', '64K', '4K', '16K']
    """
    out = []
    for k in range(rounds):
        out.append("baseline")
        for i in range(len(folios)):
            out += [ref, folios[(i + k) % len(folios)]]
    return out


def measure_interleaved(size_bytes: int, folios: list[str], *, ref: str = "4K",
                        mode: str = "fresh", rounds: int = 15, timeout: float = 1800.0,
                        progress: bool | None = None) -> dict[str, Any] | None:
    """Fork-time regions of ``size_bytes`` of every layout in ``folios``, with a ``ref``
    (4K) sample before each, for ``rounds`` rounds (see :func:`interleaving`).

    Every sample builds its region afresh (FRESH: populated and forked; REPEAT: populated,
    forked once, then timed) under the THP knobs its layout needs, switched through
    :func:`pkmm.realkernel.thp.thp_settings` sample by sample; a slow drift of the machine
    (load, fragmentation) thus hits every layout alike.  Returns the samples, their minima
    and the speed-ups over ``ref`` (see :func:`summarise`), or None when the machine cannot
    (:func:`unavailable` says why).  1 GiB FRESH, one layout, 15 rounds: about 20 s.
    """
    from ..progress import bar
    if mode not in MODES:
        raise ValueError(f"mode={mode!r}: use 'fresh' or 'repeat'")
    if _knobs(ref):
        raise ValueError(f"ref={ref!r}: the reference layout must need no THP knobs (4K)")
    folios = [f for f in folios if not unavailable(size_bytes, f)]
    if not folios or unavailable(size_bytes, ref):
        return None
    order = interleaving(folios, ref, rounds)
    samples: dict[str, list[int]] = {lay: [] for lay in ["baseline", ref, *folios]}
    placed: dict[str, list[Any]] = {lay: [] for lay in samples}
    rounds_of: dict[str, list[int]] = {lay: [] for lay in samples}
    k = -1
    bad: dict[str, str] = {}
    cmd_r, cmd_w = os.pipe()

    def serve(w: int) -> None:
        os.close(cmd_w)
        _sample_server(w, cmd_r, size_bytes, mode)
    replies = _run_worker(serve, timeout, f"fork timing {mode}", close_in_parent=cmd_r)
    try:
        with bar(total=len(order), desc=f"fork timing {mode}", enabled=progress) as b:
            for lay in order:
                k += lay == "baseline"          # each round opens with its baseline
                with thp.thp_settings(_knobs(lay) if lay != "baseline" else {}):
                    write_all(cmd_w, (json.dumps({"layout": lay}) + "\n").encode())
                    msg = next(replies, None)
                if msg is None:
                    raise RuntimeError(f"measure_interleaved: the worker died at {lay}")
                if msg["layout_check"]:
                    bad.setdefault(lay, msg["layout_check"])
                else:
                    samples[lay].append(msg["ns"])
                    placed[lay].append(msg.get("streams"))
                    rounds_of[lay].append(k)
                b.update(1)
    finally:
        os.close(cmd_w)
        replies.close()
    return {"size_bytes": size_bytes, "mode": mode, "rounds": rounds, "ref": ref,
            "folios": folios, "samples_ns": samples, "layout_failures": bad,
            **summarise(samples, folios, ref),
            # where the kernel put the pages of each layout's fastest sample: the cost
            # model prices that sample's cold struct pages (pkmm.costmodel.placed)
            "streams_min": {lay: placed[lay][samples[lay].index(min(samples[lay]))]
                            for lay in [ref, *folios] if samples[lay]},
            "sample_rounds": rounds_of}


def split_half(run: dict[str, Any]) -> tuple[dict[str, float], dict[str, float]] | None:
    """The speed-ups of one :func:`measure_interleaved` run from its even rounds and from
    its odd rounds, each as :func:`summarise` computes them: how far two halves of the
    same run disagree is how well the run measured a speed-up at all.  None for a run
    without the round of every sample (stored before 2026-12-02) or with under 2 rounds.

    >>> run = {"folios": ["64K"], "ref": "4K",
    ...        "samples_ns": {"baseline": [1, 1], "4K": [21, 25], "64K": [11, 9]},
    ...        "sample_rounds": {"baseline": [0, 1], "4K": [0, 1], "64K": [0, 1]}}
    >>> split_half(run)
    ({'64K': 2.0}, {'64K': 3.0})
    """
    rounds = run.get("sample_rounds")
    if not rounds:
        return None
    halves = []
    for parity in (0, 1):
        part = {lay: [ns for ns, k in zip(run["samples_ns"][lay], rounds[lay], strict=True)
                      if k % 2 == parity] for lay in run["samples_ns"]}
        if not part["baseline"] or not part[run["ref"]]:
            return None
        halves.append(summarise(part, [f for f in run["folios"] if part.get(f)],
                                run["ref"])["speedup"])
    return halves[0], halves[1]


def measure_pair(size_bytes: int, folio: str, *, ref: str = "4K", mode: str = "fresh",
                 rounds: int = 15, progress: bool | None = None) -> dict[str, Any] | None:
    """:func:`measure_interleaved` of one layout against ``ref``."""
    return measure_interleaved(size_bytes, [folio], ref=ref, mode=mode, rounds=rounds,
                               progress=progress)


def summarise(samples: dict[str, list[int]], folios: list[str], ref: str) -> dict[str, Any]:
    """Minima and medians of interleaved samples, net of the baseline, and the speed-ups.

    ``net = min(layout) - min(baseline)``: on a shared machine every disturbance only
    adds time, so the minimum of many interleaved runs is the steadiest estimate; every
    speed-up divides by the one ``ref`` minimum of the whole run.

    >>> s = summarise({"baseline": [5, 4], "4K": [24, 30], "64K": [14, 12]}, ["64K"], "4K")
    >>> s["net_min_ns"], s["speedup"]
    ({'4K': 20, '64K': 8}, {'64K': 2.5})
    """
    base = min(samples["baseline"]) if samples["baseline"] else 0
    lays = [ref, *folios]
    net = {lay: min(samples[lay]) - base for lay in lays if samples[lay]}
    med = {lay: statistics.median(samples[lay]) - statistics.median(samples["baseline"])
           for lay in lays if samples[lay] and samples["baseline"]}
    speed = {f: net[ref] / net[f] for f in folios if ref in net and net.get(f, 0) > 0}
    return {"baseline_min_ns": base, "net_min_ns": net, "net_median_ns": med,
            "speedup": speed}


def _run_worker(body: Any, timeout: float, what: str,
                close_in_parent: int | None = None
                ) -> Generator[dict[str, Any], None, None]:
    """Fork a worker *now* that runs ``body(write_fd)`` and dies with us; return an
    iterator over its JSON lines that kills and reaps it when closed or exhausted.

    The fork happens before the caller takes the THP lock: a worker forked inside
    :func:`~pkmm.realkernel.thp.thp_settings` would share the lock's open file and keep
    the lock held after the caller released it.
    """
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            lc.set_pdeathsig(signal.SIGKILL)
            body(w)
        finally:
            os._exit(0)
    os.close(w)
    if close_in_parent is not None:
        os.close(close_in_parent)
    return _reap_after(pid, os.fdopen(r, "rb", buffering=0), timeout, what)


def _reap_after(pid: int, f: Any, timeout: float, what: str
                ) -> Generator[dict[str, Any], None, None]:
    try:
        yield from json_lines(f, timeout, what)
    finally:
        f.close()
        kill_and_reap(pid)


def json_lines(f: Any, timeout: float, what: str) -> Iterator[dict[str, Any]]:
    deadline, buf = time.monotonic() + timeout, b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([f], [], [], left)[0]:
            raise RuntimeError(f"{what}: worker timed out after {timeout:.0f} s")
        chunk = f.read(1 << 16)
        if not chunk:
            return
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for line in lines:
            yield json.loads(line)


def available_folios() -> list[str]:
    """The layouts this machine offers (4K always on Linux; mTHP sizes with a knob)."""
    sizes = thp.anon_sizes_kb()
    out = ["4K"] + [f for f in FOLIOS[1:-2] if folio_pages(f) * 4 in sizes]
    return out + (["2M-pte", "2M-pmd"] if 2048 in sizes else [])


def parse_size(text: str) -> int:
    """``"256M"`` / ``"1G"`` -> bytes.

    >>> parse_size("256M"), parse_size("1G")
    (268435456, 1073741824)
    """
    unit = {"M": 1 << 20, "G": 1 << 30}[text[-1].upper()]
    return int(text[:-1]) * unit
