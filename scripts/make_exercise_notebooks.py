"""Write notebooks/exercises/*.ipynb, one per pkmm exercise (then execute them).

Usage: .venv/bin/python scripts/make_exercise_notebooks.py
       .venv/bin/jupyter nbconvert --to notebook --execute --inplace \
           --ExecutePreprocessor.record_timing=False notebooks/exercises/*.ipynb

Each notebook: problem cell (SEED, KERNEL), the student's editable ANSWER cell holding an
example attempt that is deliberately not the full answer, a check cell that prints score and
explanation without failing, and the instructor's hidden tests (plain asserts between
nbgrader's ### BEGIN/END HIDDEN TESTS markers).  The example attempt is computed here from
a typical misconception and checked to score below full marks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

import pkmm.exercises as X

OUT = Path(__file__).resolve().parent.parent / "notebooks" / "exercises"
SEED = 7

NOTEBOOKS: dict[str, tuple[str, str]] = {
    "batches": ("a-batch-sizes", """\
When the parent maps a large folio with many PTEs, modern kernels copy those PTEs in
**batches**: one call of the present-PTE copy function handles several PTEs at once. What
may differ inside a batch depends on the version: batch-v3 only needs consecutive pages of
one folio, v6.9 and v6.17 also compare most PTE bits (but not young or write).
Look at the table and predict what each call returns."""),
    "child-bits": ("b-child-pte-bits", """\
fork() writes one child PTE per parent PTE. The child's bits are not a plain copy: the
young bit is cleared, write is removed in private (copy-on-write) mappings, and when PTEs
are copied in batches some bits are merged across the batch, differently in each version.
Predict one bit of every child PTE under two versions."""),
    "pin-copies": ("c-pin-copies", """\
A page pinned for DMA (io_uring, RDMA) must stay with the parent: if fork shared it, the
parent's next write would copy it away from the device. So, when the parent mm has ever
pinned a page, fork gives the child a private copy of every AnonExclusive page of a folio
that may be pinned. Each copy needs a preallocated page: fork drops its locks, allocates
and retries (an -EAGAIN round). Predict which rows are copied, and how many rounds fork
takes."""),
    "refcounts": ("d-refcount-mapcount", """\
Sharing a page with the child costs one folio reference and one mapping per PTE. Pins and
vmsplice references also count in the refcount but not in any mapcount; a page copied for
the child leaves the original folio untouched. Predict every folio's counters after fork."""),
    "cow-after-fork": ("e-cow-or-reuse", """\
After fork, both processes map shared pages read-only. A write fault then either **copies**
the page or **reuses** it in place, when the kernel can prove nobody else uses it. For a
page of a large folio, v6.8 and v6.9 never reuse; v6.17 can, once the folio is mapped by
one process only. Predict what each write in the sequence does."""),
    "fork-cost": ("f-fork-cost", """\
Batching is about cost: fewer calls, fewer set_ptes() and fewer rmap updates per PTE.
Count the operations fork makes for this layout under the given version."""),
}


#: The teaching notebooks each exercise follows (relative to notebooks/exercises/).
LEARN = {
    "batches": ["03-seed-patch-batching", "06-upstream-batching"],
    "child-bits": ["05-shared-vs-private", "06-upstream-batching"],
    "pin-copies": ["04-pinned-pages"],
    "refcounts": ["02-fork-one-pte-at-a-time", "04-pinned-pages"],
    "cow-after-fork": ["07-after-fork"],
    "fork-cost": ["06-upstream-batching"],
}


