"""Snapshot a running process into a pkmm scenario: its VMAs, PTEs and folios.

Kernel interfaces: those of :mod:`pkmm.realkernel.procpid` (smaps, pagemap, PAGEMAP_SCAN,
kpageflags, kpagecount, userfaultfd fdinfo), read as :mod:`pkmm.realkernel.pages`
explains.  ``python -m pkmm snapshot PID [-o FILE]`` is the command line.
Taught in: notebooks/10-real-process.ipynb

What the kernel does not export is *approximated and said so*: the scenario's
``approximations`` lists every guess (for example "without root the PFNs read as 0, so
folio sizes are unknown: PTE-mapped pages are taken as 4K folios"), and ``source`` records
what could be read.  Nothing is invented silently.  Contiguous pages with the same bits
are written as ``runs`` (one entry per stretch, not per page), so a 1 GiB process is a
small file and is read in about a second.
"""

from __future__ import annotations

import os
import platform
import textwrap
from collections import Counter
from typing import Any

from ..scenario import Scenario
from .model import model_kernel
from .pages import ANON, HUGE_ZERO, KINDS, PAGECACHE, SWAP, ZERO, Pages, classify, scan_masks
from .procpid import (
    PAGE_IS_HUGE,
    PAGE_IS_PFNZERO,
    PAGE_IS_PRESENT,
    PAGE_IS_SWAPPED,
    Pagemap,
    SnapshotError,
    VmaInfo,
    open_kpages,
    process_identity,
    read_smaps,
    shmem_devices,
    swap_total_kb,
    uffd_event_fork,
)
from .runs import encode_vma

SPECIAL = ("[vdso]", "[vvar]", "[vvar_vclock]", "[uprobes]", "[sigpage]", "[vectors]")
SHMEM_PATHS = ("/memfd:", "/SYSV", "/dev/zero", "[anon_shmem")
SKIPPED = {"ht": "hugetlb VMA {label} ({mib} MiB) left out: hugetlb has its own copy path "
                 "(copy_hugetlb_page_range), which pkmm does not model"}
READ_CHUNK = 1 << 18      # pages of pagemap read at once (2 MiB of entries)

__all__ = ["SnapshotError", "snapshot", "summary"]


def snapshot(pid: int | None = None, *, within: list[tuple[int, int]] | None = None,
             privileged: bool = True, progress: bool | None = None) -> Scenario:
    """A :class:`pkmm.scenario.Scenario` of process ``pid`` (default: this process).

    ``within``: only the VMAs inside these [start, end) address ranges.
    ``privileged=False``: read only what a user without root may read, even as root (no
    PFNs, no /proc/kpageflags), to see what such a user's snapshot has to guess.

    Raises :class:`SnapshotError` for a PID that does not exist, a process that exits
    while it is read, or one this user may not inspect.
    """
    from ..progress import bar
    pid = os.getpid() if pid is None else pid
    ident = process_identity(pid)
    vmas = [v for v in read_smaps(pid) if within is None
            or any(lo <= v.start and v.end <= hi for lo, hi in within)]
    if not isinstance(privileged, bool):
        raise SnapshotError(f"privileged={privileged!r}: True (read all this user may) or "
                            "False (the view of a user without root)")
    pm = Pagemap(pid, show_pfn=privileged)
    kp, kp_why = open_kpages() if privileged else (
        None, "/proc/kpageflags not read: privileged=False, the view of a user without root")
    notes: Counter[str] = Counter()
    ctx = _Context(pid, vmas, pm, kp, notes)
    out: dict[str, Any] = {"name": f"pid {pid} ({ident[0]})",
                           "kernel": model_kernel(platform.release()), "vmas": []}
    try:
        with bar(total=sum(v.npages for v in vmas), desc=f"snapshot {pid}", unit="page",
                 enabled=progress) as b:
            for v in vmas:
                ctx.add_vma(v, out)
                b.update(v.npages)
    finally:
        pm.close()
        if kp is not None:
            kp.close()
    if process_identity(pid) != ident:
        raise SnapshotError(f"pid={pid}: the process exited while it was read (the PID now "
                            "names another process); snapshot a process that keeps running")
    out["source"] = ctx.source(ident, kp_why)
    if ctx.pfns_seen:
        # where the kernel put the pages: the cost model prices the struct pages fork
        # touches cold from it (pkmm.costmodel.placed); read from the frames this
        # snapshot already has, so pagemap is read once
        out["source"]["streams"] = ctx.streams
    out["approximations"] = ctx.approximations(kp_why)
    out["description"] = (f"snapshot of {out['name']} on Linux {platform.release()}: "
                          f"{len(out['vmas'])} VMAs")
    return Scenario.from_dict(out)


