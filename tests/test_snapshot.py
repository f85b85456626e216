"""pkmm.realkernel.snapshot on a process the test starts: every region kind as the kernel
exports it, with and without root, and the errors for bad, vanished and forbidden PIDs."""

from __future__ import annotations

import importlib
import json
import os
import sys

import pytest
from realproc import in_child, nobody, target

from pkmm import realkernel
from pkmm.realkernel.procpid import SnapshotError
from pkmm.scenario import Scenario

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="snapshots read /proc (Linux only)")
snap = importlib.import_module("pkmm.realkernel.snapshot")   # the package exports the function
NOBODY = nobody()
as_nobody = pytest.mark.skipif(NOBODY is None, reason="needs root to drop to 'nobody'")


def vma_at(sc: Scenario, addr: int) -> dict:
    return next(v for v in sc.vmas if v["start"] == addr)


def entries(sc: Scenario, section: str, lo: int, hi: int) -> list[dict]:
    out = []
    for e in getattr(sc, section):
        e = e if isinstance(e, dict) else {"addr": e, "npages": 1}
        if lo <= e["addr"] < hi:
            out.append(e)
    return out


def pages(es: list[dict]) -> int:
    return sum(e.get("npages", 1) for e in es)


@pytest.fixture(scope="module")
def as_root() -> tuple[dict, Scenario]:
    with target() as (pid, regions):
        yield regions, snap.snapshot(pid)


def test_private_anon_pages_are_exclusive_writable_4k_runs(as_root) -> None:
    regions, sc = as_root
    lo, hi = regions["anon4k"]
    v = vma_at(sc, lo)
    assert v["backing"] == "anon" and v["anon_vma"] and v["npages"] == (hi - lo) >> 12
    runs = entries(sc, "runs", lo, hi)
    assert pages(runs) == v["npages"]
    assert all(r.get("order", 0) == 0 and r["write"] and r["anon_exclusive"] for r in runs)


def test_zero_pages_and_the_anon_vma_they_imply(as_root) -> None:
    regions, sc = as_root
    lo, hi = regions["zero"]
    assert vma_at(sc, lo)["anon_vma"]                 # page 0 was written
    assert pages(entries(sc, "runs", lo, hi)) == 1
    assert pages(entries(sc, "zero", lo, hi)) == ((hi - lo) >> 12) - 1
    lo, hi = regions["onlyzero"]
    assert "anon_vma" not in vma_at(sc, lo)           # only read: no anon page, ever
    assert pages(entries(sc, "zero", lo, hi)) == (hi - lo) >> 12
    assert any("only zero pages" in a for a in sc.approximations)


def test_private_file_mapping_has_page_cache_and_its_cow_copy(as_root) -> None:
    regions, sc = as_root
    lo, hi = regions["file"]
    v = vma_at(sc, lo)
    assert v["backing"] == "file" and v["anon_vma"] and not v.get("shared")
    runs = entries(sc, "runs", lo, hi)
    cache = [r for r in runs if r.get("backing") == "file"]
    anon = [r for r in runs if "backing" not in r]
    assert pages(anon) == 1 and anon[0]["addr"] == lo
    assert pages(cache) == ((hi - lo) >> 12) - 1
    assert not any(r["write"] for r in cache)         # page cache in a private mapping: R/O


def test_shared_dontfork_wipeonfork_readonly_flags(as_root) -> None:
    regions, sc = as_root
    shared = vma_at(sc, regions["shared"][0])
    assert shared["shared"] and shared["backing"] == "shmem" and "anon_vma" not in shared
    assert vma_at(sc, regions["dontfork"][0])["dontfork"]
    assert vma_at(sc, regions["wipe"][0])["wipeonfork"]
    lo, hi = regions["readonly"]
    assert vma_at(sc, lo)["write"] is False
    assert not any(r["write"] for r in entries(sc, "runs", lo, hi))


def test_root_sees_pfns_and_folios(as_root) -> None:
    _, sc = as_root
    if os.geteuid() != 0:
        pytest.skip("PFNs and kpageflags need root")
    assert sc.source["pfns_visible"] and sc.source["kpageflags"]
    assert not any("folio sizes unknown" in a for a in sc.approximations)


