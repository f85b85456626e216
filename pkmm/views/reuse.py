"""The large-folio reuse rule as a table of cases, each row a run of the model.

A write to a page of a PTE-mapped large folio after fork reuses the page or copies it; the
rule (``__wp_can_reuse_large_anon_folio()``, v6.15+) reads three things: whether the folio
is maybe mapped shared, whether its large mapcount equals its refcount, and how many pages
the writer maps.  :func:`reuse_cases` builds a tiny layout for each case -- an order-4
folio on 16 PTEs -- forks it, plays the story, and records what the parent's write to page
5 found and did.  Nothing in a row is typed: change the fault path and the table changes.
Taught in: notebooks/07-after-fork.ipynb
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import LayoutError
from ..fork import fork
from ..kernels import KERNELS
from ..scenario import Scenario

__all__ = ["ReuseCase", "reuse_cases", "reuse_table"]

BASE = 0x200000
PAGE = 4096
WRITTEN = 5          # the page the parent writes

#: name -> (who maps pages of the folio, the story before the parent's write, layout extras)
#: The stories: "exit child" / "exit grandchild"; "fork grandchild" (the child forks).
CASES: dict[str, tuple[str, tuple[str, ...], dict[str, Any]]] = {
    "both alive": ("parent, child", (), {}),
    "child exited": ("parent", ("exit child",), {}),
    # a pipe's reference (vmsplice), not a pin: fork copies a maybe-pinned page for the
    # child and leaves the parent's PTE writable, so the parent's write would not fault
    "child exited, pipe holds a page": ("parent (+ a pipe)", ("exit child",),
                                          {"vmsplice": [{"folio": "F", "page": 0}]}),
    "child exited, writer maps 2 pages": ("parent", ("exit child",),
                                          {"ptes": [{"addr": BASE + WRITTEN * PAGE,
                                                     "folio": "F", "page": WRITTEN,
                                                     "nr": 2}]}),
    "child exited, writer maps 1 page": ("parent", ("exit child",),
                                         {"ptes": [{"addr": BASE + WRITTEN * PAGE,
                                                    "folio": "F", "page": WRITTEN,
                                                    "nr": 1}]}),
    "grandchild alive, child exited": ("parent, grandchild",
                                       ("fork grandchild", "exit child"), {}),
    "child and grandchild exited": ("parent", ("fork grandchild", "exit child",
                                               "exit grandchild"), {}),
}


@dataclass(frozen=True)
class ReuseCase:
    """What the parent's write to page 5 found, and what the fault path did."""

    name: str
    mappers: str                 # who maps pages of the folio when the parent writes
    pages_mapped: int            # pages of the folio the writer maps
    large_mapcount: int          # folio_large_mapcount() before the write
    refcount: int                # folio_ref_count() before the write
    maybe_shared: bool           # folio_maybe_mapped_shared() before the write
    kind: str                    # the fault path the model took: "reuse" or "cow-copy"
    reason: str                  # the fault path's own sentence for its decision


def reuse_cases(kernel: str = "v6.17") -> list[ReuseCase]:
    """Run every case of :data:`CASES` under ``kernel``; one :class:`ReuseCase` each."""
    if kernel not in KERNELS:
        raise LayoutError(f"kernel={kernel!r}: not a pkmm kernel; choose one of "
                          f"{', '.join(KERNELS)}")
    out = []
    for name, (mappers, story, extra) in CASES.items():
        layout = {"name": name, "vmas": [{"start": BASE, "npages": 16}],
                  "folios": {"F": {"order": 4}},
                  "ptes": [{"addr": BASE, "folio": "F"}], **extra}
        parent, folios = Scenario.from_dict(layout).build()
        procs = {"parent": parent, "child": fork(parent, kernel=kernel).child}
        for step in story:
            verb, who = step.split()
            if verb == "fork":
                procs[who] = fork(procs["child"], kernel=kernel).child
            else:
                procs[who].exit()
        f = folios["F"]
        before = (sum(1 for i in range(16) if parent.pte(BASE + i * PAGE) is not None),
                  f.large_mapcount, f.refcount, f.maybe_mapped_shared)
        parent.write(BASE + WRITTEN * PAGE, 1)
        fr = parent.last_fault
        assert fr is not None
        decided = [reason for fn, _, reason in fr.events if "reuse" in fn]
        out.append(ReuseCase(name, mappers, *before, str(fr.kind),
                             decided[-1] if decided else ""))
    return out


def reuse_table(kernel: str = "v6.17") -> str:
    """:func:`reuse_cases` as a text table a static page shows without wrapping."""
    head = (f"{'case':34s}{'who maps it':19s}{'writer':>6s}{'mapcnt':>7s}{'ref':>4s}"
            f"{'shared?':>8s}  result")
    lines = [f"the parent writes page {WRITTEN} of an order-4 folio (16 pages) under {kernel}:",
             head, "-" * len(head)]
    for c in reuse_cases(kernel):
        lines.append(f"{c.name:34s}{c.mappers:19s}{c.pages_mapped:6d}{c.large_mapcount:7d}"
                     f"{c.refcount:4d}{'yes' if c.maybe_shared else 'no':>8s}  {c.kind}")
    lines += ["who maps it: the processes mapping pages of the folio at the write (and any",
              "  other holder); writer: pages of the folio the writer maps; mapcnt: the",
              "  folio's large mapcount (all its mappings); ref: its refcount; shared?: the",
              "  folio is maybe mapped shared"]
    return "\n".join(lines)
