"""The exercise notebooks, as nbformat-4 JSON: the lab's self-study version and the
graded course versions (nbgrader source, otter master).

Simulator concept (a build tool for the teaching layer).  Notebooks are plain dicts
written with :mod:`json`, so ``import pkmm`` and ``python -m pkmm course`` need no Jupyter
package.  Cells follow one convention shared with the lesson notebooks: a cell tagged
``remove-cell`` (asserts that pin a notebook's claims for the test run) is left out of
both static sites and shows collapsed in the lab.
Taught in: notebooks/exercises/README.md
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from . import EXERCISES, Exercise
from .layout import DEFAULTS

#: Exercise name -> (notebook stem, the introduction students read first).
INTROS: dict[str, tuple[str, str]] = {
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

#: The lesson notebooks each exercise follows (paths relative to notebooks/).
LEARN: dict[str, list[str]] = {
    "batches": ["03-seed-patch-batching", "06-upstream-batching"],
    "child-bits": ["05-shared-vs-private", "06-upstream-batching"],
    "pin-copies": ["04-pinned-pages"],
    "refcounts": ["02-fork-one-pte-at-a-time", "04-pinned-pages"],
    "cow-after-fork": ["07-after-fork"],
    "fork-cost": ["06-upstream-batching"],
}

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
REMOVE = {"tags": ["remove-cell"], "jupyter": {"source_hidden": True, "outputs_hidden": True}}


def misconception(ex: Exercise) -> Any:
    """A typical wrong answer for ``ex`` (the misconception is named in each comment).
    It can coincide with the key on a layout where the misconception does no harm."""
    key = ex.solve()
    rows = sorted(ex.scenario.ptes, key=lambda e: e["addr"])
    if ex.name == "batches":           # "one batch per folio, bits do not matter"
        per_folio: list[int] = []
        for i, e in enumerate(rows):
            if i and e["folio"] == rows[i - 1]["folio"]:
                per_folio[-1] += 1
            else:
                per_folio.append(1)
        return per_folio if per_folio != key else [1] * sum(key)
    if ex.name == "child-bits":        # "the child copies the parent's bits"
        bit = ex.bit  # type: ignore[attr-defined]
        return {k: [int(e.get(bit, DEFAULTS[bit])) for e in rows] for k in key}
    if ex.name == "pin-copies":        # "only the pinned page is copied, once"
        pinned = [i for i, e in enumerate(rows)
                  if {"folio": e["folio"], "page": e["page"]} in ex.scenario.pins]
        return {"copied": pinned, "eagain": len(pinned)}
    if ex.name == "refcounts":         # "every page is shared: everything doubles"
        return {n: {"refcount": 2 * v["refcount"], "mapcount": [2] * len(v["mapcount"])}
                for n, v in key.items()}
    if ex.name == "cow-after-fork":    # "every write after fork copies"
        return ["copy"] * len(key)
    n = len(rows)                      # "no batching: one of everything per PTE"
    return {"calls": n, "set_ptes_calls": n, "pte_writes": n, "anon_dup_checks": n}


def new_cell(kind: str, source: str, stem: str, n: int, **metadata: Any) -> dict[str, Any]:
    """One nbformat-4.5 cell with a stable id (same notebook, same ids: clean diffs)."""
    cell_id = hashlib.sha256(f"{stem}:{n}".encode()).hexdigest()[:12]
    cell: dict[str, Any] = {"cell_type": kind, "id": cell_id, "metadata": metadata,
                            "source": source}
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def new_notebook(cells: list[dict[str, Any]]) -> dict[str, Any]:
    return {"cells": cells, "metadata": {"kernelspec": dict(KERNELSPEC),
                                         "language_info": {"name": "python"}},
            "nbformat": 4, "nbformat_minor": 5}


def dumps(nb: dict[str, Any]) -> str:
    """The notebook as text, formatted the way Jupyter writes it."""
    return json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n"


def intro(name: str, up: str) -> str:
    """The first markdown cell; ``up`` leads from the notebook to notebooks/."""
    stem, text = INTROS[name]
    cls = EXERCISES[name]
    learn = ", ".join(f"[{n}]({up}{n}.ipynb)" for n in LEARN[name]) if up else \
        ", ".join(f"`{n}`" for n in LEARN[name])
    return (f"# Exercise ({stem[0]}): {cls.title}\n\n{text}\n\n"
            f"Answer format: {cls.answer_format}.\n\nLearn it in: {learn}.\n\n"
            "*Predict first; use the model only to check yourself afterwards.*")


CHECK_MD = ("## Check\n\nPrints your score (0 to 1) and, for each mistake, the kernel rule "
            "that decides it. It never fails, so you can iterate.")


def lab_notebook(name: str, seed: int = 7) -> dict[str, Any]:
    """The self-study notebook of notebooks/exercises/ (no key anywhere a student reads)."""
    stem, _ = INTROS[name]
    kernels = ", ".join(repr(k) for k in EXERCISES[name].kernels)
    src = [
        ("markdown", intro(name, "../"), {}),
        ("code", "import pkmm.exercises\n\n"
                 f"SEED = {seed}          # any int: every seed is another problem\n"
                 f"KERNEL = None     # None: the seed picks the version; or one of {kernels}\n"
                 f"ex = pkmm.exercises.make({name!r}, SEED, kernel=KERNEL)\nprint(ex)", {}),
        ("markdown", "## Your answer\n\nReplace `None` with your prediction, in the answer "
                     "format printed above.", {}),
        ("code", "ANSWER = None", {}),
        ("markdown", CHECK_MD, {}),
        ("code", "print(ex.check(ANSWER))", {}),
        ("code", "# Self-test of the exercise (hidden on the site): the key scores full "
                 "marks, the same seed\n# gives the same problem, and no answer scores 0.\n"
                 "key = ex.solve()\nassert ex.check(key).full\n"
                 f"assert pkmm.exercises.make({name!r}, SEED, kernel=KERNEL).show() == "
                 "ex.show()\nassert ex.check(None).score == 0", REMOVE),
    ]
    return new_notebook([new_cell(k, s, stem, i, **m) for i, (k, s, m) in enumerate(src)])
