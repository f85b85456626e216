"""``python -m pkmm realkernel``: the agreement report (and ``--timing``) from the shell.

Kernel interfaces: see :mod:`pkmm.realkernel` (probes run only on Linux as root).
Taught in: notebooks/09-real-kernel-lab.ipynb

Without root or off Linux the report falls back to the stored Linux 6.18 results and says
so; ``--stored`` asks for that explicitly.  The last line is always ``agree: N/M``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import PkmmError
from . import thp
from .model import model_kernel
from .report import (
    STORED,
    StoredDataError,
    load_stored,
    render,
    report,
    rows_json,
    steps_json,
)
from .scenarios import BY_ID
from .support import detect

#: --timing --sizes: each region size is a number of MiB or GiB, at most this much.
MAX_TIMING_BYTES = 64 << 30


class CliError(PkmmError, ValueError):
    """A bad command-line argument (exit status 2)."""


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m pkmm realkernel",
                                 description="Check the pkmm model against the running "
                                             "Linux kernel.")
    ap.add_argument("--stored", action="store_true",
                    help="report from the stored results instead of probing this machine")
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    ap.add_argument("--only", default="", help="comma-separated scenario ids (e.g. a,c,h1)")
    ap.add_argument("--data", type=Path, default=STORED, help="stored results file")
    ap.add_argument("--save", action="store_true",
                    help="probe and write the results to --data (for maintainers; with "
                         "--only, only those scenarios are replaced)")
    ap.add_argument("--timing", action="store_true",
                    help="also measure fork() time per folio layout (see --sizes)")
    ap.add_argument("--sizes", default="256M,1G", help="region sizes for --timing")
    ap.add_argument("--cowc", action="store_true",
                    help="the kernel's cow.c selftest: every case on the model (each "
                         "variant) against the stored live results; with --save, build "
                         "and run cow.c here first (root, Debian linux-source, gcc)")
    return ap


def live_results(only: list[str] | None) -> dict[str, Any]:
    """Probe this machine: {"machine": ..., "scenarios": {id: result}}."""
    from .run import probe_all
    machine = detect()
    scenarios = probe_all(only)
    for res in scenarios.values():
        if "steps" in res:
            res["steps"] = steps_json([_as_step(s) for s in res["steps"]])
    return {"format": 1, "machine": machine.describe(), "thp_knobs": thp.snapshot(),
            "scenarios": scenarios}


def dump_results(data: dict[str, Any]) -> str:
    """JSON with one step per line: diffable, and small enough to keep in the repo."""
    head = {k: v for k, v in data.items() if k != "scenarios"}
    out = json.dumps(head, indent=1)[:-2] + ',\n "scenarios": {\n'
    items = []
    for sid, res in data["scenarios"].items():
        if "steps" in res:
            steps = ",\n".join("   " + json.dumps(s, ensure_ascii=False, separators=(",", ":"))
                                for s in res["steps"])
            items.append(f'  "{sid}": {{"steps": [\n{steps}]}}')
        else:
            items.append(f'  "{sid}": {json.dumps(res)}')
    return out + ",\n".join(items) + "\n }\n}\n"


def _merged(fresh: dict[str, Any], path: Path) -> dict[str, Any]:
    """``--save --only``: the stored file with just these scenarios replaced (or added)."""
    if not path.is_file():
        return fresh
    old = load_stored(path)
    merged = {**old["scenarios"], **fresh["scenarios"]}
    order = [sc for sc in BY_ID if sc in merged] + [k for k in merged if k not in BY_ID]
    return {**fresh, "scenarios": {k: merged[k] for k in order}}


def _as_step(s: dict[str, Any]) -> Any:
    from .observe import Step
    step = Step(s["name"], s["who"], [], s["ahp_kb"], s["op"])
    step.cells = s["cells"]
    return step


def parse_sizes(text: str) -> list[int]:
    """``--sizes``: ``"256M,1G"`` -> bytes; a CliError naming the bad item otherwise.

    >>> parse_sizes("256M,1G")
    [268435456, 1073741824]
    """
    out = []
    for item in [x.strip() for x in text.split(",") if x.strip()] or [text]:
        unit = {"M": 1 << 20, "G": 1 << 30}.get(item[-1:].upper())
        digits = item[:-1]
        if unit is None or not digits.isdigit() or len(digits) > 6:
            raise CliError(f"--sizes {text!r}: {item!r} is not a size; write a number of "
                           "MiB or GiB such as 256M or 1G")
        size = int(digits) * unit
        if not 1 << 20 <= size <= MAX_TIMING_BYTES:
            raise CliError(f"--sizes {text!r}: {item} is out of range; use 1M .. "
                           f"{MAX_TIMING_BYTES >> 30}G")
        out.append(size)
    return out


def _only(text: str) -> list[str] | None:
    only = [x.strip() for x in text.split(",") if x.strip()]
    unknown = [x for x in only if x not in BY_ID]
    if unknown:
        raise CliError(f"--only {text!r}: no scenario {', '.join(map(repr, unknown))}; "
                       f"known ids: {','.join(BY_ID)}")
    if text.strip() and not only:
        raise CliError(f"--only {text!r}: give one or more scenario ids, e.g. a,c,h1")
    return only or None


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (2 for a bad argument, 1 for a disagreement)."""
    try:
        return _main(_parser().parse_args(argv))
    except (CliError, StoredDataError) as e:
        print(f"pkmm realkernel: error: {e}", file=sys.stderr)
        return 2


