"""Exercise (c): which PTEs a pin makes fork copy, and how many -EAGAIN rounds it takes.

Simulator concept; answers come from the ``copy`` steps and ``eagain`` of
:func:`pkmm.fork`.  Rules: include/linux/mm.h folio_maybe_dma_pinned(), the anon rmap
dup's AnonExclusive test (include/linux/rmap.h), mm/memory.c copy_present_page(); the
-EAGAIN words follow each variant's declared anon-dup form.
Taught in: notebooks/exercises/c-pin-copies.ipynb
"""

from __future__ import annotations

import random
from typing import Any

from ..folio import GUP_PIN_COUNTING_BIAS, Folio, folio_maybe_dma_pinned
from ..fork import fork
from ..kernels import get_kernel
from ..pte import PAGE_SIZE
from ..scenario import Scenario
from .base import Exercise, Result, fmt_list, index_of, jaccard, ptes_of
from .layout import BASE, folio_name, scenario

#: How many -EAGAIN rounds a copied page costs, by the variant's declared anon-dup
#: granularity (:attr:`pkmm.context.KernelVersion.anon_dup`).
ROUNDS = {
    "per-pte": "{k} handles one PTE per call: one -EAGAIN round (drop the lock, "
               "preallocate, retry) per copied page",
    "truncate": "{k} truncates a batch at the first page that needs copying and copies "
                "that page on its own call: one -EAGAIN round per copied page",
    "all-or-nothing": "{k} folio_try_dup_anon_rmap_ptes is all-or-nothing: a whole batch "
                      "that contains a page needing a copy fails with -EAGAIN; the retry "
                      "handles one PTE per-PTE (prealloc held), then batching starts again "
                      "at the next PTE",
}


def rounds(kernel: str) -> str:
    """Why ``kernel`` takes the -EAGAIN rounds it takes (one sentence)."""
    return ROUNDS[get_kernel(kernel).anon_dup].format(k=kernel)


def _folio_plan(rng: random.Random, name: str, first: bool) -> tuple[int, list[bool], int]:
    """(order, AE per page, pinned page or -1) for one folio of the layout."""
    order = rng.choice((2, 3)) if first else rng.choice((0, 0, 1, 2))
    n = 1 << order
    ae = [True] * n
    if n > 1 and rng.random() < 0.5:
        k = rng.randint(1, n - 1)               # a prefix already shared by an earlier fork
        ae = [False] * k + [True] * (n - k)
        if rng.random() < 0.3:
            ae.reverse()
    pin = -1
    if first or rng.random() < 0.4:
        pin = rng.choice([i for i in range(n) if ae[i]])
    return order, ae, pin


