"""Bulk fork: fork() of real-sized processes with numpy, with the answer of pkmm.fork.

Any layout pkmm.fork accepts converts to the bulk form (:func:`from_process`; the
benchmark's regions are built directly by :func:`build_region`) and forks with
:func:`fork_bulk`, which restates no kernel rule: what each class of entry does at fork is
measured by running the variant's own code on tiny probe page tables, and every slice the
vectorised engine cannot do exactly runs through the traced model itself.

Modules, bottom up: ``layout`` (the arrays, entry codes from pkmm.pte.PTE_BITS),
``hard`` (slices as model objects through memory.copy_pmd_range), ``probe`` and
``tables`` (the measured effects), ``vector`` and ``write`` (plan and write many slices),
``huge`` (PMD leaves), ``periodic`` (regions of alike slices), ``engine`` (fork_bulk),
``convert`` and ``snapshot`` (to and from pkmm.Process, comparable snapshots).
Taught in: notebooks/08-cost.ipynb
"""

from __future__ import annotations

from .convert import from_process, to_process
from .engine import FastForkResult, fork_bulk
from .layout import Bulk, BulkMachine, BulkMM, BulkVma, build_region
from .snapshot import pte_of, snapshot_bulk, snapshot_process

__all__ = ["Bulk", "BulkMM", "BulkMachine", "BulkVma", "FastForkResult", "build_region",
           "fork_bulk", "from_process", "pte_of", "snapshot_bulk", "snapshot_process",
           "to_process"]
