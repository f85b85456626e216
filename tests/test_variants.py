"""Every registered variant through the teaching layer: exercises and checkers.

Parametrised over ``pkmm.kernels.ALL`` (not a hand-written list), so registering a
variant runs these on it; tests/test_new_variant.py does exactly that with a renamed copy
of v6.17.  Expected values come from running the model: what is tested is that no
exercise or checker refuses, misreads or mis-explains a variant it was not written for.
"""

from __future__ import annotations

from typing import Any

import pytest

import pkmm
from pkmm import check, kernels
from pkmm.exercises import EXERCISES, make
from pkmm.scenario import Scenario

BASE = 0x200000
T06 = {"vmas": [{"start": BASE, "npages": 4}], "folios": {"F": {"order": 2}},
       "ptes": [{"addr": BASE, "folio": "F", "nr": 2},
                {"addr": BASE + 0x2000, "folio": "F", "page": 2, "nr": 2, "dirty": False}]}
PIN = {"vmas": [{"start": BASE, "npages": 4}], "folios": {"F": {"order": 2}},
       "ptes": [{"addr": BASE, "folio": "F"}], "pins": [{"folio": "F", "page": 1}]}
CASES = [(name, k) for name, cls in EXERCISES.items() for k in cls.kernels]


def _wrong(answer: Any) -> Any:
    """A plausible wrong answer of the same shape."""
    if isinstance(answer, list):
        return [*answer[1:], answer[0]] if len(set(map(str, answer))) > 1 else answer * 2
    if isinstance(answer, dict):
        return {k: _wrong(v) for k, v in answer.items()}
    return answer + 1


def test_every_exercise_accepts_every_variant_that_shares_pages() -> None:
    for cls in EXERCISES.values():
        assert set(cls.kernels) == set(kernels.COW_KERNELS)


@pytest.mark.parametrize("name,kernel", CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_exercise_solves_grades_and_explains_each_variant(name: str, kernel: str) -> None:
    for seed in (1, 2, 3):
        e = make(name, seed, kernel=kernel)
        want = e.solve()
        assert e.check(want).full
        r = e.check(_wrong(want))
        if r.full:            # the perturbation happened to be right (a symmetric answer)
            continue
        assert r.score < 1 and r.explanation.strip()
        assert "KeyError" not in r.explanation and "None" not in r.explanation.split()


@pytest.mark.parametrize("kernel", kernels.KERNELS)
def test_checkers_answer_for_each_variant(kernel: str) -> None:
    p, _ = Scenario.from_dict(T06).build()
    want = pkmm.fork(p, kernel).batches
    assert check.batches(T06, kernel, want)
    bad = check.batches(T06, kernel, [99])
    assert not bad and bad.expected == want and bad.explanation
    for bit in ("dirty", "write", "young"):
        v = check.child_bits(T06, kernel, bit, [2, 2, 2, 2])
        assert not v and v.explanation and len(v.expected) == 4
        assert check.child_bits(T06, kernel, bit, v.expected)
    p, _ = Scenario.from_dict(PIN).build()
    r = pkmm.fork(p, kernel)
    for checker, n in ((check.copies, r.copies), (check.eagain, r.eagain)):
        assert checker(PIN, kernel, n)
        wrong = checker(PIN, kernel, n + 1)
        assert not wrong and wrong.explanation
