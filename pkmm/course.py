"""``python -m pkmm course DIR [--otter]``: a ready-to-grade course of the six exercises.

Teaching layer (a writer; it imports no Jupyter package).  nbgrader (default): DIR gets
``nbgrader_config.py`` and ``source/<assignment>/<assignment>.ipynb`` per exercise, each
with a locked problem cell that derives the student's own problem at run time
(:func:`pkmm.exercises.for_student`), an answer cell whose ``### BEGIN/END SOLUTION``
region holds only ``ANSWER = ...`` (the preview problem's key; every student is graded
against their own), a locked check cell, and a locked grading cell between
``### BEGIN/END HIDDEN TESTS`` whose last value is the points (nbgrader's partial
credit).  ``--otter``: DIR gets one otter-grader v1 master notebook per exercise, the answer
between raw ``# BEGIN SOLUTION`` / ``# END SOLUTION`` cells and hidden tests at score
thresholds.  Either way DIR/README.md is the instructor's recipe.
Taught in: notebooks/exercises/README.md
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import LayoutError
from .exercises import EXERCISES, make, seed_for
from .exercises.notebooks import CHECK_MD, INTROS, dumps, intro, new_cell, new_notebook
from .exercises.student import PREVIEW

POINTS = 4                     # per exercise
THRESHOLDS = (0.25, 0.5, 0.75, 1.0)   # otter: one hidden test (1 point) per threshold
STUB = "ANSWER = None  # replace None with your prediction"
_COURSE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def preview_key(name: str, course: str) -> Any:
    """The key of the preview problem (nobody identified): the source's solution."""
    return make(name, seed_for(PREVIEW, f"{course}/{name}")).solve()


def _problem(name: str, course: str) -> str:
    return ("import pkmm.exercises\n\n"
            "# Your own problem: its seed comes from your login (JupyterHub user, or the\n"
            "# student id when it is graded), so it is the same problem when it is graded.\n"
            f"ex = pkmm.exercises.for_student({name!r}, course={course!r})\nprint(ex)")


def _answer_md() -> str:
    return ("## Your answer\n\nWrite your prediction into `ANSWER`, in the answer format "
            "printed above, then run the check. `ex.solve()` is switched off in this "
            "notebook: the model checks a prediction, it does not make it.")


def nbgrader_notebook(name: str, course: str) -> dict[str, Any]:
    """The nbgrader source notebook of exercise ``name``."""
    stem, _ = INTROS[name]

    def nbg(role: str, **kw: Any) -> dict[str, Any]:
        meta = {"grade": False, "grade_id": f"{stem}-{role}", "locked": True,
                "schema_version": 3, "solution": False, "task": False, **kw}
        return {"nbgrader": meta}

    grading = ("# Hidden grading test: it checks ANSWER against your own problem "
               f"({POINTS} points, partial credit).\n### BEGIN HIDDEN TESTS\n"
               f"graded = pkmm.exercises.grade({name!r}, ANSWER, course={course!r})\n"
               f"print(graded)\npkmm.exercises.points(graded, {POINTS})\n"
               "### END HIDDEN TESTS")
    src = [
        ("markdown", intro(name, ""), nbg("intro")),
        ("code", _problem(name, course), nbg("problem")),
        ("markdown", _answer_md(), nbg("answer-md")),
        ("code", "# Your prediction:\n### BEGIN SOLUTION\n"
                 f"ANSWER = {preview_key(name, course)!r}\n### END SOLUTION",
         nbg("answer", locked=False, solution=True)),
        ("markdown", CHECK_MD, nbg("check-md")),
        ("code", "print(ex.check(ANSWER))", nbg("check")),
        ("code", grading, nbg("grading", grade=True, points=POINTS)),
    ]
    return new_notebook([new_cell(k, s, stem, i, **m) for i, (k, s, m) in enumerate(src)])


