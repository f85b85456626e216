"""Observations of one scenario, in the cell language of the report tables.

Simulator concept (no kernel file): both the real-kernel probe and the pkmm model produce
:class:`PageObs` records per page and step; :func:`label_steps` turns PFNs into labels
(``orig``, ``n1``, ``zero``, ``hzero``, ``—``) so runs from different machines — and the
model — can be compared cell by cell.
Taught in: notebooks/09-real-kernel-lab.ipynb
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class PageObs:
    """Everything observable about one virtual page in one process (pagemap + kpage*)."""

    pfn: int | None = None    # None: no PTE (not present)
    excl: bool = False        # pagemap bit 56 "exclusively mapped"
    count: int = 0            # kpagecount (0 for the zero pages)
    ae: bool = False          # kpageflags bit 34 of the (head) page: PG_anon_exclusive
    anon: bool = False
    head: bool = False
    tail: bool = False
    thp: bool = False
    zero: bool = False
    file: bool = False        # pagemap bit 61
    uwp: bool = False         # pagemap bit 57
    swapped: bool = False     # pagemap bit 62 (a swap entry; pfn is None)
    hugetlb: bool = False     # kpageflags KPF_HUGE: a hugetlb page

    def flags(self) -> str:
        names = [n for n, on in (("A", self.anon), ("H", self.head), ("T", self.tail),
                                 ("thp", self.thp), ("Z", self.zero), ("F", self.file),
                                 ("huge", self.hugetlb)) if on]
        return "·".join(names)


@dataclass
class Step:
    """One row of a report table: a step, the process observed, the op it did, its pages."""

    name: str
    who: str                               # "parent" | "child"
    pages: list[PageObs]
    ahp_kb: int = 0                        # smaps AnonHugePages over the region
    op: dict[str, Any] | None = None       # {"kind","page","faults"|"signal"[,"value"]}
    cells: list[str] = field(default_factory=list)   # filled by label_steps


def cell(p: PageObs, label: str) -> str:
    """The report token of one page, e.g. ``orig x1 m1 ae1 A·H·thp``.

    >>> cell(PageObs(pfn=7, excl=True, count=1, ae=True, anon=True), "orig")
    'orig x1 m1 ae1 A'
    >>> cell(PageObs(), "—"), cell(PageObs(swapped=True), "—")
    ('—', '— swp')
    """
    if p.pfn is None:
        return "—" + (" swp" if p.swapped else "") + (" uwp" if p.uwp else "")
    uwp = " uwp" if p.uwp else ""
    return f"{label} x{int(p.excl)} m{p.count} ae{int(p.ae)}{uwp} {p.flags()}".rstrip()


def label_steps(steps: list[Step]) -> None:
    """Fill ``Step.cells``: orig = PFN before fork, n1, n2, ... in order of appearance.

    A PFN seen only in the child is forgotten when the child exits (its page was freed and
    may come back as a genuinely new page), so labels never depend on allocator reuse.
    """
    orig = [p.pfn for p in steps[0].pages]
    names: dict[int, str] = {}
    counter = itertools.count(1)
    in_parent: set[int] = set()
    child_only: set[int] = set()
    for step in steps:
        if step.name == "parent after child exit":
            for pfn in child_only - in_parent:
                names.pop(pfn, None)
            child_only.clear()
        step.cells = [cell(p, _label(p, orig[i], names, counter))
                      for i, p in enumerate(step.pages)]
        pfns = {p.pfn for p in step.pages if p.pfn is not None and not p.zero}
        (in_parent if step.who == "parent" else child_only).update(pfns)


def _label(p: PageObs, orig_pfn: int | None, names: dict[int, str],
           counter: Iterator[int]) -> str:
    if p.pfn is None:
        return "—"
    if p.zero:
        return "hzero" if p.thp else "zero"
    if p.pfn == orig_pfn:
        return "orig"
    if p.pfn not in names:
        names[p.pfn] = f"n{next(counter)}"
    return names[p.pfn]


def summary(step: Step, orig: list[int | None]) -> str:
    """The region summary column of a report table (pres, new, thp, excl, mc1, mc2, AHP)."""
    pages = step.pages
    pres = sum(p.pfn is not None for p in pages)
    new = sum(p.pfn is not None and p.pfn != o for p, o in zip(pages, orig, strict=True))
    return (f"pres {pres}/{len(pages)}, new {new}, thp {sum(p.thp for p in pages)}, "
            f"excl {sum(p.excl for p in pages)}, mc1 {sum(p.count == 1 for p in pages)}, "
            f"mc2 {sum(p.count == 2 for p in pages)}, AHP {step.ahp_kb}k")


def op_text(op: dict[str, Any] | None) -> str:
    """``write pg3: faults=1`` / ``read pg0: val=0 faults=1`` / ``write pg0: SIGSEGV``.

    >>> op_text({"kind": "write", "page": 3, "faults": 1})
    'write pg3: faults=1'
    """
    if op is None:
        return ""
    head = f"{op['kind']} pg{op['page']}: "
    if "signal" in op:
        return head + str(op["signal"])
    val = f"val={op['value']} " if op["kind"] == "read" and "value" in op else ""
    return head + f"{val}faults={op['faults']}"


def rle(cells: list[str]) -> list[list[Any]]:
    """Run-length encode a row of cells for compact storage.

    >>> rle(["a", "a", "b"])
    [['a', 2], ['b', 1]]
    """
    out: list[list[Any]] = []
    for c in cells:
        if out and out[-1][0] == c:
            out[-1][1] += 1
        else:
            out.append([c, 1])
    return out


def unrle(runs: list[list[Any]]) -> list[str]:
    """Inverse of :func:`rle`.

    >>> unrle([["a", 2], ["b", 1]])
    ['a', 'a', 'b']
    """
    return [c for c, n in runs for _ in range(n)]