def _folio_streams(segments: list[Pages]) -> dict[int, int]:
    """The struct-page streams (:func:`pkmm.machine.struct_page_streams`) of the folio
    pages (anon and page cache) of one VMA's ``segments`` whose frames were read."""
    import numpy as np

    from ..machine import struct_page_streams
    vpns, pfns = [], []
    for p in segments:
        i = np.flatnonzero(((p.kind == ANON) | (p.kind == PAGECACHE)) & (p.head > 0))
        vpns.append((p.start >> 12) + i)
        pfns.append(p.head[i] + p.index[i])
    if not vpns or not sum(len(v) for v in vpns):
        return {}
    return struct_page_streams(np.concatenate(vpns), np.concatenate(pfns))


class _Context:
    """What one snapshot has learnt so far, and what it had to guess."""

    def __init__(self, pid: int, vmas: list[VmaInfo], pm: Pagemap, kp: Any,
                 notes: Counter[str]) -> None:
        self.pid, self.pm, self.kp, self.notes = pid, pm, kp, notes
        self.soft_dirty_config = any("sd" in v.flags for v in vmas)
        self.swap_configured = swap_total_kb() > 0
        self.shm_devs = shmem_devices(pid)
        self.kinds: Counter[str] = Counter()
        self.orders: Counter[int] = Counter()
        self.pfns_seen = False
        self.next_raw_pfn = 0x400
        self.last_folio: tuple[int, int, int, int] | None = None   # addr, head, index, order
        #: (order, backing) -> (head pfn, next page) of the last folio a run left unfinished
        self.open_folios: dict[tuple[int, str], tuple[int, int]] = {}
        self._uffd: list[bool] | None = None
        #: per VMA (its start, in hex) with frames seen: the struct-page streams of the
        #: pages whose struct page fork touches (the folio pages, not the zero pages), as
        #: JSON keeps them (lengths as strings)
        self.streams: dict[str, dict[str, int]] = {}

    def continues(self, p: Pages, i: int) -> bool:
        """Whether page ``i`` of ``p`` goes on with the folio the last run ended in."""
        if self.last_folio is None:
            return False
        addr, head, index, order = self.last_folio
        return (p.start + (i << 12) == addr + 4096 and order > 0 and head > 0
                and int(p.order[i]) == order and int(p.head[i]) == head
                and int(p.index[i]) == index + 1)

    def add_vma(self, v: VmaInfo, out: dict[str, Any]) -> None:
        label = v.path or "[anon]"
        for flag, why in SKIPPED.items():
            if flag in v.flags:
                self.notes[why.format(label=label, mib=(v.end - v.start) >> 20)] += 1
                return
        if v.path == "[vsyscall]":
            return      # kernel: the gate area is not a VMA of the mm; fork never sees it
        segments = list(self._segments(v))
        backing = self._backing(v)
        vma = {"start": v.start, "npages": v.npages, "backing": backing,
               "label": label[:120]}
        if "sh" in v.flags or v.perms[3] == "s":
            vma["shared"] = True
        if "wr" not in v.flags:
            vma["write"] = False
        kinds = Counter[int]()
        for p in segments:
            kinds.update(p.kind.tolist())
        self._vma_flags(v, vma, kinds)
        out["vmas"].append(vma)
        for p in segments:
            encode_vma(p, vma, self, out)
        streams = _folio_streams(segments)
        if streams:
            self.streams[hex(v.start)] = {str(n): c for n, c in streams.items()}
        for code, n in kinds.items():
            if code:
                self.kinds[KINDS[code]] += n

    def _segments(self, v: VmaInfo) -> Any:
        """The populated stretches of ``v`` as :class:`Pages` (PAGEMAP_SCAN finds them;
        without it the whole VMA is read, in chunks)."""
        found = self.pm.scan(v.start, v.end, PAGE_IS_PRESENT | PAGE_IS_SWAPPED
                             | PAGE_IS_PFNZERO | PAGE_IS_HUGE)
        if found is None:
            spans = [(a, min(a + (READ_CHUNK << 12), v.end))
                     for a in range(v.start, v.end, READ_CHUNK << 12)]
        else:
            spans = _merge([(lo, hi) for lo, hi, _ in found])
        for lo, hi in spans:
            n = (hi - lo) >> 12
            p = classify(lo, self.pm.entries(lo, n), scan_masks(found, lo, n),
                         pfnmap="pf" in v.flags or "mm" in v.flags, kpages=self.kp,
                         swap_configured=self.swap_configured)
            if found is None:
                self._zero_without_scan(v, p)
            self.pfns_seen |= bool((p.head > 0).any())
            yield p

    def _zero_without_scan(self, v: VmaInfo, p: Pages) -> None:
        """Before 6.7 (no PAGEMAP_SCAN) and without root, a zero page looks like an anon
        page mapped twice.  smaps counts only pages with a struct page (Rss, Anonymous),
        so present non-file PTEs minus Anonymous is the number of zero pages."""
        import numpy as np
        if self.kp is not None:
            return
        cand = np.flatnonzero((p.kind == ANON) & ~p.excl)
        nzero = len(np.flatnonzero(p.kind == ANON)) - v.kb.get("Anonymous", 0) // 4
        if nzero <= 0 or not len(cand):
            return
        p.kind[cand[:nzero]] = ZERO
        if nzero < len(cand):
            self.notes["which non-exclusive anon PTEs are zero pages is a guess (no "
                       "PAGEMAP_SCAN before Linux 6.7, no kpageflags without root): "
                       "only their number per VMA is known from smaps"] += 1

    def _backing(self, v: VmaInfo) -> str:
        if v.path.startswith(SHMEM_PATHS) or (v.inode and v.dev in self.shm_devs):
            return "shmem"
        if v.path in SPECIAL:
            return "file"     # kernel special mappings: their pages are not anonymous
        return "anon" if not v.inode else "file"

    def _vma_flags(self, v: VmaInfo, vma: dict[str, Any], kinds: Counter[int]) -> None:
        for flag, key in (("dc", "dontfork"), ("wf", "wipeonfork"), ("pf", "pfnmap"),
                          ("uw", "uffd_wp")):
            if flag in v.flags:
                vma[key] = True
        if "mm" in v.flags:
            vma["pfnmap"] = True
            self.notes["VM_MIXEDMAP VMAs modelled as VM_PFNMAP (both are always copied at "
                       "fork; their PTEs copied by value)"] += 1
        if "lo" in v.flags:
            self.notes["mlock (VM_LOCKED) is not modelled; fork does not pass it to the "
                       "child"] += 1
        if self.soft_dirty_config and "sd" not in v.flags:
            vma["soft_dirty_tracking"] = True
        if "uw" in v.flags:
            vma["uffd_fork"] = self._uffd_fork()
        private = not vma.get("shared")
        evidence = kinds[ANON] + kinds[SWAP] + kinds[HUGE_ZERO] + v.kb.get("Anonymous", 0) \
            + v.kb.get("Swap", 0)
        if private and evidence:
            vma["anon_vma"] = True
        elif private and kinds[ZERO] and vma["backing"] == "anon":
            self.notes["a private VMA holding only zero pages is taken to have no anon_vma "
                       "(fork then skips it); one inherited through a VMA split would be "
                       "copied (not visible in /proc)"] += 1

    def _uffd_fork(self) -> bool:
        if self._uffd is None:
            self._uffd = uffd_event_fork(self.pid)
        if len(set(self._uffd)) == 1:
            return self._uffd[0]
        self.notes["uffd-wp VMA: its userfaultfd context (UFFD_FEATURE_EVENT_FORK or not) "
                   "could not be identified from fdinfo; taken as without EVENT_FORK"] += 1
        return False

    def raw_pfns(self, n: int) -> int:
        """Stand-in PFNs for raw (VM_PFNMAP) PTEs: below the model's first folio."""
        first = self.next_raw_pfn
        self.next_raw_pfn = first + n if first + n < 0xF00 else 0x400
        return first

    def source(self, ident: tuple[str, int], kp_why: str) -> dict[str, Any]:
        return {"pid": self.pid, "comm": ident[0], "kernel_release": platform.release(),
                "uid": os.geteuid(), "pfns_visible": self.pfns_seen,
                "kpageflags": not kp_why, "pagemap_scan": bool(self.pm.scan_ok),
                "pages": dict(self.kinds), "folio_orders": {str(k): v for k, v in
                                                            sorted(self.orders.items())}}

    def approximations(self, kp_why: str) -> list[str]:
        out = []
        if kp_why or not self.pfns_seen:
            why = kp_why or "the PFNs read as 0 (reading them needs CAP_SYS_ADMIN)"
            out += [f"folio sizes unknown ({why}): PTE-mapped pages are taken as 4K folios "
                    "(PMD-mapped THPs are still seen)",
                    "AnonExclusive not visible: taken from pagemap bit 56 (mapped once); a "
                    "page left read-only by an earlier fork reads as exclusive",
                    "page-cache PTEs taken as clean (the folio dirty flag needs kpageflags)"]
        else:
            out.append("AnonExclusive of a large folio's tail pages is not exported: the "
                       "head page's flag (kpageflags) is used for every page")
        if not self.pm.scan_ok:
            out.append("no PAGEMAP_SCAN (Linux < 6.7): PMD mappings are not seen; "
                       "THPs read as PTE-mapped")
        out += ["PTE write bits are not exported: an anon PTE is taken as writable when "
                "its VMA is writable and its page is AnonExclusive; page-cache PTEs in "
                "private mappings are read-only, as the kernel maps them",
                "PTE dirty/young bits are not exported: anon PTEs taken as dirty and young",
                "FOLL_PIN pins and MMF_HAS_PINNED are not exported: no page is taken as "
                "pinned"]
        if self.kinds["swap"]:
            out.append("swap entries: their swap count and SWP_EXCLUSIVE bit are not "
                       "exported; taken as exclusive, count 1")
        out += [f"{k} ({n} VMA{'s' if n > 1 else ''})" for k, n in sorted(self.notes.items())]
        return out


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Join touching [lo, hi) spans.

    >>> _merge([(0, 4096), (4096, 8192), (12288, 16384)])
    [(0, 8192), (12288, 16384)]
    """
    out: list[tuple[int, int]] = []
    for lo, hi in spans:
        if out and out[-1][1] == lo:
            out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


def summary(sc: Scenario) -> str:
    """What a snapshot holds and what it approximated, as a short text."""
    src = sc.source
    seen = ", ".join(k for k, on in (("PFNs", src.get("pfns_visible")),
                                     ("kpageflags", src.get("kpageflags")),
                                     ("PAGEMAP_SCAN", src.get("pagemap_scan"))) if on)
    # raw PFN maps apart, as fork treats them apart (always copied, no page behind them):
    # the same kinds as notebook 10's table, so that the page groups its VMAs one way
    kinds = Counter("raw PFN map" if v.get("pfnmap") else
                    ("shared " if v.get("shared") else "private ") + v.get("backing", "anon")
                    for v in sc.vmas)
    lines = [f"{sc.name}: Linux {src.get('kernel_release', '?')}, read as uid "
             f"{src.get('uid', '?')} (seen: {seen or 'pagemap bits only'})",
             f"  {len(sc.vmas)} VMAs: " + ", ".join(f"{n} {k}" for k, n in kinds.items()),
             "  PTEs: " + ", ".join(f"{n} {k}" for k, n in src.get("pages", {}).items()),
             "  folios by order: " + (", ".join(f"order {k}: {n}" for k, n in
                                               src.get("folio_orders", {}).items()) or "-")]
    if sc.approximations:
        lines.append("  approximated (not exported by the kernel):")
        # wrapped at words: a notebook's output box would break a long line mid-word
        lines += [textwrap.fill(a, 88, initial_indent="   - ", subsequent_indent="     ")
                  for a in sc.approximations]
    return "\n".join(lines)



def main(argv: list[str] | None = None) -> int:
    """``python -m pkmm snapshot PID [-o FILE]``: the scenario as JSON (stdout, or FILE
    plus a summary on stdout); the summary also goes to stderr with JSON on stdout."""
    import argparse
    import json
    import sys
    ap = argparse.ArgumentParser(prog="python -m pkmm snapshot",
                                 description="Snapshot a running process into a pkmm "
                                             "scenario (JSON).")
    ap.add_argument("pid", help="the PID of a running process")
    ap.add_argument("-o", "--output", help="write the scenario to this file")
    ap.add_argument("--unprivileged", action="store_true",
                    help="read only what a user without root may (no PFNs, no kpageflags)")
    ap.add_argument("--progress", action="store_true", default=None,
                    help="draw a progress bar even when stderr is not a terminal")
    try:
        a = ap.parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    try:
        if not a.pid.isdigit():
            raise SnapshotError(f"pid={a.pid!r}: a process id is a positive number")
        sc = snapshot(int(a.pid), privileged=not a.unprivileged, progress=a.progress)
        text = json.dumps(sc.to_dict(), indent=1) + "\n"
        if a.output:
            with open(a.output, "w") as f:
                f.write(text)
    except (SnapshotError, OSError) as e:
        print(f"pkmm snapshot: error: {e}", file=sys.stderr)
        return 2
    if a.output:
        print(summary(sc))
        print(f"wrote {a.output}")
    else:
        sys.stdout.write(text)
        print(summary(sc), file=sys.stderr)
    return 0
