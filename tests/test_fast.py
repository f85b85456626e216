"""The bulk fork (pkmm.fast) gives the traced model's answer: same state, same counts.

Random layouts are built with the Process API (pins, mixed bits, partial folios, zero
pages, swap / migration / marker entries, PMD-mapped THPs, several VMAs), forked with
``pkmm.fork(detail=True)`` and, converted with ``from_process``, with ``fork_bulk``.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pkmm
from pkmm.fast import fork_bulk, from_process, snapshot_bulk, snapshot_process, to_process
from pkmm.fast.layout import build_region

PMD = 0x200000
PAGE = 0x1000


def random_process(seed: int, kernel: str) -> pkmm.Process:
    """A random private-anon layout (deterministic in ``seed``)."""
    rng = random.Random(seed)
    p = pkmm.Process(kernel)
    addr = PMD * rng.randint(1, 3) - PAGE * rng.choice([0, 0, 3, 40])
    for _ in range(rng.randint(1, 2)):
        npages = rng.choice([16, 64, 300, 700, 1100])
        v = p.mmap(addr, npages, write=rng.random() < 0.9,
                   soft_dirty_tracking=rng.random() < 0.3,
                   uffd_wp=(uw := rng.random() < 0.15), uffd_fork=uw and rng.random() < 0.5)
        _fill(p, rng, v)
        addr = v.vm_end + PAGE * rng.choice([0, 0, 5, 512])
    if rng.random() < 0.5:
        _pin_some(p, rng)
    return p


def _fill(p: pkmm.Process, rng: random.Random, v: pkmm.Vma) -> None:
    a = v.vm_start
    writable = bool(v.vm_flags & 2)
    while a < v.vm_end:
        room = (v.vm_end - a) // PAGE
        kind = rng.random()
        if kind < 0.15:
            a += PAGE * rng.randint(1, 8)
        elif kind < 0.2 and a % PMD == 0 and room >= 512:
            f = p.alloc_folio(9)
            p.map_pmd(a, f, write=writable and rng.random() < 0.8)
            a += PMD
        elif kind < 0.25:
            p.map_zero_page(a)
            a += PAGE
        elif kind < 0.3:
            _nonpresent(p, rng, a)
            a += PAGE
        else:
            order = rng.choice([0, 0, 1, 2, 3, 4, 5, 9])
            f = p.alloc_folio(order)
            first = rng.choice([0, 0, rng.randrange(f.nr_pages)])
            nr = min(room, f.nr_pages - first, rng.choice([f.nr_pages, rng.randint(1, f.nr_pages)]))
            _map_run(p, rng, a, f, first, nr, writable)
            a += PAGE * nr


def _map_run(p: pkmm.Process, rng: random.Random, a: int, f: pkmm.Folio, first: int,
             nr: int, writable: bool) -> None:
    """Map pages [first, first+nr) of ``f`` at ``a`` in a few runs with random bits."""
    k = 0
    mixed = rng.random() < 0.4
    bits = {}
    while k < nr:
        n = rng.randint(1, nr - k) if mixed else nr - k
        if mixed or not bits:
            ae = rng.random() < 0.85
            pn = rng.random() < 0.05
            uw = rng.random() < 0.1
            bits = dict(write=writable and ae and not pn and not uw and rng.random() < 0.7,
                        dirty=rng.random() < 0.8, young=rng.random() < 0.7,
                        soft_dirty=rng.random() < 0.2, uffd_wp=uw,
                        protnone=pn, anon_exclusive=ae)
        p.map(a + k * PAGE, f, first + k, n, **bits)
        k += n


def _nonpresent(p: pkmm.Process, rng: random.Random, a: int) -> None:
    c = rng.random()
    if c < 0.4:
        p.map_swap(a, 7, exclusive=rng.random() < 0.5, uffd_wp=rng.random() < 0.3)
    elif c < 0.7:
        f = p.alloc_folio(0)
        p.map_migration(a, f, kind=rng.choice(["read", "read_exclusive", "write"]))
    else:
        p.map_marker(a, *rng.sample(["uffd_wp", "poisoned", "guard"], rng.randint(1, 2)))


def _pin_some(p: pkmm.Process, rng: random.Random) -> None:
    mapped = [(a, pte) for a, pte in p.ptes() if pte is not None and pte.present
              and not pte.special]
    for a, _ in rng.sample(mapped, min(len(mapped), rng.randint(1, 6))):
        f, i = p.page_at(a)
        pg = f.pages[i]
        if pg.anon_exclusive or (f.entire_mapcount and f.pages[0].anon_exclusive):
            p.pin(f, i)
    if rng.random() < 0.2 and mapped:
        f, i = p.page_at(mapped[0][0])
        p.vmsplice(f, i, refs=rng.choice([1, 1100]))


def check_same(p: pkmm.Process, kernel: str, vectorise: bool = True, **kw: object) -> None:
    b = from_process(p)
    r = pkmm.fork(p, kernel, detail=True, **kw)
    f = fork_bulk(b, kernel, vectorise=vectorise, **kw)
    assert snapshot_bulk(f.parent) == snapshot_process(p)
    assert snapshot_bulk(f.child) == snapshot_process(r.child)
    got = (f.eagain, f.copies, f.wasted, f.passes, f.lock_breaks)
    assert got == (r.eagain, r.copies, r.wasted, r.passes, r.lock_breaks)
    assert f.step_counts == r.step_counts
    assert f.ops == r.ops


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), kernel=st.sampled_from(pkmm.KERNELS),
       vectorise=st.booleans())
def test_same_answer_random_layouts(seed: int, kernel: str, vectorise: bool) -> None:
    check_same(random_process(seed, kernel), kernel, vectorise)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), kernel=st.sampled_from(pkmm.KERNELS),
       without=st.sampled_from([("pinned-copy",), ("cow-wrprotect",)]))
def test_same_answer_with_ablations(seed: int, kernel: str, without: tuple[str]) -> None:
    check_same(random_process(seed, kernel), kernel, without=without)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), kernel=st.sampled_from(("v6.8", "v6.9", "v6.17")))
def test_same_answer_with_lock_breaks(seed: int, kernel: str) -> None:
    check_same(random_process(seed, kernel), kernel, need_resched=True)


@pytest.mark.parametrize("kernel", pkmm.KERNELS)
@pytest.mark.parametrize("folio", ["4K", "64K", "2M-pte", "2M-pmd"])
def test_bench_layouts_match_the_model(kernel: str, folio: str) -> None:
    """The benchmark's own layouts (8 MiB here), back through to_process and pkmm.fork."""
    b = build_region(8 << 20, folio)
    p = to_process(b, kernel)
    check_same(p, kernel)


def test_round_trip() -> None:
    p = random_process(5, "v6.17")
    assert snapshot_process(to_process(from_process(p))) == snapshot_process(p)


def test_fork_enomem_is_forkerror() -> None:
    p = pkmm.Process()
    p.mmap(0, 16)
    f = p.alloc_folio(0)
    p.map(0, f)
    p.pin(f)
    with pytest.raises(pkmm.ForkError):
        fork_bulk(from_process(p), "v6.17", fail_prealloc=True)


@pytest.mark.parametrize("pinned", [False, True])
def test_same_answer_eager_copy_of_a_pmd_thp(pinned: bool) -> None:
    p = pkmm.Process("eager-copy")
    p.mmap(0x200000, 8)
    p.map(0x200000, p.alloc_folio(2))
    p.mmap(0x400000, 512)
    f = p.alloc_folio(9)
    p.map_pmd(0x400000, f)
    if pinned:
        p.pin(f, 9)
    check_same(p, "eager-copy", True)
