"""Bulk fork: simulate fork() of real-sized processes with numpy, same answer as pkmm.fork.

Taught in: notebooks/08-cost.ipynb
"""

from __future__ import annotations

from .compare import snapshot_bulk, snapshot_process
from .forkbulk import FastForkResult, fork_bulk
from .layout import Bulk, BulkMachine, BulkMM, BulkVma, build_region, from_process, to_process

__all__ = ["Bulk", "BulkMM", "BulkMachine", "BulkVma", "FastForkResult", "build_region",
           "fork_bulk",
           "from_process", "snapshot_bulk", "snapshot_process", "to_process"]
