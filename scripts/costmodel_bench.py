"""Benchmark: the cost model's predicted fork() speed-ups over 4K pages against the live
kernel's, per folio size, from one run on this machine (Linux, root).

Measures every folio layout at 1 GiB interleaved with 4K samples (the minimum of
``--rounds`` rounds, FRESH and REPEAT: pkmm.realkernel.timing.measure_interleaved), fits
the cost model on this run's training sizes (pkmm.costmodel.TRAIN) and prints, per size,
the measured speed-up, the speed-up this run's fit predicts (held-out sizes are predicted,
not fitted) and the one the stored calibration predicts, and how well the run measured
them: the speed-ups of its even and of its odd rounds, compared.  Unless ``--no-layouts``, it also
times the rebuilt layouts of pkmm.realkernel.layouts_cost (all but the real process), so the
fit prices VMAs, page tables and empty slots too.  ``--replay`` also rebuilds the
layout of a real Python process (pkmm.realkernel.layouts_cost.real_process) and compares
its fork time with the prediction of this run's fit (the model calibrated on this machine
as it is now) and with the stored calibration's.

``--save FILE`` writes the run's measurements (the stored dataset's format, so
``pkmm.costmodel.fit(data=json.load(open(FILE)))`` refits them; with ``--replay`` also the
replayed layout and its time, under ``"replay"``).

Usage: .venv/bin/python scripts/costmodel_bench.py [--rounds 11] [--replay [--builds 3]]
       [--no-layouts] [--json] [--save FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from pkmm import costmodel as cm
from pkmm.realkernel.calibrate import HOW, load
from pkmm.realkernel.support import detect
from pkmm.realkernel.timing import MODES, available_folios, measure_interleaved, split_half


def live_runs(rounds: int, layouts: bool) -> dict:
    folios = [f for f in available_folios() if f != "4K"]
    runs = [r for m in MODES if (r := measure_interleaved(
        1 << 30, folios, mode=m, rounds=rounds, progress=True)) is not None]
    lays = []
    if layouts:
        # the rebuilt layouts price what the folio runs cannot tell apart (VMAs, anon_vmas,
        # file VMAs, page tables, empty slots, page copies); the real process is held out
        from pkmm.realkernel.layouts_cost import HELD_OUT, LAYOUTS, measure_layouts
        lays = measure_layouts(rounds=rounds, names=tuple(n for n in LAYOUTS
                                                          if n not in HELD_OUT),
                               progress=True)
    return {"format": 2, "how": HOW, "machine": detect().describe(), "rounds": rounds,
            "runs": runs, "layouts": lays}


def table(live: cm.Fit, stored: cm.Fit) -> list[dict]:
    ref = {(r["label"], r["mode"]): r for r in stored.rows if r["kind"] == "folio"
           and r["size_bytes"] == cm.GIB}
    out = []
    for r in live.rows:
        if r["kind"] != "folio" or r["size_bytes"] != cm.GIB or r["label"] == "4K":
            continue
        s = ref.get((r["label"], r["mode"]))
        out.append({"folio": r["label"], "mode": r["mode"], "fitted": r["trained"],
                    "measured": r["speedup_measured"], "predicted": r["speedup_predicted"],
                    "stored_model": s["speedup_predicted"] if s else None})
    return out


def repeatability(data: dict) -> dict[str, float]:
    """Per state, the largest difference at the required sizes between the speed-ups of
    the run's even rounds and of its odd rounds (timing.split_half): a prediction error
    smaller than this is inside the measurement's own noise on this machine now."""
    out = {}
    for run in data["runs"]:
        halves = split_half(run)
        if halves:
            a, b = halves
            out[run["mode"]] = max((abs(a[f] - b[f]) for f in cm.REQUIRED
                                    if f in a and f in b), default=0.0)
    return out


