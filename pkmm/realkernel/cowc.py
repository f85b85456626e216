"""Build and run the kernel's own CoW selftest (tools/testing/selftests/mm/cow.c) here.

Kernel interfaces: the selftest itself (fork, mprotect, mremap, madvise MADV_PAGEOUT /
DONTFORK / COLLAPSE, vmsplice, io_uring fixed buffers, the gup_test debugfs file), a
temporary swapfile (swapon(8)/swapoff(8)), the hugetlb pool
(``/sys/kernel/mm/hugepages/hugepages-<N>kB/nr_hugepages``) and the THP sysfs knobs.
Taught in: notebooks/09-real-kernel-lab.ipynb

The source comes from Debian's ``linux-source-<ver>`` package (installed with apt when
missing and allowed), the build needs gcc and ``liburing-dev``.  Everything global that the
run changes -- swap, hugetlb reservations, every THP knob cow.c's own thp_settings.c
writes -- is changed while :func:`pkmm.realkernel.thp.thp_settings` holds the machine-wide
THP lock, and restored on every exit path.  The TAP output is parsed case by case into
``pkmm/data/cowc-<kernel>.json``: ``python -m pkmm realkernel --cowc --save``.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import platform
import re
import shutil
import subprocess
import tarfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import thp
from .sysconf import hugetlb_reserved, temporary_swap

SELFTEST = "tools/testing/selftests/mm"
#: Members of the source tarball the build needs (the rest of the tree stays packed).
MEMBERS = (f"{SELFTEST}/cow.c", f"{SELFTEST}/vm_util.c", f"{SELFTEST}/vm_util.h",
           f"{SELFTEST}/thp_settings.c", f"{SELFTEST}/thp_settings.h",
           f"{SELFTEST}/check_config.sh", "tools/testing/selftests/kselftest.h",
           "mm/gup_test.h")
MEMBER_DIRS = ("tools/include/", "tools/arch/x86/include/")
#: hugetlb pages reserved per size: cow.c needs two of a size (the region and a spare for
#: the CoW copy), memfd cases one more for the private copy.
HUGETLB_WANT = {2048: 4, 1048576: 2}
SWAP_MIB = 512
#: What cow.c's thp_settings.c writes besides the ``enabled`` knobs thp.py restores.
EXTRA_THP_KNOBS = ("defrag", "shmem_enabled", "use_zero_page", "khugepaged/defrag",
                   "khugepaged/alloc_sleep_millisecs", "khugepaged/scan_sleep_millisecs",
                   "khugepaged/max_ptes_none", "khugepaged/max_ptes_swap",
                   "khugepaged/max_ptes_shared", "khugepaged/pages_to_scan")
#: Why the live kernel skipped a case, by cow.c's skip message.
SKIP_WHY = {
    "gup_test not available": "CONFIG_GUP_TEST is off in this kernel: no "
                              "/sys/kernel/debug/gup_test to take R/O (GUP-fast) pins with",
    "MADV_PAGEOUT did not work, is swap enabled?": "no swap space: the page could not be "
                                                   "swapped out",
    "need more free huge pages": "no free hugetlb pages of this size were reserved",
    "Huge zeropage not enabled": "the THP use_zero_page knob is 0",
    "Did not get a THP populated": "the kernel did not allocate a THP of this size",
}


class CowcUnavailable(RuntimeError):
    """cow.c cannot be built or run here; the message says why."""


# --- TAP output --------------------------------------------------------------------------

@dataclass(frozen=True)
class CaseResult:
    """One cow.c test case as the kernel ran it."""

    n: int
    case: str        # cow.c's "[RUN]" text, e.g. "Basic COW after fork() ... with base page"
    result: str      # pass | fail | xfail | skip | error
    message: str

    def as_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"n": self.n, "case": self.case, "result": self.result,
                             "message": self.message}
        if self.result == "skip":
            d["why"] = SKIP_WHY.get(self.message, self.message)
        return d


_RUN = re.compile(r"^# \[RUN\] (.*)$")
_RESULT = re.compile(r"^(not ok|ok) (\d+)(?: # (SKIP|XFAIL|error))? ?(.*)$")


def parse_tap(text: str) -> list[CaseResult]:
    """Pair each result line of cow.c's TAP output with the ``[RUN]`` line before it.

    >>> parse_tap("# [RUN] Basic COW ... with memfd\\nok 1 Other mapping not modified\\n"
    ...           "# [RUN] R/O longterm GUP pin ... with memfd\\nok 2 # SKIP gup_test "
    ...           "not available\\n")[1]
    CaseResult(n=2, case='R/O longterm GUP pin ... with memfd', result='skip', \
message='gup_test not available')
    """
    out: list[CaseResult] = []
    case = ""
    for line in text.splitlines():
        m = _RUN.match(line)
        if m:
            case = m.group(1).strip()
            continue
        m = _RESULT.match(line)
        if not m:
            continue
        ok, n, directive, msg = m.groups()
        result = {"SKIP": "skip", "XFAIL": "xfail", "error": "error"}.get(
            directive or "", "pass" if ok == "ok" else "fail")
        if not case:
            raise CowcUnavailable(f"parse_tap: result {n} has no [RUN] line before it")
        out.append(CaseResult(int(n), case, result, msg.strip()))
    return out


def totals(cases: list[CaseResult]) -> dict[str, int]:
    """Counts per result, with every result kind present."""
    c = Counter(r.result for r in cases)
    return {k: c[k] for k in ("pass", "fail", "xfail", "skip", "error")}


# --- source and build --------------------------------------------------------------------

def source_tarball() -> Path:
    """The newest ``/usr/src/linux-source-*.tar.*``, installing it with apt if allowed."""
    found = sorted(glob.glob("/usr/src/linux-source-*.tar.*"), key=_version_key)
    if not found and os.geteuid() == 0 and shutil.which("apt-get"):
        _apt("linux-source")
        found = sorted(glob.glob("/usr/src/linux-source-*.tar.*"), key=_version_key)
    if not found:
        raise CowcUnavailable("no Debian linux-source-* package: apt-get install "
                              "linux-source (as root)")
    return Path(found[-1])


def _version_key(path: str) -> list[int]:
    m = re.search(r"linux-source-([\d.]+)\.tar", path)
    return [int(x) for x in m.group(1).split(".") if x] if m else []


def _apt(*packages: str) -> None:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "install", "-y", "-q", *packages], check=True, env=env,
                   stdout=subprocess.DEVNULL)


def extract(tarball: Path, dest: Path) -> Path:
    """Unpack only the selftest, its helpers and the tools headers; returns the tree root."""
    root = tarball.name.split(".tar")[0]
    if (dest / root / SELFTEST / "cow.c").is_file():
        return dest / root
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball) as tar:
        wanted = [m for m in tar if _wanted(m.name, root)]
        tar.extractall(dest, members=wanted, filter="data")
    if not (dest / root / SELFTEST / "cow.c").is_file():
        raise CowcUnavailable(f"{tarball.name} has no {SELFTEST}/cow.c")
    return dest / root


def _wanted(name: str, root: str) -> bool:
    rel = name[len(root) + 1:] if name.startswith(root + "/") else ""
    return rel in MEMBERS or any(rel.startswith(d) for d in MEMBER_DIRS)


def build(tree: Path) -> Path:
    """Compile cow.c the way tools/testing/selftests/mm/Makefile does; returns the binary."""
    if not shutil.which("gcc"):
        raise CowcUnavailable("gcc is not installed")
    if not Path("/usr/include/liburing.h").is_file() and os.geteuid() == 0:
        _apt("liburing-dev")
    mm = tree / SELFTEST
    subprocess.run(["sh", "check_config.sh", "gcc"], cwd=mm, check=True)
    binary = mm / "cow"
    if binary.is_file() and binary.stat().st_mtime >= (mm / "cow.c").stat().st_mtime:
        return binary
    cmd = ["gcc", "-Wall", "-O2", "-U_FORTIFY_SOURCE", "-no-pie", "-I", str(tree),
           "-isystem", str(tree / "tools/include/uapi"), "-o", str(binary),
           "cow.c", "vm_util.c", "thp_settings.c"]
    if "LOCAL_CONFIG_HAVE_LIBURING" in (mm / "local_config.h").read_text():
        cmd.append("-luring")
    proc = subprocess.run(cmd, cwd=mm, capture_output=True, text=True)
    if proc.returncode:
        raise CowcUnavailable(f"building cow.c failed:\n{proc.stderr[-2000:]}")
    return binary


# --- global settings, changed only under the THP lock and always restored ----------------

def _knob(rel: str) -> Path:
    return thp.THP_DIR / rel


def _read_value(path: Path) -> str:
    text = path.read_text().strip()
    return thp.read_knob(path) if "[" in text else text


def save_extra_knobs() -> dict[str, str]:
    """Every THP knob cow.c may write that :func:`thp.snapshot` does not cover."""
    saved = {rel: _read_value(_knob(rel)) for rel in EXTRA_THP_KNOBS if _knob(rel).exists()}
    for d in sorted(thp.THP_DIR.glob("hugepages-*kB")):
        if (d / "shmem_enabled").exists():
            saved[f"{d.name}/shmem_enabled"] = _read_value(d / "shmem_enabled")
    return saved


def restore_knobs(saved: dict[str, str]) -> list[str]:
    """Write back every saved value that changed; returns what could not be restored."""
    failed = []
    for rel, value in saved.items():
        try:
            if _read_value(_knob(rel)) != value:
                _knob(rel).write_text(value)
        except OSError as e:
            failed.append(f"{rel}: {e}")
    return failed


# --- running -----------------------------------------------------------------------------

def kernel_config() -> dict[str, str]:
    """The config options that decide which cow.c cases can run (from /proc/config.gz)."""
    import gzip
    names = ("CONFIG_GUP_TEST", "CONFIG_TRANSPARENT_HUGEPAGE", "CONFIG_HUGETLBFS",
             "CONFIG_SWAP", "CONFIG_IO_URING", "CONFIG_MM_ID", "CONFIG_MEM_SOFT_DIRTY")
    out = dict.fromkeys(names, "unknown")
    try:
        with gzip.open("/proc/config.gz", "rt") as f:
            for line in f:
                for n in names:
                    if line.startswith(n + "="):
                        out[n] = line.strip().split("=", 1)[1]
                    elif line.startswith(f"# {n} is not set"):
                        out[n] = "n"
    except OSError:
        pass
    return out


def run_binary(binary: Path, timeout: float) -> tuple[int, str]:
    """Run the selftest in its own process group; on a timeout or an interrupt kill the
    whole group (a child of cow.c whose parent died would spin on its closed pipe)."""
    proc = subprocess.Popen([str(binary)], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        stdout, _ = proc.communicate(timeout=timeout)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 9)
        proc.wait()
        raise
    return proc.returncode, stdout


def run_live(*, runs: int = 2, swap: bool = True, hugetlb: bool = True,
             timeout: float = 900.0) -> dict[str, Any]:
    """Build cow.c, run it ``runs`` times with swap and hugetlb pages; the stored form.

    A case whose result differs between runs is stored as ``"varies"`` with every result
    seen (the 1 GiB hugetlb vmsplice cases do: cow.c expects them to fail, and they fail
    or pass from run to run).
    """
    if platform.system() != "Linux":
        raise CowcUnavailable("cow.c runs only on Linux")
    if os.geteuid() != 0:
        raise CowcUnavailable("cow.c needs root (swap, hugetlb and THP settings)")
    tarball = source_tarball()
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pkmm" / "cowc"
    binary = build(extract(tarball, cache))
    outputs: list[tuple[int, str]] = []
    with thp.thp_settings({}):    # holds the machine-wide lock while anything is changed
        extra = save_extra_knobs()
        try:
            with contextlib.ExitStack() as stack:
                swapfile = stack.enter_context(temporary_swap(SWAP_MIB)) if swap else None
                pools = stack.enter_context(hugetlb_reserved(HUGETLB_WANT if hugetlb
                                                             else {}))
                outputs = [run_binary(binary, timeout) for _ in range(runs)]
        finally:
            unrestored = restore_knobs(extra)
    if unrestored:
        raise CowcUnavailable("could not restore THP knobs: " + "; ".join(unrestored))
    per_run = [parse_tap(out) for _, out in outputs]
    cases = merge_runs(per_run)
    return {"format": 1, "kernel": platform.release(), "arch": platform.machine(),
            "source": tarball.name, "config": kernel_config(),
            "setup": {"swap_mib": SWAP_MIB if swapfile else 0, "hugetlb_pages": pools,
                      "runs": runs},
            "exit_status": [status for status, _ in outputs],
            "totals": [totals(r) for r in per_run],
            "skip_reasons": dict(Counter(c["why"] for c in cases if c["result"] == "skip")),
            "cases": cases}


def merge_runs(per_run: list[list[CaseResult]]) -> list[dict[str, Any]]:
    """One record per case; ``"varies"`` (with ``seen``) where the runs disagree.

    >>> a = [CaseResult(1, "X ... with base page", "pass", "ok")]
    >>> b = [CaseResult(1, "X ... with base page", "xfail", "leak")]
    >>> merge_runs([a, b])[0]["seen"]
    ['pass', 'xfail']
    """
    first = per_run[0]
    for run in per_run[1:]:
        if [c.case for c in run] != [c.case for c in first]:
            raise CowcUnavailable("merge_runs: the runs printed different case lists")
    out = []
    for i, case in enumerate(first):
        d = case.as_json()
        seen = sorted({run[i].result for run in per_run})
        if len(seen) > 1:
            d["result"] = "varies"
            d["seen"] = seen
        out.append(d)
    return out


def dump(data: dict[str, Any]) -> str:
    """JSON with one case per line (diffable)."""
    head = {k: v for k, v in data.items() if k != "cases"}
    body = ",\n".join("  " + json.dumps(c, separators=(",", ":")) for c in data["cases"])
    return json.dumps(head, indent=1)[:-2] + ',\n "cases": [\n' + body + "\n ]\n}\n"
