"""Scenario files and command lines: every bad input is a pkmm error that names the
argument and the fix (exit status 2 from a CLI, no traceback), before anything runs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import pkmm
from pkmm.scenario import TASK_SIZE, Scenario, load_scenario

GOOD = {"name": "t", "vmas": [{"start": "0x200000", "npages": 16}],
        "folios": {"F": {"order": 2}}, "ptes": [{"addr": "0x200000", "folio": "F"}]}


def _with(**changes: object) -> dict:
    d = json.loads(json.dumps(GOOD))
    for path, value in changes.items():
        sec, key = path.split("__")
        (d[sec][0] if isinstance(d[sec], list) else d[sec]["F"])[key] = value
    return d


@pytest.mark.parametrize("d,words", [
    (_with(vmas__npages=True), r"vmas\[0\].npages: expected an int, got True"),
    (_with(vmas__start=False), r"vmas\[0\].start: expected an int, got False"),
    (_with(folios__order=True), r"folios.F.order: expected an int, got True"),
    (_with(ptes__page=1.5), r"ptes\[0\].page: expected an int"),
    (_with(vmas__start=2 ** 80), r"vmas\[0\].start: .* out of range; .*47-bit"),
    (_with(vmas__start=hex(TASK_SIZE + 4096)), r"vmas\[0\].start: .*47-bit"),
    (_with(vmas__npages=10 ** 30), r"vmas\[0\].npages: .* out of range"),
    (_with(vmas__npages=-3), r"vmas\[0\].npages: -3 is out of range"),
    (_with(ptes__addr="9" * 5000), r"ptes\[0\].addr: expected an int .*\.\.\."),
    (_with(vmas__start=int("9" * 4000)), r"a 4000-digit number is out of range"),
    ({**GOOD, "kernel": ["v6.9"]}, r"kernel: \['v6.9'\] is not one of"),
    ({**GOOD, "description": 7}, "description: expected a string, got 7"),
    ({**GOOD, "markers": [{"addr": 0x200000, "markers": [1]}]}, "marker names as strings"),
    ({**GOOD, "vmsplice": [{"folio": "F", "refs": 1 << 40}]}, r"vmsplice\[0\].refs: .*range"),
])
def test_bad_fields_are_refused_with_their_path(d: dict, words: str) -> None:
    with pytest.raises(pkmm.ScenarioError, match=words):
        Scenario.from_dict(d)


def test_a_vma_reaching_the_end_of_the_address_space_is_accepted_and_beyond_is_not() -> None:
    top = TASK_SIZE - 16 * 4096
    s = Scenario.from_dict({"vmas": [{"start": hex(top), "npages": 16}]})
    p, _ = s.build()
    assert p.vmas[0].vm_end == TASK_SIZE


@pytest.mark.parametrize("content,words", [
    (b"[1, 2]", "expected an object, got list"),
    (b"\"a string\"", "expected an object, got str"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b'{"vmas": [{"start": ' + b"9" * 5000 + b', "npages": 1}]}', "cannot read"),
    (b'{"name": "caf\xe9"}', "not UTF-8"),
    (b"{not json", "not valid JSON"),
])
def test_bad_scenario_files(tmp_path, content: bytes, words: str) -> None:
    path = tmp_path / "s.json"
    path.write_bytes(content)
    with pytest.raises(pkmm.ScenarioError, match=words):
        load_scenario(path)
    if content.startswith((b"[", b"{")) and b"\xe9" not in content:
        with pytest.raises(pkmm.ScenarioError, match=words):     # the same text, inline
            load_scenario(content.decode())


def test_scenario_sources_that_are_not_files(tmp_path) -> None:
    with pytest.raises(pkmm.ScenarioError, match="is a directory"):
        load_scenario(tmp_path)
    with pytest.raises(pkmm.ScenarioError, match="does not exist"):
        load_scenario("no-such-scenario.json")
    with pytest.raises(pkmm.ScenarioError, match="does not exist"):
        load_scenario("bad\0name.json")
    with pytest.raises(pkmm.ScenarioError, match="cannot be read"):
        load_scenario(tmp_path / ("x" * 300))     # ENAMETOOLONG
    with pytest.raises(pkmm.ScenarioError, match="source=int"):
        load_scenario(5)  # type: ignore[arg-type]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pkmm", *args], capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("args,words", [
    (("realkernel", "--stored", "--data", "/nonexistent/x.json"), "does not exist"),
    (("realkernel", "--stored", "--data", "/dev/null"), "not a regular file"),
    (("realkernel", "--stored", "--data", "/"), "is a directory"),
    (("realkernel", "--stored", "--data", "{wrong}"), "machine"),
    (("realkernel", "--stored", "--only", "zzz"), "--only 'zzz': no scenario 'zzz'"),
    (("realkernel", "--stored", "--timing", "--sizes", "1Q"), "--sizes '1Q'"),
    (("realkernel", "--stored", "--timing", "--sizes", "99999G"), "out of range"),
    (("realkernel", "--stored", "--save"), "--save --stored"),
    (("realkernel", "--cowc", "--only", "a"), "--cowc takes no --only"),
    (("realkernel", "--cowc", "--data", "/dev/null"), "not a stored cow.c run"),
    (("realkernel", "--cowc", "--data", "{wrong}"), "no list of cases"),
    (("bench", "--repeats", "1000000000"), "--repeats 1000000000: use 1..1000"),
    (("bench", "--repeats", "0"), "--repeats 0"),
])
def test_cli_bad_arguments_exit_2_without_traceback(tmp_path, args, words: str) -> None:
    if "{wrong}" in args:
        bad = tmp_path / "wrong.json"
        bad.write_text(json.dumps({"format": 1, "scenarios": {"a": {"steps": 3}}}))
        args = tuple(str(bad) if a == "{wrong}" else a for a in args)
    r = _cli(*args)
    assert r.returncode == 2, r.stderr
    assert words in r.stderr and "Traceback" not in r.stderr
    assert r.stdout == ""
