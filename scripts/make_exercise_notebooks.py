"""Write notebooks/exercises/*.ipynb, one per pkmm exercise, then execute them.

Usage: .venv/bin/python scripts/make_exercise_notebooks.py

Each notebook (built by pkmm.exercises.notebooks.lab_notebook): the problem cell (SEED,
KERNEL), the student's ANSWER cell (None until they predict), a check cell that prints the
score and the rules behind each mistake, and a self-test cell tagged remove-cell (hidden on
the static sites, collapsed in the lab) that nbval runs.  No key is printed anywhere: the
check shows its verdict only once an answer was given.  Graded versions for nbgrader and
otter are written by `python -m pkmm course DIR`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pkmm.exercises as X
from pkmm.exercises.notebooks import INTROS, dumps, lab_notebook

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "notebooks" / "exercises"


def main() -> int:
    sys.path.insert(0, str(ROOT / "scripts"))
    from execute_notebooks import execute

    OUT.mkdir(parents=True, exist_ok=True)
    for name in X.EXERCISES:
        path = OUT / f"{INTROS[name][0]}.ipynb"
        path.write_text(dumps(lab_notebook(name)), encoding="utf-8")
        execute(path)
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
