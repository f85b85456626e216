"""The real-kernel scenarios and the write script every one of them runs.

Simulator concept (no kernel file).  Each scenario names a memory layout (built for the
real kernel by :mod:`pkmm.realkernel.layouts_real` and for the model by
:mod:`pkmm.realkernel.layouts_model`), the pages w1/w2/w3 of the script, and the rule
that each phase of the script checks.
Taught in: notebooks/09-real-kernel-lab.ipynb
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from .observe import Step

RULES = {
    "1": "which VMAs fork copies at all (anon_vma, uffd-wp child, DONTFORK, WIPEONFORK)",
    "2": "copied private anon PTEs: same PFN, both read-only, AE cleared, mapcount 1->2",
    "3": "PMD-mapped THP: the PMD itself is shared",
    "4": "zero pages: copied as PTEs, never counted, never reused",
    "5": "first write to a shared anon page copies only that 4K page (PMD split first)",
    "6": "second writer: order-0 reuse; large folio reuse only when mapped by one mm alone",
    "7": "pinned (maybe-DMA-pinned + AE + MMF_HAS_PINNED) pages are copied at fork",
    "8": "uffd-wp bit kept in the child only with UFFD_FEATURE_EVENT_FORK",
}

_DEFAULT_RULES = {"fork": "2", "read": "1", "first": "5", "second": "6", "exit": "6"}


@dataclass(frozen=True)
class Scenario:
    """One scenario: layout, script pages, what the machine must offer, rules checked."""

    id: str
    title: str
    npages: int
    w1: int | None
    w2: int | None
    w3: int | None
    show: tuple[int, ...]
    child_reads: bool = False
    folio: str = "4K"                 # "4K" | "64K" | "2M": THP knobs the layout needs
    needs: tuple[str, ...] = ()        # capabilities: io_uring, uffd, ext4, tmpfs, hzero
    writer_mprotect: bool = False      # j1: each writer mprotect(RW)s the region first
    rules: dict[str, str] = field(default_factory=dict)

    def rule(self, phase: str) -> str:
        return self.rules.get(phase, _DEFAULT_RULES[phase])


def _s(id: str, title: str, npages: int, w: tuple[int | None, int | None, int | None],
       show: tuple[int, ...], **kw: object) -> Scenario:
    return Scenario(id, title, npages, *w, show, **kw)  # type: ignore[arg-type]


_NO_COPY = {"fork": "1", "first": "1", "second": "6"}
_PIN = {"fork": "7", "first": "7", "second": "7"}

SCENARIOS: tuple[Scenario, ...] = (
    _s("a", "private anon 4K, written", 16, (0, 1, 2), (0, 1, 2, 3)),
    _s("b1", "zero pages only, no anon_vma", 16, (0, 1, 2), (0, 1, 2, 3), child_reads=True,
       rules={"fork": "1", "first": "4", "second": "4", "exit": "4"}),
    _s("b2", "zero pages + one written page", 16, (0, 1, 2), (0, 1, 2, 15),
       rules={"fork": "4", "first": "4", "second": "4", "exit": "4"}),
    _s("b3", "zero pages, anon_vma from a VMA split", 16, (0, 1, 2), (0, 1, 2, 3),
       child_reads=True, rules={"fork": "1", "first": "4", "second": "4", "exit": "4"}),
    _s("c", "64K mTHP, PTE-mapped", 64, (3, 5, 7), (0, 1, 3, 5, 7, 15, 16), folio="64K"),
    _s("c2", "64K mTHP, head write after child exit", 64, (None, None, 16), (16, 17, 18),
       folio="64K"),
    _s("d1", "2M THP PTE-mapped, 3 VMAs", 512, (3, 5, 7), (0, 1, 3, 5, 7, 100, 511),
       folio="2M"),
    _s("d2", "2M THP PTE-mapped, 1 VMA", 512, (3, 5, 7), (0, 1, 3, 5, 7, 100, 511),
       folio="2M"),
    _s("e", "2M THP PMD-mapped", 512, (3, 5, 7), (0, 1, 3, 5, 7, 511), folio="2M",
       rules={"fork": "3"}),
    _s("e2", "huge zero page (PMD)", 512, (3, 5, 7), (0, 1, 3, 5, 7), folio="2M",
       needs=("hzero",), rules={"fork": "4", "first": "4", "second": "4", "exit": "4"}),
    _s("f", "MAP_SHARED|MAP_ANONYMOUS", 16, (0, 1, 2), (0, 1, 2, 3), child_reads=True,
       rules=dict(_NO_COPY, first="1", second="1", exit="1")),
    _s("g1", "private file (ext4), read only", 16, (0, 1, 2), (0, 1, 2, 3), child_reads=True,
       needs=("ext4",), rules=_NO_COPY),
    _s("g2", "private file (tmpfs), read only", 16, (0, 1, 2), (0, 1, 2, 3), child_reads=True,
       needs=("tmpfs",), rules=_NO_COPY),
    _s("g3", "private file (ext4), page 1 CoWed", 16, (0, 1, 2), (0, 1, 2, 3),
       child_reads=True, needs=("ext4",), rules={"fork": "1"}),
    _s("g4", "private file (tmpfs), page 1 CoWed", 16, (0, 1, 2), (0, 1, 2, 3),
       child_reads=True, needs=("tmpfs",), rules={"fork": "1"}),
    _s("h1", "4K page pinned (io_uring)", 16, (1, 2, 3), (1, 2, 3), needs=("io_uring",),
       rules=_PIN),
    _s("h2", "one page of a 64K mTHP pinned", 64, (4, 3, 17), (0, 1, 3, 4, 15, 16, 17),
       folio="64K", needs=("io_uring",), rules=_PIN),
    _s("h3", "one page of a PMD-mapped 2M THP pinned", 512, (4, 3, 5), (0, 1, 3, 4, 511),
       folio="2M", needs=("io_uring",), rules=dict(_PIN, exit="7")),
    _s("h4", "pinned then unpinned before fork", 16, (1, 2, 3), (1, 2, 3),
       needs=("io_uring",)),
    _s("h5a", "1280 vmsplice refs, nothing pinned", 16, (1, 2, 3), (1, 2, 3, 8),
       rules={"fork": "7"}),
    _s("h5b", "1280 vmsplice refs + another page pinned", 16, (1, 2, 3), (1, 2, 3, 8),
       needs=("io_uring",), rules=_PIN),
    _s("h6", "whole 64K folio pinned", 64, (1, 3, 16), (0, 1, 3, 15, 16), folio="64K",
       needs=("io_uring",), rules=_PIN),
    _s("h7", "64K folio, only pinned page 5 AE", 64, (4, 5, 6), (0, 4, 5, 6, 15, 16),
       folio="64K", needs=("io_uring",), rules=dict(_PIN, first="5", exit="6")),
    _s("i1", "MADV_DONTFORK", 16, (0, 1, 2), (0, 1, 2), child_reads=True,
       rules=dict(_NO_COPY, first="1", second="1", exit="1")),
    _s("i2", "MADV_WIPEONFORK", 16, (0, 1, 2), (0, 1, 2), child_reads=True,
       rules=dict(_NO_COPY, first="1", second="1", exit="1")),
    _s("j1", "mprotect(PROT_READ) before fork", 16, (0, 1, 2), (0, 1, 2),
       writer_mprotect=True),
    _s("j2", "64K folio across 3 VMAs", 64, (4, 6, 0), (0, 4, 5, 6, 16), folio="64K"),
    _s("j3", "64K folio, mixed writable/AE PTEs", 64, (1, 0, 17), (0, 1, 2, 16, 17),
       folio="64K"),
    _s("k1", "anon uffd-wp, no EVENT_FORK", 16, (None, None, None), (0, 1, 2),
       needs=("uffd",), rules={"fork": "8"}),
    _s("k2", "anon uffd-wp, EVENT_FORK", 16, (None, None, None), (0, 1, 2),
       needs=("uffd",), rules={"fork": "8"}),
    _s("k3", "shmem uffd-wp, EVENT_FORK", 16, (None, None, None), (0, 1, 2),
       needs=("uffd",), rules={"fork": "8"}),
    _s("k4", "shmem uffd-wp, no EVENT_FORK", 16, (None, None, None), (0, 1, 2),
       needs=("uffd",), rules={"fork": "8"}),
)

BY_ID = {s.id: s for s in SCENARIOS}


class Backend(Protocol):
    """A world the script runs in: the real kernel (processes) or the pkmm model."""

    def observe(self, name: str, who: str) -> Step: ...
    def access(self, name: str, who: str, page: int, *, write: bool) -> Step: ...
    def fork(self) -> None: ...
    def child_exit(self) -> None: ...


def run_script(sc: Scenario, be: Backend) -> list[Step]:
    """The script: observe, fork, then the fixed sequence of reads and one-byte writes."""
    steps = [be.observe("before fork", "parent")]
    be.fork()
    steps += [be.observe("after fork", "child"), be.observe("after fork", "parent")]
    if sc.child_reads:
        steps.append(be.access("child reads w1", "child", _page(sc.w1, sc), write=False))
    if sc.w1 is not None:
        steps.append(be.access("child writes w1 (first writer)", "child", sc.w1, write=True))
    steps.append(be.observe("parent view after child wrote w1", "parent"))
    if sc.w1 is not None:
        steps.append(be.access("parent writes w1 (second writer)", "parent", sc.w1,
                               write=True))
    if sc.w2 is not None:
        steps.append(be.access("parent writes w2 (first writer)", "parent", sc.w2, write=True))
        steps.append(be.access("child writes w2 (second writer)", "child", sc.w2, write=True))
    be.child_exit()
    steps.append(be.observe("parent after child exit", "parent"))
    if sc.w3 is not None:
        steps.append(be.access("parent writes w3 after child exit", "parent", sc.w3,
                               write=True))
    return steps


def _page(w: int | None, sc: Scenario) -> int:
    if w is None:
        raise ValueError(f"scenario {sc.id}: child_reads needs a w1 page")
    return w


def phase(step_name: str) -> str:
    """Which rule phase a step checks: fork, read, first, second or exit."""
    if step_name.startswith("child reads"):
        return "read"
    if "first writer" in step_name:
        return "first"
    if "second writer" in step_name or step_name == "parent view after child wrote w1":
        return "second"
    if "after child exit" in step_name:
        return "exit"
    return "fork"
