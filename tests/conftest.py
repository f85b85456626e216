"""Project-wide pytest setup: the notebooks are tests too.

`python -m pytest -q` (the README's test command) must execute every notebook with nbval in
the same run as the unit tests.  pyproject's testpaths cover tests/ and pkmm/ only, so when
pytest runs with no path arguments this conftest adds notebooks/ and turns on
`--nbval-lax --nbval-current-env` (lax: only errors, asserts and cells tagged
nbval-check-output are checked; current-env: the kernel is this venv's Python, whatever
kernelspec a notebook names).  Explicit arguments (`pytest tests/test_x.py`) are left alone,
and if pyproject already enables nbval and lists notebooks/, this is a no-op.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
SANITIZE = Path(__file__).resolve().parent / "nbval-sanitize.cfg"

# nbval waits a hard-coded 5 s for each output message after a cell runs (nbval #136, #231);
# a first matplotlib import or a cold widget build on a loaded 2-core CI box can exceed it.
NBVAL_OUTPUT_TIMEOUT_S = 30


def _nbval_enabled(config: pytest.Config) -> bool:
    option = config.option
    return bool(getattr(option, "nbval", False) or getattr(option, "nbval_lax", False))


def _covers(args: list[str], path: Path) -> bool:
    """True if some command-line path already is, or contains, `path`."""
    for arg in args:
        candidate = Path(arg.split("::")[0]).resolve()
        if candidate == path or candidate in path.parents:
            return True
    return False


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """On a bare `pytest` run, also collect notebooks/ with nbval in lax, current-env mode."""
    if not hasattr(config.option, "nbval_lax"):  # nbval not installed: nothing to configure
        return
    bare_run = config.args_source == pytest.Config.ArgsSource.TESTPATHS
    if bare_run and NOTEBOOKS.is_dir() and not _covers(config.args, NOTEBOOKS):
        config.args.append(str(NOTEBOOKS))
        if not _nbval_enabled(config):
            config.option.nbval_lax = True
    if _nbval_enabled(config):
        if not config.option.nbval_kernel_name:
            config.option.nbval_current_env = True
        if config.option.nbval_sanitize_with is None and SANITIZE.is_file():
            config.option.nbval_sanitize_with = str(SANITIZE)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Raise nbval's per-message output timeout; touch only notebook cells."""
    for item in items:
        if type(item).__name__ == "IPyNbCell":
            item.output_timeout = NBVAL_OUTPUT_TIMEOUT_S  # type: ignore[attr-defined]


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Print per-notebook results and the browser test's total duration (CI records it)."""
    rows = [value for reports in terminalreporter.stats.values() for r in reports
            if getattr(r, "when", "") == "call"
            for name, value in getattr(r, "user_properties", ()) if name == "pkmm-browser"]
    if not rows:
        return
    terminalreporter.section("pkmm browser test")
    for row in rows:
        terminalreporter.write_line(row["summary"])
    axe: Counter[str] = Counter()
    for row in rows:
        axe.update(row["axe"])
    terminalreporter.write_line(
        f"axe-core: {sum(row['axe_checked'] for row in rows)} widget/picture output(s) "
        "checked; violations by impact: "
        + (", ".join(f"{k} {v}" for k, v in sorted(axe.items())) or "none"))
    terminalreporter.write_line(
        f"browser test total: {max(row['since_start'] for row in rows):.1f}s wall for "
        f"{len(rows)} notebook(s) ({sum(row['seconds'] for row in rows):.1f}s in notebooks, "
        "the rest JupyterLab and Chromium start-up)")
