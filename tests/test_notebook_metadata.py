"""Committed notebooks stay unchanged when a learner opens them.

JupyterLab rewrites a notebook's kernelspec to the running kernel's (ipykernel names itself
"Python 3 (ipykernel)") and marks the notebook unsaved; autosave then writes the tracked
file and the next `git pull` conflicts.  So every notebook carries exactly that kernelspec,
and scripts/execute_notebooks.py writes it when it re-runs them.  Notebooks that draw
nothing do not ask for `%matplotlib inline` (JupyterLite has no matplotlib offline).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb")) + \
    sorted((REPO / "notebooks").glob("exercises/*.ipynb"))
JUPYTERLAB_KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python",
                         "name": "python3"}


def _execute_notebooks() -> object:
    spec = importlib.util.spec_from_file_location(
        "execute_notebooks", REPO / "scripts" / "execute_notebooks.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_ipykernel_names_itself_as_the_notebooks_do() -> None:
    """The expected value is ipykernel's own kernelspec, not a copy of ours."""
    from ipykernel.kernelspec import get_kernel_dict

    assert get_kernel_dict()["display_name"] == JUPYTERLAB_KERNELSPEC["display_name"]
    assert get_kernel_dict()["language"] == JUPYTERLAB_KERNELSPEC["language"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_kernelspec_is_what_jupyterlab_writes(path: Path) -> None:
    meta = json.loads(path.read_text())["metadata"]
    assert meta.get("kernelspec") == JUPYTERLAB_KERNELSPEC, (
        f"{path.name}: kernelspec {meta.get('kernelspec')}; run "
        "scripts/execute_notebooks.py (it writes JupyterLab's kernelspec)")


def test_execute_notebooks_writes_that_kernelspec() -> None:
    mod = _execute_notebooks()
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python",
                                 "name": "python3"}
    mod.set_kernelspec(nb)  # type: ignore[attr-defined]
    assert nb.metadata["kernelspec"] == JUPYTERLAB_KERNELSPEC


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_no_matplotlib_magic_without_a_figure(path: Path) -> None:
    nb = json.loads(path.read_text())
    # matplotlib's inline backend shows PNGs; the widgets' SVG pictures need no magic.
    figures = sum(1 for c in nb["cells"] for o in c.get("outputs", [])
                  if "image/png" in o.get("data", {}))
    magic = any("%matplotlib" in "".join(c["source"]) for c in nb["cells"]
                if c["cell_type"] == "code")
    assert figures or not magic, f"{path.name} draws nothing but runs %matplotlib"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_remove_cell_cells_show_collapsed_in_the_lab(path: Path) -> None:
    """The shared convention: a cell tagged remove-cell (asserts that pin the notebook's
    claims for the test run) is left out of both static sites, and is collapsed in the lab."""
    nb = json.loads(path.read_text())
    for i, cell in enumerate(nb["cells"]):
        if "remove-cell" in cell.get("metadata", {}).get("tags", []):
            assert cell["metadata"].get("jupyter") == {"source_hidden": True,
                                                       "outputs_hidden": True}, (path.name, i)
