"""python -m pkmm bench: arguments, JSON keys, exit codes (small sizes, no live kernel)."""

from __future__ import annotations

import json

import pytest

from pkmm import bench


def test_json_keys(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(bench.SIZES, "8M", 8 << 20)
    assert bench.main(["--size", "8M", "--folio", "4K,2M-pmd", "--kernel", "v6.9,v6.17",
                       "--json", "--no-real", "--repeats", "1"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 4
    for r in rows:
        for key in ("size_bytes", "folio", "kernel", "sim_seconds", "peak_rss_bytes",
                    "kernel_fork_seconds", "predicted_fork_seconds", "ops"):
            assert key in r
        assert r["kernel_fork_seconds"] is None
        assert r["size_bytes"] == 8 << 20
    assert rows[0]["ops"]["pte_writes"] == (8 << 20) >> 12


def test_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--size", "256M", "--folio", "2M-pmd", "--kernel", "v6.17",
                       "--no-real", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert "stored" in out and "pmd_copies=128" in out


@pytest.mark.parametrize("argv", [["--size", "3G"], ["--folio", "8K"], ["--kernel", "v5"],
                                  ["--repeats", "0"], ["--bogus"]])
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("pkmm bench: error:") and "Traceback" not in err
