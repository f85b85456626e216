"""Cost model: operation counts of one fork -> predicted fork() time on the real kernel.

Simulator concept.  The bulk fork (:mod:`pkmm.fast`) counts the work each version does
(the traced model's ``ops``); four per-operation costs turn counts into time:

    t = baseline + a * child PTEs written + b * atomic folio refcount updates (one per
          copy call or PMD) + c * batch scans (large-folio path only) + d * PMDs copied

fitted by least squares on some layouts of real-kernel-6.18.md §6 (this machine's
stored medians, FRESH and REPEAT) and checked on the layouts left out.  ``baseline`` is
the measured fork of the process without the region (not a fitted parameter).
The parent's write-protect (the FRESH - REPEAT difference) has no parameter of its own:
with a per-write-protected-PTE cost instead of the batch-scan cost the held-out error
nearly doubles (26% instead of 14%), because batched wrprotect_ptes() is cheaper per PTE.
Taught in: notebooks/08-cost.ipynb
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .kernels import COW_KERNELS, DEFAULT_KERNEL

DATA = Path(__file__).resolve().parent / "data" / "costmodel-6.18.json"
FEATURES = ("pte_writes", "refcount_ops", "batch_scans", "pmd_copies")
PARAMS = ("ns_per_pte", "ns_per_refcount_op", "ns_per_batch_scan", "ns_per_pmd")
TRAIN = ("4K", "64K", "2M-pmd")
FOLIOS = ("4K", "16K", "32K", "64K", "128K", "256K", "512K", "1M", "2M-pte", "2M-pmd")
MODES = ("fresh", "repeat")
GIB = 1 << 30

__all__ = ["FEATURES", "PARAMS", "Fit", "check", "fit", "fork_counts", "load_stored",
           "predict_seconds", "stored_fork_seconds"]


def load_stored(path: Path = DATA) -> dict[str, Any]:
    """The stored §6 measurements of this machine (see the file's ``machine``)."""
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def stored_fork_seconds(size_bytes: int, folio: str, mode: str = "fresh") -> float | None:
    """The stored real fork() time for this size and layout, or None if not measured.

    >>> round(stored_fork_seconds(1 << 30, "64K"), 5)
    0.01356
    """
    d = load_stored()
    label = {256 << 20: "256M", GIB: "1G", 4 * GIB: "4G"}.get(size_bytes)
    if label == "1G" and folio in d["fork_ms_1G"]:
        return float(d["fork_ms_1G"][folio][mode]) / 1e3
    ms = d["fork_ms_by_size"].get(folio, {}).get(label or "", {}).get(mode)
    return None if ms is None else float(ms) / 1e3


def fork_counts(size_bytes: int, folio: str, kernel: str = DEFAULT_KERNEL,
                mode: str = "fresh") -> dict[str, int]:
    """Fork a bulk region and return its ``ops`` plus ``wrprotected_ptes``."""
    import numpy as np

    from .fast import fork_bulk
    from .fast.layout import W, build_region
    b = build_region(size_bytes, folio, mode)
    before = int(np.count_nonzero(b.mm.bits & W))
    r = fork_bulk(b, kernel)
    counts = dict(r.ops)
    counts["wrprotected_ptes"] = before - int(np.count_nonzero(b.mm.bits & W))
    return counts


@dataclass(frozen=True)
class Fit:
    """Fitted per-operation costs (ns) and how well they predict each layout."""

    params: dict[str, float]
    train: tuple[str, ...]
    rows: list[dict[str, Any]]   # folio, mode, measured_ms, predicted_ms, rel_err, trained

    def max_err(self, trained: bool) -> float:
        """Largest relative error over the fitted (True) or predicted (False) layouts."""
        return max(abs(r["rel_err"]) for r in self.rows if r["trained"] == trained)


def predict_seconds(counts: dict[str, int], params: dict[str, float],
                    mode: str = "fresh") -> float:
    """Predicted fork() time in seconds for ``counts`` (see :func:`fork_counts`)."""
    base = float(load_stored()["baseline_ms"][mode]) * 1e6
    ns = base + sum(params[p] * counts.get(f, 0) for p, f in zip(PARAMS, FEATURES, strict=True))
    return ns / 1e9


def fit(train: tuple[str, ...] = TRAIN, size_bytes: int = GIB) -> Fit:
    """Least-squares fit of :data:`PARAMS` on the ``train`` layouts (FRESH and REPEAT)
    of the stored 1 GiB measurements; every layout is then predicted."""
    import numpy as np
    d = load_stored()
    table = []
    for folio in FOLIOS:
        for mode in MODES:
            c = fork_counts(size_bytes, folio, DEFAULT_KERNEL, mode)
            y = (d["fork_ms_1G"][folio][mode] - d["baseline_ms"][mode]) * 1e6
            table.append((folio, mode, [c.get(f, 0) for f in FEATURES], y, c))
    xs = np.array([t[2] for t in table if t[0] in train], float)
    ys = np.array([t[3] for t in table if t[0] in train], float)
    coef = np.linalg.lstsq(xs, ys, rcond=None)[0]
    params = {p: float(v) for p, v in zip(PARAMS, coef, strict=True)}
    rows = []
    for folio, mode, _, _, c in table:
        meas = d["fork_ms_1G"][folio][mode]
        pred = predict_seconds(c, params, mode) * 1e3
        rows.append({"folio": folio, "mode": mode, "measured_ms": meas,
                     "predicted_ms": pred, "rel_err": (pred - meas) / meas,
                     "trained": folio in train})
    return Fit(params, train, rows)


# --- predict, then check (notebooks/08-cost.ipynb) -------------------------------------

QUESTIONS = {
    "calls-64K": ("How many set_ptes() calls does v6.17 make to fork 1 GiB of 64K folios?",
                  16384),
    "scans-4K": ("How many batch scans does v6.9 do to fork 1 GiB of 4K pages?", 0),
    "pmd-speedup": ("About how many times faster than 4K pages is forking 1 GiB of "
                    "PMD-mapped 2M THPs (FRESH)? Give a whole number.", 40),
}
EXPLAIN = {
    "calls-64K": "every 64K folio is 16 PTEs with equal bits in one PMD slice, so "
                 "folio_pte_batch_flags() returns 16 each time: 262144 / 16 = 16384 "
                 "calls, one per folio (batches never cross a folio or a PMD slice).",
    "scans-4K": "an order-0 folio never enters the batch path: copy_present_ptes() checks "
                "folio_test_large() first and keeps the small-folio path separate, so 4K "
                "pages cost exactly what they cost before batching (no regression).",
    "pmd-speedup": "copy_huge_pmd() copies one PMD entry per 2 MiB (512 of them) instead "
                   "of 512 PTEs per 2 MiB (262144 in all): ~1.1 us per PMD against ~88 ns "
                   "per PTE is 23.03 ms / 0.58 ms, about 40x.",
}


def check(question: str, answer: object) -> str:
    """Check a learner's prediction; a wrong answer gets the explanation.

    >>> check("scans-4K", 0).startswith("Right")
    True
    """
    if question not in QUESTIONS:
        return f"unknown question {question!r}; choose one of {', '.join(QUESTIONS)}"
    want = QUESTIONS[question][1]
    try:
        got = int(str(answer).replace(",", "").replace("_", "").strip())
    except ValueError:
        return f"Please answer with a number. The answer is {want}: {EXPLAIN[question]}"
    ok = got == want if question != "pmd-speedup" else 30 <= got <= 50
    if ok:
        return f"Right ({want}): {EXPLAIN[question]}"
    return f"Not quite: you said {got}, the answer is {want}. Why: {EXPLAIN[question]}"


# --- tables and figures for notebooks/08-cost.ipynb ------------------------------------

def ops_table(size_bytes: int, kernels: tuple[str, ...] = COW_KERNELS,
              folios: tuple[str, ...] = FOLIOS) -> list[dict[str, Any]]:
    """Operation counts of one FRESH fork per kernel and folio layout."""
    return [{"kernel": k, "folio": f, **fork_counts(size_bytes, f, k)}
            for k in kernels for f in folios]


def render_ops(rows: list[dict[str, Any]], keys: tuple[str, ...] = (
        "pte_reads", "set_ptes_calls", "batch_scans", "refcount_ops", "wrprotect_calls",
        "pmd_copies")) -> str:
    """A fixed-width text table of :func:`ops_table` rows."""
    out = [f"{'kernel':9s}{'folio':8s}" + "".join(f"{k:>16s}" for k in keys)]
    for r in rows:
        out.append(f"{r['kernel']:9s}{r['folio']:8s}"
                   + "".join(f"{r.get(k, 0):16d}" for k in keys))
    return "\n".join(out)


def render_fit(f: Fit) -> str:
    """The fitted costs and measured vs predicted time per layout (1 GiB)."""
    lines = ["fitted on " + ", ".join(f.train) + " (FRESH and REPEAT): "
             + ", ".join(f"{k}={v:.1f}" for k, v in f.params.items()),
             f"{'folio':8s}{'mode':7s}{'measured ms':>12s}{'predicted ms':>13s}{'error':>8s}"]
    for r in f.rows:
        lines.append(f"{r['folio']:8s}{r['mode']:7s}{r['measured_ms']:12.2f}"
                     f"{r['predicted_ms']:13.2f}{r['rel_err']:+8.1%}"
                     + ("  (fitted)" if r["trained"] else ""))
    lines.append(f"max error: fitted layouts {f.max_err(True):.0%}, "
                 f"held-out layouts {f.max_err(False):.0%}")
    return "\n".join(lines)


def plot_ops(rows: list[dict[str, Any]], key: str = "set_ptes_calls") -> Any:
    """Bar chart: ``key`` per folio layout, one group of bars per kernel (log scale)."""
    import matplotlib.pyplot as plt
    kernels = list(dict.fromkeys(r["kernel"] for r in rows))
    folios = list(dict.fromkeys(r["folio"] for r in rows))
    fig, ax = plt.subplots(figsize=(9, 3.2))
    w = 0.8 / len(kernels)
    for i, k in enumerate(kernels):
        ys = [next(r.get(key, 0) for r in rows if r["kernel"] == k and r["folio"] == f)
              for f in folios]
        ax.bar([j + i * w for j in range(len(folios))], [max(y, 0.5) for y in ys], w, label=k)
    ax.set_xticks([j + 0.4 - w / 2 for j in range(len(folios))], folios)
    ax.set_yscale("log")
    ax.set_ylabel(key)
    ax.legend(fontsize=8)
    ax.set_title(f"{key} per fork, by folio layout and kernel")
    return fig


def plot_fit(f: Fit) -> Any:
    """Measured vs predicted fork time (1 GiB) and the speed-up over 4K per layout."""
    import matplotlib.pyplot as plt
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.4))
    for mode, mk in (("fresh", "o"), ("repeat", "s")):
        rs = [r for r in f.rows if r["mode"] == mode]
        xs = range(len(rs))
        a1.plot(xs, [r["measured_ms"] for r in rs], mk + "-", label=f"measured {mode}")
        a1.plot(xs, [r["predicted_ms"] for r in rs], mk + "--", label=f"predicted {mode}")
        base = rs[0]["measured_ms"]
        a2.plot(xs, [base / r["measured_ms"] for r in rs], mk + "-", label=f"measured {mode}")
        a2.plot(xs, [rs[0]["predicted_ms"] / r["predicted_ms"] for r in rs], mk + "--",
                label=f"predicted {mode}")
    for ax in (a1, a2):
        ax.set_xticks(range(len(FOLIOS)), FOLIOS, rotation=45, fontsize=8)
        ax.set_yscale("log")
        ax.legend(fontsize=7)
    a1.set_ylabel("fork() ms, 1 GiB")
    a2.set_ylabel("speed-up vs 4K")
    a1.set_title("cost model vs stored 6.18 timings")
    a2.set_title("speed-up saturates near 2x; PMD ~40x")
    fig.tight_layout()
    return fig