def otter_notebook(name: str, course: str) -> dict[str, Any]:
    """The otter-grader v1 master notebook of exercise ``name``."""
    stem, _ = INTROS[name]
    config = (f"# ASSIGNMENT CONFIG\nname: {stem}\nrequirements: requirements.txt\n"
              "export_cell: false\ninit_cell: true\ncheck_all_cell: false\n"
              "generate:\n  pdf: false\n  filtering: false\n  show_stdout: true\n")
    tests: list[tuple[str, str, dict[str, Any], list[Any]]] = []
    for t in THRESHOLDS:
        line = f"pkmm.exercises.grade({name!r}, ANSWER, course={course!r}).score >= {t}"
        tests.append(("code", f"# HIDDEN\n{line}", {}, [_true()]))
    src: list[tuple[str, str, dict[str, Any], list[Any]]] = [
        ("raw", config, {}, []),
        ("markdown", intro(name, ""), {}, []),
        ("code", _problem(name, course), {}, []),
        ("raw", f"# BEGIN QUESTION\nname: {stem}\npoints: {[1] * len(THRESHOLDS)}", {}, []),
        ("markdown", _answer_md(), {}, []),
        # Inside raw BEGIN/END SOLUTION cells otter turns `NAME = value  # SOLUTION` into
        # `NAME = ...`: the student's cell keeps its shape, the key stays in the master.
        # (Either marker alone ships the key to students.)
        ("raw", "# BEGIN SOLUTION", {}, []),
        ("code", f"ANSWER = {preview_key(name, course)!r}  # SOLUTION", {}, []),
        ("raw", "# END SOLUTION", {}, []),
        ("raw", "# BEGIN TESTS", {}, []),
        *tests,
        ("raw", "# END TESTS", {}, []),
        ("raw", "# END QUESTION", {}, []),
        ("markdown", CHECK_MD, {}, []),
        ("code", "print(ex.check(ANSWER))", {}, []),
    ]
    cells = []
    for i, (k, s, m, outs) in enumerate(src):
        cell = new_cell(k, s, stem, i, **m)
        if outs:
            cell["outputs"] = outs
        cells.append(cell)
    return new_notebook(cells)


def _true() -> dict[str, Any]:
    """The output otter's doctest-format tests compare against."""
    return {"output_type": "execute_result", "execution_count": None, "metadata": {},
            "data": {"text/plain": "True"}}


NBGRADER_CONFIG = '''\
# nbgrader configuration written by `python -m pkmm course`.
c = get_config()  # noqa: F821 (nbgrader provides it)
c.CourseDirectory.course_id = {course!r}
# The released answer cell keeps its shape: ANSWER = None, for the student to replace.
c.ClearSolutions.code_stub = {{"python": {stub!r}}}
c.Execute.timeout = 120
'''


def write_course(out: Path, course: str, otter: bool = False) -> list[Path]:
    """Write the course into ``out`` (which must not exist or be empty); return the files."""
    if not _COURSE_ID.match(course):
        raise LayoutError(f"--course-id {course!r}: use letters, digits, '.', '_' or '-' "
                          "(it names the course and salts every student's seed)")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise LayoutError(f"DIR {out} exists and is not an empty folder; pick a new path "
                          "(a course is written once, then edited by its instructor)")
    written = []
    for name in EXERCISES:
        stem, _ = INTROS[name]
        if otter:
            path = out / stem / f"{stem}.ipynb"
            nb = otter_notebook(name, course)
        else:
            path = out / "source" / stem / f"{stem}.ipynb"
            nb = nbgrader_notebook(name, course)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dumps(nb), encoding="utf-8")
        written.append(path)
        if otter:
            (path.parent / "requirements.txt").write_text("pkmm\n")
            written.append(path.parent / "requirements.txt")
    if not otter:
        cfg = out / "nbgrader_config.py"
        cfg.write_text(NBGRADER_CONFIG.format(course=course, stub=STUB))
        written.append(cfg)
    readme = out / "README.md"
    readme.write_text(instructor_readme(course, otter))
    written.append(readme)
    return written


