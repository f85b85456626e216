"""pkmm.realkernel.replay on the running kernel: a scenario rebuilt in a probe process
comes back, snapshotted, with the folio sizes it asked for; the THP knobs are restored and
no process is left behind.  Linux + root only (skipped with the reason otherwise)."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from pkmm.realkernel import thp
from pkmm.realkernel.replay import LiveLayout, replay_fork
from pkmm.realkernel.support import detect
from pkmm.scenario import Scenario

REASON = detect().probe_ready() or (None if thp.writable() else "THP knobs not writable")
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"live replay: {REASON}")
M = 1 << 20
A = 0x20_0000_0000
LAYOUT = {
    "vmas": [{"start": A, "npages": 2048, "anon_vma": True},
             {"start": A + 16 * M, "npages": 64, "backing": "file", "anon_vma": True}],
    "runs": [{"addr": A, "npages": 512, "order": 9, "pmd": True},          # PMD THP
             {"addr": A + 2 * M, "npages": 512, "order": 9},              # PTE-mapped THP
             {"addr": A + 4 * M, "npages": 256, "order": 4},              # 16 x 64K
             {"addr": A + 5 * M, "npages": 256},                          # 4K pages
             {"addr": A + 16 * M, "npages": 63, "backing": "file", "write": False,
              "dirty": False},
             {"addr": A + 16 * M + 63 * 4096, "npages": 1}],
    "zero": [{"addr": A + 6 * M, "npages": 128}],
}


def _children() -> set[int]:
    me = str(os.getpid())
    out = set()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if (d / "stat").read_text().rsplit(")", 1)[1].split()[1] == me:
                    out.add(int(d.name))
            except OSError:
                continue
    return out


def knobs() -> dict[str, str]:
    """The knobs as they are when nobody holds the THP lock (another process of this
    machine may be changing them for a moment)."""
    with thp.thp_settings({}) as now:
        return now


def folios(sc: Scenario) -> Counter[tuple[int, bool]]:
    """(order, PMD-mapped) -> folios, from the runs of anonymous memory."""
    c: Counter[tuple[int, bool]] = Counter()
    for r in sc.runs:
        if r.get("backing", "anon") == "anon":
            c[(r.get("order", 0), r.get("pmd", False))] += r["npages"] >> r.get("order", 0)
    return c


def test_rebuilt_layout_has_the_folios_it_asked_for() -> None:
    before, kids = knobs(), _children()
    live = LiveLayout(Scenario.from_dict(LAYOUT)).start()
    try:
        got = live.obtained()
    finally:
        live.close()
    assert knobs() == before and _children() == kids
    f = folios(got)
    assert f[(9, True)] == 1 and f[(9, False)] == 1 and f[(4, False)] == 16
    assert f[(0, False)] == 256 + 1                  # the 4K run and the file VMA's CoW page
    assert sum(z["npages"] for z in got.zero) == 128
    cache = [r for r in got.runs if r.get("backing") == "file"]
    assert sum(r["npages"] for r in cache) == 63 and not any(r["write"] for r in cache)
    # the guards the probe placed around the layout are VMAs too, and are reported
    sizes = sorted(v["npages"] for v in got.vmas)
    assert 2048 in sizes and 64 in sizes and len(sizes) > 2


def test_replay_fork_times_the_repeat_state() -> None:
    r = replay_fork(Scenario.from_dict(LAYOUT), rounds=3)
    # the times themselves are not asserted on (a loaded machine may make a small
    # layout's net time anything): only that every round was timed and nothing left out
    assert len(r["samples_ns"]) == 3 and isinstance(r["net_min_ns"], int | float)
    assert not r["left_out"]
    # after the warm-up fork every anon PTE is read-only and no longer AnonExclusive
    anon = [x for x in r["obtained"].runs if x.get("backing", "anon") == "anon"]
    assert anon and not any(x["write"] or x.get("anon_exclusive") for x in anon)
    assert r["bare"].vmas                              # the probe's own layout, for the fit
