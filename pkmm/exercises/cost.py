"""Exercise (f): what fork costs for a folio size, counted in operations.

Simulator concept; answers are ``len(ForkResult.batches)`` and ``ForkResult.ops`` counts.
Rules: the unit of work of each variant's copy (one PTE, or one batch) and its anon
rmap dup granularity, as the variant declares them.
Taught in: notebooks/exercises/f-fork-cost.ipynb
"""

from __future__ import annotations

import random
from typing import Any

from ..fork import fork
from ..kernels import get_kernel
from ..pte import PAGE_SIZE
from ..scenario import Scenario
from .base import Exercise, Result
from .layout import BASE, folio_name, scenario

#: What is counted: answer key -> (how it is measured, one-line meaning).
COUNTS = {
    "calls": "present-PTE copy calls (one per batch)",
    "set_ptes_calls": "set_ptes() calls that write child PTEs",
    "pte_writes": "child PTEs written",
    "anon_dup_checks": "anon rmap duplication calls (each checks whether the page may be shared)",
}


def _rule(kernel: str, key: str, n: int, per: int) -> str:
    """Why ``kernel`` makes this many operations of kind ``key`` for n PTEs over folios of
    ``per`` pages (uniform bits)."""
    k = get_kernel(kernel)
    one_per_pte = not k.batch_func or per == 1
    unit = (f"one per PTE ({n})" if one_per_pte else
            f"one per batch, and a batch covers a whole {per}-page folio ({n}/{per} = "
            f"{n // per})")
    if key == "pte_writes":
        return f"{kernel} writes every child PTE once, batched or not ({n})"
    if key == "anon_dup_checks" and k.anon_dup != "all-or-nothing" and per > 1:
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
    title = "cost of fork for a folio size"
    answer_format = ('a dict {"calls": int, "set_ptes_calls": int, "pte_writes": int, '
                     '"anon_dup_checks": int}')

    def generate(self, rng: random.Random) -> Scenario:
        self.order = rng.choice((0, 1, 2, 3, 4))
        n = rng.choice((16, 32))
        per = 1 << self.order
        folios = {folio_name(j): {"order": self.order} for j in range(n // per)}
        ptes = [{"addr": BASE + i * PAGE_SIZE, "folio": folio_name(i // per),
                 "page": i % per, "nr": 1, "young": rng.random() < 0.5} for i in range(n)]
        return scenario(f"fork-cost-{self.seed}", folios, ptes, npages=n)

    def question(self) -> str:
        n = len(self.scenario.ptes)
        lines = [f"fork() this process ({n} PTEs mapping order-{self.order} folios, all with "
                 f"the same bits except young) under {self.kernel}. Count:"]
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
        n, per = len(self.scenario.ptes), 1 << self.order
        wrong = [k for k in COUNTS if answer[k] != want[k]]
        if not wrong:
            return Result(1.0, 1.0, "Correct: " + ", ".join(f"{k} = {want[k]}"
                                                            for k in COUNTS) + ".")
        notes = [f"{k} is {want[k]}, not {answer[k]!r}. {_rule(self.kernel, k, n, per)}."
                 for k in wrong]
        return Result(1 - len(wrong) / len(COUNTS), 1.0,
                      "\n".join("- " + x for x in notes))