def instructor_readme(course: str, otter: bool) -> str:
    """DIR/README.md: the steps that grade this course (the test suite runs the same)."""
    stems = [INTROS[n][0] for n in EXERCISES]
    if otter:
        body = OTTER_STEPS.format(first=stems[0])
    else:
        body = NBGRADER_STEPS.format(first=stems[0])
    return (f"# pkmm fork() exercises: course `{course}`\n\nAssignments: "
            + ", ".join(f"`{s}`" for s in stems) + ".\n\n" + body + HOW_GRADING_WORKS)


NBGRADER_STEPS = """\
## Grading with nbgrader (run in this folder)

```sh
nbgrader generate_assignment {first}      # release/{first}/: no key, ANSWER = None
# students work in release/{first}/ (JupyterHub: nbgrader's exchange or your own copy)
# submissions go to submitted/<student id>/{first}/{first}.ipynb
nbgrader autograde {first} --create        # --create adds unknown students to the gradebook
nbgrader generate_feedback {first}         # feedback/<student>/{first}/: score + the rules
nbgrader export                            # grades.csv
```

The student id nbgrader grades under (the submitted/ folder name) must be the student's
JupyterHub user name, as it is with nbgrader's exchange: it picks the student's problem.
"""

OTTER_STEPS = """\
## Grading with otter-grader (run in this folder)

```sh
otter assign {first}/{first}.ipynb dist/{first}    # dist/{first}/student: no key
# hand out dist/{first}/student/{first}.ipynb; collect the submissions
PKMM_STUDENT=<student id> otter run -a dist/{first}/autograder/{first}-autograder_*.zip \\
    -o results/<student id> submissions/<student id>/{first}.ipynb
```

`otter run` grades one submission in this environment (install pkmm here); the student id
must be the one the student worked under (their JupyterHub user, or the PKMM_STUDENT they
set), so that they are graded on their own problem. The Gradescope zip otter writes lists
`pkmm` in requirements.txt; the Gradescope path was not tried here.
"""

HOW_GRADING_WORKS = """
## How per-student problems and grading work

- The problem cell calls `pkmm.exercises.for_student(...)`: the seed is derived when the
  cell runs, from the student's identity (`pkmm.exercises.student_identity()`: nbgrader's
  autograder folder `autograded/<student>/<assignment>`, `PKMM_STUDENT`, the JupyterHub
  user, Gradescope's submission metadata), salted with the course id and the exercise. The
  cell's text is the same for everyone, so nbgrader restoring locked cells changes nothing.
- The grading cell calls `pkmm.exercises.grade(...)`, which derives the student's problem
  again and checks `ANSWER`; it never reads the `ex` object the student's cells could change.
- After `for_student` ran, `solve()` of every exercise raises `KeyRefused` in that kernel, so
  `ANSWER = ex.solve()` errors and scores 0. The model itself stays public: a student who
  runs `pkmm.fork` on the printed layout, or reads pkmm's source, can compute the answer.
  Grade predictions where that matters (a proctored lab), or also ask for the rule in words.
- The source notebooks' solution is the key of the *preview* problem (nobody identified,
  or this course's source/ folder): each student is graded against the key of their own.
"""


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pkmm course",
                                 description="Write a ready-to-grade course of the six "
                                             "pkmm exercises (nbgrader, or otter-grader).")
    ap.add_argument("dir", type=Path, help="new folder to write the course into")
    ap.add_argument("--otter", action="store_true",
                    help="write otter-grader master notebooks instead of nbgrader's source/")
    ap.add_argument("--course-id", default="pkmm-fork",
                    help="course id; also salts every student's seed (default pkmm-fork)")
    args = ap.parse_args(argv)
    try:
        files = write_course(args.dir, args.course_id, args.otter)
    except LayoutError as e:
        ap.error(str(e))
    for f in files:
        print(f"wrote {f}")
    print(f"next: read {args.dir / 'README.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