class PinCopies(Exercise):
    """Predict the PTE rows whose page fork copies for the child, and the -EAGAIN rounds."""

    name = "pin-copies"
    title = "which pages a pin copies"
    answer_format = 'a dict {"copied": list of PTE rows, "eagain": int}, e.g. ' \
                    '{"copied": [2, 3], "eagain": 2}'

    def generate(self, rng: random.Random) -> Scenario:
        folios: dict[str, dict[str, Any]] = {}
        ptes: list[dict[str, Any]] = []
        pins: list[dict[str, Any]] = []
        splices: list[dict[str, Any]] = []
        nfolios = rng.randint(2, 3)
        big = rng.randrange(nfolios)          # which folio is the pinned large one
        addr = BASE
        for j in range(nfolios):
            name = folio_name(j)
            order, ae, pin = _folio_plan(rng, name, j == big)
            folios[name] = {"order": order}
            for i, excl in enumerate(ae):
                ptes.append({"addr": addr, "folio": name, "page": i, "nr": 1,
                             "write": excl, "dirty": excl or rng.random() < 0.5,
                             "anon_exclusive": excl})
                addr += PAGE_SIZE
            if pin >= 0:
                pins.append({"folio": name, "page": pin})
            elif order == 0 and ae[0] and rng.random() < 0.5:
                splices.append({"folio": name, "page": 0,
                                "refs": GUP_PIN_COUNTING_BIAS})
        return scenario(f"pin-copies-{self.seed}", folios, ptes, pins=pins,
                        vmsplice=splices)

    def question(self) -> str:
        return (f"fork() this process under {self.kernel}. Which PTE rows does the child get "
                "a private COPY of (instead of sharing the parent's page)? And how many "
                "-EAGAIN rounds (drop the lock, preallocate a page, retry) does fork take?")

    def solve(self) -> dict[str, Any]:
        p, _ = self.build()
        r = fork(p, self.kernel)
        copied = sorted(index_of(self.scenario, s.addr) for s in r.steps if s.action == "copy")
        return {"copied": copied, "eagain": r.eagain}

    def _why(self, rows: list[int], f: Folio, name: str, copied: bool, has_pinned: bool,
             exclusive: bool, also: bool = False) -> str:
        """Why these rows of folio ``name`` are copied (or shared): plain first."""
        which = f"Row {rows[0]}" if len(rows) == 1 else f"Rows {fmt_list(rows)[1:-1]}"
        are = "is" if len(rows) == 1 else "are"
        pinned = folio_maybe_dma_pinned(f)
        test = (f"pincount {f.pins} > 0" if f.order else
                f"refcount {f.refcount} >= GUP_PIN_COUNTING_BIAS {GUP_PIN_COUNTING_BIAS}"
                ) if pinned else ("pincount 0" if f.order else
                                  f"refcount {f.refcount} < {GUP_PIN_COUNTING_BIAS}")
        if copied:
            text = (f"{which} (folio {name}) {are} {'also ' if also else ''}copied for the "
                    "child, not shared: fork "
                    "must not share a page that may be pinned for DMA. Kernel: the page is "
                    f"AnonExclusive, the parent mm has MMF_HAS_PINNED and "
                    f"folio_maybe_dma_pinned({name}) holds ({test}), so the anon rmap dup "
                    "refuses and copy_present_page gives the child its own copy.")
            if f.order:
                text += " Every exclusive page of the folio is copied, not only the pinned one."
            return text
        if not exclusive:
            one = len(rows) == 1
            return (f"{which} (folio {name}) {are} shared, not copied: an earlier fork already "
                    f"shares {'this page' if one else 'these pages'}. Kernel: "
                    f"{'it is' if one else 'they are'} not AnonExclusive, and fork tests "
                    "for pins only on AnonExclusive pages.")
        if not has_pinned:
            return (f"{which} (folio {name}) {are} shared, not copied: this process never "
                    "pinned a page. Kernel: without MMF_HAS_PINNED fork does not test for "
                    "pins; it clears AnonExclusive and shares.")
        return (f"{which} (folio {name}) {are} shared, not copied: folio {name} is not "
                f"pinned. Kernel: folio_maybe_dma_pinned({name}) is false ({test}), so fork "
                "clears AnonExclusive and shares the page.")

    def check(self, answer: Any) -> Result:
        if not isinstance(answer, dict) or set(answer) != {"copied", "eagain"} or \
                not isinstance(answer["copied"], (list, tuple)) or \
                not isinstance(answer["eagain"], int) or \
                not all(isinstance(i, int) for i in answer["copied"]):
            return self._shape_error(answer)
        want = self.solve()
        got = set(answer["copied"])
        score = 0.75 * jaccard(got, set(want["copied"]))
        notes = []
        p, folios = self.build()
        entries = ptes_of(self.scenario)
        bad = sorted(r for r in got if not 0 <= r < len(entries))
        if bad:
            notes.append(f"Row(s) {fmt_list(bad)[1:-1]} do not exist: the rows are "
                         f"0..{len(entries) - 1}.")
        groups: dict[tuple[str, bool, bool], list[int]] = {}
        for row in sorted((got ^ set(want["copied"])) - set(bad)):
            e = entries[row]
            excl = folios[e["folio"]].page(e["page"]).anon_exclusive
            groups.setdefault((e["folio"], row in want["copied"], excl), []).append(row)
        for (name, copied, excl), rows in groups.items():
            # "also": the answer already has other copied rows of this folio, so these
            # are the ones it missed, not the only ones
            also = copied and any(entries[r]["folio"] == name for r in got & set(want["copied"]))
            notes.append(self._why(rows, folios[name], name, copied, p.has_pinned, excl, also))
        if answer["eagain"] == want["eagain"]:
            score += 0.25
        else:
            notes.append(f"Fork takes {want['eagain']} -EAGAIN round(s), not "
                         f"{answer['eagain']}: each round drops the page-table lock, "
                         "preallocates a page and retries. Kernel: " + rounds(self.kernel)
                         + ".")
        if not notes:
            return Result(1.0, 1.0, f"Correct: rows {fmt_list(want['copied'])} copied, "
                          f"{want['eagain']} -EAGAIN round(s). " + rounds(self.kernel) + ".")
        return Result(score, 1.0, "\n".join("- " + x for x in notes))