def _cowc(args: argparse.Namespace) -> int:
    """``--cowc``: the cow.c report (live run and store first with ``--save``)."""
    from ..cowc.report import DATA, build_rows, summary
    from ..cowc.report import render as render_cowc
    if args.only or args.timing or args.stored:
        raise CliError("--cowc takes no --only, --timing or --stored (it always compares "
                       "with the stored cow.c run; --save refreshes that)")
    path = DATA if args.data == STORED else args.data
    if args.save:
        from .cowc import CowcUnavailable, dump, run_live
        try:
            data = run_live()
        except CowcUnavailable as e:
            raise CliError(f"--cowc --save: cow.c cannot run here: {e}") from None
        path.write_text(dump(data))
    from ..cowc.report import load_live
    live = load_live(path)
    rows = build_rows(live)
    if args.json:
        print(json.dumps({"summary": summary(rows), "cases": [
            {"n": r.case.n, "case": r.case.name, "live": r.live,
             "missing": list(r.missing),
             "model": {k: o.result for k, o in r.model.items()}} for r in rows]}, indent=1))
    else:
        print(f"cow.c: live results of Linux {live['kernel']} from {path.name} "
              f"({live['source']})")
        print(render_cowc(rows))
    bad = [r for r in rows if r.missing or any(
        o.result == "fail" or r.agrees(k) is False for k, o in r.model.items())]
    return 1 if bad else 0


def _main(args: argparse.Namespace) -> int:
    if args.cowc:
        return _cowc(args)
    only = _only(args.only)
    if args.timing:
        parse_sizes(args.sizes)
    if args.save and args.stored:
        raise CliError("--save --stored: --save writes fresh live results; drop --stored")
    reason = detect().probe_ready()
    if args.save and reason:
        raise CliError(f"--save needs live probing, which is not possible here: {reason}")
    if args.stored or reason:
        data = load_stored(args.data)
        m = data["machine"]
        source = (f"stored results: Linux {m['kernel']} ({m['arch']}, {m.get('cpus', '?')} CPUs, "
                  f"{m['cpu']}) from {args.data.name}")
        if reason and not args.stored:
            source = f"live probing skipped: {reason}; showing {source}"
        if only:
            data["scenarios"] = {k: v for k, v in data["scenarios"].items() if k in only}
            if not data["scenarios"]:
                raise CliError(f"--only {args.only!r}: {args.data.name} holds no results "
                               "for these scenarios; probe them live or pick stored ones")
    else:
        data = live_results(only)
        source = f"live: this machine, Linux {data['machine']['kernel']}"
        if args.save:
            args.data.parent.mkdir(parents=True, exist_ok=True)
            args.data.write_text(dump_results(_merged(data, args.data) if only else data))
    kernel = model_kernel(data["machine"]["kernel"])
    rows = report(data["scenarios"], kernel)
    header = f"{source}; model kernel {kernel}"
    if args.json:
        done = [r for r in rows if not r.skipped]
        print(json.dumps({"source": source, "model_kernel": kernel, "rows": rows_json(rows),
                          "agree": sum(r.agrees for r in done), "total": len(done)}, indent=1))
    else:
        print(render(rows, header))
    if args.timing:
        from .calibrate import print_timing
        print_timing(args.sizes, stored=args.stored or bool(reason))
    return 0 if all(r.agrees or r.skipped for r in rows) else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
