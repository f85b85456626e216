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

from ..errors import StoredDataError
from .model import model_kernel, run_model
from .observe import Step, rle, unrle
from .scenarios import BY_ID, RULES, SCENARIOS, Scenario, label, phase

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
    return bool(m == "—" and k != "—")


def _op(op: dict[str, Any] | None) -> str:
    from .observe import op_text
    return op_text(op) or "-"


# "child after fork": what the child's page table holds right after fork -- not what fork
# did (s1/s2: fork copied swap entries, which map no page until a fault reads them back).
COLUMNS = ("child after fork", "w1 child", "w1 parent", "w2 parent", "w2 child", "w3 parent")
_WRITE_COLUMN = {"child writes w1 (first writer)": "w1 child",
                 "parent writes w1 (second writer)": "w1 parent",
                 "parent writes w2 (first writer)": "w2 parent",
                 "child writes w2 (second writer)": "w2 child",
                 "parent writes w3 after child exit": "w3 parent"}


def outcome(sc: Scenario, steps: list[dict[str, Any]]) -> dict[str, str]:
    """A summary of what happened (fork, then each write: copy/reuse/...)."""
    out = {c: "-" for c in COLUMNS}
    last: dict[str, list[str]] = {}
    for s in steps:
        cells = _cells(s)
        if s["name"] == "after fork" and s["who"] == "child":
            out[COLUMNS[0]] = _fork_text(cells, s["ahp_kb"])
        if s["name"] == "after fork" and s["who"] == "parent":
            out[COLUMNS[0]] += _uwp_text(last["child"], cells)
        if "after child exit" in s["name"]:
            last.pop("child", None)     # an exited child holds no entry, no swap slot
        col = _WRITE_COLUMN.get(s["name"])
        if col and s["op"] is not None:
            page = s["op"]["page"]
            other = last.get("child" if s["who"] == "parent" else "parent")
            out[col] = _write_text(s["op"], last.get(s["who"], cells)[page], cells[page],
                                   other[page] if other else None)
        last[s["who"]] = cells
    return out


def _fork_text(cells: list[str], ahp_kb: int) -> str:
    """``shared N[, copied M][, swap entries K][ (PMD)]``, ``swap entries K`` or ``nothing
    present``, from the child's cells: what the child's page table holds, not what fork did
    (a swap entry is an entry fork copied, yet it maps no page until a fault reads it back).

    ``(PMD)``: the child maps 2 MiB with one PMD-level entry.  smaps' AnonHugePages counts
    only anonymous THPs, so the huge zero page (``hzero``: PMD-mapped only; a split maps
    the small zero page) and hugetlb pages (``huge``; the lab's are 2 MiB, one PMD-level
    entry each) are recognised from the page tokens instead.

    >>> _fork_text(["hzero x0 m0 ae0 H·thp·Z·F"] * 2, 0), _fork_text(["n1 x1 m1 ae1 A"], 0)
    ('shared 2 (PMD)', 'shared 0, copied 1')
    >>> _fork_text(["— swp", "— swp"], 0), _fork_text(["—", "—"], 0)
    ('swap entries 2', 'nothing present')
    """
    labels = [c.split()[0] for c in cells]
    swapped = sum(c.split()[:2] == ["—", "swp"] for c in cells)
    if all(lb == "—" for lb in labels):
        return f"swap entries {swapped}" if swapped else "nothing present"
    new = sum(lb.startswith("n") for lb in labels)
    shared = sum(lb in ("orig", "zero", "hzero") for lb in labels)
    text = f"shared {shared}" + (f", copied {new}" if new else "") + \
        (f", swap entries {swapped}" if swapped else "")
    pmd = ahp_kb > 0 or any(c.split()[0] == "hzero" or "huge" in c.split()[-1].split("·")
                            for c in cells)
    return text + (" (PMD)" if pmd else "")


def _uwp_text(child: list[str], parent: list[str]) -> str:
    """", uwp kept" / ", uwp cleared" when the parent's entries carry the uffd-wp bit and
    the child has entries of its own: whether fork's copies kept the bit (the thing the
    uffd-wp rows test); "" otherwise.

    >>> _uwp_text(["orig x0 m2 ae0 A"], ["orig x0 m2 ae0 uwp A"])
    ', uwp cleared'
    >>> _uwp_text(["—"], ["orig x1 m1 ae0 uwp F"]), _uwp_text(["orig x0 m2 ae0 A"] , ["orig"])
    ('', '')
    """
    marked = [c for c, p in zip(child, parent, strict=True)
              if "uwp" in p.split() and c.split()[0] != "—"]
    if not marked:
        return ""
    return ", uwp kept" if all("uwp" in c.split() for c in marked) else ", uwp cleared"


def _write_text(op: dict[str, Any], before: str, after: str, other: str | None = None) -> str:
    """What one write did, from the writer's cell before and after it and the other
    process's cell at that page after it (``None``: no other process any more).

    A write on a swap entry reads the page back from swap into the swap cache.  While the
    other process still holds a swap entry for that page, the slot still holds its data, so
    the page read back must stay unchanged for it: the writer's writable page is a copy.
    Otherwise the writer's entry was the last one on the slot, and it keeps the page read
    back (the one the other process's own fault may already have mapped).

    >>> _write_text({"faults": 1}, "— swp", "n2 x1 m1 ae1 A", "— swp")
    'swap-in, copied'
    >>> _write_text({"faults": 1}, "— swp", "n1 x1 m1 ae1 A", "n2 x1 m1 ae1 A")
    'swap-in, reused'
    >>> _write_text({"faults": 1}, "— swp", "n5 x1 m1 ae1 A", None)
    'swap-in, reused'
    """
    if "signal" in op:
        return str(op["signal"])
    b, a = before.split()[0], after.split()[0]
    if not op["faults"]:
        return "no fault"
    if b == "—" and "swp" in before:
        held = other is not None and other.split()[:2] == ["—", "swp"]
        return "swap-in, copied" if held else "swap-in, reused"
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


