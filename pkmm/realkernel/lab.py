"""What notebooks/09-real-kernel-lab.ipynb calls: stored results, a quick live check, and
the opt-in full live run (``PKMM_LAB_LIVE=1``), as text and one figure.

Kernel interfaces: those of :mod:`pkmm.realkernel.run` and :mod:`pkmm.realkernel.timing`,
and only when live probing is allowed and asked for.
Taught in: notebooks/09-real-kernel-lab.ipynb

The default path reads only the stored Linux 6.18 data and runs the model, so the notebook
gives the same output on every machine and finishes in seconds.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from .calibrate import fit_batch_cost, pooled, records
from .calibrate import load as load_timing
from .calibrate import render as render_timing
from .model import model_kernel
from .report import Row, load_stored, render, report, stored_kernel
from .scenarios import BY_ID
from .support import detect
from .timing import FOLIOS, folio_pages

LIVE_ENV = "PKMM_LAB_LIVE"


def live_requested() -> bool:
    """Whether the learner opted in to probing this machine (``PKMM_LAB_LIVE=1``)."""
    return os.environ.get(LIVE_ENV, "") == "1"


def live_reason() -> str | None:
    """None if this machine can be probed, else why not (not Linux, not root, ...)."""
    return detect().probe_ready()


def stored_rows(ids: tuple[str, ...] | None = None) -> list[Row]:
    """The model against the stored Linux 6.18 results."""
    return list(_stored_rows(ids))


@functools.lru_cache(maxsize=4)
def _stored_rows(ids: tuple[str, ...] | None) -> tuple[Row, ...]:
    data = load_stored()
    res = {k: v for k, v in data["scenarios"].items() if ids is None or k in ids}
    return tuple(report(res, stored_kernel(data)))


def stored_report(ids: tuple[str, ...] | None = None) -> str:
    m = load_stored()["machine"]
    return render(stored_rows(ids), f"stored: Linux {m['kernel']}, {m['cpus']} CPUs "
                                    f"({m['cpu']}); model kernel {stored_kernel(load_stored())}")


def scenario_steps(sid: str, pages: tuple[int, ...] | None = None) -> str:
    """One step-by-step table (a row per step, a cell per page) from the stored kernel
    results (pages of interest only)."""
    from .observe import op_text, unrle
    sc = BY_ID[sid]
    show = pages or sc.show
    lines = [f"{sid}: {sc.title}   pages " + ", ".join(f"pg{i}" for i in show)]
    for s in load_stored()["scenarios"][sid]["steps"]:
        cells = unrle(s["cells"])
        lines.append(f"  {s['name'][:34]:34s} {s['who']:6s} " +
                     " | ".join(cells[i] for i in show) + f"  {op_text(s['op'])}")
    return "\n".join(lines)


def quick_check(ids: tuple[str, ...] = ("a", "c")) -> str:
    """Probe a few scenarios on this machine (well under a second) or say why not."""
    reason = live_reason()
    if reason:
        return f"live check skipped: {reason}"
    from .run import probe_all
    rows = report(probe_all(ids), model_kernel(detect().kernel))
    return "\n".join(f"{r.id}: " + (f"skipped: {r.skipped}" if r.skipped else
                                     "kernel and model agree" if r.agrees else
                                     f"DIFFER ({len(r.diffs)} observables)") for r in rows)


def live_report() -> str:
    """Every scenario on this machine, if opted in and possible; else why not."""
    if not live_requested():
        return f"full live run not requested (set {LIVE_ENV}=1 and re-run this cell)"
    reason = live_reason()
    if reason:
        return f"full live run skipped: {reason}"
    from .run import probe_all
    rows = report(probe_all(), model_kernel(detect().kernel))
    return render(rows, f"live: Linux {detect().kernel}")


def stored_timing() -> str:
    d = load_timing()
    runs = pooled(d)
    rows = records(runs)
    fits = {m: fit_batch_cost(rows, m) for m in ("fresh", "repeat")}
    return (f"fork() of a private anon region, Linux {d['machine']['kernel']}, "
            f"{d['machine']['cpus']} CPUs: minimum of up to "
            f"{max(r['rounds'] for r in runs)} interleaved rounds in "
            f"{max(r['sessions'] for r in runs)} sessions (a 4K sample before every other "
            "layout), minus the minimum of the same Python worker forked without the "
            "region\n" + render_timing(rows) +
            "\nbatched copy path, 1 GiB: " + "; ".join(
                f"{m}: {f['per_batch_ns']:.0f} ns per folio + {f['per_pte_ns']:.1f} ns per "
                f"PTE (max error {f['max_rel_err']:.0%})" for m, f in fits.items()))


def live_timing(size: str = "256M") -> str:
    """REPEAT fork timing on this machine, if opted in and possible."""
    if not live_requested():
        return f"live timing not requested (set {LIVE_ENV}=1)"
    reason = live_reason()
    if reason:
        return f"live timing skipped: {reason}"
    from .timing import available_folios, measure_interleaved, parse_size
    run = measure_interleaved(parse_size(size), [f for f in available_folios() if f != "4K"],
                              mode="repeat", rounds=5)
    return render_timing(records([run])) if run else "live timing skipped: not possible here"


def plot_timing(size_bytes: int = 1 << 30) -> Any:
    """ns per 4K page against folio size (stored data), FRESH and REPEAT."""
    import matplotlib.pyplot as plt
    d = load_timing()
    rows = records(pooled(d))
    fig, ax = plt.subplots(figsize=(7.4, 3.2))
    for mode, style in (("fresh", "o-"), ("repeat", "s--")):
        rs = {r["folio"]: r for r in rows
              if r["size_bytes"] == size_bytes and r["mode"] == mode}
        xs = [f for f in FOLIOS if f in rs]
        ax.plot(range(len(xs)), [rs[f]["ns_per_page"] for f in xs], style, label=mode)
        ax.set_xticks(range(len(xs)), xs)
    ax.set_yscale("log")
    ax.set_ylabel("ns per 4K page")
    ax.set_xlabel("folio layout")
    ax.set_title(f"fork() cost per page, {size_bytes >> 30} GiB region, "
                 f"Linux {d['machine']['kernel'].split('-')[0]}")
    ax.legend()
    fig.tight_layout()
    return fig


def batch_fit(mode: str = "fresh") -> dict[str, float]:
    """The stored fit of ns per folio = per_batch + per_pte * n (1 GiB region)."""
    return fit_batch_cost(records(pooled(load_timing())), mode)


__all__ = ["LIVE_ENV", "batch_fit", "folio_pages", "live_report", "live_requested",
           "live_timing", "plot_timing", "quick_check", "scenario_steps", "stored_report",
           "stored_rows", "stored_timing"]
