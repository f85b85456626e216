"""The bulk fork (pkmm.fast) gives the traced model's answer: same state, same counts.

The vectorised engine restates no rule, so these differential tests guard the
vectorisation itself: every layout is built with the Process API, forked by
``pkmm.fork(detail=True)`` and, converted with ``from_process``, by ``fork_bulk`` -- with
the vectorised engine and with every slice traced -- and the two must agree on every PTE,
PMD, table, folio counter, page-cache entry, rss counter, swap count, step count and
operation count.  Every check is parametrised over the registry (``pkmm.kernels.ALL``),
so a new variant runs them all.
"""

from __future__ import annotations

import dataclasses
import random
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from random_layouts import random_layout

import pkmm
from pkmm.context import ForkCounts
from pkmm.fast import (
    Bulk,
    build_region,
    fork_bulk,
    from_process,
    snapshot_bulk,
    snapshot_process,
    to_process,
)
from pkmm.folio import folio_ref_sub, page_restore
from pkmm.kernels import ALL, get_kernel
from pkmm.pgtable import PteTable
from pkmm.pte import pte_mkclean, pte_wrprotect

KERNELS = [k.name for k in ALL]
PMD = 0x200000
PAGE = 0x1000


# --- the oracle ---------------------------------------------------------------------

def check_same(p: pkmm.Process, kernel: str, vectorise: bool = True, **kw: object) -> object:
    """Fork ``p`` both ways and compare everything; returns the bulk result (or the
    ForkError both raised)."""
    b = from_process(p)
    try:
        r = pkmm.fork(p, kernel, detail=True, **kw)  # type: ignore[arg-type]
    except pkmm.ForkError as e:
        with pytest.raises(pkmm.ForkError):
            fork_bulk(b, kernel, vectorise=vectorise, **kw)  # type: ignore[arg-type]
        return e
    f = fork_bulk(b, kernel, vectorise=vectorise, **kw)  # type: ignore[arg-type]
    assert snapshot_bulk(f.parent) == snapshot_process(p)
    assert snapshot_bulk(f.child) == snapshot_process(r.child)
    # every counter both forks report (pkmm.context.ForkCounts), field by field
    for name in (fl.name for fl in dataclasses.fields(ForkCounts)):
        assert getattr(f, name) == getattr(r, name), name
    return f


# --- random private-anon layouts (pins, mixed bits, partial folios, non-present) -----

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


@pytest.mark.parametrize("kernel", KERNELS)
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), vectorise=st.booleans())
def test_same_answer_random_layouts(kernel: str, seed: int, vectorise: bool) -> None:
    check_same(random_process(seed, kernel), kernel, vectorise)


@pytest.mark.parametrize("kernel", KERNELS)
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6))
def test_same_answer_every_vma_kind(kernel: str, seed: int) -> None:
    """Anon, uffd-wp, shmem, private file with CoWed pages, PMD THPs, DONTFORK and
    WIPEONFORK VMAs, zero pages, swap entries and pins (tests/random_layouts.py)."""
    p, _ = random_layout(seed).build()
    check_same(p, kernel)


@pytest.mark.parametrize("kernel", KERNELS)
@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 2**32 - 1),
       without=st.sampled_from([("pinned-copy",), ("cow-wrprotect",)]))
def test_same_answer_with_ablations(kernel: str, seed: int, without: tuple[str]) -> None:
    check_same(random_process(seed, kernel), kernel, without=without)


