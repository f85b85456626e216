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

from . import thp
from .model import model_kernel
from .report import STORED, load_stored, render, report, rows_json, steps_json
from .support import detect


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m pkmm realkernel",
                                 description="Check the pkmm model against the running "
                                             "Linux kernel, scenario by scenario.")
    ap.add_argument("--stored", action="store_true",
                    help="report from the stored results instead of probing this machine")
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    ap.add_argument("--only", default="", help="comma-separated scenario ids (e.g. a,c,h1)")
    ap.add_argument("--data", type=Path, default=STORED, help="stored results file")
    ap.add_argument("--save", action="store_true",
                    help="probe and write the results to --data (for maintainers)")
    ap.add_argument("--timing", action="store_true",
                    help="also measure fork() time per folio layout (see --sizes)")
    ap.add_argument("--sizes", default="256M,1G", help="region sizes for --timing")
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


def _as_step(s: dict[str, Any]) -> Any:
    from .observe import Step
    step = Step(s["name"], s["who"], [], s["ahp_kb"], s["op"])
    step.cells = s["cells"]
    return step


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    only = [x for x in args.only.split(",") if x] or None
    reason = detect().probe_ready()
    if args.stored or reason:
        data = load_stored(args.data)
        m = data["machine"]
        source = (f"stored results: Linux {m['kernel']} ({m['arch']}, {m['cpus']} CPUs, "
                  f"{m['cpu']}) from {args.data.name}")
        if reason and not args.stored:
            source = f"live probing skipped: {reason}; showing {source}"
        if only:
            data["scenarios"] = {k: v for k, v in data["scenarios"].items() if k in only}
    else:
        data = live_results(only)
        source = f"live: this machine, Linux {data['machine']['kernel']}"
        if args.save:
            args.data.parent.mkdir(parents=True, exist_ok=True)
            args.data.write_text(dump_results(data))
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
