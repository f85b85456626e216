"""Exercise (b): one bit of every child PTE, under two kernel versions.

Simulator concept; answers come from the child's PTEs after :func:`pkmm.fork`.
Rules: how each version's copy_present_pte(s) sets the child's bits (mm/memory.c); the
verdict words come from the model's fork and its trace events.
Taught in: notebooks/exercises/b-child-pte-bits.ipynb
"""

from __future__ import annotations

import random
from typing import Any

from ..fork import ForkResult, fork
from ..kernels import COW_KERNELS
from ..pte import PAGE_SIZE
from ..scenario import Scenario
from .base import Exercise, Result, as_bits, fmt_list, index_of, ptes_of
from .layout import DEFAULTS, LETTERS, folio_name, random_ptes, scenario
from .rules import bit_events, child_pattern

#: variant -> (the bit asked about, mmap options, folio backing)
VARIANTS: dict[str, tuple[str, dict[str, Any], str]] = {
    "dirty": ("dirty", {}, "anon"),
    "soft-dirty-off": ("soft_dirty", {}, "anon"),
    "soft-dirty-on": ("soft_dirty", {"soft_dirty_tracking": True}, "anon"),
    "shared-write": ("write", {"shared": True, "uffd_wp": True, "uffd_fork": True}, "shmem"),
}


def _has_gap(ptes: list[dict[str, Any]]) -> bool:
    """Whether an empty slot lies between two of ``ptes`` (consecutive in address order)."""
    addrs = sorted(e["addr"] for e in ptes)
    return any(b - a > PAGE_SIZE for a, b in zip(addrs, addrs[1:], strict=False))


class ChildBits(Exercise):
    """Predict one bit (dirty, soft-dirty or write) of each child PTE under two versions."""

    name = "child-bits"
    title = "child PTE bits under two versions"
    families = ("contiguous large folios", "small and large folios with an empty slot")
    answer_format = ('a dict {version: list of 0/1 per PTE row}, e.g. '
                     '{"batch-v3": [1, 1, 1, 1], "v6.9": [1, 1, 0, 0]}')

    def generate(self, rng: random.Random) -> Scenario:
        self.variant = rng.choice(sorted(VARIANTS))
        bit, vma, backing = VARIANTS[self.variant]
        twist = "write" if bit == "write" else bit
        for _ in range(50):
            if self.example:
                # A worked example's family: small and large folios with an empty slot
                # between runs, so its batches (and so its answer) take another shape
                # than any student's contiguous run of large folios.
                folios, ptes = random_ptes(rng, rng.randint(7, 10), orders=(0, 2, 3),
                                           twists=(twist,), gap=0.3)
                if not (_has_gap(ptes) and any(f["order"] == 0 for f in folios.values())):
                    # end on a small folio after an empty slot (its bits from the run's)
                    name = folio_name(len(folios))
                    folios[name] = {"order": 0}
                    last = max(ptes, key=lambda e: e["addr"])
                    ptes.append({**last, "addr": last["addr"] + 2 * PAGE_SIZE,
                                 "folio": name, "page": 0})
            else:
                folios, ptes = random_ptes(rng, rng.randint(4, 8), orders=(1, 2, 3),
                                           twists=(twist,), gap=0.0)
            for fd in folios.values():
                fd["backing"] = backing
            if vma.get("shared"):
                # In a shared VMA that write-notifies (uffd-wp), a PTE without UW is
                # read-only only until its first write fault, which sets W and D
                # together (mm/memory.c set_pte_range(): maybe_mkwrite(pte_mkdirty())):
                # a read-only PTE here is clean.
                for e in ptes:
                    if not e["uffd_wp"]:
                        e["dirty"] = e["write"]
            s = scenario(f"child-bits-{self.seed}", folios, ptes, vma=vma)
            others = [k for k in COW_KERNELS if k != self.kernel
                      and self._bits(s, k) != self._bits(s, self.kernel)]
            if others:
                break
        self.other = rng.choice(others or [k for k in COW_KERNELS if k != self.kernel])
        return s

    def args(self) -> list[tuple[str, Any]]:
        return [*super().args(), ("other kernel", self.other)]

    @property
    def bit(self) -> str:
        """The PTE bit the question asks about."""
        return VARIANTS[self.variant][0]

    @property
    def versions(self) -> tuple[str, str]:
        """The two versions asked about, in the order the question names them."""
        return (self.kernel, self.other)

    def _bits(self, s: Scenario, kernel: str) -> list[int]:
        p, _ = s.build()
        r = fork(p, kernel)
        return [int(getattr(r.child.pte(e["addr"]), self.bit)) for e in ptes_of(s)]

    def question(self) -> str:
        a, b = self.versions
        return (f"fork() this process. What is the {self.bit} bit ({LETTERS[self.bit]}) of "
                f"each CHILD PTE (rows 0..{len(self.scenario.ptes) - 1}) under {a}, and "
                f"under {b}?")

    def solve(self) -> dict[str, list[int]]:
        return {k: self._bits(self.scenario, k) for k in self.versions}

    def _explain(self, kernel: str, wrong: list[int]) -> str:
        """One version's wrong rows: a plain sentence, then per call what the child got
        and the copy's own trace events about the bit."""
        p, _ = self.build()
        r: ForkResult = fork(p, kernel)
        rows = ptes_of(self.scenario)
        parent = [int(e.get(self.bit, DEFAULTS[self.bit])) for e in rows]
        child = self._bits(self.scenario, kernel)
        letter = LETTERS[self.bit]
        parts = [f"{kernel}: rows {fmt_list(wrong)} are wrong."]
        for st in r.steps:
            first = index_of(self.scenario, st.addr)
            span = list(range(first, first + st.nr))
            if not set(span) & set(wrong):
                continue
            where = f"row {first}" if st.nr == 1 else f"rows {first}-{span[-1]}"
            why = "; ".join(bit_events(r, self.bit, st.addr))
            seen = child_pattern([parent[i] for i in span], [child[i] for i in span], not why)
            parts.append(f"In the call for {where}, {seen}."
                         + (f" Kernel: {why}." if why else ""))
        return f"{parts[0]} The child's {letter} bit is not always the parent's. " + \
            " ".join(parts[1:])

    def check(self, answer: Any) -> Result:
        n = len(self.scenario.ptes)
        if not isinstance(answer, dict) or set(answer) != set(self.versions):
            return self._shape_error(answer)
        got = {k: as_bits(v, n) for k, v in answer.items()}
        if any(v is None for v in got.values()):
            return self._shape_error(answer)
        want = self.solve()
        right, notes = 0, []
        for k in self.versions:
            g, w = got[k], want[k]
            assert g is not None
            wrong = [i for i in range(n) if g[i] != w[i]]
            right += n - len(wrong)
            if wrong:
                notes.append(self._explain(k, wrong))
        score = right / (2 * n)
        if score == 1.0:
            return Result(1.0, 1.0, "Correct: " + "; ".join(
                f"{k}: {fmt_list(want[k])}" for k in self.versions) + ".")
        return Result(score, 1.0, "\n".join("- " + x for x in notes))
