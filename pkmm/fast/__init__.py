"""Bulk fork: fork() of real-sized processes with numpy, with the answer of pkmm.fork.

The vectorised engine restates no kernel rule: what each kind of entry does at fork is
measured by running the traced model on tiny probe page tables, and every slice the
engine cannot do exactly runs through the traced model itself.
Taught in: notebooks/08-cost.ipynb
"""

from __future__ import annotations

from .convert import from_process, pte_of, snapshot_bulk, snapshot_process, to_process
from .engine import FastForkResult, fork_bulk
from .layout import Bulk, BulkMachine, BulkMM, BulkVma, build_region

__all__ = ["Bulk", "BulkMM", "BulkMachine", "BulkVma", "FastForkResult", "build_region",
           "fork_bulk", "from_process", "pte_of", "snapshot_bulk", "snapshot_process",
           "to_process"]
