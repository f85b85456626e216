"""The cow.c report: each case on the model, variant by variant, against the live kernel.

Simulator concept (no kernel file).  Reads the live kernel's stored results
(``pkmm/data/cowc-<kernel>.json``, written by :mod:`pkmm.realkernel.cowc`), runs every
case of :mod:`pkmm.cowc.matrix` on every kernel variant with :func:`pkmm.cowc.model.run_case`,
and says per case whether the model can express it (else which API it lacks), what each
variant gave and what the kernel gave.  ``python -m pkmm realkernel --cowc`` prints it.
Taught in: notebooks/09-real-kernel-lab.ipynb
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import StoredDataError
from ..kernels import KERNELS
from .matrix import Case, cases
from .model import Outcome, missing_api, run_case

DATA = Path(__file__).resolve().parent.parent / "data" / "cowc-6.18.json"
RESULTS = ("pass", "xfail", "fail", "skip")


@dataclass
class CaseRow:
    """One case: what the model lacks (if anything), each variant's result, the kernel's."""

    case: Case
    live: str                      # pass | fail | xfail | skip | varies
    live_seen: tuple[str, ...]     # every result the live runs gave
    live_why: str = ""             # why the kernel skipped it
    missing: tuple[str, ...] = ()  # model API the case needs and pkmm does not have
    model: dict[str, Outcome] = field(default_factory=dict)

    @property
    def expressible(self) -> bool:
        return not self.missing

    def agrees(self, kernel: str) -> bool | None:
        """Model and kernel gave the same result (None: one of them did not run it)."""
        out = self.model.get(kernel)
        if out is None or out.result == "skip" or self.live == "skip":
            return None
        return out.result in self.live_seen


def load_live(path: Path = DATA) -> dict[str, Any]:
    """The stored live cow.c run (:class:`StoredDataError` naming the file if it is not
    one)."""
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise StoredDataError(f"{path}: not a stored cow.c run ({type(e).__name__}); pass "
                              "a file written by `python -m pkmm realkernel --cowc --save`"
                              ) from None
    if not isinstance(data, dict) or not isinstance(data.get("cases"), list) or not all(
            isinstance(c, dict) and {"n", "case", "result"} <= set(c) for c in data["cases"]):
        raise StoredDataError(f"{path}: no list of cases with n/case/result; pass a file "
                              "written by `python -m pkmm realkernel --cowc --save`")
    for key in ("kernel", "source"):
        if not isinstance(data.get(key), str):
            raise StoredDataError(f"{path}: no {key!r} string")
    return data


def build_rows(live: dict[str, Any], kernels: tuple[str, ...] = KERNELS,
               only: set[int] | None = None) -> list[CaseRow]:
    """Run every case (or the case numbers in ``only``) on ``kernels``."""
    by_name = {c["case"]: c for c in live["cases"]}
    rows = []
    for case in cases():
        if only is not None and case.n not in only:
            continue
        rec = by_name.get(case.name)
        if rec is None:
            raise StoredDataError(f"the stored cow.c run has no case {case.name!r}: it "
                                  "was run on another machine; run --cowc --save here")
        seen = tuple(rec.get("seen", [rec["result"]]))
        row = CaseRow(case, rec["result"], seen, rec.get("why", ""), tuple(missing_api(case)))
        if row.expressible:
            row.model = {k: run_case(case, k) for k in kernels}
        rows.append(row)
    return rows


def summary(rows: list[CaseRow], kernels: tuple[str, ...] = KERNELS) -> list[str]:
    """The table of the closing note: expressible, per variant, live, agreement."""
    n = len(rows)
    exp = [r for r in rows if r.expressible]
    live = Counter(r.live for r in rows)
    lines = [f"cow.c cases: {n}; expressible in pkmm: {len(exp)}/{n}",
             "live kernel: " + ", ".join(f"{live[k]} {k}" for k in (*RESULTS, "varies")
                                         if live[k])]
    head = f"{'variant':11s} " + " ".join(f"{k:>6s}" for k in RESULTS) + \
        "  both ran  agree"
    lines.append(head)
    for k in kernels:
        c = Counter(r.model[k].result for r in exp)
        both = [r for r in exp if r.agrees(k) is not None]
        agree = sum(bool(r.agrees(k)) for r in both)
        lines.append(f"{k:11s} " + " ".join(f"{c[x]:6d}" for x in RESULTS) +
                     f"  {len(both):8d}  {agree:5d}")
    return lines


def render(rows: list[CaseRow], kernels: tuple[str, ...] = KERNELS,
           verbose: bool = False) -> str:
    """Summary, then every case where the model fails, disagrees or cannot run."""
    lines = summary(rows, kernels)
    gaps = Counter(api for r in rows for api in r.missing)
    for api, count in gaps.most_common():
        lines.append(f"unexpressed: {count} case(s) need {api}")
    for r in rows:
        bad = [k for k in kernels if r.model.get(k) and (
            r.model[k].result == "fail" or r.agrees(k) is False)]
        if verbose or bad:
            got = ", ".join(f"{k}={r.model[k].result}" for k in kernels if k in r.model)
            lines.append(f"#{r.case.n} {r.case.name}: live {r.live}; model {got or '-'}")
    return "\n".join(lines)


__all__ = ["DATA", "CaseRow", "build_rows", "load_live", "render", "summary"]
