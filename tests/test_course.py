"""`python -m pkmm course`: per-student problems, grading without the key, and both real
grading pipelines run end to end in a temporary course.

nbgrader: generate_assignment (all six) -> for two students with different seeds, three
rounds of submissions (right, a misconception, blank) plus a cheat (`ANSWER = ex.solve()`)
-> autograde -> full / partial / 0 / 0.  otter: assign -> run, likewise.  The released
student notebooks are grepped for every student's key and for the solution markers.
The pipelines need nbgrader / otter-grader / ipykernel (the `course` extra that `./dev test`
installs); without them those tests skip with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pkmm.exercises as X
from pkmm.course import POINTS, main, nbgrader_notebook, preview_key, write_course
from pkmm.exercises.base import GRADED_ENV
from pkmm.exercises.notebooks import INTROS, misconception

COURSE = "os-test"
STUDENTS = ("alice", "bob")
VENV_BIN = str(Path(sys.executable).parent)


@pytest.fixture(autouse=True)
def ungraded(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """for_student() marks the process graded; never let that leak into other tests."""
    monkeypatch.delenv(GRADED_ENV, raising=False)
    for var in ("PKMM_STUDENT", "JUPYTERHUB_USER", "NBGRADER_EXECUTION"):
        monkeypatch.delenv(var, raising=False)
    yield
    os.environ.pop(GRADED_ENV, None)


def key_of(name: str, student: str) -> Any:
    return X.make(name, X.seed_for(student, f"{COURSE}/{name}")).solve()


# --- identity, seeds and the refused key (no Jupyter needed) ----------------------------

def test_identity_sources_in_order(tmp_path: Path) -> None:
    auto = tmp_path / "autograded" / "s042" / "a-batch-sizes"
    hub = {"JUPYTERHUB_USER": "prof"}
    assert X.student_identity(auto, {"NBGRADER_EXECUTION": "autograde", **hub})[0] == "s042"
    source = tmp_path / "course" / "source" / "a-batch-sizes"
    source.mkdir(parents=True)
    (tmp_path / "course" / "nbgrader_config.py").write_text("")
    assert X.student_identity(source, {**hub, "PKMM_STUDENT": "x"})[0] == ""
    assert X.student_identity(tmp_path, {**hub, "PKMM_STUDENT": "x"}) == ("x", "PKMM_STUDENT")
    assert X.student_identity(tmp_path, hub) == ("prof", "JupyterHub user")
    sub = tmp_path / "autograder" / "submission"
    sub.mkdir(parents=True)
    (sub.parent / "submission_metadata.json").write_text(
        json.dumps({"users": [{"email": "carol@uni.example", "name": "Carol"}]}))
    assert X.student_identity(sub, {}) == ("carol@uni.example", "Gradescope submission")
    (sub.parent / "submission_metadata.json").write_text("{}")   # what `otter run` writes
    assert X.student_identity(sub, {})[0] == ""


def test_seed_for_student_is_stable_and_per_student_and_per_exercise(tmp_path: Path) -> None:
    def seed(who: str, name: str) -> int:
        return X.seed_for_student(COURSE, name, tmp_path, {"JUPYTERHUB_USER": who})

    assert seed("alice", "batches") == seed("alice", "batches")
    assert len({seed(w, n) for w in STUDENTS for n in ("batches", "refcounts")}) == 4


def test_for_student_refuses_the_key_and_grade_ignores_a_replaced_problem(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PKMM_STUDENT", "alice")
    key = key_of("pin-copies", "alice")        # computed as a grader would, before ...
    ex = X.for_student("pin-copies", course=COURSE)   # ... the kernel is marked graded
    assert ex.student == ("alice", "PKMM_STUDENT") and "ARG student alice" in ex.show()
    with pytest.raises(X.KeyRefused, match="not available in a graded course notebook"):
        ex.solve()
    other = X.make("pin-copies", 0)
    with pytest.raises(X.KeyRefused):          # not through another exercise object either
        other.solve()
    assert ex.check(key).full                  # the check may consult the key ...
    assert X.grade("pin-copies", key, course=COURSE).full
    ex = other                                 # ... and grade() re-derives the problem,
    assert X.grade("pin-copies", key, course=COURSE).full   # whatever `ex` now holds
    assert X.points(X.grade("pin-copies", None, course=COURSE), POINTS) == 0.0


def test_course_writer_refuses_bad_arguments(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("")
    for argv, msg in (([str(tmp_path / "used")], "exists and is not an empty folder"),
                      ([str(tmp_path / "new"), "--course-id", "a b"], "--course-id 'a b'")):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2 and msg in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


def test_source_notebook_marks_only_the_answer_as_solution() -> None:
    nb = nbgrader_notebook("batches", COURSE)
    roles = {c["metadata"]["nbgrader"]["grade_id"].split("-")[-1]: c for c in nb["cells"]}
    answer = roles["answer"]
    assert answer["metadata"]["nbgrader"]["solution"] is True
    assert answer["source"].splitlines()[1:] == [
        "### BEGIN SOLUTION", f"ANSWER = {preview_key('batches', COURSE)!r}",
        "### END SOLUTION"]
    grading = roles["grading"]["metadata"]["nbgrader"]
    assert grading["grade"] and grading["points"] == POINTS and grading["locked"]
    assert sum(c["metadata"]["nbgrader"]["solution"] for c in nb["cells"]) == 1
    assert all(c["metadata"]["nbgrader"]["locked"] for c in nb["cells"] if c is not answer)


# --- the real pipelines ---------------------------------------------------------------

def _tool(module: str, exe: str) -> str:
    pytest.importorskip(module, reason=f"{module} is not installed (pip install -e "
                                       "'.[course]'; ./dev test installs it)")
    pytest.importorskip("ipykernel", reason="ipykernel is not installed")
    path = shutil.which(exe, path=VENV_BIN) or shutil.which(exe)
    if path is None:
        pytest.skip(f"{exe} is not on PATH")
    return path


def _run(cmd: list[str], cwd: Path, **env: str) -> str:
    full_env = {**os.environ, "PATH": VENV_BIN + os.pathsep + os.environ["PATH"], **env}
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600,
                          env=full_env)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}" \
                                 f"\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


def _answer_text(kind: str, name: str, student: str) -> str | None:
    """What the student writes into the answer cell; None leaves the stub unchanged."""
    ex = X.make(name, X.seed_for(student, f"{COURSE}/{name}"))
    return {"right": f"ANSWER = {ex.solve()!r}",
            "misconception": f"ANSWER = {misconception(ex)!r}",
            "cheat": "ANSWER = ex.solve()", "blank": None}[kind]


def _submit(released: Path, target: Path, is_answer_cell: Any, text: str | None) -> None:
    nb = json.loads(released.read_text())
    cells = [c for c in nb["cells"] if is_answer_cell(c)]
    assert len(cells) == 1, f"{released}: expected one answer cell"
    if text is not None:
        cells[0]["source"] = text
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(nb))


def _assert_no_key(released: Path, name: str, markers: tuple[str, ...]) -> None:
    text = released.read_text()
    for marker in markers:
        assert marker not in text, f"{released.name} still holds {marker!r}"
    for who in ("",) + STUDENTS:      # the preview key and every student's
        key = repr(key_of(name, who))
        assert f"ANSWER = {key}" not in text, f"{released.name} holds the key of {who!r}"


# An exercise whose misconception scores partial credit (not 0, not full) for both students.
GRADED = "b-child-pte-bits"
GRADED_NAME = "child-bits"


def test_graded_exercise_separates_the_three_submissions() -> None:
    for who in STUDENTS:
        ex = X.make(GRADED_NAME, X.seed_for(who, f"{COURSE}/{GRADED_NAME}"))
        assert 0 < ex.check(misconception(ex)).score < 1, who
    problems = {X.make(GRADED_NAME, X.seed_for(w, f"{COURSE}/{GRADED_NAME}")).show()
                for w in STUDENTS}
    assert len(problems) == 2


def test_nbgrader_pipeline_end_to_end(tmp_path: Path) -> None:
    nbgrader = _tool("nbgrader", "nbgrader")
    from nbgrader.api import Gradebook

    course = tmp_path / "course"
    write_course(course, COURSE)
    _run([nbgrader, "generate_assignment", "*"], course)
    for name in X.EXERCISES:
        stem = INTROS[name][0]
        _assert_no_key(course / "release" / stem / f"{stem}.ipynb", name,
                       ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN", "grade("))

    def is_answer(c: Any) -> bool:
        return bool(c["metadata"].get("nbgrader", {}).get("solution"))

    released = course / "release" / GRADED / f"{GRADED}.ipynb"
    scores: dict[tuple[str, str], float] = {}
    for kind in ("right", "misconception", "blank", "cheat"):
        for who in STUDENTS:
            _submit(released, course / "submitted" / who / GRADED / f"{GRADED}.ipynb",
                    is_answer, _answer_text(kind, GRADED_NAME, who))
        _run([nbgrader, "autograde", GRADED, "--create", "--force"], course)
        with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
            for who in STUDENTS:
                sub = gb.find_submission(GRADED, who)
                assert sub.max_score == POINTS
                scores[(who, kind)] = sub.score
        if kind == "right":   # each student was graded on their own problem
            shown = {who: _printed_problem(course / "autograded" / who / GRADED /
                                           f"{GRADED}.ipynb") for who in STUDENTS}
            for who in STUDENTS:
                assert f"ARG student {who}  (nbgrader autograde)" in shown[who]
            assert shown["alice"].split("ARG seed")[1] != shown["bob"].split("ARG seed")[1]
    print("nbgrader scores:", scores)
    for who in STUDENTS:
        assert scores[(who, "right")] == POINTS
        assert 0 < scores[(who, "misconception")] < POINTS
        assert scores[(who, "blank")] == 0 and scores[(who, "cheat")] == 0


def _printed_problem(path: Path) -> str:
    nb = json.loads(path.read_text())
    cell = next(c for c in nb["cells"] if "for_student(" in "".join(c["source"]))
    return "".join("".join(o.get("text", "")) for o in cell["outputs"])


def test_otter_pipeline_end_to_end(tmp_path: Path) -> None:
    otter = _tool("otter", "otter")
    course = tmp_path / "course"
    write_course(course, COURSE, otter=True)
    _run([otter, "assign", f"{GRADED}/{GRADED}.ipynb", f"dist/{GRADED}"], course)
    student = course / "dist" / GRADED / "student" / f"{GRADED}.ipynb"
    _assert_no_key(student, GRADED_NAME, ("# SOLUTION", "BEGIN SOLUTION", "grade("))
    (zip_path,) = (course / "dist" / GRADED / "autograder").glob("*.zip")

    def is_answer(c: Any) -> bool:
        return c["cell_type"] == "code" and "".join(c["source"]).startswith("ANSWER = ...")

    jobs = []
    for kind in ("right", "misconception", "blank"):
        for who in STUDENTS:
            sub = course / "submissions" / kind / who / f"{GRADED}.ipynb"
            _submit(student, sub, is_answer, _answer_text(kind, GRADED_NAME, who))
            jobs.append((who, kind, str(sub)))
    # One process grades every submission with otter's own `otter run` entry point
    # (otter.run.main), the student's identity set as `PKMM_STUDENT=<id> otter run` would.
    code = ("import json, os, sys\nfrom otter.run import main\n"
            "for who, kind, sub in json.loads(sys.argv[1]):\n"
            "    os.environ['PKMM_STUDENT'] = who\n"
            "    os.makedirs(sub + '.out')\n"
            "    main(sub, autograder=sys.argv[2], output_dir=sub + '.out', no_logo=True)\n")
    _run([sys.executable, "-c", code, json.dumps(jobs), str(zip_path)], course)
    scores: dict[tuple[str, str], float] = {}
    for who, kind, sub in jobs:
        result = json.loads((Path(sub + ".out") / "results.json").read_text())
        (test,) = [t for t in result["tests"] if t["name"] == GRADED]
        assert test["max_score"] == POINTS
        scores[(who, kind)] = test["score"]
    print("otter scores:", scores)
    for who in STUDENTS:
        assert scores[(who, "right")] == POINTS
        assert 0 < scores[(who, "misconception")] < POINTS
        assert scores[(who, "blank")] == 0
