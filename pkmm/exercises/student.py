"""Per-student problems for graded course notebooks, and grading without the key.

Simulator concept.  A course notebook (written by ``python -m pkmm course``) builds its
problem with :func:`for_student`: the seed is derived *when the cell runs* from who is
running it (:func:`student_identity`), so the problem cell is the same text for the whole
class and still survives nbgrader restoring locked cells before it autogrades.  The
grading cell calls :func:`grade`, which derives the same student's problem again and
checks ``ANSWER`` against it; it never trusts the ``ex`` object the student's cells could
have replaced.

The key is not for students: once :func:`for_student` ran in a kernel, every
``Exercise.solve()`` in that kernel raises :class:`KeyRefused`, so ``ANSWER = ex.solve()``
(or ``make(name, seed).solve()``) errors and scores 0.  A student who reads pkmm's source,
or runs ``pkmm.fork`` on the printed layout, can still compute the answer: the model is a
public learning tool, and grading a prediction is only as strong as the setting it is made in.
Taught in: notebooks/exercises/README.md
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .base import GRADED_ENV, Exercise, KeyRefused, Result, seed_for

#: An explicit identity (lab machines without JupyterHub, `otter run` loops, tests).
STUDENT_ENV = "PKMM_STUDENT"
#: Where the problem comes from when nobody is identified (the instructor's preview).
PREVIEW = ""


def student_identity(cwd: Path | None = None,
                     environ: Mapping[str, str] | None = None) -> tuple[str, str]:
    """``(student, where it came from)`` for the process running a notebook.

    In order: nbgrader's autograder (it runs each submission in
    ``autograded/<student>/<assignment>/`` with ``NBGRADER_EXECUTION=autograde``); the
    course's own ``source/<assignment>/`` folder (the instructor's preview); ``PKMM_STUDENT``;
    the JupyterHub user; Gradescope's ``submission_metadata.json`` beside the submission
    folder (otter's autograder); else nobody (the preview problem).

    >>> student_identity(Path("/c/autograded/s042/a-batch-sizes"),
    ...                  {"NBGRADER_EXECUTION": "autograde", "JUPYTERHUB_USER": "prof"})
    ('s042', 'nbgrader autograde')
    >>> student_identity(Path("/home/alice/a"), {"JUPYTERHUB_USER": "alice"})
    ('alice', 'JupyterHub user')
    >>> student_identity(Path("/nonexistent"), {})
    ('', 'nobody identified: the preview problem')
    """
    cwd = Path.cwd() if cwd is None else cwd
    env = os.environ if environ is None else environ
    if env.get("NBGRADER_EXECUTION") == "autograde":
        return cwd.parent.name, "nbgrader autograde"
    if cwd.parent.name == "source" and (cwd.parent.parent / "nbgrader_config.py").is_file():
        return PREVIEW, "course source folder: the instructor's preview problem"
    if env.get(STUDENT_ENV):
        return env[STUDENT_ENV], STUDENT_ENV
    if env.get("JUPYTERHUB_USER"):
        return env["JUPYTERHUB_USER"], "JupyterHub user"
    who = _gradescope_user(cwd.parent / "submission_metadata.json")
    if who:
        return who, "Gradescope submission"
    return PREVIEW, "nobody identified: the preview problem"


def _gradescope_user(path: Path) -> str:
    """The first submitter's email in Gradescope's metadata file, or ""."""
    try:
        users = json.loads(path.read_text()).get("users") or []
    except (OSError, ValueError, AttributeError):
        return ""
    first = users[0] if users and isinstance(users[0], dict) else {}
    return str(first.get("email") or first.get("sid") or "")


def seed_for_student(course: str, exercise: str, cwd: Path | None = None,
                     environ: Mapping[str, str] | None = None) -> int:
    """The seed of this student's problem for ``exercise`` in ``course``, derived from
    :func:`student_identity` at run time.

    >>> env = {"JUPYTERHUB_USER": "alice"}
    >>> seed_for_student("os-2026", "batches", Path("/h"), env) == seed_for("alice",
    ...                                                             "os-2026/batches")
    True
    """
    who, _ = student_identity(cwd, environ)
    return seed_for(who, f"{course}/{exercise}")


def for_student(name: str, course: str, kernel: str | None = None) -> Exercise:
    """This student's problem for exercise ``name``; marks the kernel as graded, so
    ``solve()`` refuses from now on (see the module docstring)."""
    from . import make

    os.environ[GRADED_ENV] = f"{course}/{name}"
    who, how = student_identity()
    ex = make(name, seed_for(who, f"{course}/{name}"), kernel=kernel)
    ex.student = (who, how)
    return ex


def grade(name: str, answer: Any, course: str, kernel: str | None = None) -> Result:
    """Grade ``answer`` against this student's own problem, derived again from the
    student's identity (not from any object the notebook's cells hold)."""
    from . import make

    who, _ = student_identity()
    return make(name, seed_for(who, f"{course}/{name}"), kernel=kernel).check(answer)


def graded_session() -> bool:
    """True once a course notebook's problem cell ran in this process."""
    return bool(os.environ.get(GRADED_ENV))


def points(result: Result, out_of: float) -> float:
    """``result`` as points out of ``out_of`` (what nbgrader's grading cell outputs).

    >>> points(Result(0.5, 1.0, ""), 4)
    2.0
    """
    return round(out_of * result.score / result.max, 2)


__all__ = ["GRADED_ENV", "PREVIEW", "STUDENT_ENV", "KeyRefused", "for_student", "grade",
           "graded_session", "points", "seed_for_student", "student_identity"]