def test_the_streams_are_those_pagemap_reads_for_the_folio_pages() -> None:
    # the snapshot records where the kernel put each VMA's folio pages from the frames it
    # read once; read back through pagemap over the same runs, they must be the same
    # streams, and they count every folio page (no zero page: fork touches no struct
    # page for it)
    if os.geteuid() != 0:
        pytest.skip("frames are visible to root only")
    from pkmm.realkernel.placement import region_streams
    with target() as (pid, regions):
        sc = snap.snapshot(pid)
        streams = sc.source["streams"]
        for v in sc.vmas:
            lo, hi = v["start"], v["start"] + (v["npages"] << 12)
            inside = sorted((r["addr"], r["npages"]) for r in sc.runs if lo <= r["addr"] < hi)
            got = streams.get(hex(lo), {})
            want = region_streams(pid, inside) if inside else {}
            assert {int(n): c for n, c in got.items()} == want, v["label"]
            assert sum(int(n) * c for n, c in got.items()) == sum(n for _, n in inside)
    zlo, _ = regions["onlyzero"]
    assert hex(zlo) not in streams          # a VMA of zero pages only: no struct page


def test_snapshot_builds_and_round_trips(as_root) -> None:
    _, sc = as_root
    again = Scenario.from_dict(json.loads(json.dumps(sc.to_dict())))
    assert again.to_dict() == sc.to_dict()
    p, _ = again.build()
    assert len(p.vmas) == len(sc.vmas)


@as_nobody
def test_without_root_the_guesses_are_said() -> None:
    assert NOBODY is not None
    with target(as_user=NOBODY) as (pid, regions):
        d = in_child(lambda: snap.snapshot(pid).to_dict(), as_user=NOBODY)
    sc = Scenario.from_dict(d)
    assert not sc.source["pfns_visible"] and not sc.source["kpageflags"]
    assert any("folio sizes unknown" in a for a in sc.approximations)
    assert any("AnonExclusive not visible" in a for a in sc.approximations)
    lo, hi = regions["zero"]
    # PAGEMAP_SCAN needs no privilege: zero pages are still told apart
    assert pages(entries(sc, "zero", lo, hi)) == ((hi - lo) >> 12) - 1
    lo, hi = regions["anon4k"]
    assert all(r["write"] for r in entries(sc, "runs", lo, hi))   # bit 56: mapped once


def test_the_view_without_root_can_be_asked_for() -> None:
    """privileged=False reads what a user without root gets, whoever runs it: the same
    VMAs and zero pages (PAGEMAP_SCAN needs no privilege), no PFNs, no kpageflags, and
    the guesses that follow said."""
    with target() as (pid, regions):
        full = snap.snapshot(pid)
        sc = snap.snapshot(pid, privileged=False)
        within = snap.snapshot(pid, privileged=False, within=[tuple(regions["zero"])])
    assert not sc.source["pfns_visible"] and not sc.source["kpageflags"]
    assert any("folio sizes unknown" in a and "privileged=False" in a
               for a in sc.approximations)
    assert set(sc.source["folio_orders"]) == {"0"}      # every PTE-mapped page taken as 4K
    if os.geteuid() == 0:
        assert full.source["pfns_visible"] and full.source["kpageflags"]
    shape = [(v["start"], v["npages"], v.get("backing"), v.get("shared", False))
             for v in full.vmas]
    assert [(v["start"], v["npages"], v.get("backing"), v.get("shared", False))
            for v in sc.vmas] == shape
    assert sc.zero == full.zero and sc.huge_zero == full.huge_zero
    lo, hi = regions["zero"]
    assert pages(entries(sc, "zero", lo, hi)) == ((hi - lo) >> 12) - 1
    assert [v["start"] for v in within.vmas] == [lo]
    with pytest.raises(SnapshotError, match="privileged="):
        snap.snapshot(os.getpid(), privileged="no")  # type: ignore[arg-type]


@as_nobody
def test_another_users_process_is_a_permission_error() -> None:
    me = os.getpid()
    with pytest.raises(RuntimeError, match="SnapshotError: .*not allowed.*root"):
        in_child(lambda: snap.snapshot(me).name, as_user=NOBODY)


@pytest.mark.parametrize("pid", [0, -3, True, "12", 4_000_000_000])
def test_bad_pid_names_the_argument(pid: object) -> None:
    with pytest.raises(SnapshotError, match=r"pid="):
        realkernel.snapshot(pid)  # type: ignore[arg-type]


