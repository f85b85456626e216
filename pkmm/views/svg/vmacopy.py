"""After fork, VMA by VMA: the memory map, and a table of what fork did to each VMA.

Simulator concept (views layer).  Reads what the model recorded: the verdict of
``vma_needs_copy()`` (mm/memory.c) in the fork's trace, and each folio's refcount before and
after the fork.  Taught in: notebooks/01-ptes-folios-vmas.ipynb.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ...errors import LayoutError
from ...scenario import as_scenario
from .memmap import memory_map
from .scene import layout_names, need_kernel, vma_slots


@dataclass(frozen=True)
class VmaRow:
    """One VMA: its number, its words, whether fork copied its page table, and the
    refcounts of the folios it maps (name -> count) before and after the fork."""

    vma: int
    kind: str
    copied: bool
    before: tuple[tuple[str, int], ...]
    after: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class VmaVerdicts:
    """The memory map after fork plus one table row per VMA; ``summary`` folds both
    into a ``<details>`` box (an answer on a static page must stay closed)."""

    picture: Any
    rows: tuple[VmaRow, ...]
    summary: str = ""

    def _repr_html_(self) -> str:
        left = ' style="text-align:left"'   # notebook CSS right-aligns table cells
        head = "".join(f"<th{left}>{h}</th>" for h in (
            "VMA", "kind", "page table copied", "refcounts before fork",
            "refcounts after fork"))

        def counts(pairs: Sequence[tuple[str, int]]) -> str:
            return html.escape(", ".join(f"{n}: {k}" for n, k in pairs))
        body = "".join(
            f"<tr><td{left}>{r.vma}</td><td{left}>{html.escape(r.kind)}</td>"
            f"<td{left}>{'yes' if r.copied else 'no'}</td><td{left}>{counts(r.before)}</td>"
            f"<td{left}>{counts(r.after)}</td></tr>" for r in self.rows)
        inner = f"{self.picture._repr_html_()}<table><tr>{head}</tr>{body}</table>"
        if not self.summary:
            return inner
        # plain words, drawn bold like the notebooks' answer boxes: a learner reads the
        # call, and raw <b> markup in it was noise
        return (f"<details><summary><b>{html.escape(self.summary)}</b></summary>{inner}"
                "</details>")


def vma_verdicts(layout: Any, kernel: str, *, kinds: Sequence[str] | None = None,
                 title: str = "", summary: str = "", width: int | None = None
                 ) -> VmaVerdicts:
    """Fork ``layout`` under ``kernel``; draw the result and, for every VMA, say whether
    fork copied its page table (the trace's ``vma_needs_copy`` verdict) and how the
    refcounts of the folios it maps changed.

    ``kinds``: a learner's name for each VMA (default: the VMA's own description);
    ``summary``: fold the whole into ``<details>`` with this summary line (plain text,
    shown bold).

    >>> v = vma_verdicts({"vmas": [{"start": 0, "npages": 1},
    ...     {"start": 0x200000, "npages": 1, "backing": "shmem", "shared": True}],
    ...     "folios": {"A": {"order": 0}, "S": {"order": 0, "backing": "shmem"}},
    ...     "ptes": [{"addr": 0, "folio": "A"}, {"addr": 0x200000, "folio": "S"}]}, "v6.9")
    >>> [(r.copied, r.before, r.after) for r in v.rows]
    [(True, (('A', 1),), (('A', 2),)), (False, (('S', 2),), (('S', 2),))]
    """
    from ...fork import fork
    kernel = need_kernel(kernel, "vma_verdicts")
    sc = as_scenario(layout)
    parent, folios = sc.build()
    if kinds is not None and len(kinds) != len(parent.vmas):
        raise LayoutError(f"vma_verdicts: kinds has {len(kinds)} names for "
                          f"{len(parent.vmas)} VMAs; give one name per VMA, in address order")
    names = layout_names(folios, [parent])
    mapped = [list(dict.fromkeys(names[s.folio.pfn] for s in slots
                                 if s.folio is not None and s.folio.pfn in names))
              for _, slots in vma_slots(parent, names)]
    before = {n: f.refcount for n, f in folios.items()}
    r = fork(parent, kernel=kernel)
    rows = []
    for i, v in enumerate(parent.vmas):
        copied = any(e.func == "vma_needs_copy" and e.addr == v.vm_start
                     and e.rule.startswith("copy") for e in r.trace)
        rows.append(VmaRow(i, kinds[i] if kinds is not None else v.describe(), copied,
                           tuple((n, before[n]) for n in mapped[i]),
                           tuple((n, folios[n].refcount) for n in mapped[i])))
    pic = memory_map(r, names=layout_names(folios, [parent, r.child]), title=title,
                     width=width)
    return VmaVerdicts(pic, tuple(rows), summary)
