"""The graded-exercise contract: a seeded generator that is also its own solver.

Simulator concept (OSTEP homework style: *predict, then check*).  An :class:`Exercise` is
built from a seed; all randomness goes through one ``random.Random(seed)``, so the same
seed (and kernel) gives the same problem.  The problem is plain data (a
:class:`~pkmm.scenario.Scenario` plus parameters) and a question; :meth:`Exercise.solve`
computes the answer by running the model, never from a table; :meth:`Exercise.check`
grades a plain-value answer with partial credit and an explanation that names the
kernel rule.  Answers are lists, ints and dicts, so nbgrader / otter-grader hidden
tests can be plain asserts.
Taught in: notebooks/exercises/README.md
"""

from __future__ import annotations

import functools
import hashlib
import os
import random
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import LayoutError, PkmmError
from ..folio import Folio
from ..kernels import COW_KERNELS
from ..process import Process
from ..scenario import Scenario
from .layout import describe, per_slot

#: Set (by pkmm.exercises.for_student) in a kernel running a graded course notebook.
GRADED_ENV = "PKMM_GRADED_NOTEBOOK"


class KeyRefused(PkmmError, RuntimeError):
    """The answer key was asked for in a graded course notebook."""


def _refusing(solve: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``solve`` that refuses in a graded kernel unless its own ``check`` is running."""
    @functools.wraps(solve)
    def guarded(self: Exercise) -> Any:
        if os.environ.get(GRADED_ENV) and not self._checking:
            raise KeyRefused(
                "the answer key is not available in a graded course notebook: predict the "
                "answer, write it into ANSWER, and run the check cell (ex.check(ANSWER)) to "
                "see your score and the rules behind it")
        return solve(self)
    return guarded


def _checking(check: Callable[[Any, Any], Result]) -> Callable[[Any, Any], Result]:
    """``check`` that answers "no answer yet" for None and may consult the key."""
    @functools.wraps(check)
    def checked(self: Exercise, answer: Any) -> Result:
        if answer is None or answer is Ellipsis:
            return Result(0.0, 1.0, wrap("No answer yet: set ANSWER to your prediction "
                                         f"(expected {self.answer_format}) and run this "
                                         "cell again. (On a static web page nothing runs: "
                                         "open the notebook in Jupyter first.)"),
                          answered=False)
        self._checking += 1
        try:
            return check(self, answer)
        finally:
            self._checking -= 1
    return checked


@dataclass(frozen=True)
class Result:
    """A grade: ``score`` in [0, ``max``] and why.

    >>> r = Result(0.5, 1.0, "half right")
    >>> r.full, str(r).splitlines()[0]
    (False, 'score 0.50 / 1.00')
    """

    score: float
    max: float
    explanation: str
    answered: bool = True   # False: no answer was given; str() then shows only why


    @property
    def full(self) -> bool:
        """Full marks."""
        return self.score >= self.max

    def __str__(self) -> str:
        if not self.answered:
            return self.explanation
        return f"score {self.score:.2f} / {self.max:.2f}\n{self.explanation}"


def seed_for(student: str, assignment: str = "") -> int:
    """A stable per-student seed (Python's ``hash()`` changes between runs; this does not).

    >>> seed_for("alice", "lab3") == seed_for("alice", "lab3") != seed_for("bob", "lab3")
    True
    """
    digest = hashlib.sha256(f"{assignment}:{student}".encode()).hexdigest()
    return int(digest[:8], 16)


def jaccard(got: set[Any], want: set[Any]) -> float:
    """Overlap score of two sets (1.0 when equal, also when both are empty).

    >>> jaccard({1, 2}, {2, 3})
    0.3333333333333333
    """
    if not got and not want:
        return 1.0
    return len(got & want) / len(got | want)


def as_bits(value: Any, n: int) -> list[int] | None:
    """``value`` as a list of ``n`` 0/1 ints, or None if it is not one.

    >>> as_bits([True, 0, 1], 3), as_bits([2], 1), as_bits("11", 2)
    ([1, 0, 1], None, None)
    """
    if not isinstance(value, (list, tuple)) or len(value) != n:
        return None
    if not all(isinstance(v, (bool, int)) and v in (0, 1) for v in value):
        return None
    return [int(v) for v in value]


class Exercise:
    """One seeded problem.  Subclasses set the class attributes and implement
    :meth:`generate`, :meth:`question`, :meth:`solve` and :meth:`check`."""

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    kernels: ClassVar[tuple[str, ...]] = COW_KERNELS   # the versions it accepts
    draw: ClassVar[tuple[str, ...]] = ()   # drawn from when none is given (default: kernels)
    answer_format: ClassVar[str] = ""
    #: (who, where the identity came from) for a course notebook's problem, else None.
    student: tuple[str, str] | None = None
    _checking = 0   # > 0 while check() runs: it may compute the key in a graded kernel

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Every exercise's solve() refuses in a graded kernel, and every check() answers
        # None with "no answer yet", without each subclass repeating it.
        super().__init_subclass__(**kwargs)
        if "solve" in cls.__dict__:
            cls.solve = _refusing(cls.__dict__["solve"])  # type: ignore[method-assign,assignment]
        if "check" in cls.__dict__:
            cls.check = _checking(cls.__dict__["check"])  # type: ignore[method-assign,assignment]

    def __init__(self, seed: int, kernel: str | None = None, example: bool = False) -> None:
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise LayoutError(f"seed={seed!r}: a seed is an int (use "
                              "pkmm.exercises.seed_for(student_id) for a name)")
        rng = random.Random(seed)
        # The version is drawn first and always, so a given seed lays out the same
        # problem whichever kernel the instructor picks.
        drawn = rng.choice(self.draw or self.kernels)
        if kernel is not None and kernel not in self.kernels:
            raise LayoutError(f"kernel={kernel!r}: exercise {self.name!r} takes one of "
                              f"{', '.join(self.kernels)}")
        self.seed: int | None = seed
        self.kernel = kernel if kernel is not None else drawn
        # A worked example's layouts come from a family no student's seed draws (where the
        # exercise has one: see family()), so a page never works the student's problem.
        self.example = example
        self.scenario = self.generate(rng)

    @classmethod
    def from_scenario(cls, s: Scenario | dict[str, Any], kernel: str,
                      **params: Any) -> Exercise:
        """A hand-built problem: the layout ``s`` instead of a seeded one (``seed`` is
        None).  ``params`` are the exercise's other parameters (``other`` and ``variant``
        for child-bits, ``ops`` for cow-after-fork, ``order`` for fork-cost)."""
        if kernel not in cls.kernels:
            raise LayoutError(f"kernel={kernel!r}: exercise {cls.name!r} takes one of "
                              f"{', '.join(cls.kernels)}")
        ex = cls.__new__(cls)
        ex.seed = None
        ex.kernel = kernel
        ex.scenario = per_slot(s if isinstance(s, Scenario) else Scenario.from_dict(s))
        for k, v in params.items():
            setattr(ex, k, v)
        return ex

    #: The layout families of the exercise: (a student's, a worked example's).  Empty
    #: where both draw from one family.
    families: ClassVar[tuple[str, ...]] = ()
    example = False

    def family(self) -> str:
        """The layout family this problem was drawn from ("" where there is one)."""
        return self.families[int(self.example)] if self.families else ""

    # -- what subclasses provide --------------------------------------------------
    def generate(self, rng: random.Random) -> Scenario:
        """Draw the problem (layout and parameters) from ``rng`` only."""
        raise NotImplementedError

    def question(self) -> str:
        """The question text."""
        raise NotImplementedError

    def solve(self) -> Any:
        """The answer, computed by running the model."""
        raise NotImplementedError

    def check(self, answer: Any) -> Result:
        """Grade ``answer`` (a plain value) against :meth:`solve`."""
        raise NotImplementedError

    # -- shared helpers -------------------------------------------------------------
    def build(self) -> tuple[Process, dict[str, Folio]]:
        """A fresh parent process laid out as the problem says (nothing forked yet)."""
        return Scenario.from_dict(self.scenario.to_dict()).build()

    def show(self) -> str:
        """The whole problem as text: arguments, layout table, question, answer format."""
        head = [f"EXERCISE {self.name}: {self.title}"]
        if self.student is not None:
            who, how = self.student
            head.append(f"ARG student {who or '(none)'}  ({how})")
        head += [f"ARG {k} {v}" for k, v in self.args()] + [""]
        body = [describe(self.scenario), "", self.question(), "",
                "Answer format: " + self.answer_format]
        return "\n".join(head + [wrap(b) for b in body])

    def args(self) -> list[tuple[str, Any]]:
        """The arguments ``show()`` echoes (``ARG name value``): enough to make the same
        problem again."""
        return [("seed", self.seed), ("kernel", self.kernel)] + (
            [("example", True)] if self.example else [])

    def __str__(self) -> str:
        return self.show()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(seed={self.seed}, kernel={self.kernel!r})"

    def _shape_error(self, answer: Any) -> Result:
        return Result(0.0, 1.0, f"answer {answer!r} does not have the expected shape; "
                      f"expected {self.answer_format}")


WIDTH = 88   # a problem's text lines, so a static page shows them without wrapping


def wrap(text: str, width: int = WIDTH) -> str:
    """``text`` with every line longer than ``width`` broken at spaces (continuation
    lines indented), tables and short lines unchanged.

    >>> print(wrap("one two three four", 9))
    one two
        three
        four
    """
    return "\n".join(textwrap.fill(line, width, subsequent_indent="    ",
                                    break_long_words=False, break_on_hyphens=False)
                      if len(line) > width else line for line in text.splitlines())


def ptes_of(s: Scenario) -> list[dict[str, Any]]:
    """The scenario's PTE entries, one per slot, in address order."""
    return sorted(s.ptes, key=lambda e: e["addr"])


def index_of(s: Scenario, addr: int) -> int:
    """The table row (0-based) of the PTE at ``addr``."""
    for i, e in enumerate(ptes_of(s)):
        if e["addr"] == addr:
            return i
    raise LayoutError(f"index_of: no PTE at {addr:#x} in scenario {s.name!r}")


def fmt_list(xs: Sequence[Any]) -> str:
    """Compact list text for explanations.

    >>> fmt_list([1, 'E', 2])
    "[1, 'E', 2]"
    """
    return "[" + ", ".join(repr(x) for x in xs) + "]"
