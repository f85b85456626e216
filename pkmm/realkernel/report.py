"""The agreement report: the running (or a stored) kernel against the pkmm model.

Simulator concept (no kernel file).  For each scenario the kernel's labelled steps (live
from :mod:`pkmm.realkernel.run`, or stored in ``pkmm/data/realkernel-<ver>.json``) are
compared cell by cell with the model's (:mod:`pkmm.realkernel.model`): every page of the
region in every step (PFN label, bit 56, kpagecount, AE, folio flags, uffd-wp), whether
each access faulted or raised a signal, the value read, and smaps AnonHugePages.
Taught in: notebooks/09-real-kernel-lab.ipynb
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .model import model_kernel, run_model
from .observe import Step, rle, unrle
from .scenarios import BY_ID, RULES, SCENARIOS, Scenario, phase

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
STORED = DATA_DIR / "realkernel-6.18.json"


@dataclass
class Diff:
    """One observable on which kernel and model differ."""

    step: str
    who: str
    what: str          # "pg3", "op", "AnonHugePages", "steps"
    kernel: str
    model: str
    rule: str


@dataclass
class Row:
    """One scenario of the report."""

    id: str
    title: str
    outcome: dict[str, str] = field(default_factory=dict)   # columns, from the kernel
    diffs: list[Diff] = field(default_factory=list)
    skipped: str | None = None
    cells: int = 0          # cells compared

    @property
    def agrees(self) -> bool:
        return self.skipped is None and not self.diffs


def steps_json(steps: list[Step]) -> list[dict[str, Any]]:
    """Steps in the stored form: cells run-length encoded, no raw PFNs."""
    return [{"name": s.name, "who": s.who, "op": s.op, "ahp_kb": s.ahp_kb,
             "cells": rle(s.cells)} for s in steps]


def _cells(step: dict[str, Any]) -> list[str]:
    cells = step["cells"]
    return unrle(cells) if cells and isinstance(cells[0], list) else list(cells)


def compare(sc: Scenario, kernel_steps: list[dict[str, Any]], model_steps: list[Step]) -> Row:
    """Compare one scenario; the row carries every difference with the rule it checks."""
    row = Row(sc.id, sc.title, outcome(sc, kernel_steps))
    model = steps_json(model_steps)
    if [(s["name"], s["who"]) for s in kernel_steps] != [(s["name"], s["who"]) for s in model]:
        row.diffs.append(Diff("(script)", "-", "steps", str(len(kernel_steps)),
                              str(len(model)), "the script ran differently"))
        return row
    prev: dict[str, tuple[list[str], list[str]]] = {}
    for ks, ms in zip(kernel_steps, model, strict=True):
        rule = f"rule {sc.rule(phase(ks['name']))}: {RULES[sc.rule(phase(ks['name']))]}"
        kc, mc = _cells(ks), _cells(ms)
        if _fault_around_shaped(kc, mc) or _premapped(ks["op"], prev.get(ks["who"])):
            rule = FAULT_AROUND
        prev[ks["who"]] = (kc, mc)
        row.cells += len(kc)
        bad = [i for i, (x, y) in enumerate(zip(kc, mc, strict=True)) if x != y]
        if bad:
            i = bad[0]
            more = f" (and {len(bad) - 1} more: pg{','.join(map(str, bad[1:6]))}" \
                   f"{',...' if len(bad) > 6 else ''})" if len(bad) > 1 else ""
            row.diffs.append(Diff(ks["name"], ks["who"], f"pg{i}{more}", kc[i], mc[i], rule))
        if ks["op"] != ms["op"]:
            row.diffs.append(Diff(ks["name"], ks["who"], "op", _op(ks["op"]), _op(ms["op"]),
                                  rule))
        if ks["ahp_kb"] != ms["ahp_kb"]:
            row.diffs.append(Diff(ks["name"], ks["who"], "AnonHugePages",
                                  f"{ks['ahp_kb']}k", f"{ms['ahp_kb']}k", rule))
    return row


FAULT_AROUND = ("fault path, not fork: the read fault mapped different neighbouring "
                "page-cache pages in the kernel than in the model (mm/memory.c "
                "do_fault_around, 64K window)")


def _fault_around_shaped(kc: list[str], mc: list[str]) -> bool:
    """Cells differ only as extra pages mapped by fault-around would make them differ:
    present in the kernel but not the model, or mapped twice in the kernel but once in
    the model (the other process's view of those pages)."""
    bad = [(k, m) for k, m in zip(kc, mc, strict=True) if k != m]
    return bool(bad) and all((m == "—" and k != "—") or
                             k.replace(" x0 m2 ", " x1 m1 ") == m for k, m in bad)


def _premapped(op: dict[str, Any] | None, before: tuple[list[str], list[str]] | None) -> bool:
    """A fault-count difference on a page that only the kernel had already mapped."""
    if not op or "page" not in op or before is None:
        return False
    k, m = before[0][op["page"]], before[1][op["page"]]
    return m == "—" and k != "—"


def _op(op: dict[str, Any] | None) -> str:
    from .observe import op_text
    return op_text(op) or "-"


COLUMNS = ("fork", "w1 child", "w1 parent", "w2 parent", "w2 child", "w3 parent")
_WRITE_COLUMN = {"child writes w1 (first writer)": "w1 child",
                 "parent writes w1 (second writer)": "w1 parent",
                 "parent writes w2 (first writer)": "w2 parent",
                 "child writes w2 (second writer)": "w2 child",
                 "parent writes w3 after child exit": "w3 parent"}


def outcome(sc: Scenario, steps: list[dict[str, Any]]) -> dict[str, str]:
    """A one-line summary per scenario of what happened (fork, then each write: copy/reuse/...)."""
    out = {c: "-" for c in COLUMNS}
    last: dict[str, list[str]] = {}
    for s in steps:
        cells = _cells(s)
        if s["name"] == "after fork" and s["who"] == "child":
            out["fork"] = _fork_text(cells, s["ahp_kb"])
        col = _WRITE_COLUMN.get(s["name"])
        if col and s["op"] is not None:
            out[col] = _write_text(s["op"], last.get(s["who"], cells)[s["op"]["page"]],
                                   cells[s["op"]["page"]])
        last[s["who"]] = cells
    return out


def _fork_text(cells: list[str], ahp_kb: int) -> str:
    labels = [c.split()[0] for c in cells]
    if all(lb == "—" for lb in labels):
        return "not copied"
    new = sum(lb.startswith("n") for lb in labels)
    shared = sum(lb in ("orig", "zero", "hzero") for lb in labels)
    text = f"shared {shared}" + (f", copied {new}" if new else "")
    return text + (" (PMD)" if ahp_kb else "")


def _write_text(op: dict[str, Any], before: str, after: str) -> str:
    if "signal" in op:
        return op["signal"]
    b, a = before.split()[0], after.split()[0]
    if not op["faults"]:
        return "no fault"
    if b in ("—", "zero", "hzero"):
        return "new THP" if "thp" in after else "new page"
    return "reuse" if a == b else "copy"


def report(kernel_results: dict[str, dict[str, Any]], kernel: str) -> list[Row]:
    """Rows for every scenario in ``kernel_results`` (skipped ones keep their reason)."""
    rows = []
    for sc in SCENARIOS:
        res = kernel_results.get(sc.id)
        if res is None:
            continue
        if "skipped" in res:
            rows.append(Row(sc.id, sc.title, skipped=res["skipped"]))
            continue
        rows.append(compare(sc, res["steps"], run_model(sc, kernel)))
    return rows


def render(rows: list[Row], header: str = "") -> str:
    """The table, the disagreements with their rules, and the final ``agree: N/M`` line."""
    widths = [4, 40] + [max(len(c), 14) for c in COLUMNS] + [8]
    head = ["#", "scenario", *COLUMNS, "result"]
    lines = [header] if header else []
    lines.append("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip())
    for r in rows:
        vals = [r.outcome.get(c, "-") for c in COLUMNS] if not r.skipped else \
            ["skipped"] + [""] * (len(COLUMNS) - 1)
        res = "skipped" if r.skipped else ("agree" if r.agrees else "DIFFER")
        cols = [r.id, r.title, *vals, res]
        lines.append("  ".join(v.ljust(w) for v, w in zip(cols, widths, strict=True)).rstrip())
    for r in rows:
        if r.skipped:
            lines.append(f"skipped {r.id}: {r.skipped}")
        for d in r.diffs:
            lines.append(f"DIFFER {r.id}: {d.step} [{d.who}] {d.what}: kernel {d.kernel!r}, "
                         f"model {d.model!r} -- {d.rule}")
    done = [r for r in rows if not r.skipped]
    lines.append(f"agree: {sum(r.agrees for r in done)}/{len(done)}")
    return "\n".join(lines)


def load_stored(path: Path = STORED) -> dict[str, Any]:
    """The stored results of a probe run (machine description + labelled steps)."""
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def stored_kernel(data: dict[str, Any]) -> str:
    return model_kernel(data["machine"]["kernel"])


def rows_json(rows: list[Row]) -> list[dict[str, Any]]:
    return [dict(asdict(r), agrees=r.agrees) for r in rows]


__all__ = ["STORED", "Diff", "Row", "compare", "load_stored", "render", "report",
           "rows_json", "steps_json", "stored_kernel", "BY_ID"]
