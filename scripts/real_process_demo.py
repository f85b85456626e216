"""Demo: a real process of over 1 GiB, forksim'd under every variant, against its own
fork() and the fork() of its layout rebuilt by pkmm (Linux; the rebuild needs root).

Starts a Python process that fills a 1 GiB bytearray (4K pages), a 256 MiB NumPy array
(NumPy asks for transparent huge pages), reads a 64 MiB file through a private mapping
and writes a few of its pages, then times its own fork() (the fastest of 9).  Then runs
``python -m pkmm forksim PID --kernel all --live`` on it and stops it.

Usage: .venv/bin/python scripts/real_process_demo.py [--gib 1] [--json]
"""

from __future__ import annotations

import argparse
import subprocess
import sys

WORKLOAD = r"""
import mmap, os, sys, tempfile, time
import numpy as np
gib = float(sys.argv[1])
heap = bytearray(int(gib * (1 << 30)))
view = memoryview(heap)
for off in range(0, len(heap), 4096):
    view[off] = 1                                   # every 4K page written
arr = np.ones(256 << 17)                            # 256 MiB of float64
fd, path = tempfile.mkstemp(dir="/var/tmp")
os.write(fd, b"x" * (64 << 20)); os.unlink(path)
m = mmap.mmap(fd, 64 << 20, mmap.MAP_PRIVATE)
total = sum(m[i] for i in range(0, 64 << 20, 4096))  # read every page
for i in range(0, 1 << 20, 4096):
    m[i] = 2                                        # and CoW a few
def fork_ms():
    t0 = time.perf_counter_ns(); pid = os.fork(); t1 = time.perf_counter_ns()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return (t1 - t0) / 1e6
fork_ms()
print(f"ready {min(fork_ms() for _ in range(9)):.2f}", flush=True)
sys.stdin.read()
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gib", type=float, default=1.0)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    p = subprocess.Popen([sys.executable, "-c", WORKLOAD, str(a.gib)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline().split() if p.stdout else []
        if not line or line[0] != "ready":
            print("real_process_demo: the workload did not start", file=sys.stderr)
            return 2
        print(f"workload pid {p.pid}: its own fork() takes {line[1]} ms (fastest of 9, "
              "after one warm-up fork: the REPEAT state)", flush=True)
        args = [sys.executable, "-m", "pkmm", "forksim", str(p.pid), "--kernel", "all",
                "--live"] + (["--json"] if a.json else [])
        return subprocess.call(args)
    finally:
        if p.stdin:
            p.stdin.close()
        p.wait()


if __name__ == "__main__":
    sys.exit(main())
