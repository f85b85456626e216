"""Graded, seeded fork exercises for course labs (nbgrader / otter-grader friendly).

Simulator concept.  Each exercise is generated from a seed (same seed, same problem),
solved by running the model, and checked with partial credit and an explanation that
names the kernel rule.  Answers are plain values.

>>> import pkmm.exercises as ex
>>> e = ex.make("batches", 7, kernel="v6.9")
>>> e.check(e.solve()).score
1.0
>>> sorted(ex.EXERCISES)[:3]
['batches', 'child-bits', 'cow-after-fork']

Taught in: notebooks/exercises/README.md
"""

from __future__ import annotations

from ..errors import LayoutError
from ..kernels import COW_KERNELS
from .base import Exercise, KeyRefused, Result, seed_for
from .batches import BatchSizes
from .bits import ChildBits
from .cost import ForkCost
from .counts import Refcounts
from .cow import CowAfterFork
from .pins import PinCopies
from .student import for_student, grade, points, seed_for_student, student_identity

#: Every exercise by name, in the order of the notebooks (a) .. (f).
EXERCISES: dict[str, type[Exercise]] = {
    cls.name: cls for cls in (BatchSizes, ChildBits, PinCopies, Refcounts, CowAfterFork,
                              ForkCost)
}


def make(name: str, seed: int, kernel: str | None = None, example: bool = False) -> Exercise:
    """Exercise ``name`` generated from ``seed`` (``kernel``: override the drawn version;
    ``example``: a worked example's layout family, which no student's problem is drawn
    from, where the exercise has one).

    >>> make("fork-cost", 3).name
    'fork-cost'
    """
    if name not in EXERCISES:
        raise LayoutError(f"exercise {name!r} does not exist; choose one of "
                          f"{', '.join(EXERCISES)}")
    if not isinstance(example, bool):
        raise LayoutError(f"example={example!r}: pass True (a worked example's layout "
                          "family) or False (a student's)")
    return EXERCISES[name](seed, kernel, example)


__all__ = ["COW_KERNELS", "EXERCISES", "BatchSizes", "ChildBits", "CowAfterFork",
           "Exercise", "ForkCost", "KeyRefused", "PinCopies", "Refcounts", "Result",
           "for_student", "grade", "make", "points", "seed_for", "seed_for_student",
           "student_identity"]
