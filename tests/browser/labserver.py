"""A JupyterLab server for the browser test, isolated from the developer's own Jupyter.

Started from this interpreter (the project's venv when run as `.venv/bin/python -m pytest`),
bound to 127.0.0.1 on a free port with no token, serving a temp copy of notebooks/ so the
test never writes into the repository's notebooks.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
FIXTURES_IN_ROOT = "_pkmm_harness_fixtures"  # where the fixtures are copied in the server root

# Chromium flags: headless in a container as root, and no attempts to reach outside hosts
# (the CI network only reaches package registries; retries would slow every page).
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-quic", "--no-first-run",
]

# JupyterLab user settings: no news/update toasts over the screenshots, and no windowed
# notebook rendering, which would detach off-screen cells (and their widgets) from the DOM.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
        {"checkForUpdates": False, "fetchNews": "false"},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings":
        {"windowingMode": "none"},
}


def notebooks_dir() -> Path:
    """The notebooks under test; PKMM_NOTEBOOKS_DIR lets a developer point at a scratch set."""
    return Path(os.environ.get("PKMM_NOTEBOOKS_DIR", REPO / "notebooks")).resolve()


def project_notebooks() -> list[str]:
    """Every notebook a learner can open, as paths relative to notebooks_dir(), in order."""
    root = notebooks_dir()
    found = sorted(root.glob("*.ipynb")) + sorted(root.glob("exercises/*.ipynb"))
    return [p.relative_to(root).as_posix() for p in found]


def require_browser() -> bool:
    """True when a missing browser must fail the run (CI) instead of skipping."""
    return os.environ.get("PKMM_REQUIRE_BROWSER", "0") == "1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _http_json(url: str, method: str = "GET") -> Any:
    req = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(req, timeout=5) as resp:
        body = resp.read()
    return json.loads(body) if body else None


def make_server_root(base: Path) -> Path:
    """A temp copy of notebooks/ (the tests must never write into the repo's notebooks)."""
    root = base / "root"
    src = notebooks_dir()
    if src.is_dir():
        shutil.copytree(src, root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    else:
        root.mkdir()
    shutil.copytree(FIXTURES, root / FIXTURES_IN_ROOT)
    return root


def lab_env(base: Path) -> dict[str, str]:
    """Environment isolated from the developer's own Jupyter config, settings and kernels."""
    env = dict(os.environ)
    env.pop("MPLBACKEND", None)  # an inherited Agg backend silently drops inline figures
    settings = base / "settings"
    for name, value in LAB_SETTINGS.items():
        target = settings / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(value))
    config = base / "config"
    config.mkdir(parents=True, exist_ok=True)
    for name in ("jupyter_server_config.json", "jupyter_notebook_config.json"):
        (config / name).write_text(json.dumps(
            {"JupyterNotebookApp": {"expose_app_in_browser": True}}))
    env.update({
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(base / "workspaces"),
        "JUPYTER_CONFIG_DIR": str(base / "config"),
        # A user-level `python3` kernelspec would shadow this venv's kernel.
        "JUPYTER_DATA_DIR": str(base / "data"),
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    })
    return env


def _lab_command(root: Path, port: int) -> list[str]:
    cmd = [
        sys.executable, "-m", "jupyterlab", "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        "--IdentityProvider.token=", "--ServerApp.password=",
        "--ServerApp.disable_check_xsrf=True", "--LabApp.expose_app_in_browser=True",
        f"--ServerApp.root_dir={root}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.news_url=",
        # Notebook 7 (the same server) exposes its app too, so the test can drive it
        "--JupyterNotebookApp.expose_app_in_browser=True",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    return cmd


class LabServer:
    """A JupyterLab subprocess on 127.0.0.1; `stop()` ends only the process it started."""

    def __init__(self, root: Path, env: dict[str, str], log: Path) -> None:
        self.root, self.log = root, log
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log_fh = log.open("wb")
        self.proc = subprocess.Popen(_lab_command(root, self.port), env=env, cwd=root,
                                     stdout=self._log_fh, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        """Poll /api/status; fail with the server's log tail if it dies or stalls."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {self.proc.returncode}:\n"
                                   f"{self.log_tail()}")
            try:
                _http_json(f"{self.url}/api/status")
                return
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.25)
        raise RuntimeError(f"jupyter lab not ready after {timeout_s:.0f}s:\n{self.log_tail()}")

    def delete_sessions(self) -> None:
        """Shut down every kernel session left over (the page shuts its own; this is backup)."""
        for session in _http_json(f"{self.url}/api/sessions") or []:
            _http_json(f"{self.url}/api/sessions/{session['id']}", method="DELETE")

    def log_tail(self, n: int = 40) -> str:
        self._log_fh.flush()
        lines = self.log.read_text(errors="replace").splitlines()
        return "\n".join(lines[-n:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # the server shuts its kernels down
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # our own session group only
                self.proc.wait(timeout=5)
        self._log_fh.close()