def replay_check(live: cm.Fit, builds: int) -> dict:
    from pkmm.realkernel.layouts_cost import real_process
    from pkmm.realkernel.replay import replay_fork
    sc = real_process()
    # each build is a new probe whose pages land elsewhere in physical memory: the minimum
    # over builds, as over interleaved rounds, is the run least disturbed
    tries = [replay_fork(sc, rounds=15, progress=True) for _ in range(builds)]
    r = min(tries, key=lambda t: t["net_min_ns"])
    counts = cm.scenario_counts(r["obtained"])     # with where its pages were placed
    meas = r["net_min_ns"] / 1e6
    # the prices of this run (what the machine charges now) and the stored ones (another
    # session's): the goal is the first; the second shows how far the machine has moved
    pred = cm.predict_seconds(counts, live, baseline=False) * 1e3
    stored = cm.predict_seconds(counts, baseline=False) * 1e3
    return {"measured_ms": meas, "predicted_ms": pred, "rel_err": (pred - meas) / meas,
            "stored_predicted_ms": stored, "stored_rel_err": (stored - meas) / meas,
            "pages": r["obtained"].source.get("pages", {}),
            "builds_ms": [t["net_min_ns"] / 1e6 for t in tries],
            # what was forked, for a later refit (--save): the fastest build's layout
            "obtained": r["obtained"].to_dict(), "net_min_ns": r["net_min_ns"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=11)
    ap.add_argument("--replay", action="store_true")
    ap.add_argument("--builds", type=int, default=3,
                    help="with --replay: rebuild the real layout this many times (minimum)")
    ap.add_argument("--no-layouts", action="store_true",
                    help="fit on the folio runs alone (no rebuilt layouts: VMAs, page "
                         "tables and empty slots stay unpriced)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--save", metavar="FILE", help="write this run's measurements as JSON")
    a = ap.parse_args()
    if a.rounds < 1 or a.builds < 1:
        ap.error(f"--rounds {a.rounds} / --builds {a.builds}: each must be 1 or more")
    reason = detect().probe_ready()
    if reason:
        print(f"costmodel_bench: cannot measure here: {reason}", file=sys.stderr)
        return 2
    t0 = time.time()
    data = live_runs(a.rounds, layouts=not a.no_layouts)
    live = cm.fit(data=data)
    rows = table(live, cm.fit(data=load()))
    extra = replay_check(live, a.builds) if a.replay else None
    if a.save:
        with open(a.save, "w") as f:
            json.dump({**data, "replay": extra}, f)
    if a.json:
        brief = {k: v for k, v in (extra or {}).items() if k != "obtained"} or None
        print(json.dumps({"rows": rows, "replay": brief, "repeatability": repeatability(data),
                          "seconds": time.time() - t0}, indent=1))
        return 0
    print(f"fork() speed-up over 4K, 1 GiB, minimum of {a.rounds} interleaved rounds, "
          f"Linux {data['machine']['kernel']}; model fitted on "
          f"{', '.join(cm.TRAIN)} of this run ({time.time() - t0:.0f} s)")
    print(f"{'folio':8s}{'mode':8s}{'measured':>9s}{'predicted':>10s}{'error':>7s}"
          f"{'stored model':>13s}")
    for r in rows:
        stored = f"{r['stored_model']:13.2f}" if r["stored_model"] else f"{'-':>13s}"
        print(f"{r['folio']:8s}{r['mode']:8s}{r['measured']:9.2f}{r['predicted']:10.2f}"
              f"{r['predicted'] - r['measured']:+7.2f}{stored}"
              + ("  (fitted)" if r["fitted"] else ""))
    worst = max(abs(r["predicted"] - r["measured"]) for r in rows
                if r["folio"] in cm.REQUIRED)
    print(f"largest error at {', '.join(cm.REQUIRED)}: {worst:.2f}")
    noise = repeatability(data)
    if noise:
        print("repeatability: the speed-ups of this run's even and odd rounds differ by up "
              "to " + ", ".join(f"{v:.2f} ({m.upper()})" for m, v in noise.items())
              + f" at {', '.join(cm.REQUIRED)}")
    if extra:
        print(f"real layout rebuilt ({extra['pages']}): measured {extra['measured_ms']:.2f} "
              f"ms, predicted {extra['predicted_ms']:.2f} ms ({extra['rel_err']:+.0%}) by this "
              f"run's fit, {extra['stored_predicted_ms']:.2f} ms "
              f"({extra['stored_rel_err']:+.0%}) by the stored one; builds (ms): "
              + ", ".join(f"{b:.2f}" for b in extra["builds_ms"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
