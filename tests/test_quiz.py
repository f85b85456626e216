"""``python -m pkmm quiz``: seeded, reproducible, answers consistent with the model."""

from __future__ import annotations

import subprocess
import sys

import pytest

import pkmm
from pkmm.quiz import main, quiz_scenario


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def test_echoes_arguments_and_is_deterministic(capsys: pytest.CaptureFixture[str]) -> None:
    out = run(capsys, "-s", "7", "-k", "v6.9")
    assert out.splitlines()[:4] == ["ARG seed 7", "ARG kernel v6.9", "ARG ptes 8",
                                    "ARG solve False"]
    assert out == run(capsys, "-s", "7", "-k", "v6.9")
    assert "Q1." in out and "A1." not in out and "-c" in out
    # pins are the folio's (its FOLL_PIN count on the folio line), never a page's
    assert "  #  addr      folio.page  pfn     W D A SD UW PN  AE\n" in out


def test_different_seeds_differ(capsys: pytest.CaptureFixture[str]) -> None:
    outs = {run(capsys, "-s", str(s)).split("\n", 1)[1] for s in range(6)}
    assert len(outs) == 6


def test_layout_does_not_depend_on_the_kernel(capsys: pytest.CaptureFixture[str]) -> None:
    a = run(capsys, "-s", "3", "-k", "v6.8").split("fork() this process")[0]
    b = run(capsys, "-s", "3", "-k", "batch-v3").split("fork() this process")[0]
    assert a.replace("v6.8", "K") == b.replace("batch-v3", "K")


@pytest.mark.parametrize("kernel", ["v6.8", "batch-v3", "v6.9", "v6.17"])
@pytest.mark.parametrize("seed", [1, 7, 11])
def test_answers_match_the_model(capsys: pytest.CaptureFixture[str], kernel: str,
                                 seed: int) -> None:
    out = run(capsys, "-s", str(seed), "-k", kernel, "-c")
    assert "ARG solve True" in out
    s = quiz_scenario(seed)
    p, folios = s.build()
    r = pkmm.fork(p, kernel)
    assert f"A1. {r.batches}" in out
    rows = sorted(e["addr"] for e in s.ptes)
    copied = [rows.index(st.addr) for st in r.steps if st.action == "copy"]
    assert f"A2. {copied if copied else 'none'}" in out
    assert "A4. " + ", ".join(f"{n} {f.refcount}" for n, f in folios.items()) in out
    # one "Calls" line per step, in order, and the batch-ending rule from the trace
    for st in r.steps:
        assert str(st) in out
    func = pkmm.get_kernel(kernel).batch_func
    if func and any(st.nr > 1 for st in r.steps):
        assert f"] {func}: stop:" in out


def test_a_pinned_layout_shows_copies(capsys: pytest.CaptureFixture[str]) -> None:
    seed = next(s for s in range(100) if quiz_scenario(s).pins)
    out = run(capsys, "-s", str(seed), "-k", "v6.9", "-c")
    assert "MMF_HAS_PINNED: yes" in out
    assert "A2. none" not in out and "(new page)" in out
    assert "copy_present_page: copied" in out


def test_ptes_option(capsys: pytest.CaptureFixture[str]) -> None:
    out = run(capsys, "-s", "2", "-n", "20")
    assert "ARG ptes 20" in out
    assert len(quiz_scenario(2, 20).ptes) >= 20


@pytest.mark.parametrize("n", [1, 56, 60, 63, 64])
@pytest.mark.parametrize("seed", range(10))
def test_every_documented_ptes_value_runs(capsys: pytest.CaptureFixture[str], n: int,
                                          seed: int) -> None:
    """-n is documented as 1..64: every value in range must lay out and fork (n = 64
    once drew PTEs past a fixed 64-page VMA and died with a ScenarioError)."""
    out = run(capsys, "-s", str(seed), "-n", str(n), "-c")
    s = quiz_scenario(seed, n)
    assert len(s.ptes) >= n
    vma = s.vmas[0]
    assert all(vma["start"] <= e["addr"] < vma["start"] + vma["npages"] * 4096 for e in s.ptes)
    assert "A4. " in out


@pytest.mark.parametrize("argv,msg", [
    (["-k", "v7"], "kernel='v7' is not a pkmm kernel; choose one of"),
    (["-s", "x"], "invalid int value"),
    (["-n", "0"], "out of range"),
    (["--bogus"], "unrecognized arguments"),
])
def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str],
                              msg: str) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "usage: python -m pkmm quiz" in err and msg in err


def test_module_entry_point() -> None:
    ok = subprocess.run([sys.executable, "-m", "pkmm", "quiz", "-s", "7", "-c"],
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and ok.stdout.startswith("ARG seed 7\nARG kernel v6.17\n")
    bad = subprocess.run([sys.executable, "-m", "pkmm", "quiz", "-k", "v7"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "not a pkmm kernel" in bad.stderr
