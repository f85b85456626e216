"""The large-folio reuse rule as a table of cases, each row a run of the model.

A write to a page of a PTE-mapped large folio after fork reuses the page or copies it; the
rule (``__wp_can_reuse_large_anon_folio()``, v6.15+) reads three things: whether the folio
is maybe mapped shared, whether its large mapcount equals its refcount, and how many pages
the writer maps.  :func:`reuse_cases` builds a tiny layout for each case -- an order-4
folio on 16 PTEs -- forks it, plays the story, and records what the writer's (the parent's,
unless the case names another process) write to page 5 found and did.  Nothing in a row
is typed: change the fault path and the table changes.
Taught in: notebooks/07-after-fork.ipynb
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Any

from ..errors import LayoutError
from ..fork import fork
from ..kernels import KERNELS
from ..scenario import Scenario

__all__ = ["ReuseCase", "counter_table", "reuse_cases", "reuse_table"]

BASE = 0x200000
PAGE = 4096
WRITTEN = 5          # the page the writer writes

#: name -> (who maps pages of the folio, the story before the write, layout extras);
#: the writer is the parent unless the extras name another (``"writer"``).
#: The stories: "exit <who>"; "fork grandchild" (the child forks).
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
    # the false "maybe": the grandchild, third to map the folio, never got one of its two
    # MM-id slots, so no unmap can see that it holds every remaining mapping
    "parent and child exited": ("grandchild", ("fork grandchild", "exit child",
                                               "exit parent"), {"writer": "grandchild"}),
}


@dataclass(frozen=True)
class ReuseCase:
    """What the writer's write to page 5 found, and what the fault path did."""

    name: str
    writer: str                  # the process that writes page 5
    mappers: str                 # who maps pages of the folio when the parent writes
    pages_mapped: int            # pages of the folio the writer maps
    large_mapcount: int          # folio_large_mapcount() before the write
    refcount: int                # folio_ref_count() before the write
    maybe_shared: bool           # folio_maybe_mapped_shared() before the write
    kind: str                    # the fault path the model took: "reuse" or "cow-copy"
    reason: str                  # the fault path's own sentence for its decision
    setup: str                   # how the case was set up, read from its layout and story