def attempt(ex: X.Exercise) -> Any:
    """A typical wrong or partial answer (the misconception named in the comment)."""
    key = ex.solve()
    if ex.name == "batches":           # "one batch per folio, bits do not matter"
        per_folio: list[int] = []
        prev = None
        for e in sorted(ex.scenario.ptes, key=lambda e: e["addr"]):
            if e["folio"] == prev:
                per_folio[-1] += 1
            else:
                per_folio.append(1)
            prev = e["folio"]
        return per_folio if per_folio != key else [1] * sum(key)
    if ex.name == "child-bits":        # "the child copies the parent's bits"
        bit = ex.bit  # type: ignore[attr-defined]
        row = [int(e.get(bit, bit in ("write", "dirty"))) for e in ex.scenario.ptes]
        return {k: list(row) for k in key}
    if ex.name == "pin-copies":        # "only the pinned page is copied, once"
        rows = sorted(e["addr"] for e in ex.scenario.ptes)
        pinned = [rows.index(e["addr"]) for e in ex.scenario.ptes
                  if {"folio": e["folio"], "page": e["page"]} in ex.scenario.pins]
        return {"copied": pinned, "eagain": len(pinned)}
    if ex.name == "refcounts":         # "every page is shared: everything doubles"
        return {n: {"refcount": 2 * v["refcount"], "mapcount": [2] * len(v["mapcount"])}
                for n, v in key.items()}
    if ex.name == "cow-after-fork":    # "every write after fork copies"
        return ["copy"] * len(key)
    n = len(ex.scenario.ptes)          # "no batching: one of everything per PTE"
    return {"calls": n, "set_ptes_calls": n, "pte_writes": n, "anon_dup_checks": n}


def _nbgrader(grade_id: str, *, solution: bool = False, grade: bool = False,
              points: int = 0) -> dict[str, Any]:
    meta: dict[str, Any] = {"grade": grade, "grade_id": grade_id, "locked": not solution,
                            "schema_version": 3, "solution": solution, "task": False}
    if grade:
        meta["points"] = points
    return {"nbgrader": meta}


def notebook(name: str) -> nbformat.NotebookNode:
    stem, intro = NOTEBOOKS[name]
    cls = X.EXERCISES[name]
    ex = X.make(name, SEED)
    tried = attempt(ex)
    assert not ex.check(tried).full, (name, tried)
    letter = stem[0]
    kernels = ", ".join(repr(k) for k in cls.kernels)
    learn = ", ".join(f"[{n}](../{n}.ipynb)" for n in LEARN[name])
    cells = [
        new_markdown_cell(f"# Exercise ({letter}): {cls.title}\n\n{intro}\n\n"
                          f"Answer format: {cls.answer_format}.\n\nLearn it in: {learn}.\n\n"
                          "*Predict first; use the model only to check yourself afterwards.*"),
        new_code_cell(
            "import pkmm.exercises\n\n"
            f"SEED = {SEED}          # instructor: one seed per student, e.g. "
            "pkmm.exercises.seed_for(student_id, \"fork-lab\")\n"
            f"KERNEL = None     # None: the seed picks the version; or one of {kernels}\n"
            f"ex = pkmm.exercises.make({name!r}, SEED, kernel=KERNEL)\n"
            "print(ex)", metadata=_nbgrader(f"{stem}-problem")),
        new_markdown_cell("## Your answer\n\nEdit the cell below. It holds an **example "
                          "attempt** built on a common misconception, so it is not full "
                          "marks: replace it with your prediction."),
        new_code_cell(f"# Your editable attempt (example attempt shown; replace it):\n"
                      f"ANSWER = {tried!r}", metadata=_nbgrader(f"{stem}-answer",
                                                                solution=True)),
        new_markdown_cell("## Check\n\nPrints your score (0 to 1) and, for each mistake, "
                          "the kernel rule that decides it. It never fails, so you can "
                          "iterate."),
        new_code_cell("result = ex.check(ANSWER)\nprint(result)",
                      metadata=_nbgrader(f"{stem}-check")),
        new_markdown_cell("## Instructor: hidden tests\n\nPlain asserts between nbgrader's "
                          "hidden-test markers (removed from the released student version). "
                          "They check that the answer key is consistent and that the seed "
                          "regenerates the same problem; to grade the student, add "
                          "`assert ex.check(ANSWER).full` (see README.md)."),
        new_code_cell(
            "### BEGIN HIDDEN TESTS\n"
            "key = ex.solve()\n"
            "assert ex.check(key).score == ex.check(key).max == 1.0\n"
            f"assert pkmm.exercises.make({name!r}, SEED, kernel=KERNEL).scenario == "
            "ex.scenario\n"
            "assert 0.0 <= result.score <= result.max\n"
            "### END HIDDEN TESTS",
            metadata=_nbgrader(f"{stem}-hidden-tests", grade=True, points=1)),
    ]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python",
                                 "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, (stem, _) in NOTEBOOKS.items():
        nbformat.write(notebook(name), OUT / f"{stem}.ipynb")
        print(f"wrote {OUT / stem}.ipynb")


if __name__ == "__main__":
    main()
