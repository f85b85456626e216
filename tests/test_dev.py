"""./dev, the quick start's entry point: usage, unknown commands, the Binder URL, root.

The script is copied into a scratch directory (it works relative to its own location), so
these tests never touch the checkout's .venv.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DEV = REPO / "dev"
COMMANDS = ("lab", "test", "site", "lite", "bench", "course", "binder", "setup", "help")


def dev(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(cwd / "dev"), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60)


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    shutil.copy2(DEV, tmp_path / "dev")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    return tmp_path


def test_no_argument_prints_usage_not_the_script(clone: Path) -> None:
    for args in ((), ("help",), ("--help",)):
        out = dev(clone, *args)
        assert out.returncode == 0, out.stderr
        assert out.stdout.startswith("usage: ./dev COMMAND")
        assert "set -euo pipefail" not in out.stdout
        listed = {line.split()[0] for line in out.stdout.splitlines()
                  if line.startswith("  ") and not line.startswith("   ")}
        assert listed == set(COMMANDS)


def test_unknown_command_says_so(clone: Path) -> None:
    out = dev(clone, "frobnicate")
    assert out.returncode == 2
    assert "unknown command 'frobnicate'" in out.stderr and "usage: ./dev" in out.stderr


@pytest.mark.parametrize("remote,want", [
    ("https://github.com/alice/pkmm.git", "alice/pkmm"),
    ("git@github.com:os-course/pkmm-lab.git", "os-course/pkmm-lab"),
    ("https://github.com/alice/pkmm", "alice/pkmm"),
])
def test_binder_url_comes_from_the_github_remote(clone: Path, remote: str, want: str) -> None:
    subprocess.run(["git", "-C", str(clone), "remote", "add", "origin", remote], check=True)
    out = dev(clone, "binder")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == (f"https://mybinder.org/v2/gh/{want}/HEAD"
                                  "?urlpath=lab/tree/notebooks/00-start-here.ipynb")


def test_binder_without_a_github_remote_says_what_to_do(clone: Path) -> None:
    out = dev(clone, "binder")
    assert out.returncode == 1 and "no 'origin' remote" in out.stderr
    subprocess.run(["git", "-C", str(clone), "remote", "add", "origin",
                    "https://gitlab.example/x/pkmm.git"], check=True)
    out = dev(clone, "binder")
    assert out.returncode == 1 and "not a GitHub repository" in out.stderr


def test_lab_passes_allow_root_when_root(clone: Path) -> None:
    """Run `./dev lab` against a stand-in venv whose `jupyter` records its arguments."""
    bin_dir = clone / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (clone / "binder").mkdir()
    (clone / "binder" / "overrides.json").write_text("{}")
    (clone / "pyproject.toml").write_text("")
    (bin_dir / "python").symlink_to(shutil.which("python3") or "/usr/bin/python3")
    (clone / ".venv" / ".pkmm-setup-lab").touch()
    os.utime(clone / "pyproject.toml", (0, 0))  # older than the stamp: setup has nothing to do
    (bin_dir / "jupyter").write_text('#!/bin/sh\necho "jupyter $*"\n')
    (bin_dir / "jupyter").chmod(0o755)
    out = dev(clone, "lab", "--no-browser")
    assert out.returncode == 0, out.stderr
    args = out.stdout.split()
    assert args[:2] == ["jupyter", "lab"] and args[-1] == "--no-browser"
    assert ("--allow-root" in args) == (os.geteuid() == 0)
