"""Re-execute every notebook in place, the way they are committed.

Outputs are kept (readers on a static page see the figures and tables); execution
timestamps are not recorded, so a re-run changes a notebook only where its outputs change.
Usage: .venv/bin/python scripts/execute_notebooks.py [--metadata-only] [NOTEBOOK ...]
(--metadata-only: only give every notebook JupyterLab's kernelspec; nothing is run.)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent


#: What JupyterLab writes into a notebook it opens with ipykernel's `python3` kernel.  A
#: notebook committed with anything else (nbclient writes "Python 3") is rewritten and
#: marked unsaved the moment a learner opens it, so autosave changes the tracked file.
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def set_kernelspec(nb: nbformat.NotebookNode) -> None:
    """Give ``nb`` the kernelspec JupyterLab would write (see :data:`KERNELSPEC`)."""
    nb.metadata["kernelspec"] = dict(KERNELSPEC)


def execute(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    _drop_default_placeholders(nb)
    set_kernelspec(nb)
    nbformat.write(nb, path)


def _drop_default_placeholders(nb: nbformat.NotebookNode) -> None:
    """ipywidgets saves every text control's default ``placeholder`` (a zero-width space)
    in the widget state; it carries nothing, and the repository's notebook checks reject
    the word, so leave the default out (widget managers fill it back in)."""
    state = nb.metadata.get("widgets", {}).get(
        "application/vnd.jupyter.widget-state+json", {}).get("state", {})
    for model in state.values():
        st = model.get("state", {})
        if st.get("placeholder") == "\u200b":
            del st["placeholder"]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="notebooks to run (default: every lesson and exercise)")
    parser.add_argument("--metadata-only", action="store_true",
                        help="only give each notebook JupyterLab's kernelspec; run nothing")
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb")) + \
        sorted((ROOT / "notebooks" / "exercises").glob("*.ipynb"))
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        parser.error(f"no such notebook: {', '.join(missing)}")
    for p in paths:
        if args.metadata_only:
            nb = nbformat.read(p, as_version=4)
            if nb.metadata.get("kernelspec") != KERNELSPEC:
                set_kernelspec(nb)
                nbformat.write(nb, p)
                print(f"kernelspec set in {p}")
            continue
        print(f"executing {p.relative_to(ROOT) if p.is_absolute() else p}", flush=True)
        execute(p)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
