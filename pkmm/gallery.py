"""A gallery of small layouts, one per way a batch can end, run under each kernel.

Teaching layer.  Each entry is a four-PTE layout (an order-2 folio, or a variation) in
which something is different at PTE 2: a slot is empty, a page is out of order, one bit
differs.  :func:`stop_table` forks every layout under the kernels asked for and reports
what the *model* did -- the batch sizes and, in the words of the one stop-reason
vocabulary (:func:`pkmm.kernels.common.stop_words`), why the first batch ended.  Nothing
here knows a kernel rule: the layouts are questions, the answers come from the variants.
Taught in: notebooks/03-seed-patch-batching.ipynb, notebooks/06-upstream-batching.ipynb

>>> t = stop_table(("batch-v3", "v6.9"))
>>> t.cell("dirty differs (private)", "batch-v3"), t.cell("dirty differs (private)", "v6.9")
(([4], 'reached the end of the folio'), ([2, 2], 'next PTE differs in the dirty bit'))
>>> "next PTE differs in the dirty bit" in stop_reasons("v6.9")
True
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .fork import fork
from .kernels.common import stop_words
from .scenario import as_scenario
from .vma import userfaultfd_wp, vma_soft_dirty_enabled

__all__ = ["GALLERY", "LayoutTable", "StopTable", "layout_table", "stop_reasons", "stop_table"]

_VMA = {"start": "0x200000", "npages": 4}
_BASE = {"addr": "0x200000", "folio": "F"}


def _layout(*ptes: dict[str, Any], vma: dict[str, Any] | None = None,
            folios: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """An order-2 folio F on PTEs 0-1, then ``ptes`` (PTE 2 onwards)."""
    return {"vmas": [vma or _VMA], "folios": folios or {"F": {"order": 2}},
            "ptes": [{**_BASE, "nr": 2}, *ptes], **extra}


def _rest(**bits: Any) -> dict[str, Any]:
    """PTEs 2-3 map pages 2-3 of F with ``bits`` changed."""
    return {"addr": "0x202000", "folio": "F", "page": 2, "nr": 2, **bits}


#: situation -> layout.  In every layout PTEs 0-1 are alike; PTE 2 is where it differs.
GALLERY: dict[str, dict[str, Any]] = {
    "nothing differs": _layout(_rest()),
    "the VMA ends": {"vmas": [{"start": "0x200000", "npages": 2}],
                     "folios": {"F": {"order": 2}}, "ptes": [{**_BASE, "nr": 2}]},
    "the folio ends (next folio adjacent)": _layout(
        {"addr": "0x202000", "folio": "G", "nr": 2},
        folios={"F": {"order": 1}, "G": {"order": 1}}),
    "an empty slot": _layout(),
    "a swap entry": _layout(swap=[{"addr": "0x202000", "value": 7}]),
    "pages out of order (pfn gap)": _layout({"addr": "0x202000", "folio": "F", "page": 3,
                                             "nr": 1}),
    "dirty differs (private)": _layout(_rest(dirty=False)),
    "write differs (private)": _layout(_rest(write=False)),
    "accessed differs": _layout(_rest(young=False)),
    # after a clear (clear_refs 4: fs/proc/task_mmu.c clear_soft_dirty() write-protects
    # and clears SD), PTEs 2-3 are read-only; PTEs 0-1 were written since (W, D, SD)
    "soft-dirty differs, tracking on": _layout(
        _rest(write=False), vma={**_VMA, "soft_dirty_tracking": True}),
    "soft-dirty differs, tracking off": _layout(_rest(soft_dirty=True)),
    # the parent's VMA is registered (unregistering clears every UW mark: mm/userfaultfd.c
    # userfaultfd_clear_vma()), but without fork events, so the child's VMA is not
    "uffd-wp differs, child VMA not uffd-wp": _layout(
        _rest(uffd_wp=True, write=False), vma={**_VMA, "uffd_wp": True}),
    "uffd-wp differs, child VMA uffd-wp": _layout(
        _rest(uffd_wp=True, write=False), vma={**_VMA, "uffd_wp": True, "uffd_fork": True}),
    "protnone differs": _layout(_rest(protnone=True, write=False)),
    "an order-0 folio": {"vmas": [_VMA], "folios": {"A": {"order": 0}, "B": {"order": 0}},
                         "ptes": [{"addr": "0x200000", "folio": "A"},
                                  {"addr": "0x201000", "folio": "B"}]},
}
# pkmm: "soft-dirty differs, tracking on" needs SD set on PTEs 0-1 only; a tracked VMA's
# PTEs start without SD, so set it where the layout says PTEs 0-1.
GALLERY["soft-dirty differs, tracking on"]["ptes"][0]["soft_dirty"] = True


@dataclass(frozen=True)
class _Html:
    """Markup a notebook shows as HTML."""

    markup: str

    def _repr_html_(self) -> str:
        return self.markup


@dataclass(frozen=True)
class StopTable:
    """Per situation and kernel: the batch sizes and why the first batch ended."""

    kernels: tuple[str, ...]
    rows: dict[str, dict[str, tuple[list[int | str], str]]]

    def cell(self, situation: str, kernel: str) -> tuple[list[int | str], str]:
        """(batches, words) for one situation under one kernel."""
        return self.rows[situation][kernel]

    def differing(self) -> list[str]:
        """The situations where the kernels make different batches, in gallery order."""
        return [s for s, cells in self.rows.items()
                if len({str(cells[k][0]) for k in self.kernels}) > 1]

    def differing_title(self) -> str:
        """Name who differs: when every kernel but the first agrees in each differing row
        (v6.9 and v6.17), "the versions" sent readers looking for a difference between those."""
        differ, first, rest = self.differing(), self.kernels[0], self.kernels[1:]
        alike = len(rest) > 1 and all(
            len({str(self.rows[s][k][0]) for k in rest}) == 1 for s in differ)
        if alike:
            return (f"The {len(differ)} layouts where {first} batches differently from "
                    + " and ".join(rest) + " (which agree in every row)")
        return f"The {len(differ)} layouts where the versions make different batches"

    def same_batches_other_words(self) -> list[str]:
        """The situations where every kernel makes the same batches but names another reason
        for the first stop (in the gallery: one meets its scan limit at the folio's end, another
        the folio's end itself); a reader took those rows for a disagreement, so the folded
        table marks them."""
        return [s for s, cells in self.rows.items()
                if len({str(cells[k][0]) for k in self.kernels}) == 1
                and len({cells[k][1] for k in self.kernels}) > 1]

    def differing_first(self) -> _Html:
        """The differing rows as a table, then every row folded in a ``<details>``; there a
        dagger marks the rows of :meth:`same_batches_other_words`."""
        e, left = html.escape, ' style="text-align:left"'   # notebook CSS right-aligns cells
        head = "<tr>" + "".join(f"<th{left}>{e(h)}</th>"
                                for h in ("at PTE 2 …", *self.kernels)) + "</tr>"
        same = set(self.same_batches_other_words())

        def row(s: str, mark: bool) -> str:
            cells = self.rows[s]
            return (f"<tr><td{left}>{e(s)}{' †' if mark and s in same else ''}</td>"
                    + "".join(f"<td{left}><code>{e(str(c[0]))}</code> {e(c[1])}</td>"
                              for c in (cells[k] for k in self.kernels)) + "</tr>")

        key = ("<p>†: every version makes the same batches here; only the words of the "
               "reason differ.</p>" if same else "")
        return _Html(f"<p><b>{e(self.differing_title())}</b></p><table>{head}"
                     + "".join(row(s, False) for s in self.differing())
                     + "</table><details><summary><b>All "
                     f"{len(self.rows)} layouts</b> (batches, and why the first batch ended)"
                     f"</summary><table>{head}" + "".join(row(s, True) for s in self.rows)
                     + f"</table>{key}</details>")

    def __str__(self) -> str:
        w = max(len(s) for s in self.rows) + 2
        lines = [f"{'situation':{w}s}" + "".join(f"{k:44s}" for k in self.kernels)]
        for sit, cells in self.rows.items():
            lines.append(f"{sit:{w}s}" + "".join(
                f"{str(cells[k][0]) + ' ' + cells[k][1]:44s}" for k in self.kernels))
        return "\n".join(line.rstrip() for line in lines)

    def _repr_html_(self) -> str:
        e = html.escape
        head = "".join(f"<th>{e(k)}: batches, and why the first one ended</th>"
                       for k in self.kernels)
        body = []
        for sit, cells in self.rows.items():
            differ = len({str(cells[k][0]) for k in self.kernels}) > 1
            # left-aligned: right-aligned (the notebook default) stuck each batch list
            # to its reason at the far edge of a wide column
            tds = "".join(f'<td style="text-align:left"><code>{e(str(cells[k][0]))}</code> '
                          f"{e(cells[k][1])}</td>" for k in self.kernels)
            style = ' style="font-weight:bold"' if differ else ""
            body.append(f"<tr{style}><td>{e(sit)}</td>{tds}</tr>")
        note = ("<caption style='caption-side:bottom;text-align:left'>Rows in bold: the "
                "kernels make different batches.</caption>" if len(self.kernels) > 1 else "")
        return (f'<table class="pkmm-stop-table">{note}<tr><th>at PTE 2 …</th>{head}</tr>'
                + "".join(body) + "</table>")


#: how a slot's word marks a bit that is not at its usual value (writable, dirty, young;
#: no SD, UW or PN)
_MARKS = (("write", False, "read-only"), ("dirty", False, "clean"), ("young", False, "old"),
          ("soft_dirty", True, "SD"), ("uffd_wp", True, "UW"), ("protnone", True, "PN"))


@dataclass(frozen=True)
class LayoutTable:
    """Per situation: its VMA's slots in words (``F:2`` = page 2 of folio F, ``--`` empty)
    and a note on the VMA (soft-dirty tracking; uffd-wp registration and fork events)."""

    rows: dict[str, tuple[tuple[str, ...], str]]

    def __str__(self) -> str:
        w = max(len(s) for s in self.rows) + 2
        return "\n".join((f"{sit:{w}s}" + " | ".join(slots) + (f"   ({note})" if note else ""))
                         for sit, (slots, note) in self.rows.items())

    def _repr_html_(self) -> str:
        e = html.escape
        n = max(len(slots) for slots, _ in self.rows.values())
        left = ' style="text-align:left"'   # notebook CSS right-aligns table cells
        head = "".join(f"<th{left}>{h}</th>" for h in
                       ("layout", *(f"PTE {i}" for i in range(n)), "the VMA"))
        body = "".join(
            f"<tr><td{left}>{e(sit)}</td>"
            + "".join(f"<td{left}><code>{e(w)}</code></td>" for w in slots)
            + f"<td{left}></td>" * (n - len(slots)) + f"<td{left}>{e(note)}</td></tr>"
            for sit, (slots, note) in self.rows.items())
        return f'<table class="pkmm-layout-table"><tr>{head}</tr>{body}</table>'


def _describe(layout: dict[str, Any]) -> tuple[tuple[str, ...], str]:
    """One layout's slots and VMA note, read from the process the model builds from it."""
    proc, folios = as_scenario(layout).build()
    vma, words = proc.vmas[0], []
    for addr in range(vma.vm_start, vma.vm_end, 4096):
        p = proc.pte(addr)
        if p is None or not p.present:
            words.append("--" if p is None else "swap entry")
            continue
        name, f = next((n, f) for n, f in folios.items()
                       if f.pfn <= p.pfn < f.pfn + f.nr_pages)
        words.append(f"{name}:{p.pfn - f.pfn}" + "".join(
            " " + w for bit, v, w in _MARKS if bool(getattr(p, bit)) == v))
    notes = ["soft-dirty tracking on"] * vma_soft_dirty_enabled(vma)
    if userfaultfd_wp(vma):
        notes.append("uffd-wp registered, EVENT_FORK: child uffd-wp" if vma.uffd_fork
                     else "uffd-wp registered, no EVENT_FORK: child not uffd-wp")
    return tuple(words), ", ".join(notes)


def layout_table() -> LayoutTable:
    """Every :data:`GALLERY` layout, slot by slot, as the model builds it.

    >>> layout_table().rows["an empty slot"]
    (('F:0', 'F:1', '--', '--'), '')
    """
    return LayoutTable({sit: _describe(lay) for sit, lay in GALLERY.items()})


def _first_stop(layout: dict[str, Any], kernel: str) -> tuple[list[int | str], str]:
    p, _ = as_scenario(layout).build()
    r = fork(p, kernel=kernel)
    share = [s for s in r.steps if s.action in ("share", "raw")]
    stop = share[0].stop if share else ""
    return r.batches, stop_words(stop) if stop else "one PTE per call (no batching)"


def stop_table(kernels: Sequence[str] = ("batch-v3",)) -> StopTable:
    """Fork every :data:`GALLERY` layout under each of ``kernels``."""
    rows = {sit: {k: _first_stop(lay, k) for k in kernels} for sit, lay in GALLERY.items()}
    return StopTable(tuple(kernels), rows)


def stop_reasons(kernel: str) -> list[str]:
    """The distinct reasons (in the vocabulary's words) for which ``kernel`` ended a
    batch somewhere in the gallery, in gallery order."""
    seen = [stop_table((kernel,)).cell(s, kernel)[1] for s in GALLERY]
    return list(dict.fromkeys(seen))
