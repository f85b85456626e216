"""Fork one layout under two kernels and list, slot by slot, what differs (pure Python).

Simulator concept (views layer).  :func:`compare_forks` forks two fresh builds of the
same scenario and lists where the final parent or child PTEs differ, and the batch
sequences each kernel returned.  Nothing is predicted here: both sides are the model's
results.
Taught in: notebooks/06-upstream-batching.ipynb
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..fork import ForkResult, fork
from ..kernels import COMPARE_PAIR
from ..pte import PAGE_SIZE
from ..scenario import Scenario, as_scenario
from .render import Cell, process_cells, pte_cell

_NEW = re.compile(r"^f\d+:")


def _norm(c: Cell) -> tuple[str, str]:
    # pkmm: pages allocated during fork (copies) get allocation-order names; two kernels
    # may allocate in another order (wasted preallocations), so compare them as "new".
    return (_NEW.sub("new:", c.label), c.bits)


@dataclass
class Comparison:
    """Two forks of one scenario and their differences."""

    a: str
    b: str
    result_a: ForkResult
    result_b: ForkResult
    cells: dict[str, dict[str, list[Cell]]]            # kernel -> "parent"/"child" -> cells
    diffs: list[tuple[int, str, str, str]] = field(default_factory=list)  # slot, side, a, b

    @property
    def differing_slots(self) -> set[int]:
        """Slots whose final parent or child PTE differs."""
        return {d[0] for d in self.diffs}

    @property
    def differing(self) -> set[tuple[str, int]]:
        """(table, slot) pairs that differ: "parent"/"child" and the slot number."""
        return {(d[1], d[0]) for d in self.diffs}


def compare_forks(layout: Any, a: str = COMPARE_PAIR[0], b: str = COMPARE_PAIR[1],
                  without: Iterable[str] = frozenset()) -> Comparison:
    """Fork ``layout`` under kernels ``a`` and ``b``; list the final PTE differences.

    >>> s = {"vmas": [{"start": 0, "npages": 4}], "folios": {"F": {"order": 2}},
    ...      "ptes": [{"addr": 0, "folio": "F", "nr": 2},
    ...               {"addr": 8192, "folio": "F", "page": 2, "nr": 2, "dirty": False}]}
    >>> c = compare_forks(s, "batch-v3", "v6.9")
    >>> c.result_a.batches, c.result_b.batches, sorted(c.differing_slots)
    ([4], [2, 2], [2, 3])
    """
    sc: Scenario = as_scenario(layout)
    results: dict[str, ForkResult] = {}
    cells: dict[str, dict[str, list[Cell]]] = {}
    for k in (a, b):
        p, folios = sc.build()
        r = fork(p, kernel=k, without=frozenset(without))
        names = {f.pfn: n for n, f in folios.items()}
        results[k] = r
        parent = process_cells(p, names)
        child_ptes = dict(r.child.ptes())
        child = [pte_cell(c.addr, child_ptes.get(c.addr), p.machine, names) for c in parent]
        cells[k] = {"parent": parent, "child": child}
    diffs: list[tuple[int, str, str, str]] = []
    base = cells[a]["parent"][0].addr if cells[a]["parent"] else 0
    for side in ("parent", "child"):
        for ca, cb in zip(cells[a][side], cells[b][side], strict=True):
            if _norm(ca) != _norm(cb):
                diffs.append(((ca.addr - base) // PAGE_SIZE, side,
                              f"{ca.label} {ca.bits}", f"{cb.label} {cb.bits}"))
    return Comparison(a, b, results[a], results[b], cells, diffs)

