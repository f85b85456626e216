"""Plan the live rebuild of a scenario: which VMAs, and which pages under which THP knobs.

Simulator concept (no kernel file); :mod:`pkmm.realkernel.replay` carries the plan out.
Pages are faulted in *groups*, one per folio size, because the mTHP knobs choose the size
a fault allocates and only one size may be enabled at a time: PMD-sized THPs first (and
those to be PTE-mapped, split right after), then every mTHP order from large to small,
then 4K pages, zero pages and page-cache pages.  Only VMAs that fork() copies (private
with an anon_vma) are populated; the others are mapped empty, which costs fork the same.
Taught in: notebooks/10-real-process.ipynb

>>> from pkmm.scenario import Scenario
>>> sc = Scenario.from_dict({"vmas": [{"start": 0x200000, "npages": 1024}],
...     "runs": [{"addr": 0x200000, "npages": 512, "order": 9, "pmd": True},
...              {"addr": 0x400000, "npages": 512, "order": 4}]})
>>> [(g.label, g.ops) for g in plan_replay(sc).groups]
[('2M', [('write', 0, 0, 512)]), ('64K', [('write', 0, 512, 512)])]
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..scenario import Scenario
from . import libc as lc
from . import thp

PAGE = 4096


@dataclass(frozen=True)
class PlanVma:
    start: int
    end: int
    backing: str
    shared: bool
    write: bool
    copied: bool           # fork copies its page tables (private + anon_vma)


@dataclass
class Group:
    """Faults taken under one knob setting: ``ops`` are (what, vma, first page, npages)
    with what = "write" | "read" | "split"."""

    index: int
    label: str
    knobs: dict[str, str]
    hugepage: list[int] = field(default_factory=list)   # VMAs to MADV_HUGEPAGE first
    ops: list[tuple[str, int, int, int]] = field(default_factory=list)


@dataclass
class Plan:
    vmas: list[PlanVma]
    chains: list[list[int]]                  # runs of touching VMAs, placed together
    groups: list[Group]
    finish: list[tuple[Any, int, int, int]]  # (madvise advice | "readonly" | "pin", vma,
    #                                          page, n)
    left_out: list[str]


def _label(order: int, pmd: bool) -> str:
    return "2M" if order == 9 else f"{4 << order}K"


def plan_replay(sc: Scenario) -> Plan:
    """The plan for ``sc`` (see the module docstring)."""
    # A private VMA has an anon_vma when the scenario says so, or when it holds an
    # anonymous run: writing that run in (here, and in Scenario.build) prepares one.
    written = {k for r in sc.runs if r.get("backing", "anon") == "anon"
               for k, v in enumerate(sc.vmas)
               if v["start"] <= r["addr"] < v["start"] + v["npages"] * PAGE}
    vmas = [PlanVma(v["start"], v["start"] + v["npages"] * PAGE, v.get("backing", "anon"),
                    bool(v.get("shared")), v.get("write", True),
                    not v.get("shared") and (bool(v.get("anon_vma")) or k in written))
            for k, v in enumerate(sc.vmas)]
    left: Counter[str] = Counter()
    for v in sc.vmas:
        for key, why in (("pfnmap", "VM_PFNMAP VMA (a driver's mapping) not rebuilt"),
                         ("uffd_wp", "userfaultfd-wp registration not rebuilt")):
            if v.get(key):
                left[why] += 1
    for sec, why in (("swap", "swap entries"), ("markers", "PTE markers"),
                     ("pfnmaps", "raw PFN entries"), ("ptes", "explicit ptes"),
                     ("pmds", "explicit pmds"), ("pins", "pins"), ("vmsplice", "vmsplice")):
        if getattr(sc, sec):
            left[f"{why} not rebuilt"] += len(getattr(sc, sec))
    groups: dict[tuple[int, bool], Group] = {}
    wanted: dict[int, list[tuple[int, int]]] = {}

    def group(order: int, pmd: bool) -> Group:
        key = (order, order == 9)
        if key not in groups:
            knobs = thp.only_size(None, pmd=True) if order == 9 else \
                thp.only_size(None if order == 0 else 4 << order)
            groups[key] = Group(0, _label(order, pmd), knobs)
        return groups[key]

    def place(addr: int, n: int, what: str, order: int, pmd: bool) -> None:
        k = _find(vmas, addr)
        if k is None or not vmas[k].copied:
            return
        g = group(order, pmd)
        if order and k not in g.hugepage:
            g.hugepage.append(k)
        page = (addr - vmas[k].start) // PAGE
        g.ops.append((what, k, page, n))
        if order == 9 and not pmd and what == "write":
            g.ops.append(("split", k, page, n))
        wanted.setdefault(k, []).append((page, page + n))

    pins = []
    for r in sc.runs:
        anon = r.get("backing", "anon") == "anon"
        order = r.get("order", 0) if anon else 0   # page-cache folio sizes: the fs decides
        place(r["addr"], r["npages"], "write" if anon else "read", order, r.get("pmd", False))
        k = _find(vmas, r["addr"])
        if r.get("pinned") and k is not None:      # an io_uring fixed buffer over the run
            pins.append(("pin", k, (r["addr"] - vmas[k].start) // PAGE, r["npages"]))
    for z in sc.zero:
        a, n = (z, 1) if isinstance(z, int) else (z["addr"], z["npages"])
        place(a, n, "read", 0, False)
    for a in sc.huge_zero:
        place(a, 512, "read", 9, True)
    ordered = sorted(groups.items(), key=lambda kv: -kv[0][0])
    for i, (_, g) in enumerate(ordered):
        g.index = i
    return Plan(vmas, _chains(vmas), [g for _, g in ordered], _finish(sc, vmas, wanted) + pins,
                [f"{why} ({n})" for why, n in sorted(left.items())])


def _find(vmas: list[PlanVma], addr: int) -> int | None:
    for k, v in enumerate(vmas):
        if v.start <= addr < v.end:
            return k
    return None


def _chains(vmas: list[PlanVma]) -> list[list[int]]:
    out: list[list[int]] = []
    for k, v in enumerate(vmas):
        if out and vmas[out[-1][-1]].end == v.start:
            out[-1].append(k)
        else:
            out.append([k])
    return out


def _finish(sc: Scenario, vmas: list[PlanVma], wanted: dict[int, list[tuple[int, int]]]
            ) -> list[tuple[Any, int, int, int]]:
    out: list[tuple[Any, int, int, int]] = []
    for k, v in enumerate(vmas):
        npages = (v.end - v.start) // PAGE
        # a large folio may cover pages the layout leaves unmapped: unmap just those
        last = 0
        for lo, hi in sorted(wanted.get(k, [])) + [(npages, npages)]:
            if lo > last and k in wanted:
                out.append((lc.MADV_DONTNEED, k, last, lo - last))
            last = max(last, hi)
        src = sc.vmas[k]
        if src.get("dontfork"):
            out.append((lc.MADV_DONTFORK, k, 0, npages))
        if src.get("wipeonfork"):
            out.append((lc.MADV_WIPEONFORK, k, 0, npages))
        if not v.write:
            out.append(("readonly", k, 0, npages))
    return out
