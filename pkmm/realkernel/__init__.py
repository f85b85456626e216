"""pkmm.realkernel: check the model against the running Linux kernel, and time fork().

Kernel interfaces: ``/proc/self/pagemap``, ``/proc/kpageflags``, ``/proc/kpagecount``,
``/proc/self/smaps``, getrusage(2) minor faults, the THP sysfs knobs, io_uring fixed
buffers, vmsplice and userfaultfd — each module docstring says which it reads.
Taught in: notebooks/09-real-kernel-lab.ipynb

Everything that touches the kernel skips cleanly (a "skipped: reason") on machines
without it: not Linux, not root (PFNs hidden), no THP, io_uring disabled, ...

``snapshot(pid)`` turns a running process into a pkmm scenario
(:mod:`pkmm.realkernel.snapshot`; notebooks/10-real-process.ipynb); the module
:mod:`pkmm.realkernel.replay` rebuilds a scenario live and times its fork().
"""

from __future__ import annotations

from .libc import RealKernelUnavailable
from .procpid import SnapshotError
from .scenarios import RULES, SCENARIOS, Scenario
from .snapshot import snapshot
from .support import Machine, detect

__all__ = ["RULES", "SCENARIOS", "Machine", "RealKernelUnavailable", "Scenario",
           "SnapshotError", "detect", "snapshot"]
