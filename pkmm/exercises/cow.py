"""Exercise (e): after fork, does each write copy the page, reuse it, or not fault at all?

Simulator concept; answers are ``last_fault.kind`` of each write after :func:`pkmm.fork`.
Rules: mm/memory.c do_wp_page() (AnonExclusive reuse, wp_can_reuse_anon_folio()'s
refcount test, v6.17's __wp_can_reuse_large_anon_folio()); the words come from the
fault's own trace events.
Taught in: notebooks/exercises/e-cow-or-reuse.ipynb
"""

from __future__ import annotations

import random
from typing import Any

from ..fork import fork
from ..kernels import RELEASED_KERNELS
from ..pte import PAGE_SIZE
from ..scenario import Scenario
from .base import Exercise, Result, fmt_list
from .layout import BASE, folio_name, scenario

#: The model's fault kinds -> the answer's words: notebook 07's names, so that a student
#: moving between the lesson and the exercise translates nothing.
KINDS = {"cow-copy": "cow-copy", "reuse": "reuse", "none": "no fault"}
#: Earlier spellings of the answer words, still accepted (answers written before the
#: names followed notebook 07).
ALIASES = {"copy": "cow-copy", "none": "no fault"}


#: Why a write copied, in plain words, by the reuse test's trace code (pkmm/fault.py):
#: the generic "someone else may still use it" is wrong where the version refused a
#: large folio outright or to free it.
COPY_WHY = {
    "no:large": "this version never reuses a page of a large folio, even when the writer "
                "is alone",
    "no:single-page": "this is the writer's last mapped page of the large folio, so the "
                      "kernel copies it to let the whole folio be freed",
}


class CowAfterFork(Exercise):
    """Predict copy / reuse / none for a sequence of writes (and a child exit) after fork."""

    name = "cow-after-fork"
    title = "CoW copy or reuse after a sequence of writes"
    draw = RELEASED_KERNELS
    answer_format = ('a list with one of "cow-copy", "reuse", "no fault" per write, '
                     'e.g. ["cow-copy", "reuse", "no fault"]')

    def generate(self, rng: random.Random) -> Scenario:
        folios: dict[str, dict[str, Any]] = {}
        ptes: list[dict[str, Any]] = []
        addr = BASE
        for j, order in enumerate([rng.choice((2, 3))] + [0] * rng.randint(1, 2)):
            name = folio_name(j)
            folios[name] = {"order": order}
            for i in range(1 << order):
                ptes.append({"addr": addr, "folio": name, "page": i, "nr": 1})
                addr += PAGE_SIZE
        large = 1 << folios["A"]["order"]
        nops = rng.randint(4, 6)
        exit_at = rng.randint(1, nops - 1) if rng.random() < 0.6 else -1
        ops: list[list[Any]] = []
        for j in range(nops):
            if j == exit_at:
                ops.append(["child", "exit"])
            who = "parent" if exit_at != -1 and j >= exit_at else rng.choice(
                ("parent", "child"))
            row = (rng.randrange(large) if who == "parent" and exit_at != -1
                   and rng.random() < 0.7 else rng.randrange(len(ptes)))
            ops.append([who, "write", row])
        self.ops = ops
        return scenario(f"cow-{self.seed}", folios, ptes)

    def question(self) -> str:
        lines = [f"fork() this process under {self.kernel}, then run, in order:"]
        w = 0
        for op in self.ops:
            if op[1] == "exit":
                lines.append("      the child exits")
            else:
                lines.append(f"  {w}.  the {op[0]} writes to PTE row {op[2]}")
                w += 1
        lines.append('For each write: does the write fault COPY the page ("cow-copy"), REUSE it '
                     'in place ("reuse"), or not fault at all because the PTE is already '
                     'writable ("no fault")?')
        return "\n".join(lines)

    def _run(self) -> list[tuple[str, list[tuple[str, str, str]]]]:
        p, _ = self.build()
        child = fork(p, self.kernel).child
        out: list[tuple[str, list[tuple[str, str, str]]]] = []
        for op in self.ops:
            proc = p if op[0] == "parent" else child
            if op[1] == "exit":
                proc.exit()
                continue
            proc.write(BASE + op[2] * PAGE_SIZE, len(out) + 1)
            fr = proc.last_fault
            assert fr is not None
            out.append((KINDS.get(fr.kind, fr.kind), list(fr.events)))
        return out

    def solve(self) -> list[str]:
        return [kind for kind, _ in self._run()]

    def check(self, answer: Any) -> Result:
        run = self._run()
        if not isinstance(answer, (list, tuple)) or len(answer) != len(run) or \
                not all(isinstance(a, str) for a in answer):
            return self._shape_error(answer)
        wrong = [i for i, (kind, _) in enumerate(run)
                 if ALIASES.get(answer[i], answer[i]) != kind]
        plain = {"cow-copy": "copies the page (a copy-on-write fault): someone else may still "
                         "use it",
                 "reuse": "reuses the page in place: nobody else uses it any more",
                 "no fault": "does not fault: the PTE is already writable (an earlier write "
                         "fault in this process made it so)"}
        notes = []
        for i in wrong:
            kind, events = run[i]
            codes = {code for _, code, _ in events}
            copy_why = next((w for c, w in COPY_WHY.items() if c in codes), None)
            detail = "; ".join(f"{f}: {reason}" for f, _, reason in events)
            said = (f"copies the page (a copy-on-write fault): {copy_why}"
                    if kind == "cow-copy" and copy_why else plain.get(kind, kind))
            notes.append(f"Write {i} {said}; you said {answer[i]!r}."
                         + (f" Kernel ({self.kernel}): {detail}." if detail else ""))
        if not wrong:
            return Result(1.0, 1.0, f"Correct: {fmt_list([k for k, _ in run])}.")
        return Result(1 - len(wrong) / len(run), 1.0,
                      "\n".join("- " + x for x in notes))
