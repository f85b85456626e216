"""Exercise (f): what fork costs for a folio size, counted in operations.

Simulator concept; answers are ``len(ForkResult.batches)`` and ``ForkResult.ops`` counts.
Rules: the unit of work of each variant's copy (one PTE, or one batch) and its anon
rmap dup granularity, as the variant declares them.
Taught in: notebooks/exercises/f-fork-cost.ipynb
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from ..fork import fork
from ..kernels import get_kernel
from ..pte import PAGE_SIZE
from ..scenario import Scenario
from .base import Exercise, Result, fmt_list
from .layout import BASE, folio_name, scenario

#: What is counted: answer key -> (how it is measured, one-line meaning).
COUNTS = {
    "calls": "present-PTE copy calls (one per batch)",
    "set_ptes_calls": "set_ptes() calls that write child PTEs",
    "pte_writes": "child PTEs written",
    "anon_dup_checks": "anon rmap dup calls (each also checks whether the page may be shared)",
}


def _rule(kernel: str, key: str, n: int, batches: Sequence[int | str]) -> str:
    """Why ``kernel`` makes this many operations of kind ``key`` for ``n`` PTEs that it
    copies in ``batches`` (the sizes of its calls)."""
    k = get_kernel(kernel)
    one_per_pte = all(b == 1 for b in batches)
    unit = (f"one per PTE ({n})" if one_per_pte else
            f"one per batch, and its batches are {fmt_list(batches)} ({len(batches)})")
    if key == "pte_writes":
        return f"{kernel} writes every child PTE once, batched or not ({n})"
    if key == "anon_dup_checks" and k.anon_dup != "all-or-nothing" and not one_per_pte:
        return (f"{kernel} still duplicates the anon rmap page by page (a loop over the "
                f"batch): one per PTE ({n})")
    what = {"calls": f"{k.present_func}() calls", "set_ptes_calls": "set_ptes calls",
            "anon_dup_checks": "anon rmap dup calls"}[key]
    if not k.batch_func:
        return f"{kernel} {k.present_func} has no batching: {what} are {unit}"
    return f"{kernel}: {what} are {unit}"


class ForkCost(Exercise):
    """Predict operation counts of fork for N PTEs over folios of one order."""

    name = "fork-cost"
    title = "the operation counts behind the cost of fork"
    families = ("one folio order, all with the same bits except young",
                "several folio orders and a change of D")
    answer_format = ('a dict {"calls": int, "set_ptes_calls": int, "pte_writes": int, '
                     '"anon_dup_checks": int}')

    def generate(self, rng: random.Random) -> Scenario:
        self.order = rng.choice((0, 1, 2, 3, 4))
        n = rng.choice((16, 32))
        if self.example:
            return self._mixed(rng, n)
        per = 1 << self.order
        folios = {folio_name(j): {"order": self.order} for j in range(n // per)}
        ptes = [{"addr": BASE + i * PAGE_SIZE, "folio": folio_name(i // per),
                 "page": i % per, "nr": 1, "young": rng.random() < 0.5} for i in range(n)]
        return scenario(f"fork-cost-{self.seed}", folios, ptes, npages=n)

    def _mixed(self, rng: random.Random, n: int) -> Scenario:
        """A worked example's family: folios of several orders, small ones included, and
        one clean PTE inside a large folio (a change of D), which no student's layout of
        one order and uniform bits has."""
        orders = [rng.choice((2, 3, 4)), 0, rng.choice((1, 2)), 0]
        folios: dict[str, dict[str, int]] = {}
        ptes: list[dict[str, Any]] = []
        while len(ptes) < n:
            order = orders[len(folios) % len(orders)]
            order = min(order, (n - len(ptes)).bit_length() - 1)
            name = folio_name(len(folios))
            folios[name] = {"order": order}
            for page in range(1 << order):
                ptes.append({"addr": BASE + len(ptes) * PAGE_SIZE, "folio": name,
                             "page": page, "nr": 1, "young": rng.random() < 0.5})
        big = [i for i, e in enumerate(ptes) if folios[e["folio"]]["order"] >= 2
               and e["page"] > 0]
        ptes[rng.choice(big)]["dirty"] = False
        self.order = -1
        return scenario(f"fork-cost-{self.seed}", folios, ptes, npages=n)

    def question(self) -> str:
        n = len(self.scenario.ptes)
        what = (f"order-{self.order} folios, all with the same bits except young"
                if self.order >= 0 else
                "folios of several orders; one PTE is clean (D 0), the others dirty, and "
                "young varies")
        lines = [f"fork() this process ({n} PTEs mapping {what}) under {self.kernel}. Count:"]
        lines += [f"  {k:16s} {v}" for k, v in COUNTS.items()]
        return "\n".join(lines)

    def solve(self) -> dict[str, int]:
        p, _ = self.build()
        r = fork(p, self.kernel)
        return {"calls": len(r.batches), "set_ptes_calls": r.ops["set_ptes_calls"],
                "pte_writes": r.ops["pte_writes"], "anon_dup_checks": r.ops["anon_dup_checks"]}

    def check(self, answer: Any) -> Result:
        if not isinstance(answer, dict) or set(answer) != set(COUNTS):
            return self._shape_error(answer)
        want = self.solve()
        n = len(self.scenario.ptes)
        p, _ = self.build()
        batches = fork(p, self.kernel).batches
        wrong = [k for k in COUNTS if answer[k] != want[k]]
        if not wrong:
            return Result(1.0, 1.0, "Correct: " + ", ".join(f"{k} = {want[k]}"
                                                            for k in COUNTS) + ".")
        notes = [f"{k} is {want[k]}, not {answer[k]!r}. {_rule(self.kernel, k, n, batches)}."
                 for k in wrong]
        return Result(1 - len(wrong) / len(COUNTS), 1.0,
                      "\n".join("- " + x for x in notes))