HEAD = ("#", "scenario", *COLUMNS, "result")


def table(rows: list[Row]) -> tuple[list[list[str]], list[str], str]:
    """What the report says, as data: one list of cells per scenario (:data:`HEAD`), the
    skip and disagreement lines, and the final ``agree: N/M`` line.  :func:`render` prints
    it; the notebook shows the same rows as an HTML table."""
    body, notes = [], []
    for r in rows:
        vals = [r.outcome.get(c, "-") for c in COLUMNS] if not r.skipped else \
            ["skipped"] + [""] * (len(COLUMNS) - 1)
        res = "skipped" if r.skipped else ("agree" if r.agrees else "DIFFER")
        body.append([label(r.id), r.title, *vals, res])
    for r in rows:
        if r.skipped:
            notes.append(f"skipped {r.id}: {r.skipped}")
        for d in r.diffs:
            notes.append(f"DIFFER {r.id}: {d.step} [{d.who}] {d.what}: kernel {d.kernel!r}, "
                         f"model {d.model!r} -- {d.rule}")
    done = [r for r in rows if not r.skipped]
    return body, notes, f"agree: {sum(r.agrees for r in done)}/{len(done)}"


def render(rows: list[Row], header: str = "") -> str:
    """The table, the disagreements with their rules, and the final ``agree: N/M`` line."""
    body, notes, total = table(rows)
    widths = [4, 40] + [max(len(c), 14) for c in COLUMNS] + [8]
    lines = [header] if header else []
    for cols in [list(HEAD), *body]:
        lines.append("  ".join(v.ljust(w) for v, w in zip(cols, widths, strict=True)).rstrip())
    return "\n".join(lines + notes + [total])


# Scenario ids renamed since a results file may have been saved: old id -> new id.  m1/m2
# became mp1/mp2 ("mprotect"), as m1 and m2 are also the page token's mapcounts.
RENAMED = {"m1": "mp1", "m2": "mp2"}
# Token parts renamed since: the hugetlb flag was ``HT`` (read next to ``H``, head page, as
# "head + tail"); it is ``huge``, after kpageflags' KPF_HUGE.
RENAMED_FLAGS = {"HT": "huge"}


def _renamed_token(token: str) -> str:
    head, sep, flags = token.rpartition(" ")
    if not sep:
        return token
    return head + sep + "·".join(RENAMED_FLAGS.get(f, f) for f in flags.split("·"))


def _renamed_steps(res: Any) -> Any:
    if not isinstance(res, dict) or not isinstance(res.get("steps"), list):
        return res
    def cell(c: Any) -> Any:        # a run [token, count] or a plain token
        if isinstance(c, str):
            return _renamed_token(c)
        if isinstance(c, list) and c and isinstance(c[0], str):
            return [_renamed_token(c[0]), *c[1:]]
        return c
    steps = [{**s, "cells": [cell(c) for c in s["cells"]]} if isinstance(s.get("cells"), list)
             else s for s in res["steps"]]
    return {**res, "steps": steps}


def load_stored(path: Path = STORED) -> dict[str, Any]:
    """The stored results of a probe run (machine description + labelled steps).

    Raises :class:`StoredDataError` naming the file and what is wrong with it.
    """
    where = f"{path}"
    if not path.is_file():
        what = ("is a directory" if path.is_dir() else "is not a regular file"
                if path.exists() else "does not exist")
        raise StoredDataError(f"{where} {what}; pass a results file such as {STORED.name} "
                              "(written by --save)")
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise StoredDataError(f"{where} is not a JSON results file ({type(e).__name__}: "
                              f"{str(e)[:80]}); pass a file written by --save") from None
    _check_stored(data, where)
    data = dict(data)
    data["scenarios"] = {RENAMED.get(k, k): _renamed_steps(v) for k, v in data["scenarios"].items()}
    return data


def _check_stored(data: Any, where: str) -> None:
    fix = "; pass a file written by `python -m pkmm realkernel --save`"
    if not isinstance(data, dict) or not isinstance(data.get("scenarios"), dict) or \
            not isinstance(data.get("machine"), dict):
        raise StoredDataError(f"{where} has no 'machine' and 'scenarios' objects{fix}")
    m = data["machine"]
    for key in ("kernel", "arch", "cpu"):
        if not isinstance(m.get(key), str):
            raise StoredDataError(f"{where}: machine has no {key!r} string{fix}")
    for sid, res in data["scenarios"].items():
        ok = isinstance(res, dict) and (isinstance(res.get("skipped"), str) or (
            isinstance(res.get("steps"), list) and all(
                isinstance(s, dict) and {"name", "who", "op", "ahp_kb", "cells"} <= set(s)
                for s in res["steps"])))
        if not ok:
            raise StoredDataError(f"{where}: scenario {sid!r} has neither 'skipped' nor a "
                                  f"list of steps with name/who/op/ahp_kb/cells{fix}")


def stored_kernel(data: dict[str, Any]) -> str:
    return model_kernel(data["machine"]["kernel"])


def rows_json(rows: list[Row]) -> list[dict[str, Any]]:
    return [dict(asdict(r), agrees=r.agrees) for r in rows]


__all__ = ["HEAD", "STORED", "Diff", "Row", "StoredDataError", "compare", "load_stored",
           "render", "report", "rows_json", "steps_json", "stored_kernel", "table", "BY_ID"]
