"""End-to-end: every notebook runs in a real browser, in JupyterLab's light and dark
themes and in Notebook 7, and its widgets respond and pass axe-core.

For each notebooks/*.ipynb (and notebooks/exercises/*.ipynb), in each front end: run all
cells, require no cell error and no "Error displaying widget" / "Loading widget..." left
on the page, require every widget output to render, run axe-core (WCAG 2.1 A/AA) on every
pkmm widget and picture with no serious or critical violation, click each pkmm control
and require its view to change, and save a screenshot of the main widget to
docs/screenshots/ (light) and docs/screenshots/dark/ (the README shows them; commit them
when a picture changed on purpose).

The harness itself is tested on two fixture notebooks, one that must pass and one whose
every defect must be reported, so a harness that silently checks nothing cannot pass.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from .labserver import FIXTURES_IN_ROOT, REPO, project_notebooks

pytestmark = pytest.mark.browser

# PKMM_SCREENSHOTS_DIR: keep screenshots of a scratch notebook set (or a run whose pictures
# should not replace the committed ones) out of docs/.
SCREENSHOTS = Path(os.environ.get("PKMM_SCREENSHOTS_DIR", REPO / "docs" / "screenshots"))


def screenshot_name(rel_path: str) -> str:
    """docs/screenshots/<stem>.png; exercises get a prefix so names cannot collide."""
    path = Path(rel_path)
    prefix = "" if path.parent == Path(".") else f"{path.parent.as_posix().replace('/', '-')}-"
    return f"{prefix}{path.stem}.png"


# front end -> {theme: screenshot folder or None}.  In JupyterLab a notebook runs once and
# is then checked in the light and the dark theme (a live widget re-themes at once).
PASSES: dict[str, dict[str, Path | None]] = {
    "lab": {"light": SCREENSHOTS, "dark": SCREENSHOTS / "dark"},
    "notebook": {"light": None},
}


def _notebook_params() -> list[Any]:
    found = project_notebooks()
    if not found:
        return [pytest.param(None, None, marks=pytest.mark.skip(
            reason="no notebooks/*.ipynb yet"))]
    return [pytest.param(front, nb, id=f"{front}-{nb}") for front in PASSES for nb in found]


@pytest.mark.parametrize(("front", "rel_path"), _notebook_params())
def test_notebook_in_browser(front: str, rel_path: str, check_notebook: Any) -> None:
    shots = {theme: (folder / screenshot_name(rel_path) if folder is not None else None)
             for theme, folder in PASSES[front].items()}
    report = check_notebook(rel_path, None, front, shots)
    if report.problems:
        pytest.fail(report.failure_message(), pytrace=False)


def test_harness_accepts_working_widgets(check_notebook: Any, tmp_path: Path) -> None:
    shot = tmp_path / "ok.png"
    report = check_notebook(f"{FIXTURES_IN_ROOT}/harness-ok.ipynb", shot)
    if report.problems:
        pytest.fail(report.failure_message(), pytrace=False)
    assert report.widget_outputs == 2
    assert report.interactions == [
        "pkmm-layout-builder[0]: .pkmm-toggle-bit -> .pkmm-pte-grid",
        "pkmm-layout-builder[0]: .pkmm-pin -> .pkmm-physmem",
        "pkmm-fork-stepper[0]: .pkmm-step-next -> .pkmm-stepper-panel",
    ]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_harness_reports_every_defect(check_notebook: Any, lab: Any, tmp_path: Path) -> None:
    lab.interaction_timeout_ms = 3000  # the broken toggle will never answer; don't wait long
    try:
        report = check_notebook(f"{FIXTURES_IN_ROOT}/harness-broken.ipynb", None)
    finally:
        lab.interaction_timeout_ms = 15_000
    text = "\n".join(report.problems)
    assert "raised RuntimeError: fixture: deliberate failure" in text
    assert "is tagged raises-exception but raised nothing" in text
    # A view whose model does not exist: JupyterLab shows one of these, never the widget.
    assert "Error displaying widget" in text or "shows 'Loading widget...'" in text
    assert "pkmm-layout-builder[0]: .pkmm-toggle-bit -> .pkmm-pte-grid: text unchanged" in text
    assert "axe critical: label" in text and report.axe["critical"] >= 1
