"""Release checks: `python -m build` makes an sdist and a wheel that `twine check` accepts;
the wheel carries every non-Python file of the package (data, widget assets); a fresh venv
installs the wheel with `[lab]` and runs the lab's imports and `python -m pkmm quiz`; the
version, the CHANGELOG and the installed metadata agree.

Slow (a fresh venv and pip install; pip's cache makes reruns fast).  Skipped with the
reason when build/twine are missing or the package registry cannot be reached.
"""

from __future__ import annotations

import re
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest
from test_binder import NETWORK_ERRORS, notebook_imports

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
VERSION = PYPROJECT["project"]["version"]


def _run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=1500, **kw)  # type: ignore[call-overload]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("build", reason="build is not installed (the release extra)")
    pytest.importorskip("hatchling", reason="hatchling is not installed (the release extra)")
    out = tmp_path_factory.mktemp("dist")
    # --no-isolation: the build backend comes from this venv, so no build env is fetched.
    proc = _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out),
                 str(REPO)])
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return out


def test_changelog_names_this_version() -> None:
    text = (REPO / "CHANGELOG.md").read_text()
    releases = re.findall(r"^## (\d+\.\d+\.\d+)", text, re.MULTILINE)
    assert releases and releases[0] == VERSION, (releases, VERSION)


def test_sdist_and_wheel_pass_twine_check(dist: Path) -> None:
    pytest.importorskip("twine", reason="twine is not installed (the release extra)")
    files = sorted(dist.iterdir())
    assert [f.name for f in files] == [f"pkmm-{VERSION}-py3-none-any.whl",
                                       f"pkmm-{VERSION}.tar.gz"]
    proc = _run([sys.executable, "-m", "twine", "check", "--strict", *map(str, files)])
    print(proc.stdout)
    assert proc.returncode == 0 and proc.stdout.count("PASSED") == 2, proc.stdout + proc.stderr


def test_wheel_carries_every_package_file(dist: Path) -> None:
    """Every file git tracks under pkmm/ (data, widget JS/CSS, .py) is in the wheel."""
    tracked = _run(["git", "ls-files", "pkmm"], cwd=REPO).stdout.split()
    if not tracked:
        pytest.skip("not a git checkout")
    (wheel,) = dist.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [f for f in tracked if f not in names]
    assert not missing, f"wheel lacks {missing}"
    assert any(n.startswith("pkmm/data/") and n.endswith(".json") for n in names)


def test_fresh_venv_installs_the_wheel_with_lab(dist: Path, tmp_path: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    env_dir = tmp_path / "wheel-venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    proc = _run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                 f"{wheel}[lab]"])
    if proc.returncode != 0 and any(e in proc.stderr for e in NETWORK_ERRORS):
        pytest.skip(f"package registry unreachable: {proc.stderr.strip().splitlines()[-1]}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    mods = sorted(notebook_imports())
    code = ("import importlib, importlib.metadata as md, sys\n"
            "for m in sys.argv[1:]: importlib.import_module(m)\n"
            "import pkmm; print(md.version('pkmm'), pkmm.__file__)")
    # Run from tmp_path: the checkout's pkmm/ must not shadow the installed one.
    run = _run([str(py), "-c", code, *mods], cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    version, where = run.stdout.split()
    assert version == VERSION and str(env_dir) in where
    quiz = _run([str(py), "-m", "pkmm", "quiz", "-s", "7", "-n", "64", "-c"], cwd=tmp_path)
    assert quiz.returncode == 0, quiz.stderr[-2000:]
    assert quiz.stdout.startswith("ARG seed 7\n") and "A4. " in quiz.stdout
