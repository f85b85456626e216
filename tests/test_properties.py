"""Properties over random layouts (hypothesis drives the seeds).

* invariants hold after fork and after every read/write/exit/DMA in either process;
* every variant (the four CoW kernels and eager-copy) shows each process exactly the data a
  plain "fork copies memory" reference predicts: private isolation, shared visibility,
  DONTFORK holes, WIPEONFORK zeros, and DMA writes visible to the pinning process;
* the ablations change nothing where their rule does not apply, and break exactly what
  the rule protects where it does.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from random_layouts import Layout, all_addrs, random_layout, random_script

import pkmm

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _initial_view(lay: Layout) -> dict[int, int]:
    """What each address reads as before fork, from the scenario alone."""
    s = lay.scenario
    view: dict[int, int] = {}
    for e in s.ptes:
        view[e["addr"]] = lay.data.get((e["folio"], e.get("page", 0)), 0)
    for e in s.pmds:
        for i in range(512):
            view[e["addr"] + i * 4096] = lay.data.get((e["folio"], i), 0)
    for e in s.swap:
        view[e["addr"]] = e.get("value", 0)
    return view


def _inside(a: int, ranges: list[tuple[int, int]]) -> bool:
    return any(s <= a < e for s, e in ranges)


def reference(lay: Layout, script: list[tuple[str, str, int, int]]) -> list[Any]:
    """Plain semantics of fork: the child gets a copy of private memory, shares shared
    memory, has no DONTFORK VMA and an empty WIPEONFORK VMA."""
    parent = _initial_view(lay)
    shared = {a: v for a, v in parent.items() if _inside(a, lay.shared_vmas)}
    child = {a: v for a, v in parent.items()
             if not _inside(a, lay.shared_vmas + lay.dontfork + lay.wipe)}
    views: dict[str, dict[int, int] | None] = {"parent": parent, "child": child}
    pin = lay.scenario.pins[0] if lay.scenario.pins else None
    pin_addr = None
    if pin is not None:
        for e in lay.scenario.ptes:
            if e["folio"] == pin["folio"] and e.get("page", 0) == pin.get("page", 0):
                pin_addr = e["addr"]
        for e in lay.scenario.pmds:
            if e["folio"] == pin["folio"]:
                pin_addr = e["addr"] + pin.get("page", 0) * 4096
    out: list[Any] = []
    for who, op, addr, val in script:
        view = views[who]
        if view is None:
            out.append("gone")
            continue
        if op == "exit":
            views[who] = None
            out.append("exit")
        elif op == "dma":
            if pin_addr is None:
                out.append("no-pin")
            else:
                view[pin_addr] = val
                out.append("dma")
        elif who == "child" and _inside(addr, lay.dontfork):
            out.append("SIGSEGV")
        elif _inside(addr, lay.shared_vmas):
            if op == "write":
                shared[addr] = val
                out.append("w")
            else:
                out.append(shared.get(addr, 0))
        elif op == "write":
            view[addr] = val
            out.append("w")
        else:
            out.append(view.get(addr, 0))
    return out


def run(lay: Layout, kernel: str, script: list[tuple[str, str, int, int]],
        without: frozenset[str] = frozenset(), check: bool = True) -> list[Any]:
    p, folios = lay.build()
    pins = list(p.pins)
    r = pkmm.fork(p, kernel, without=without)
    procs = {"parent": p, "child": r.child}
    if check:
        pkmm.check_invariants(p, r.child)
    out: list[Any] = []
    for who, op, addr, val in script:
        proc = procs[who]
        if proc.exited:
            out.append("gone")
            continue
        if op == "exit":
            proc.exit()
            out.append("exit")
        elif op == "dma":
            if not pins:
                out.append("no-pin")
            else:
                pkmm.dma_write(pins[0][0], pins[0][1], val)
                out.append("dma")
        else:
            try:
                if op == "write":
                    proc.write(addr, val)
                    out.append("w")
                else:
                    out.append(proc.read(addr))
            except pkmm.FaultError as e:
                out.append(e.signal)
        alive = [x for x in procs.values() if not x.exited]
        if check and alive:
            pkmm.check_invariants(*alive)
    return out


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1))
def test_every_variant_matches_plain_fork_semantics(seed: int) -> None:
    lay = random_layout(seed)
    script = random_script(seed, lay)
    expected = reference(lay, script)
    for kernel in pkmm.KERNELS:
        assert run(lay, kernel, script) == expected, kernel


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1))
def test_fork_then_read_everything_in_both(seed: int) -> None:
    """Right after fork, every address of the child reads what the parent had."""
    lay = random_layout(seed)
    script = [(who, "read", a, 0) for a in all_addrs(lay)[:80] for who in ("child", "parent")]
    expected = reference(lay, script)
    for kernel in pkmm.KERNELS:
        assert run(lay, kernel, script) == expected, kernel


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1))
def test_pinned_copy_ablation_is_a_no_op_without_pins(seed: int) -> None:
    lay = random_layout(seed, pins=False)
    script = random_script(seed, lay)
    for kernel in ("v6.8", "v6.17"):
        assert run(lay, kernel, script, frozenset({"pinned-copy"})) == \
            run(lay, kernel, script)


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1))
def test_cow_wrprotect_ablation_changes_nothing_a_reader_sees(seed: int) -> None:
    lay = random_layout(seed)
    script = [(who, "read", a, 0) for a in all_addrs(lay)[:40] for who in ("child", "parent")]
    for kernel in ("v6.9", "v6.17"):
        assert run(lay, kernel, script, frozenset({"cow-wrprotect"}), check=False) == \
            reference(lay, script)


# --- the ablations break exactly what their rule protects ----------------------------------

def _pinned_layout(order: int) -> tuple[pkmm.Process, pkmm.Folio]:
    p = pkmm.Process()
    p.mmap(0x200000, 16)
    f = p.alloc_folio(order)
    p.map(0x200000, f)
    f.page(0).data = 1
    p.pin(f, 0)
    return p, f


@pytest.mark.parametrize("kernel", ["v6.8", "batch-v3", "v6.9", "v6.17"])
@pytest.mark.parametrize("order", [0, 2])
def test_without_pinned_copy_the_parent_loses_a_dma_write(kernel: str, order: int) -> None:
    # with the rule: the child gets a copy, the parent keeps the pinned page
    p, f = _pinned_layout(order)
    r = pkmm.fork(p, kernel)
    p.write(0x200000, 2)
    assert p.last_fault.kind == "none"
    pkmm.dma_write(f, 0, 3)
    assert p.read(0x200000) == 3 and r.child.read(0x200000) == 1
    pkmm.check_invariants(p, r.child)
    # without it: the page is shared; the parent's write CoW-replaces the pinned page
    p, f = _pinned_layout(order)
    r = pkmm.fork(p, kernel, without={"pinned-copy"})
    assert r.copies == 0 and r.trace.filter(rule="ablation:pinned-copy")
    p.write(0x200000, 2)
    assert p.last_fault.kind == "cow-copy"
    pkmm.dma_write(f, 0, 3)
    assert p.read(0x200000) == 2          # the device's write is lost to the parent
    assert r.child.read(0x200000) == 3    # ... and lands in the child's memory
    with pytest.raises(pkmm.InvariantError, match="pinned"):
        pkmm.check_invariants(p, r.child)


@pytest.mark.parametrize("kernel", ["v6.8", "batch-v3", "v6.9", "v6.17"])
@pytest.mark.parametrize("order", [0, 4])
def test_without_cow_wrprotect_a_child_write_leaks_to_the_parent(kernel: str,
                                                                  order: int) -> None:
    p = pkmm.Process()
    p.mmap(0x200000, 16)
    f = p.alloc_folio(order)
    p.map(0x200000, f)
    r = pkmm.fork(p, kernel)
    r.child.write(0x200000, 5)
    assert p.read(0x200000) == 0                     # isolation holds with the rule
    p2 = pkmm.Process()
    p2.mmap(0x200000, 16)
    p2.map(0x200000, p2.alloc_folio(order))
    r2 = pkmm.fork(p2, kernel, without={"cow-wrprotect"})
    assert r2.child.pte(0x200000).write and p2.pte(0x200000).write
    r2.child.write(0x200000, 5)
    assert r2.child.last_fault.kind == "none"        # no CoW fault: no copy
    assert p2.read(0x200000) == 5                    # the parent sees the child's write
    with pytest.raises(pkmm.InvariantError, match="non-exclusive"):
        pkmm.check_invariants(p2, r2.child)
