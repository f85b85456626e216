"""The zero-install lab: `tools/lite.py` builds a JupyterLite site, headless Chromium opens it
from 127.0.0.1 with every request to another host refused (any such request fails the
test), and the lessons 00-07 and every exercise run with no error in the in-browser
(Pyodide) kernel.

Two levels, to stay inside the test budget (each Pyodide kernel takes ~20 s to start here):
- 00-start-here (it shows every kind of pkmm widget) goes through the same LabDriver as
  the JupyterLab browser test: run all, every widget rendered, every control clicked.
- Every other notebook runs cell by cell in one more kernel (its namespace reset between
  notebooks), and each cell's execute reply must be "ok".
The kernel start-up time is printed (and shown in the terminal summary).
"""

from __future__ import annotations

import functools
import http.server
import json
import re
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import _skip_or_fail
from .labdriver import LabDriver
from .labserver import REPO

pytestmark = pytest.mark.browser

sys.path.insert(0, str(REPO / "tools"))
import lite  # noqa: E402  (tools/ is not a package)

LESSONS = [f"{p.name}" for p in sorted((REPO / "notebooks").glob("0[0-7]-*.ipynb"))]
EXERCISES = [f"exercises/{p.name}" for p in sorted((REPO / "notebooks" / "exercises")
                                                     .glob("*.ipynb"))]
FULL_CHECK = LESSONS[:1]   # 00-start-here: every kind of pkmm widget, clicked


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Static files with the MIME types Pyodide needs (module workers, streaming wasm)."""

    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".mjs": "text/javascript", ".js": "text/javascript",
                      ".wasm": "application/wasm", ".json": "application/json"}

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def lite_site(tmp_path_factory: pytest.TempPathFactory, chromium_path: str) -> Path:
    want = lite.pyodide_version()
    pkg = lite.NPM_PYODIDE / "package.json"
    if not pkg.is_file() or json.loads(pkg.read_text()).get("version") != want:
        _skip_or_fail(f"node_modules/pyodide@{want} is not installed (./dev test installs it "
                      "with npm)")
    base = tmp_path_factory.mktemp("lite")
    start = time.monotonic()
    rc = lite.main(["--out", str(base / "site"), "--work", str(base / "work")])
    assert rc == 0, "tools/lite.py failed (its message is above)"
    print(f"\nJupyterLite site built in {time.monotonic() - start:.0f} s")
    return base / "site"


@pytest.fixture(scope="module")
def lite_url(lite_site: Path) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Handler, directory=str(lite_site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


class _OfflineBrowser:
    """The session's Chromium (one Playwright per process), with every context it makes
    refusing requests to any host but 127.0.0.1 and recording them: the site must work
    with no network."""

    def __init__(self, browser: Any) -> None:
        self._browser = browser
        self.outside: list[str] = []

    def new_context(self, **kwargs: Any) -> Any:
        context = self._browser.new_context(**kwargs)
        context.route("**/*", self._route)
        return context

    def _route(self, route: Any) -> None:
        url = route.request.url
        if url.startswith(("http://127.0.0.1:", "blob:", "data:")):
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()


@pytest.fixture
def browser(lab: LabDriver) -> Iterator[_OfflineBrowser]:
    # The JupyterLab browser test's Chromium: a second sync Playwright in one process is
    # refused, and one browser start is cheaper.
    offline = _OfflineBrowser(lab.browser)
    yield offline
    assert not offline.outside, f"the JupyterLite site asked the network for {offline.outside}"


def _kernel_idle_js() -> str:
    return """() => { const k = window.jupyterapp.shell.currentWidget?.sessionContext
                      ?.session?.kernel;
                      return !!k && k.connectionStatus === 'connected' && k.status === 'idle'; }"""


@pytest.mark.parametrize("rel_path", FULL_CHECK)
def test_lite_notebook_runs_and_its_widgets_answer(rel_path: str, browser: _OfflineBrowser,
                                                   lite_url: str) -> None:
    driver = LabDriver(browser, lite_url, run_timeout_s=300)   # it opens {url}/lab?reset
    start = time.monotonic()
    try:
        report = driver.check(rel_path, None)
    finally:
        driver.close()
    print(f"\n{report.summary()} ({time.monotonic() - start:.1f} s with kernel start-up)")
    if report.problems:
        pytest.fail(report.failure_message(), pytrace=False)
    if "pkmm.views" in (REPO / "notebooks" / rel_path).read_text():
        assert report.widget_outputs > 0 and report.interactions


_JS_RUN_CELLS = """async (cells) => {
    const k = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
    const failures = [];
    for (const [i, code, mayRaise] of cells) {
        let err = null;
        const future = k.requestExecute({code, stop_on_error: false});
        future.onIOPub = (msg) => {
            if (msg.header.msg_type === 'error')
                err = `${msg.content.ename}: ${msg.content.evalue}`;
        };
        const reply = await future.done;
        if ((reply.content.status !== 'ok' || err) && !mayRaise)
            failures.push(`cell ${i}: ${err || reply.content.status}`);
    }
    return failures;
}"""


def _code_cells(rel_path: str) -> list[tuple[int, str, bool]]:
    nb = json.loads((REPO / "notebooks" / rel_path).read_text())
    cells = []
    for i, cell in enumerate(nb["cells"]):
        src = "".join(cell["source"])
        if cell["cell_type"] != "code" or not src.strip():
            continue
        tags = cell.get("metadata", {}).get("tags", [])
        may_raise = "raises-exception" in tags or bool(
            re.search(r"^\s*#\s*NBVAL_RAISES_EXCEPTION", src, re.M))
        cells.append((i, src, may_raise))
    return cells


def test_lite_lessons_and_exercises_run_without_errors(browser: _OfflineBrowser, lite_url: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    rest = [p for p in LESSONS + EXERCISES if p not in FULL_CHECK]
    assert len(LESSONS) == 8 and EXERCISES, (LESSONS, EXERCISES)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(120_000)
    try:
        page.goto(f"{lite_url}/lab/index.html?reset")
        page.wait_for_function("() => window.jupyterapp !== undefined")
        page.evaluate("async () => { await window.jupyterapp.started;"
                      " await window.jupyterapp.restored; }")
        start = time.monotonic()
        page.evaluate("async (path) => { const w = await window.jupyterapp.commands.execute("
                      "'docmanager:open', {path, factory: 'Notebook'}); await w.context.ready; }",
                      rest[0])
        page.wait_for_function(_kernel_idle_js(), timeout=180_000, polling=250)
        startup = time.monotonic() - start
        with capsys.disabled():   # the figure the README quotes: show it in every run
            print(f"\nJupyterLite: Pyodide kernel start-up (open to idle) {startup:.1f} s")
        failures = {}
        for rel_path in rest:
            t = time.monotonic()
            page.evaluate(_JS_RUN_CELLS, [[0, "%reset -f", False]])
            errors = page.evaluate(_JS_RUN_CELLS, _code_cells(rel_path))
            print(f"{rel_path}: {len(_code_cells(rel_path))} cells in "
                  f"{time.monotonic() - t:.1f} s, {len(errors)} error(s)")
            if errors:
                failures[rel_path] = errors
    finally:
        context.close()
    assert not failures, failures
