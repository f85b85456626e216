"""Exercise (a): the batch sizes fork's present-PTE copy returns for a layout.

Simulator concept; the answer comes from :func:`pkmm.fork` (``ForkResult.batches``).
Rules: what ends a batch in each version's batch function (mm/memory.c
copy_present_ptes(), mm/internal.h folio_pte_batch(); the seed patch's
folio_nr_pages_cont_mapped()); the verdict words come from the model's own stop reasons.
Taught in: notebooks/exercises/a-batch-sizes.ipynb
"""

from __future__ import annotations

import random
from typing import Any

from ..fork import fork
from ..kernels import BATCHING_KERNELS, get_kernel
from ..scenario import Scenario
from .base import Exercise, Result, index_of, ptes_of
from .layout import BITS, random_ptes, scenario
from .rules import continues_batch, no_batching, starts_batch

_SINGLE = ("small-folio", "no-page")


def starts(batches: list[int]) -> set[int]:
    """The PTE indices where each batch starts.

    >>> sorted(starts([2, 2, 1]))
    [0, 2, 4]
    """
    out, i = set(), 0
    for b in batches:
        out.add(i)
        i += b
    return out


class BatchSizes(Exercise):
    """Predict ``ForkResult.batches`` for a random layout (no pins: no -EAGAIN)."""

    name = "batches"
    title = "batch sizes of the present-PTE copy"
    draw = BATCHING_KERNELS
    answer_format = "a list of ints, one per call, e.g. [4, 1, 2, 1]"

    def generate(self, rng: random.Random) -> Scenario:
        n = rng.randint(6, 12)
        vma: dict[str, Any] = {}
        if rng.random() < 0.25:
            vma["soft_dirty_tracking"] = True
        if rng.random() < 0.2:
            vma.update(uffd_wp=True, uffd_fork=True)
        folios, ptes = random_ptes(rng, n)
        return scenario(f"batches-{self.seed}", folios, ptes, vma=vma)

    def question(self) -> str:
        k = get_kernel(self.kernel)
        return (f"fork() this process under {self.kernel}. copy_pte_range() calls "
                f"{k.present_func}() again and again over these PTEs; each call returns how "
                "many PTEs it handled (its batch). List the returns in order.")

    def solve(self) -> list[int]:
        p, _ = self.build()
        return [int(b) for b in fork(p, self.kernel).batches]

    def _reasons(self) -> tuple[dict[int, str], list[dict[str, Any]]]:
        """Per batch-start index, the stop reason that made it a start."""
        p, _ = self.build()
        r = fork(p, self.kernel)
        s = self.scenario
        own = {index_of(s, st.addr): st for st in r.steps}
        ends = {index_of(s, st.addr) + st.nr: st for st in r.steps}
        why: dict[int, str] = {}
        for i, st in own.items():
            prev = ends.get(i)
            if st.stop in _SINGLE:
                why[i] = st.stop
            elif prev is not None and prev.stop in _SINGLE:
                why[i] = "prev-single"
            else:
                why[i] = prev.stop if prev is not None else "pte-none"
        return why, ptes_of(s)

    def check(self, answer: Any) -> Result:
        if not isinstance(answer, (list, tuple)) or not answer or not all(
                isinstance(b, int) and not isinstance(b, bool) and b >= 1 for b in answer):
            return self._shape_error(answer)
        want = self.solve()
        got = [int(b) for b in answer]
        if got == want:
            return Result(1.0, 1.0, f"Correct: under {self.kernel} the calls return {want}.")
        why, entries = self._reasons()
        ws, gs = starts(want), starts(got)
        score = len(ws & gs) / len(ws | gs)
        notes = []
        if sum(got) != sum(want):
            notes.append(f"Your calls cover {sum(got)} PTEs, but the layout has {sum(want)} "
                         "present PTEs: the sizes must add up to that.")
            score *= 0.5
        if not get_kernel(self.kernel).batch_func:
            notes.append(no_batching(self.kernel))
            return Result(score, 1.0, "\n".join("- " + n for n in notes))
        groups: dict[str, list[int]] = {}
        for i in sorted(ws - gs):
            text = starts_batch(self.kernel, why[i])
            if why[i] == "folio-end" and entries[i]["folio"] == entries[i - 1]["folio"]:
                # The pages run backwards: the model's stop is the folio's end, because
                # the row before mapped the folio's last page.  One reason, said plainly.
                prev = entries[i - 1]
                cur = entries[i]
                text = (f"row {i - 1} maps {prev['folio']}.{prev['page']}, the folio's last "
                        "page, so the call holding it ends there (a batch never leaves its "
                        f"folio). Row {i}'s {cur['folio']}.{cur['page']} is not the next "
                        "page either, so the pfn step would end it too.")
            groups.setdefault("start{s} a new call: " + text, []).append(i)
        for i in sorted(i for i in gs - ws if 0 < i < len(entries)):
            diff = [b for b in BITS if entries[i][b] != entries[i - 1][b]]
            groups.setdefault("do{es} not start a new call: " + continues_batch(
                self.kernel, diff, "{it}"), []).append(i)
        for text, idx in groups.items():
            one = len(idx) == 1
            verb = text.format(s="s" if one else "", es="es" if one else "",
                               it="it" if one else "each")
            # "row", never "PTE n": the glossary's PTE n counts slots, and the table's rows
            # skip empty ones
            notes.append(f"Row{'' if one else 's'} {', '.join(map(str, idx))} {verb}")
        return Result(score, 1.0, "\n".join("- " + n for n in notes))
