"""One fork's present-PTE copy calls, each with the decisions it made (from the trace).

Simulator concept (views layer).  The model records a :class:`~pkmm.trace.Step` for every
return of ``copy_present_pte(s)`` and an :class:`~pkmm.trace.Event` for every decision;
:func:`present_calls` pairs them (the events of one call are contiguous in the trace and
lie inside the PTEs it handled).  :func:`observed_paths` forks a set of probe layouts
that reach every branch of the copy path, so the decision flow is drawn from what the
variant's code *did*, never from a hand-made chart.
Taught in: notebooks/02-fork-one-pte-at-a-time.ipynb
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ...fork import ForkResult, fork
from ...process import Process
from ...pte import PAGE_SIZE
from ...trace import Event, Step

#: Functions of the shared walk around the present-PTE copy (mm/memory.c, kernel/fork.c):
#: their events are not part of one copy_present_pte(s) call.
WALK = frozenset({"fork", "dup_mmap", "vma_needs_copy", "copy_page_range", "copy_pmd_range",
                  "copy_pte_range", "page_copy_prealloc", "folio_prealloc",
                  "copy_nonpresent_pte",
                  "copy_huge_pmd"})


@dataclass(frozen=True)
class Call:
    """One ``copy_present_pte(s)`` call: its step and the events it emitted, in order."""

    step: Step
    events: tuple[Event, ...]

    def covers(self, addr: int) -> bool:
        """Whether the call handled the PTE at ``addr``."""
        return self.step.addr <= addr < self.step.addr + max(self.step.nr, 1) * PAGE_SIZE


def present_calls(r: ForkResult) -> list[Call]:
    """The present-PTE copy calls of fork ``r`` with their decisions.

    >>> import pkmm
    >>> p = pkmm.Process(); _ = p.mmap(0, 4); f = p.alloc_folio(2); p.map(0, f)
    >>> [[e.rule for e in c.events] for c in present_calls(pkmm.fork(p, "v6.9"))]
    [['stop:range-end', 'anon-dup:ok', 'cow-wrprotect', 'set-ptes']]
    """
    events = list(r.trace)
    out, j = [], 0
    for s in r.steps:
        if s.action == "nonpresent":
            continue
        lo, hi = s.addr, s.addr + max(s.nr, 1) * PAGE_SIZE
        seq: list[Event] = []
        while j < len(events):
            e = events[j]
            inside = e.func not in WALK and e.addr is not None and lo <= e.addr < hi
            if inside:
                seq.append(e)
            elif seq:
                break           # the call's events are contiguous: it has ended
            j += 1
        out.append(Call(s, tuple(seq)))
    return out



Node = tuple[str, str]     # (function, outcome); ("entry", func) and ("return", action)


def node_of(e: Event) -> Node:
    """A decision node: every batch stop reason is one outcome, "stop"."""
    return (e.func, "stop" if e.rule.startswith("stop:") else e.rule)


def call_path(entry: str, c: Call) -> list[Node]:
    """entry -> vm_normal_page() -> each decision -> what the call returned.

    vm_normal_page() is the kernel's first question for every present PTE; the trace
    records it only when it finds no page, so a call without that event found one."""
    ret = "-EAGAIN" if c.step.action == "eagain" else c.step.action
    nodes = [node_of(e) for e in c.events]
    if not any(n[0] == "vm_normal_page" for n in nodes):
        nodes.insert(0, ("vm_normal_page", "page"))
    return [("entry", entry)] + nodes + [("return", ret)]


def _probes() -> list[Process]:
    """Layouts that reach every branch of a copy path: small and large anon folios,
    a bit difference inside a folio, pins on small and large folios, a read-only shared
    anon page, the zero page, page-cache pages (private file with anon_vma, shared shmem
    with uffd-wp) and a raw PFN map."""
    out = []
    p = Process()
    p.mmap(0x200000, 16)
    f, g, h = p.alloc_folio(2), p.alloc_folio(0), p.alloc_folio(2)
    p.map(0x200000, f)
    p.map(0x204000, g)
    p.map(0x206000, h, 0, 2)
    p.map(0x208000, h, 2, 2, dirty=False)
    pin_small, pin_large = p.alloc_folio(0), p.alloc_folio(1)
    p.map(0x20a000, pin_small)
    p.map(0x20b000, pin_large)
    p.pin(pin_small)
    p.pin(pin_large, 1)
    shared = p.alloc_folio(0)
    p.map(0x20d000, shared, write=False, anon_exclusive=False)
    p.map_zero_page(0x20e000)
    out.append(p)
    q = Process()
    q.mmap(0x400000, 8, backing="file", anon_vma=True)
    q.map(0x400000, q.alloc_folio(0, backing="file"))
    q.map(0x401000, q.alloc_folio(2, backing="file"))
    q.mmap(0x600000, 8, backing="shmem", shared=True, uffd_wp=True, uffd_fork=True)
    q.map(0x600000, q.alloc_folio(2, backing="shmem"))
    q.map(0x604000, q.alloc_folio(0, backing="shmem"))
    q.mmap(0x800000, 2, pfnmap=True)
    q.map_pfn(0x800000, 0x5)
    out.append(q)
    return out


@lru_cache(maxsize=8)
def observed_paths(kernel: str) -> tuple[tuple[Node, ...], ...]:
    """Every distinct decision path ``kernel``'s copy path took over the probe layouts."""
    from ...kernels import get_kernel
    entry = get_kernel(kernel).present_func
    seen: dict[tuple[Node, ...], None] = {}
    for p in _probes():
        for c in present_calls(fork(p, kernel=kernel)):
            seen.setdefault(tuple(call_path(entry, c)), None)
    return tuple(seen)
