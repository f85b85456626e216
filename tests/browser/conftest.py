"""Fixtures for the real-browser test: one JupyterLab server and one Chromium per session.

Why one of each: on a 2-core CI machine, starting JupyterLab costs ~5 s and Chromium ~1 s;
notebooks then run sequentially in one loaded lab page, each closed with its kernel shut
down afterwards so kernels never pile up (a page that misbehaves is replaced).

The browser is Debian's `chromium` driven by Python Playwright through `executable_path`:
`playwright install` downloads a browser, which this project's CI cannot do.
When chromium is missing the tests skip with the reason, unless PKMM_REQUIRE_BROWSER=1
(set by .ci/run), in which case they fail: in CI a skipped browser test is a hole.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .labdriver import LabDriver, NotebookReport
from .labserver import CHROMIUM_ARGS, LabServer, lab_env, make_server_root, require_browser


def _skip_or_fail(reason: str) -> None:
    if require_browser():
        pytest.fail(f"browser test required (PKMM_REQUIRE_BROWSER=1) but {reason}",
                    pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's chromium, or skip/fail with the reason (see module docstring)."""
    path = shutil.which("chromium")
    if path is None:
        _skip_or_fail("chromium is not installed (Debian: apt-get install -y chromium; "
                      "./dev test installs it when run as root)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        _skip_or_fail(f"Python playwright is not importable ({exc}); "
                      "install the test extra: pip install -e '.[test]'")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def lab_server(chromium_path: str, request: pytest.FixtureRequest) -> Iterator[LabServer]:
    """One JupyterLab for the whole session, serving a temp copy of notebooks/."""
    request.config.stash[_START] = time.monotonic()
    base = Path(tempfile.mkdtemp(prefix="pkmm-lab-"))
    server = LabServer(make_server_root(base), lab_env(base), base / "jupyter-lab.log")
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


class Drivers:
    """One LabDriver per front end and theme; only the one in use keeps a page open."""

    def __init__(self, browser: Any, url: str, timeout: float, axe_script: str) -> None:
        self.browser, self.url, self.timeout, self.axe_script = browser, url, timeout, axe_script
        self.current: LabDriver | None = None

    def get(self, front: str) -> LabDriver:
        cur = self.current
        if cur is None or cur.front != front:
            if cur is not None:
                cur.close()
            self.current = LabDriver(self.browser, self.url, run_timeout_s=self.timeout,
                                     front=front, axe_script=self.axe_script)
        return self.current

    def close(self) -> None:
        if self.current is not None:
            self.current.close()


def _axe_script() -> str:
    """axe-core as bundled by the axe-playwright-python package (no CDN)."""
    try:
        import axe_playwright_python
    except ImportError as exc:
        _skip_or_fail(f"axe-playwright-python is not importable ({exc}); install the test "
                      "extra: pip install -e '.[test]'")
    return (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text()


@pytest.fixture(scope="session")
def drivers(lab_server: LabServer, chromium_path: str) -> Iterator[Drivers]:
    """Drivers bound to the session's server and one headless Chromium."""
    from playwright.sync_api import sync_playwright

    timeout = float(os.environ.get("PKMM_BROWSER_RUN_TIMEOUT", "180"))
    axe = _axe_script()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS,
                                     headless=True)
        d = Drivers(browser, lab_server.url, timeout, axe)
        try:
            yield d
        finally:
            d.close()
            browser.close()


@pytest.fixture
def lab(drivers: Drivers) -> LabDriver:
    """The JupyterLab (light theme) driver."""
    return drivers.get("lab")


@pytest.fixture
def check_notebook(drivers: Drivers, lab_server: LabServer,
                   request: pytest.FixtureRequest) -> Iterator[Any]:
    """Return check(rel_path, screenshot, front="lab", shots=None) -> NotebookReport:
    ``shots`` maps each theme to check in to its screenshot (light only by default);
    kernels are cleaned up after."""
    def check(rel_path: str, screenshot: Path | None, front: str = "lab",
              shots: dict[str, Path | None] | None = None) -> NotebookReport:
        themes = tuple(shots) if shots else ("light",)
        report = drivers.get(front).check(rel_path, screenshot, themes, shots)
        first: list[str] = []
        for _ in range(_RERUNS):
            if not report.problems or not all(p.startswith(_PAGE_ERROR)
                                              for p in report.problems):
                break
            # JupyterLab's own DOM code throws now and then under load (e.g. "removeChild":
            # a cell re-rendered while the harness closed it).  Run again on a fresh page: a
            # defect in pkmm's outputs comes back every time, a race of the front end does
            # not (on a loaded 2-core machine it once came back on the second run).
            first = first or report.problems
            report = drivers.get(front).check(rel_path, screenshot, themes, shots)
            report.retried = first
        if report.problems:
            report.server_log = lab_server.log_tail(15)
        # The terminal summary is printed by the process that runs pytest's session: under
        # pytest-xdist that is not this worker, so the figures travel with the test report.
        request.node.user_properties.append((_PROPERTY, {
            "summary": report.summary(), "seconds": report.seconds, "axe": dict(report.axe),
            "axe_checked": report.axe_checked,
            "since_start": time.monotonic() - request.config.stash[_START]}))
        return report

    yield check
    lab_server.delete_sessions()


_PAGE_ERROR = "uncaught page error: "
#: fresh-page runs after one that failed with front-end page errors only
_RERUNS = 2
# The root tests/conftest.py prints these in the terminal summary (a sub-folder conftest is
# not loaded by the process that prints it when pytest-xdist runs the tests).
_PROPERTY = "pkmm-browser"
_START = pytest.StashKey[float]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: needs Chromium and a JupyterLab server")


# The fixture notebooks are inputs to the harness tests, not notebooks for nbval to run
# (harness-broken.ipynb fails on purpose).
collect_ignore_glob = ["fixtures/*"]
