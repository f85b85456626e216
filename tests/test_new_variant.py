"""A new kernel version is its module plus its entry in the registry, and nothing else.

The test copies the package to a temporary directory, adds ``kernels/v6_19.py`` (v6.17's
module with only its name and release changed) and the one registry entry (its name in
``pkmm/kernels/__init__.py``'s import and in ``ALL``), and runs, against that copy, every
variant-parametrised check -- spec tables, declarations, the live-release mapping,
exercises and checkers -- selected by the new name.  No other file is touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
#: Test files whose checks are parametrised over the registry (the new variant runs them).
VARIANT_TESTS = [str(REPO / "tests" / f) for f in (
    "test_spec_present.py", "test_spec_other.py", "test_registry.py", "test_variants.py")]
#: The bulk path's differential tests (pkmm.fast); see test_new_variant_bulk_path.
BULK_TESTS = [str(REPO / "tests" / "test_fast.py")]
EQUAL = """
import pkmm
from random_layouts import random_layout
def state(r):
    return ([str(s) for s in r.steps], r.ops, r.eagain, r.copies,
            {a: repr(p) for a, p in r.child.ptes()}, {a: repr(p) for a, p in r.parent.ptes()})
for seed in range(10):
    old = pkmm.fork(random_layout(seed).build()[0], "v6.17")
    new = pkmm.fork(random_layout(seed).build()[0], "v6.19")
    assert state(old) == state(new), seed
assert pkmm.DEFAULT_KERNEL == "v6.19"
print("same answers")
"""


def _register_v6_19(tmp: Path) -> Path:
    pkg = tmp / "pkmm"
    shutil.copytree(REPO / "pkmm", pkg, ignore=shutil.ignore_patterns("__pycache__"))
    src = (pkg / "kernels" / "v6_17.py").read_text()
    module = src.replace('NAME = "v6.17"', 'NAME = "v6.19"').replace(
        "since=(6, 15), checked=(6, 18)", "since=(6, 19)")
    assert module.count("v6.19") == 1 and "since=(6, 19)" in module
    (pkg / "kernels" / "v6_19.py").write_text(module)
    registry = pkg / "kernels" / "__init__.py"
    text = registry.read_text()
    new = text.replace("v6_9, v6_17\n", "v6_9, v6_17, v6_19\n", 1).replace(
        "v6_17.KERNEL)", "v6_17.KERNEL, v6_19.KERNEL)", 1)
    assert new.count("v6_19") == 2, "the registry's import and ALL changed shape"
    registry.write_text(new)
    return tmp


def _run(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # run from the copy's directory: Python puts the working directory first on sys.path
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp), str(REPO / "tests")]))
    return subprocess.run([sys.executable, *args], cwd=tmp, env=env, capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = _register_v6_19(tmp_path_factory.mktemp("newvariant"))
    where = _run(tmp, "-c", "import pkmm; print(pkmm.__file__, pkmm.KERNELS)")
    assert str(tmp) in where.stdout and "v6.19" in where.stdout, where.stdout + where.stderr
    return tmp


def test_new_variant_runs_every_variant_parametrised_check(copy: Path) -> None:
    r = _run(copy, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "v6.19",
             *VARIANT_TESTS)
    tail = r.stdout[-3000:] + r.stderr[-2000:]
    assert r.returncode == 0, tail
    passed = int(r.stdout.rsplit(" passed", 1)[0].split()[-1])
    assert passed >= 60, tail          # the spec tables alone hold more rows than that


def test_new_variant_gives_the_same_answers_as_the_module_it_copies(copy: Path) -> None:
    r = _run(copy, "-c", EQUAL)
    assert r.returncode == 0 and "same answers" in r.stdout, r.stdout + r.stderr


def test_live_kernel_newer_than_v6_17_is_now_modelled_by_the_new_variant(copy: Path) -> None:
    r = _run(copy, "-W", "error", "-c", "from pkmm.realkernel.model import model_kernel; "
             "print(model_kernel('6.19.2'), model_kernel('6.18.1'))")
    assert r.returncode == 0 and r.stdout.split() == ["v6.19", "v6.17"], r.stdout + r.stderr


def test_new_variant_bulk_path(copy: Path) -> None:
    """The bulk path's differential tests, bulk vs traced, on the new variant."""
    r = _run(copy, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "v6.19",
             *BULK_TESTS)
    tail = r.stdout[-3000:] + r.stderr[-2000:]
    assert r.returncode == 0, tail
    assert int(r.stdout.rsplit(" passed", 1)[0].split()[-1]) >= 40, tail