@pytest.mark.parametrize("kernel", KERNELS)
@settings(max_examples=3, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_same_answer_with_lock_breaks(kernel: str, seed: int) -> None:
    check_same(random_process(seed, kernel), kernel, need_resched=True)


# --- tiny and odd layouts --------------------------------------------------------------

def _marker_only(p: pkmm.Process) -> None:
    """A VMA without anon_vma holding only a PTE marker (was an IndexError)."""
    p.mmap(0, 4)
    p.map_marker(0, "guard")


def _zero_page_without_anon_folios(p: pkmm.Process) -> None:
    """A zero page in a VMA with an anon_vma, no anon folio anywhere (was an IndexError)."""
    p.mmap(0, 4, anon_vma=True)
    p.map_zero_page(PAGE)


def _uffd_markers(p: pkmm.Process) -> None:
    p.mmap(0, 8, uffd_wp=True, uffd_fork=True)
    p.map_marker(0, "uffd_wp")
    p.map_marker(PAGE, "uffd_wp", "guard")
    p.mmap(PMD, 8, uffd_wp=True)
    p.map_marker(PMD, "uffd_wp", "poisoned")


def _swap_and_migration(p: pkmm.Process) -> None:
    p.mmap(0, 16, uffd_wp=True, uffd_fork=True)
    p.map_swap(0, 3, exclusive=True, uffd_wp=True, soft_dirty=True)
    p.map_swap(PAGE, 4, exclusive=False)
    for k, kind in enumerate(("read", "read_exclusive", "write")):
        p.map_migration((2 + k) * PAGE, p.alloc_folio(2), k, kind=kind, uffd_wp=k == 1)
    p.mmap(PMD, 8, backing="file")
    p.map_migration(PMD, p.alloc_folio(0, backing="file"), kind="read")


def _file_and_shmem(p: pkmm.Process) -> None:
    v = p.mmap(0, 32, backing="file", anon_vma=True)
    f = p.alloc_folio(4, backing="file")
    p.map(0, f)
    p.map(16 * PAGE, p.alloc_folio(2), nr=4)           # CoWed anon pages in the file VMA
    p.mmap(PMD, 16, backing="file", shared=True, file=v.vm_file)
    p.map(PMD, f, nr=16)                               # the same page cache, shared
    s = p.mmap(2 * PMD, 16, shared=True, uffd_wp=True, uffd_fork=True)
    p.map(2 * PMD, p.alloc_folio(3, backing="shmem"))
    del s


def _pfnmap(p: pkmm.Process) -> None:
    p.mmap(0, 8, pfnmap=True)
    for k in range(6):
        p.map_pfn(k * PAGE, 0x100 + k, write=k % 2 == 0)


def _thps(p: pkmm.Process) -> None:
    p.mmap(0, 1024)
    p.map_pmd(0, p.alloc_folio(9))
    p.map_huge_zero_pmd(PMD)
    p.mmap(4 * PMD, 512, backing="file", anon_vma=True)
    p.map_pmd(4 * PMD, p.alloc_folio(9, backing="file"))


def _pinned(p: pkmm.Process) -> None:
    p.mmap(0, 1024)
    thp = p.alloc_folio(9)
    p.map_pmd(0, thp)
    p.pin(thp, 7)
    big = p.alloc_folio(4)
    p.map(PMD, big)
    p.pin(big, 3)
    small = p.alloc_folio(0)
    p.map(PMD + 16 * PAGE, small)
    p.pin(small)
    spliced = p.alloc_folio(0)
    p.map(PMD + 17 * PAGE, spliced)
    p.vmsplice(spliced, 0, refs=1100)


def _cross_vma_folio(p: pkmm.Process) -> None:
    """One 64K folio mapped across two VMAs of one PTE table, and a PMD-crossing one."""
    p.mmap(0, 8)
    p.mmap(8 * PAGE, 8, soft_dirty_tracking=True)
    f = p.alloc_folio(4)
    p.map(0, f, 0, 8)
    p.map(8 * PAGE, f, 8, 8, dirty=False)
    p.mmap(PMD - 8 * PAGE, 16)
    g = p.alloc_folio(4)
    p.map(PMD - 8 * PAGE, g)


def _dontfork_wipeonfork(p: pkmm.Process) -> None:
    p.mmap(0, 8, dontfork=True)
    p.map(0, p.alloc_folio(3))
    p.mmap(PMD, 8, wipeonfork=True)
    p.map(PMD, p.alloc_folio(3))


def _hwpoison_pinned(p: pkmm.Process) -> None:
    p.mmap(0, 4)
    f = p.alloc_folio(0)
    p.map(0, f)
    p.pin(f)
    f.pages[0].hwpoison = True


def _ksm(p: pkmm.Process) -> None:
    p.mmap(0, 4)
    f = p.alloc_folio(0)
    p.map(0, f)
    f.ksm = True


def _empty_tables(p: pkmm.Process) -> None:
    p.mmap(0, 1024, anon_vma=True)
    p.map_marker(PMD, "poisoned")
    p.mmap(8 * PMD, 3)


# --- layouts only the widened API builds (MADV_PAGEOUT, GUP, mremap, forks) -----------

def _swap_cache(p: pkmm.Process) -> None:
    """Paged-out pages: a swap entry whose slot's folio is still in the swap cache, one
    read back (a present PTE mapping a swap-cache folio), one whose cache was dropped."""
    p.mmap(0, 16)
    p.memset(0, 16, 5)
    assert p.madvise(0, 8, "MADV_PAGEOUT") == 0
    p.read(PAGE)                          # swapped in again through the swap cache
    p.write(2 * PAGE, 9)                  # ... and written: the swap cache is freed
    assert p.machine.swap and any(s.cache is not None for s in p.machine.swap.values())


def _migration_in_flight(p: pkmm.Process) -> None:
    """Migration entries of one large folio in two mms (the migration holds its one
    reference), beside present PTEs of the same VMA."""
    p.mmap(0, 32)
    f = p.alloc_folio(2)
    for k in range(4):
        p.map_migration(k * PAGE, f, k, kind="write" if k % 2 else "read")
    p.map(8 * PAGE, p.alloc_folio(3))
    pkmm.fork(p, p.kernel)                # a first child: its entries count too
    assert f.migration_entries == 8 and f.refcount == 1


def _gup_pins(p: pkmm.Process) -> None:
    """R/O long-term pins on the zero page and on a private file page (each unshared
    into an AnonExclusive anon page first), a R/W pin that write-faults, GUP-fast."""
    p.mmap(0, 8)
    p.read(0)                             # the shared zero page
    p.pin_user_pages(0, 2)
    f = p.tmpfile(8)
    p.mmap(PMD, 8, backing="file", file=f)
    p.read(PMD)
    p.pin_user_pages(PMD, 1)
    p.mmap(2 * PMD, 16)
    p.memset(2 * PMD, 16, 3)
    p.pin_user_pages(2 * PMD, 4, write=True, fast=True)
    p.pin_user_pages(2 * PMD + 8 * PAGE, 2)


def _mremapped_partial_folio(p: pkmm.Process) -> None:
    """Part of a 64K folio moved by mremap: both halves PTE-map the one folio, the moved
    part at an address no longer aligned to it, a guard marker beside it."""
    p.machine.thp.set_order(4, "always")
    p.mmap(0, 16)
    p.memset(0, 16, 7)
    assert p.mremap(3 * PAGE, 5, PMD + 9 * PAGE) == 0
    p.mmap(2 * PMD, 4)
    p.map_marker(2 * PMD, "guard")


def _mm_id_slots_full(p: pkmm.Process) -> None:
    """Large folios shared with a child and a grandchild: the parent and the child hold
    both MM-id slots, the grandchild none, and neither will the next child."""
    p.machine.thp.set_order(4, "always")
    p.mmap(0, 64)
    p.memset(0, 64, 1)
    c = pkmm.fork(p, p.kernel).child
    pkmm.fork(c, c.kernel)
    c.write(0, 2)                         # the child's copy of the first folio
    f = p.page_at(16 * PAGE)
    assert f is not None and f[0].order == 4      # (eager copy shares none of them)


LAYOUTS: dict[str, Callable[[pkmm.Process], None]] = {
    f.__name__[1:]: f for f in (
        _marker_only, _zero_page_without_anon_folios, _uffd_markers, _swap_and_migration,
        _file_and_shmem, _pfnmap, _thps, _pinned, _cross_vma_folio, _dontfork_wipeonfork,
        _hwpoison_pinned, _ksm, _empty_tables, _swap_cache, _migration_in_flight, _gup_pins,
        _mremapped_partial_folio, _mm_id_slots_full)}


def test_the_bulk_form_carries_migration_swap_cache_and_mm_id_state() -> None:
    """The state the widened layouts hold survives from_process / to_process, and forking
    in bulk changes it as pkmm.fork does (not merely the entries)."""
    for name in ("swap_cache", "migration_in_flight", "mm_id_slots_full"):
        p = pkmm.Process("v6.17")
        LAYOUTS[name](p)
        assert snapshot_process(to_process(from_process(p))) == snapshot_process(p), name
    p = pkmm.Process("v6.17")
    _mm_id_slots_full(p)
    f = p.page_at(16 * PAGE)[0]
    ids_before = list(f.mm_ids)
    assert None not in ids_before
    b = from_process(p)
    r = pkmm.fork(p, "v6.17")
    fb = fork_bulk(b, "v6.17")
    assert fb.vectorised_slices and not fb.hard_slices     # the engine took them
    assert f.mm_ids == ids_before and f.mm_ids_shared       # both slots were taken
    assert snapshot_bulk(fb.child) == snapshot_process(r.child)
    q = pkmm.Process("v6.17")
    q.machine.thp.set_order(4, "always")
    q.mmap(0, 16)
    q.memset(0, 16, 1)
    b = from_process(q)
    r = pkmm.fork(q, "v6.17")
    g = q.page_at(0)[0]
    assert g.mm_ids == [q.mm.mm_id, r.child.mm.mm_id] and g.mm_ids_shared
    fork_bulk(b, "v6.17")
    assert snapshot_bulk(b) == snapshot_process(q)


def test_hugetlb_vmas_have_no_bulk_form() -> None:
    p = pkmm.Process()
    p.mmap(0, 1024, hugetlb_kb=2048)
    with pytest.raises(pkmm.LayoutError, match="hugetlb VMAs"):
        from_process(p)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("vectorise", [True, False])
def test_same_answer_tiny_and_odd_layouts(kernel: str, layout: str, vectorise: bool) -> None:
    p = pkmm.Process(kernel)
    LAYOUTS[layout](p)
    check_same(p, kernel, vectorise)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("fail", [True, 1, 2])
def test_same_failure_when_a_preallocation_fails(kernel: str, fail: int | bool) -> None:
    p = pkmm.Process(kernel)
    _pinned(p)
    check_same(p, kernel, fail_prealloc=fail)


@pytest.mark.parametrize("kernel", KERNELS)
def test_same_failure_when_the_allocator_fails(kernel: str) -> None:
    p = pkmm.Process(kernel)
    _thps(p)
    p.mmap(8 * PMD, 64)
    p.map(8 * PMD, p.alloc_folio(6))
    p.machine.fail_alloc = 1
    check_same(p, kernel)


# --- the benchmark's layouts, and what the engine takes -----------------------------

@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("folio", ["4K", "64K", "2M-pte", "2M-pmd"])
@pytest.mark.parametrize("state", ["fresh", "repeat"])
def test_bench_layouts_match_the_model(kernel: str, folio: str, state: str) -> None:
    """The benchmark's own layouts (8 MiB here), back through to_process and pkmm.fork;
    the vectorised engine takes every slice of them (but a PMD leaf that gets a new THP
    for the child, eager copy's, goes through the traced path)."""
    b = build_region(8 << 20, folio, state)
    f = check_same(to_process(b, kernel), kernel)
    fast = fork_bulk(build_region(8 << 20, folio, state), kernel)
    copies_thp = folio == "2M-pmd" and not get_kernel(kernel).copy_on_write
    assert (fast.vectorised_slices, fast.hard_slices) == ((0, 4) if copies_thp else (4, 0))
    assert snapshot_bulk(fast.child) == snapshot_bulk(f.child)  # type: ignore[attr-defined]


@pytest.mark.parametrize("kernel", KERNELS)
def test_pinned_slices_run_traced_and_the_rest_vectorised(kernel: str) -> None:
    p = pkmm.Process(kernel)
    p.mmap(0, 2048)
    for k in range(4):
        p.map(k * PMD, p.alloc_folio(9))
    f, _ = p.page_at(PMD)
    p.pin(f, 0)
    r = check_same(p, kernel)
    assert (r.vectorised_slices, r.hard_slices) == (3, 1)  # type: ignore[attr-defined]


def test_eager_copies_interleave_with_traced_slices_in_address_order() -> None:
    """eager-copy allocates in vectorised and in traced slices; pfns follow the addresses."""
    kernel = next(k.name for k in ALL if not k.copy_on_write)
    p = pkmm.Process(kernel)
    p.mmap(0, 2048)
    for k in range(4):
        p.map(k * PMD, p.alloc_folio(4), nr=16)
    p.map_swap(2 * PMD + 40 * PAGE)
    f, _ = p.page_at(PMD)
    p.pin(f, 0)
    r = check_same(p, kernel)
    assert r.vectorised_slices and r.hard_slices  # type: ignore[attr-defined]


# --- the bulk form itself ------------------------------------------------------------

@pytest.mark.parametrize("layout", LAYOUTS)
def test_round_trip(layout: str) -> None:
    p = pkmm.Process()
    LAYOUTS[layout](p)
    assert snapshot_process(to_process(from_process(p))) == snapshot_process(p)
    assert snapshot_bulk(from_process(p)) == snapshot_process(p)


def test_round_trip_random() -> None:
    for seed in range(5):
        p = random_process(seed, pkmm.DEFAULT_KERNEL)
        assert snapshot_process(to_process(from_process(p))) == snapshot_process(p)


def test_copy_is_independent() -> None:
    b = build_region(4 << 20, "64K")
    c = b.copy()
    fork_bulk(b)
    assert snapshot_bulk(c) == snapshot_bulk(build_region(4 << 20, "64K"))
    assert snapshot_bulk(c) != snapshot_bulk(b)


def test_fork_enomem_is_forkerror() -> None:
    p = pkmm.Process()
    p.mmap(0, 16)
    f = p.alloc_folio(0)
    p.map(0, f)
    p.pin(f)
    with pytest.raises(pkmm.ForkError):
        fork_bulk(from_process(p), fail_prealloc=True)


@pytest.mark.parametrize("call", [
    lambda: fork_bulk("not a bulk"),                                    # type: ignore[arg-type]
    lambda: fork_bulk(build_region(2 << 20, "4K"), "v5"),
    lambda: fork_bulk(build_region(2 << 20, "4K"), without=5),          # type: ignore[arg-type]
    lambda: fork_bulk(build_region(2 << 20, "4K"), without={"pins"}),
    lambda: fork_bulk(build_region(2 << 20, "4K"), need_resched="yes"),  # type: ignore[arg-type]
    lambda: fork_bulk(build_region(2 << 20, "4K"), fail_prealloc=-1),
    lambda: build_region("1G", "4K"),                                   # type: ignore[arg-type]
    lambda: build_region(3 << 20, "4K"),
    lambda: build_region(1 << 50, "4K"),
    lambda: build_region(2 << 20, "8K"),
    lambda: build_region(2 << 20, "4K", "stale"),
    lambda: from_process("p"),                                          # type: ignore[arg-type]
    lambda: to_process("b"),                                            # type: ignore[arg-type]
])
def test_bad_input_is_a_layout_error(call: Callable[[], object]) -> None:
    with pytest.raises(pkmm.LayoutError):
        call()


def test_bad_input_changes_nothing() -> None:
    b = build_region(2 << 20, "4K")
    before = snapshot_bulk(b)
    with pytest.raises(pkmm.LayoutError):
        fork_bulk(b, without={"pins"})
    assert snapshot_bulk(b) == before and isinstance(b, Bulk)


def test_fast_restates_no_kernel_rule() -> None:
    """No kernel's name and no bare pin bias or progress constant in pkmm/fast."""
    src = "\n".join(f.read_text() for f in
                    (Path(pkmm.__file__).parent / "fast").glob("*.py"))
    for name in KERNELS:
        assert f'"{name}"' not in src and f"'{name}'" not in src, name
    assert not re.search(r"\b1024\b|\b32\b|[^_]EAGAIN\b", src)


def test_counts_come_from_the_variant() -> None:
    """A batching and a non-batching variant differ on the same bulk layout, as traced."""
    b = build_region(4 << 20, "64K")
    counts = {k: fork_bulk(b.copy(), k).ops["set_ptes_calls"] for k in KERNELS}
    traced = {k: pkmm.fork(to_process(b, k), k, detail=False).ops["set_ptes_calls"]
              for k in KERNELS}
    assert counts == traced and len(set(counts.values())) > 1
    assert int(np.count_nonzero(b.mm.bits)) == 1024


def _perturb(p: pkmm.Process, how: str) -> None:
    """Change one slot of an otherwise alike region (the alike path must notice)."""
    a = 0x40000000 + 2 * PMD + 77 * PAGE
    f, i = p.page_at(a)
    table = p.mm.pmds[a >> 21]
    assert isinstance(table, PteTable)
    old = table.ptes[(a >> 12) & 511]
    assert old is not None
    if how == "bits":
        table.ptes[(a >> 12) & 511] = pte_mkclean(old)
    elif how == "ae":
        page_restore(f.pages[i], mapcount=1, anon_exclusive=False, hwpoison=False)
        table.ptes[(a >> 12) & 511] = pte_wrprotect(old)
    elif how == "pin":
        p.pin(f, i)
    elif how == "hole":
        table.ptes[(a >> 12) & 511] = None
        page_restore(f.pages[i], mapcount=0, anon_exclusive=False, hwpoison=False)
        folio_ref_sub(f, 1)
        p.mm.add_mm_counter("MM_ANONPAGES", -1)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("folio", ["4K", "64K", "2M-pte"])
@pytest.mark.parametrize("how", ["bits", "ae", "pin", "hole"])
def test_nearly_alike_regions(kernel: str, folio: str, how: str) -> None:
    """A benchmark region with one slot changed: forked right by both engines."""
    p = to_process(build_region(8 << 20, folio), kernel)
    _perturb(p, how)
    check_same(p, kernel)
