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


# --- the API: wrong types and values, before anything changes ------------------------

API_BASE = 0x200000


def _proc() -> pkmm.Process:
    p = pkmm.Process()
    p.mmap(API_BASE, 16)
    return p


@pytest.mark.parametrize("call,words", [
    (lambda p: p.mmap(0x800000, 1, backing="file", file="x"), "file='x'"),
    (lambda p: p.mmap(0x800000, 1, shared="yes"), "shared='yes'"),
    (lambda p: p.mmap(0x800000, 1, uffd_wp=1), "uffd_wp=1"),
    (lambda p: p.mmap(0x800000, 1, backing="file", pgoff=-5), "pgoff=-5"),
    (lambda p: p.mmap(0x800000, 1, backing="file", pgoff="0"), "pgoff='0'"),
    (lambda p: p.mmap(0x800000, 1, file=pkmm.File("f", "file")), "an anonymous VMA has no"),
    (lambda p: p.mmap(1 << 47, 1), "47-bit"),
    (lambda p: p.pmd("0x200000"), "addresses are ints"),
    (lambda p: list(p.ptes("0")), "addresses are ints"),
    (lambda p: p.map(API_BASE, p.alloc_folio(0), dirty=None), "dirty=None"),
    (lambda p: p.map_swap(API_BASE, "7"), "value='7'"),
    (lambda p: p.map_swap(API_BASE, None), "value=None"),
    (lambda p: p.map_swap(API_BASE, 1, exclusive="no"), "exclusive='no'"),
    (lambda p: p.map_migration(API_BASE, p.alloc_folio(0), 0.5), "page=0.5"),
    (lambda p: p.map_migration(API_BASE, p.alloc_folio(1), "1"), "page='1'"),
    (lambda p: p.map_migration(API_BASE, p.alloc_folio(1), True), "page=True"),
    (lambda p: pkmm.fork(p, detail="no"), "detail='no'"),
    (lambda p: pkmm.fork(p, need_resched=1), "need_resched=1"),
])
def test_api_wrong_types_are_layout_errors(call, words: str) -> None:
    p = _proc()
    vmas = [v.describe() for v in p.vmas]
    with pytest.raises(pkmm.LayoutError, match=words):
        call(p)
    assert [v.describe() for v in p.vmas] == vmas and p.pte(API_BASE) is None


def test_map_migration_refuses_mapped_freed_and_misplaced_pages() -> None:
    p = _proc()
    f = p.alloc_folio(0)
    p.map(API_BASE + 4096, f)
    with pytest.raises(pkmm.LayoutError, match="still mapped"):
        p.map_migration(API_BASE, f)
    p.munmap(API_BASE + 4096, 1)
    assert f.freed
    with pytest.raises(pkmm.LayoutError, match="live folio"):
        p.map_migration(API_BASE, f)
    q = pkmm.Process()
    file = pkmm.File("f", "file")
    q.mmap(API_BASE, 4, backing="file", file=file)
    cached = q.alloc_folio(0, backing="file")
    file.cache[1] = cached.pages[0]                     # offset 1 is in the page cache
    with pytest.raises(pkmm.LayoutError, match="caches another page"):
        q.map_migration(API_BASE + 4096, q.alloc_folio(0, backing="file"))
    other = q.alloc_folio(0, backing="file")
    q.map_migration(API_BASE + 2 * 4096, other)        # goes into the page cache ...
    assert q.vma(API_BASE).vm_file.cache[2] is other.pages[0]
    pkmm.check_invariants(q)                            # ... as map() puts it there


def test_a_page_cache_page_has_one_file_offset() -> None:
    p = pkmm.Process()
    p.mmap(API_BASE, 8, backing="file")
    f = p.alloc_folio(0, backing="file")
    p.map(API_BASE, f)
    with pytest.raises(pkmm.LayoutError, match="another file offset"):
        p.map(API_BASE + 5 * 4096, f)


@pytest.mark.parametrize("kernel", ["v6.8", "v6.17"])
def test_the_migration_holds_a_reference_so_fork_and_exit_stay_consistent(kernel):
    # p.map_migration(0, f); fork; p.read(0); p.exit(): the child's entry still names a
    # live folio, because the migration (not each entry) holds a reference
    p = pkmm.Process(kernel)
    p.mmap(0, 1)
    f = p.alloc_folio(0)
    p.map_migration(0, f)
    assert (f.refcount, f.migration_entries) == (1, 1)
    c = pkmm.fork(p, kernel=kernel).child
    # copy_nonpresent_pte() takes no reference for the child's migration entry
    assert (f.refcount, f.migration_entries) == (1, 2)
    p.read(0)                 # remove_migration_pte(): the mapping's reference
    assert (f.refcount, f.migration_entries) == (2, 1)
    p.exit()
    pkmm.check_invariants(c)
    assert c.read(0) == 0 and not f.freed
    assert (f.refcount, f.migration_entries) == (1, 0)     # the migration ended
    pkmm.check_invariants(c)
    c.exit()
    assert f.freed
    # a zapped last entry ends the migration and frees the folio
    z = pkmm.Process(kernel)
    z.mmap(0, 2)
    h = z.alloc_folio(0)
    z.map_migration(0, h)
    z.munmap(0, 1)
    assert h.freed
    # and isolation: the parent writes after fork, the child still reads the old value
    q = pkmm.Process(kernel)
    q.mmap(0, 1)
    g = q.alloc_folio(0)
    g.pages[0].data = 7
    q.map_migration(0, g)
    d = pkmm.fork(q, kernel=kernel).child
    q.write(0, 42)
    assert d.read(0) == 7 and q.read(0) == 42
    pkmm.check_invariants(q, d)