def _runs(pages: list[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2, 5"``."""
    out: list[str] = []
    for p in pages:
        if out and int(out[-1].rsplit("-", 1)[-1]) == p - 1:
            out[-1] = f"{out[-1].split('-')[0]}-{p}"
        else:
            out.append(str(p))
    return ", ".join(out)


def _setup(parent_pages: list[int], layout: dict[str, Any], story: tuple[str, ...]) -> str:
    """The case's setup in words, from the built layout and the story it plays."""
    nr = 16
    never = [i for i in range(nr) if i not in parent_pages]
    steps = [f"parent maps {_runs(parent_pages)}"
             + (f" ({_runs(never)} unmapped, as after a partial munmap())" if never else "")]
    steps += [f"a pipe holds page {v['page']} (vmsplice)" for v in layout.get("vmsplice", ())]
    steps.append("fork")
    for step in story:
        verb, who = step.split()
        steps.append("child forks grandchild" if verb == "fork" else f"{who} exits")
    return "; ".join(steps)


def reuse_cases(kernel: str = "v6.17") -> list[ReuseCase]:
    """Run every case of :data:`CASES` under ``kernel``; one :class:`ReuseCase` each."""
    if kernel not in KERNELS:
        raise LayoutError(f"kernel={kernel!r}: not a pkmm kernel; choose one of "
                          f"{', '.join(KERNELS)}")
    out = []
    for name, (mappers, story, case_extra) in CASES.items():
        extra = dict(case_extra)
        writer = str(extra.pop("writer", "parent"))
        layout = {"name": name, "vmas": [{"start": BASE, "npages": 16}],
                  "folios": {"F": {"order": 4}},
                  "ptes": [{"addr": BASE, "folio": "F"}], **extra}
        parent, folios = Scenario.from_dict(layout).build()
        mapped = [i for i in range(16) if parent.pte(BASE + i * PAGE) is not None]
        procs = {"parent": parent, "child": fork(parent, kernel=kernel).child}
        for step in story:
            verb, who = step.split()
            if verb == "fork":
                procs[who] = fork(procs["child"], kernel=kernel).child
            else:
                procs[who].exit()
        f = folios["F"]
        # fork copies every PTE and the story's forks and exits never change a living
        # process's PTEs: the writer maps the pages the parent mapped
        before = (len(mapped), f.large_mapcount, f.refcount, f.maybe_mapped_shared)
        procs[writer].write(BASE + WRITTEN * PAGE, 1)
        fr = procs[writer].last_fault
        assert fr is not None   # every case writes a page fork write-protected
        decided = [reason for fn, _, reason in fr.events if "reuse" in fn]
        out.append(ReuseCase(name, writer, mappers, *before, str(fr.kind),
                             decided[-1] if decided else "",
                             _setup(mapped, layout, story)
                             + ("" if writer == "parent" else f"; the {writer} writes")))
    return out


def reuse_table(kernel: str = "v6.17") -> str:
    """:func:`reuse_cases` as a text table a static page shows without wrapping."""
    head = (f"{'case':34s}{'who maps it':19s}{'writer':>6s}{'mapcnt':>7s}{'ref':>4s}"
            f"{'shared?':>8s}  result")
    lines = [f"a write to page {WRITTEN} of an order-4 folio (16 pages) under {kernel}, by the "
             "parent",
             "unless the setup ends with another writer:",
             head, "-" * len(head)]
    for c in reuse_cases(kernel):
        lines.append(f"{c.name:34s}{c.mappers:19s}{c.pages_mapped:6d}{c.large_mapcount:7d}"
                     f"{c.refcount:4d}{'yes' if c.maybe_shared else 'no':>8s}  {c.kind}")
        lines += textwrap.wrap(c.setup, 86, initial_indent="  setup: ",
                               subsequent_indent="    ")
    lines += ["setup: the pages of the folio (by index) the parent maps, then the story",
              "  played before the write;",
              "who maps it: the processes mapping pages of the folio at the write (and any",
              "  other holder); writer: pages of the folio the writer maps; mapcnt: the",
              "  folio's large mapcount (all its mappings); ref: its refcount; shared?: the",
              "  kernel's \"maybe mapped shared\" (another process may map the folio)"]
    return "\n".join(lines)


def counter_table(layout: dict[str, Any], kernel: str = "v6.17", folio: str = "F",
                  page: int = WRITTEN) -> str:
    """The three counters side by side, each with what it counts and its value for page
    ``page`` of folio ``folio`` after ``layout`` forks under ``kernel`` (read from the model)."""
    if kernel not in KERNELS:
        raise LayoutError(f"kernel={kernel!r}: not a pkmm kernel; choose one of "
                          f"{', '.join(KERNELS)}")
    parent, folios = Scenario.from_dict(layout).build()
    if folio not in folios:
        raise LayoutError(f"folio={folio!r}: the layout names {', '.join(folios)}")
    f = folios[folio]
    pg = f.page(page)          # raises LayoutError naming page= for a bad index
    fork(parent, kernel=kernel)
    rows = [("page mapcount", "PTEs mapping this page + PMDs mapping its folio",
             "page_mapcount()", pg.mapcount),
            ("large mapcount", "all PTE and PMD mappings of any of its pages",
             "folio_large_mapcount()", f.mapcount),
            ("refcount", "mappings, plus pins, pipes, the swap cache",
             "folio_ref_count()", f.refcount)]
    col = f"page {page} after fork"
    head = f"{'counter':24s}{'what it counts (kernel function)':47s}{col:>17s}"
    lines = [f"{layout.get('name', 'the layout')}, forked under {kernel}:", head,
             "-" * len(head)]
    for name, what, fn, value in rows:
        lines.append(f"{name:24s}{what:47s}{value:>17d}")
        lines.append(f"{'':24s}({fn})")
    return "\n".join(lines)