def test_an_exited_process_is_reported() -> None:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    try:
        while open(f"/proc/{pid}/stat").read().split(") ")[1][0] != "Z":
            pass                                     # wait until it is a zombie
        with pytest.raises(SnapshotError, match="no memory map|exited"):
            snap.snapshot(pid)
    finally:
        os.waitpid(pid, 0)
    with pytest.raises(SnapshotError, match="no such process"):
        snap.snapshot(pid)


def test_a_recycled_pid_is_noticed(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = iter([("python", 100), ("other", 200)])
    monkeypatch.setattr(snap, "process_identity", lambda pid: next(calls))
    with pytest.raises(SnapshotError, match="exited while it was read"):
        snap.snapshot(os.getpid())


def test_cli_writes_the_scenario_and_prints_what_it_guessed(
        tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "me.json"
    assert snap.main([str(os.getpid()), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"pid {os.getpid()} (") and "approximated" in text
    sc = Scenario.from_dict(json.loads(out.read_text()))
    assert sc.source["pid"] == os.getpid() and sc.approximations
    assert snap.main(["notapid"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pkmm snapshot: error: pid=") and "Traceback" not in err
    assert snap.main([str(os.getpid()), "--unprivileged", "-o", str(out)]) == 0
    assert "privileged=False" in capsys.readouterr().out
    user = Scenario.from_dict(json.loads(out.read_text()))
    assert not user.source["kpageflags"] and not user.source["pfns_visible"]


def _pages_of(parent, vma):
    """The :class:`Pages` a pagemap read of ``vma`` in the built ``parent`` would classify
    (what the encoder works from), from the model's page tables."""
    import numpy as np

    from pkmm.realkernel import pages as pg
    n = vma.npages
    cols = {k: np.zeros(n, t) for k, t in (
        ("kind", np.uint8), ("order", np.int8), ("index", np.int32), ("head", np.int64),
        ("pmd", bool), ("excl", bool), ("shared", bool), ("ae", bool), ("dirty", bool),
        ("uffd_wp", bool), ("soft_dirty", bool), ("guard", bool))}
    for i, (addr, pte) in enumerate(parent.ptes(vma.vm_start, vma.vm_end)):
        if pte is None:
            continue
        assert pte.present, "the stored snapshot has only present entries and zero pages"
        folio, idx = parent.page_at(addr)
        if folio.kind == "zero":
            cols["kind"][i] = pg.ZERO
            continue
        cols["kind"][i] = pg.ANON if folio.kind == "anon" else pg.PAGECACHE
        cols["order"][i], cols["index"][i], cols["head"][i] = folio.order, idx, folio.pfn
        cols["ae"][i] = folio.pages[idx].anon_exclusive
        for k in ("pmd", "dirty", "uffd_wp", "soft_dirty"):
            cols[k][i] = getattr(pte, k)
    return pg.Pages(start=vma.vm_start, **cols)


def test_the_stored_numpy_snapshot_is_what_the_encoder_writes() -> None:
    """Re-encode the stored 64K snapshot from the process its runs build: the runs (their
    ``continue``/``page`` resumes included) and the folio counts come back unchanged.  The
    encoder and the run builder agree on the format, and the stored file is in the form the
    encoder writes (an encoder that did not write a resume, or a file edited into a form
    it would not write, fails here)."""
    from collections import Counter

    from pkmm import processlab
    from pkmm.realkernel.runs import encode_vma
    stored = json.loads(processlab.STORED_LARGE.read_text())
    sc = Scenario.from_dict(stored)
    parent = sc.build()[0]
    ctx = object.__new__(snap._Context)   # only what encode_vma reads: no live process
    ctx.kp, ctx.orders, ctx.last_folio, ctx.open_folios = object(), Counter(), None, {}
    out: dict = {}
    for info, vma in zip(stored["vmas"], parent.vmas, strict=True):
        assert (vma.vm_start, vma.npages) == (info["start"], info["npages"])
        encode_vma(_pages_of(parent, vma), info, ctx, out)
    assert out["runs"] == stored["runs"]
    assert out.get("zero") == stored["zero"]
    assert {str(o): n for o, n in sorted(ctx.orders.items())} == \
        stored["source"]["folio_orders"]
