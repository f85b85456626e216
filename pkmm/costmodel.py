"""Cost model: operation counts of one fork -> predicted fork() time on the real kernel.

Simulator concept.  The model's fork (traced, or the bulk path :mod:`pkmm.fast`) counts
the work each version does (its ``ops``); per-operation prices turn counts into time:

    t = sum over the counts c of price(c) * c

Prices come in two sets, one per state of the parent's PTEs at fork: FRESH (writable and
AnonExclusive, just written: the parent must be write-protected and its caches are cold)
and REPEAT (read-only from an earlier fork).  A layout with a share ``w`` of writable
entries pays ``w`` of the FRESH prices and ``1 - w`` of the REPEAT ones.  Priced counts:
child PTEs written, folio refcount updates (one per copy call or PMD), batch scans (the
large-folio path only), struct pages touched cold (:func:`cold_struct_pages`), PMDs
copied; and, shared by both states, PTE slots read but not written (empty slots), page
tables the child gets, VMAs duplicated (and of those, the ones with an anon_vma to fork and
the file-backed ones to link into their file), pages copied at fork.
The prices are fitted by least squares on this machine's stored interleaved timings
(:mod:`pkmm.realkernel.calibrate`): the state prices on some folio sizes (:data:`TRAIN`),
the shared ones on the rebuilt layouts (:func:`_fit_by_kind`), and checked on those left
out (:func:`held_out`).

Limits, measured on the machine the stored data come from: a price is a property of the
machine *and its state*, not of the kernel.  Where the allocator put the folios (next to
each other or far apart), how busy memory is, and the cost of allocating a PMD's deposited
page table all move the per-folio prices between sessions; the REPEAT curve is not even
smooth in the folio size.  Prices fitted in the same run as the check predict FRESH held-out
sizes within about a tenth of a speed-up; REPEAT and stored prices applied on another day
miss by more.  ``scripts/costmodel_bench.py`` measures this machine now and fits it;
``python -m pkmm.realkernel.calibrate --save`` re-takes the stored data.
Taught in: notebooks/08-cost.ipynb, notebooks/10-real-process.ipynb
(:mod:`pkmm.costlab` holds the notebook's questions, tables and figures)
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .kernels import DEFAULT_KERNEL

#: Counts priced per state (FRESH / REPEAT) -> price name.
PRICED = {"pte_writes": "ns_per_pte", "set_ptes_calls": "ns_per_copy_call",
          "batch_scans": "ns_per_batch_scan", "cold_struct_pages": "ns_per_cold_struct_page",
          "pmd_copies": "ns_per_pmd"}
#: How many struct pages of one stream fork touches before the CPU's prefetcher has caught
#: up with it.  Fork reads and updates every mapped page's struct page, in PTE order; the
#: struct pages of consecutive frames lie side by side in the memmap (64 bytes, one cache
#: line, each), so a run of consecutive frames is a stream the prefetcher follows, and the
#: first pages of every stream miss the cache (:func:`pkmm.machine.struct_page_streams`).
#: Without this term the per-page cost of n-page folios is a + b/n and flattens by 64K; the
#: machine's does not (it keeps falling to 2M).  12 is the ramp that fitted the stored
#: sessions of this machine (AMD EPYC) best, each on its own (9 to 17);
#: scripts/costmodel_bench.py checks it on sizes no fit has seen.
MEMMAP_RAMP = 12
#: Counts priced the same in both states -> price name (fitted on rebuilt layouts).
SHARED = {"empty_reads": "ns_per_empty_slot", "page_tables": "ns_per_page_table",
          "vmas": "ns_per_vma", "anon_vmas": "ns_per_anon_vma", "file_vmas": "ns_per_file_vma",
          "page_copies": "ns_per_page_copy"}
FEATURES = tuple(PRICED) + tuple(SHARED)
PARAMS = tuple(PRICED.values())
TRAIN = ("4K", "16K", "64K", "512K", "2M-pmd")
FOLIOS = ("4K", "16K", "32K", "64K", "128K", "256K", "512K", "1M", "2M-pte", "2M-pmd")
REQUIRED = ("16K", "64K", "128K", "512K", "2M-pte")
MODES = ("fresh", "repeat")
GIB = 1 << 30
NOISE_NS = 2e5     # the baseline's spread: small measurements weigh less in the fit

__all__ = ["FEATURES", "MEMMAP_RAMP", "PARAMS", "PRICED", "SHARED", "Fit", "features", "fit",
           "cold_pages", "fixed_cost", "fork_counts", "fork_features", "held_out", "placed",
           "predict_seconds", "price_terms", "scenario_counts", "stored_fork_seconds", "unpriced",
           "writable_share"]


def features(r: Any, wrprotected: int = 0) -> dict[str, int]:
    """The priced counts of one fork result (a :class:`pkmm.ForkResult` or
    :class:`pkmm.fast.FastForkResult`); ``wrprotected`` is how many parent entries lost
    their write bit (see :func:`fork_features`)."""
    ops = r.ops
    child = r.child.mm
    tables = child.nr_ptes
    return {"pte_writes": ops.get("pte_writes", 0),
            "set_ptes_calls": ops.get("set_ptes_calls", 0),
            "batch_scans": ops.get("batch_scans", 0),
            "cold_struct_pages": cold_struct_pages(r.child),
            "pmd_copies": ops.get("pmd_copies", 0),
            "empty_reads": max(ops.get("pte_reads", 0) - ops.get("pte_writes", 0), 0),
            "page_tables": tables, "vmas": len(child.vmas),
            "anon_vmas": sum(1 for v in child.vmas if v.anon_vma),
            "file_vmas": sum(1 for v in child.vmas if v.backing != "anon"),
            "page_copies": ops.get("page_copies", 0), "wrprotected": wrprotected}


def cold_struct_pages(b: Any, ramp: int = MEMMAP_RAMP) -> int:
    """The struct pages fork touches cold in the bulk process ``b`` (the child: every
    page it maps, fork touched): the first ``ramp`` pages of every stream
    (:func:`pkmm.machine.struct_page_streams`).  A model layout does not say where the
    allocator put its folios, so the model takes every folio to lie apart from the one
    before it (the case of a memory that has been in use a while); a layout whose pages
    were read from a live kernel says where they really are (:func:`placed`).  So here a
    4K page is a stream of one and a PTE-mapped 2M folio one stream of 512 per page
    table.  The streams are a property of the layout, not of a kernel's batching: v6.8
    copies a 64K folio PTE by PTE, but its struct pages still stream.

    >>> from pkmm.fast import build_region
    >>> [cold_struct_pages(build_region(4 << 20, f)) for f in ("4K", "16K", "64K", "2M-pte")]
    [1024, 1024, 768, 24]
    """
    import numpy as np

    from .fast.layout import P
    from .fast.vector import slot_pages
    from .machine import struct_page_streams
    mm = b.mm
    _, fol = slot_pages(b.machine, mm.pfn, (mm.bits & P) != 0)
    ok = fol >= 0
    slots = np.flatnonzero(ok)
    # two folios are never adjacent in the model's memory: each folio id opens a gap
    apart = mm.pfn[slots].astype(np.int64) + 2 * fol[slots].astype(np.int64)
    return cold_pages(struct_page_streams(slots, apart), ramp)


def cold_pages(streams: Mapping[Any, int], ramp: int = MEMMAP_RAMP) -> int:
    """The struct pages touched cold in ``streams`` (length -> how many, as
    :func:`pkmm.machine.struct_page_streams` counts them): the first ``ramp`` of every
    stream, before the prefetcher has caught up with it (:data:`MEMMAP_RAMP`).

    >>> cold_pages({3: 1, 2: 1, 1: 1}, ramp=2)
    5
    """
    return sum(min(int(n), ramp) * c for n, c in streams.items())


def placed(f: Mapping[str, int], streams: Mapping[Any, int] | None) -> dict[str, int]:
    """The counts ``f`` with the cold struct pages of a layout whose pages a live kernel
    placed: ``streams`` read from its pagemap (:func:`pkmm.machine.struct_page_streams`);
    unchanged where the placement was not read (None: no root, no pagemap)."""
    if streams is None:
        return dict(f)
    return {**f, "cold_struct_pages": cold_pages(streams)}


def _writable(b: Any) -> int:
    import numpy as np

    from .fast.layout import PMD_BIT, P, W
    bits = b.mm.bits
    return int(np.count_nonzero((bits & P) & ((bits & W) != 0))) + \
        int(np.count_nonzero(b.mm.pmd_bits & PMD_BIT["write"]))


def fork_features(b: Any, kernel: str = DEFAULT_KERNEL) -> tuple[Any, dict[str, int]]:
    """Fork the bulk process ``b`` (changed in place) and return the result and its
    :func:`features`, with the parent's write-protected entries counted from its state."""
    from .fast import fork_bulk
    before = _writable(b)
    r = fork_bulk(b, kernel)
    return r, features(r, before - _writable(b))


def writable_share(f: Mapping[str, int]) -> float:
    """The share of copied entries that were writable (FRESH) at fork.

    >>> writable_share({"pte_writes": 300, "pmd_copies": 0, "wrprotected": 75})
    0.25
    """
    n = f.get("pte_writes", 0) + f.get("pmd_copies", 0)
    return min(f.get("wrprotected", 0) / n, 1.0) if n else 0.0


def _row(f: Mapping[str, int], shared: tuple[str, ...]) -> list[float]:
    w = writable_share(f)
    return ([w * f.get(k, 0) for k in PRICED] + [(1 - w) * f.get(k, 0) for k in PRICED]
            + [float(f.get(k, 0)) for k in shared])


# --- the stored timings, as observations -------------------------------------------------

def fork_counts(size_bytes: int, folio: str, kernel: str = DEFAULT_KERNEL,
                mode: str = "fresh") -> dict[str, int]:
    """The counts of forking a ``size_bytes`` region of ``folio`` folios: its ``ops`` and
    :func:`features`.  These layouts repeat every 2 MiB page table, so every count but
    the VMA counts is the one of a 2 MiB region times the number of tables (checked in
    tests/test_costmodel.py); they are counted at 2 MiB and scaled."""
    one = _full_cached(folio, mode, 2 << 20, kernel)
    k = size_bytes // (2 << 20)
    if k * (2 << 20) != size_bytes or k < 1:
        return dict(_full_cached(folio, mode, size_bytes, kernel))
    return {key: v if key in VMA_COUNTS else v * k for key, v in one}


VMA_COUNTS = ("vmas", "anon_vmas", "file_vmas")


@functools.lru_cache(maxsize=128)
def _full_cached(folio: str, mode: str, size: int, kernel: str) -> tuple[tuple[str, int], ...]:
    from .fast import build_region
    r, f = fork_features(build_region(size, folio, mode), kernel)
    return tuple(sorted({**dict(r.ops), **f}.items()))


@dataclass(frozen=True)
class Obs:
    """One stored measurement: what was forked, its counts, and the measured net time."""

    label: str          # folio layout ("64K") or rebuilt layout name
    mode: str
    size_bytes: int
    counts: dict[str, int]
    measured_ns: float
    kind: str           # "folio" (interleaved runs) or "layout" (rebuilt scenarios)


def observations(data: dict[str, Any] | None = None) -> list[Obs]:
    """Every stored measurement with the model's counts for it."""
    from .realkernel.calibrate import load, pooled
    from .scenario import Scenario
    d = data or load()
    # pkmm.realkernel.timing maps each region between two PROT_NONE guard VMAs; the
    # cold struct pages are those of where the kernel put the fastest sample's pages
    out = [Obs(lay, run["mode"], run["size_bytes"],
               placed({**(c := fork_counts(run["size_bytes"], lay, DEFAULT_KERNEL,
                                           run["mode"])), "vmas": c["vmas"] + 2},
                      run.get("streams_min", {}).get(lay)), float(net), "folio")
           for run in pooled(d) for lay, net in run["net_min_ns"].items()]
    for lay in d.get("layouts", []):
        out.append(Obs(lay["name"], "replay", 0, scenario_counts(
            Scenario.from_dict(lay["obtained"])), float(lay["net_min_ns"]), "layout"))
    return out


def _streams_of(raw: Any) -> dict[str, dict[int, int]] | None:
    """A scenario's ``source.streams`` (where a live kernel put each VMA's pages), checked:
    an object of VMA start (hex) -> {stream length: how many}."""
    from .errors import ScenarioError
    if raw is None:
        return None
    how = ("source.streams: expected an object of VMA start (hex, e.g. \"0x7f00\") -> "
           "{stream length: count}, as a snapshot writes it; or leave it out")
    if not isinstance(raw, dict):
        raise ScenarioError(f"{how}; got {type(raw).__name__}")
    out: dict[str, dict[int, int]] = {}
    for k, v in raw.items():
        try:
            int(k, 16)
            out[k] = {int(n): int(c) for n, c in v.items()}
        except (TypeError, ValueError, AttributeError):
            raise ScenarioError(f"{how}; got {k!r}: {v!r}") from None
        if any(n < 1 or c < 0 for n, c in out[k].items()):
            raise ScenarioError(f"{how}; got {k!r}: {v!r} (lengths >= 1, counts >= 0)")
    return out


def scenario_counts(sc: Any, kernel: str = DEFAULT_KERNEL, *,
                    streams: Mapping[str, Mapping[Any, int]] | None = None
                    ) -> dict[str, int]:
    """The :func:`features` of forking scenario ``sc`` under ``kernel``.  ``streams``:
    where a live kernel put each VMA's pages (keyed by the VMA's start in hex, as
    :func:`pkmm.realkernel.snapshot` reads them); the cold struct pages are
    then those of the VMAs whose pages the child maps after the fork.  Only for a kernel
    that shares every page (no page copied at fork): a copy is a new page, placed where
    the model cannot know."""
    from .scenario_bulk import bulk_of
    if streams is None:
        streams = _streams_of(getattr(sc, "source", {}).get("streams"))
    r, f = fork_features(bulk_of(sc), kernel)
    if streams is None or f.get("page_copies", 0):
        return f
    import numpy as np

    from .fast.layout import P
    mm = r.child.mm
    # the child's present slots, ascending: a VMA the child maps a page in has one in
    # [start, end) -- one bisection per VMA, not a scan of every slot per VMA
    addrs = np.sort(mm.slot_addrs()[(mm.bits.ravel() & P) != 0]) if mm.bits.size else \
        np.zeros(0, np.int64)
    copied: dict[int, int] = {}
    for v in mm.vmas:
        if hex(v.start) in streams and \
                np.searchsorted(addrs, v.start) < np.searchsorted(addrs, v.end):
            for n, c in streams[hex(v.start)].items():
                copied[int(n)] = copied.get(int(n), 0) + c
    return placed(f, copied)


# --- the fit ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Fit:
    """Fitted prices (ns per count) and how well they predict every stored measurement.

    ``prices[mode]``: the priced counts for that state plus the shared ones;
    ``params``: the FRESH prices (what one first fork of just-written memory pays).
    """

    prices: dict[str, dict[str, float]]
    train: tuple[str, ...]
    rows: list[dict[str, Any]]   # label, mode, kind, measured_ms, predicted_ms, rel_err,
    #                              trained, speedup_measured, speedup_predicted
    fixed_ns: float = 0.0        # forking a process at all (see :func:`fixed_cost`)

    @property
    def params(self) -> dict[str, float]:
        return dict(self.prices["fresh"])

    def max_err(self, trained: bool, kind: str = "folio",
                size_bytes: int | None = GIB) -> float:
        """Largest relative time error over the fitted (True) or left-out layouts of
        ``kind`` (folio runs of ``size_bytes``; None: every size)."""
        errs = [abs(r["rel_err"]) for r in self.rows
                if r["trained"] == trained and r["kind"] == kind
                and (kind != "folio" or size_bytes is None or r["size_bytes"] == size_bytes)]
        return max(errs, default=0.0)

    def speedup_errors(self, folios: tuple[str, ...] = REQUIRED,
                       size_bytes: int = GIB) -> dict[tuple[str, str], float]:
        """Predicted minus measured speed-up over 4K, per (folio, mode)."""
        return {(r["label"], r["mode"]): r["speedup_predicted"] - r["speedup_measured"]
                for r in self.rows if r["label"] in folios and r["kind"] == "folio"
                and r["size_bytes"] == size_bytes}


def _shared_used(obs: list[Obs]) -> tuple[str, ...]:
    """Shared counts some rebuilt layout exercises (the folio runs alone cannot tell a
    page table's price from a PTE's: both grow with the size)."""
    return tuple(k for k in SHARED if any(o.counts.get(k) for o in obs if o.kind == "layout"))


def fit(train: tuple[str, ...] = TRAIN, *, data: dict[str, Any] | None = None,
        layouts: tuple[str, ...] | None = None) -> Fit:
    """Fit the prices on the 1 GiB runs of the ``train`` folio sizes (both states) and on
    the rebuilt ``layouts`` (default: every stored one but the real process, which is kept
    for the held-out check); then predict every observation."""
    import numpy as np
    obs = observations(data)
    shared = _shared_used(obs)
    if layouts is None:
        from .realkernel.layouts_cost import HELD_OUT
        layouts = tuple(o.label for o in obs if o.kind == "layout" and o.label not in HELD_OUT)
    use = [o.kind == "folio" and o.label in train and o.size_bytes == GIB
           or o.kind == "layout" and o.label in layouts for o in obs]
    x = np.array([_row(o.counts, shared) for o in obs])
    y = np.array([o.measured_ns for o in obs])
    w = 1.0 / (y + NOISE_NS)
    runs = np.array([u and o.kind == "folio" for u, o in zip(use, obs, strict=True)])
    lays = np.array([u and o.kind == "layout" for u, o in zip(use, obs, strict=True)])
    coef = _fit_by_kind(x, y * w, w, runs, lays, 2 * len(PRICED))
    n = len(PRICED)
    common = {SHARED[k]: float(c) for k, c in zip(shared, coef[2 * n:], strict=True)}
    prices = {mode: {**{p: float(c) for p, c in zip(PRICED.values(), coef[i * n:(i + 1) * n],
                                                     strict=True)}, **common}
              for i, mode in enumerate(MODES)}
    pred = x @ coef
    ref = {(o.mode, o.size_bytes): (o.measured_ns, p) for o, p in zip(obs, pred, strict=True)
           if o.kind == "folio" and o.label == "4K"}
    rows = []
    for o, p, t in zip(obs, pred, use, strict=True):
        r4 = ref.get((o.mode, o.size_bytes))
        rows.append({"label": o.label, "mode": o.mode, "kind": o.kind,
                     "size_bytes": o.size_bytes, "measured_ms": o.measured_ns / 1e6,
                     "predicted_ms": float(p) / 1e6,
                     "rel_err": float(p - o.measured_ns) / o.measured_ns, "trained": bool(t),
                     "speedup_measured": r4[0] / o.measured_ns if r4 else None,
                     "speedup_predicted": float(r4[1] / p) if r4 else None})
    fitted = Fit(prices, tuple(train), rows)
    return Fit(prices, tuple(train), rows, fixed_cost(fitted, data))


def fixed_cost(fitted: Fit, data: dict[str, Any] | None = None) -> float:
    """The fixed cost of one fork: each replay probe's own fork, timed before it built
    anything, minus the price of the probe's own layout (its snapshot ``bare``); the
    median over the stored layouts (0 when none is stored)."""
    import statistics

    from .realkernel.calibrate import load
    from .scenario import Scenario
    d = data or load()
    left = [min(lay["baseline_ns"]) - predict_seconds(
        scenario_counts(Scenario.from_dict(lay["bare"])), fitted, baseline=False) * 1e9
        for lay in d.get("layouts", []) if lay.get("bare")]
    return max(statistics.median(left), 0.0) if left else 0.0


def _fit_by_kind(x: Any, yw: Any, w: Any, runs: Any, lays: Any, n_state: int) -> Any:
    """Each price fitted on the observations that isolate it: the state prices (the first
    ``n_state`` columns: PTEs, copy calls, batch scans, cold struct pages, PMDs) on the
    folio ``runs``, the shared ones (VMAs, page tables, empty slots, ...) on the rebuilt
    ``lays``; alternately, each given the other's current prices, until neither moves.

    Why not one least squares over both: a rebuilt layout of many small VMAs pays more
    per PTE than a 1 GiB region (its page tables and struct pages are cold), and one fit
    lets those layouts pull the per-PTE prices off the folio runs.  Measured on two runs
    of this machine with layouts (2026-12-01, 7 and 11 rounds): the largest speed-up error
    of the joint fit was 1.05 and 0.64 (REPEAT, on fitted sizes), fitted by kind 0.27 and
    0.12.  On those runs, which did not yet read where the kernel put the pages, the
    held-out real process was predicted 41 % under its measurement instead of 30 %; on
    the two runs of 2026-12-02 that read it (:func:`placed`), 8 % and 10 % over.
    ``w`` weighs each row (``yw`` is the weighted time); ``runs``/``lays`` are masks.
    """
    import numpy as np
    xw = x * w[:, None]
    if not runs.any():     # no folio run to isolate the state prices: one fit of all
        return _nonnegative_lstsq(xw[lays], yw[lays])
    coef = np.zeros(x.shape[1])
    state, rest = slice(0, n_state), slice(n_state, x.shape[1])
    for _ in range(100):
        before = coef.copy()
        coef[state] = _nonnegative_lstsq(xw[runs][:, state],
                                         yw[runs] - xw[runs][:, rest] @ coef[rest])
        if lays.any() and x.shape[1] > n_state:
            coef[rest] = _nonnegative_lstsq(xw[lays][:, rest],
                                            yw[lays] - xw[lays][:, state] @ coef[state])
        if np.allclose(coef, before, rtol=1e-9, atol=1e-9):
            break
    return coef


def _nonnegative_lstsq(a: Any, b: Any) -> Any:
    """Least squares with every price >= 0 (an operation cannot save time): solve, drop
    the most negative price, solve again on the others, until none is negative."""
    import numpy as np
    free = np.ones(a.shape[1], bool)
    while True:
        coef = np.zeros(a.shape[1])
        coef[free] = np.linalg.lstsq(a[:, free], b, rcond=None)[0]
        if (coef >= 0).all():
            return coef
        free[int(np.argmin(np.where(free, coef, np.inf)))] = False


@functools.lru_cache(maxsize=1)
def _stored_fit() -> Fit:
    return fit()


def predict_seconds(f: Mapping[str, int], prices: Fit | None = None, *,
                    baseline: bool = True) -> float:
    """Predicted fork() time (s) for the :func:`features` ``f`` (default: the stored fit);
    ``baseline`` adds the fixed cost of forking a process at all (:func:`fixed_cost`)."""
    fitted = prices or _stored_fit()
    ns = sum(n * each for _, n, each, _, _ in price_terms(f, fitted))
    if baseline:
        ns += fitted.fixed_ns
    return ns / 1e9


def price_terms(f: Mapping[str, int], prices: Fit | None = None
                ) -> list[tuple[str, int, float, float, float]]:
    """The terms of :func:`predict_seconds`' sum, one per count of ``f`` that occurs:
    ``(count, n, ns each, FRESH price, REPEAT price)``.  A state-priced count pays the
    FRESH price for the writable share of the copied entries (:func:`writable_share`) and
    the REPEAT price for the rest; a shared count has one price for both states."""
    fitted = prices or _stored_fit()
    w = writable_share(f)
    out = []
    for k, p in {**PRICED, **SHARED}.items():
        if not f.get(k, 0):
            continue
        fresh = fitted.prices["fresh"].get(p, 0.0)
        repeat = fitted.prices["repeat"].get(p, 0.0) if k in PRICED else fresh
        out.append((k, f[k], w * fresh + (1 - w) * repeat, fresh, repeat))
    return out


def unpriced(f: Mapping[str, int], prices: Fit | None = None) -> list[str]:
    """The counts of ``f`` that occur but have no fitted price (no stored measurement
    exercised them): :func:`predict_seconds` leaves them out, so its answer is a lower
    bound, and a caller says so.

    >>> unpriced({"pte_writes": 4, "page_copies": 0}, Fit({"fresh": {}, "repeat": {}}, (), []))
    ['pte_writes']
    """
    fitted = prices or _stored_fit()
    names = {**PRICED, **SHARED}
    # a price the fit produced is a measurement, even when it came out 0 (the machine did
    # that work for free in that session); unpriced is what no measurement exercised
    return [k for k, p in names.items() if f.get(k, 0) and not all(
        p in fitted.prices[m] for m in MODES)]


def held_out(f: Fit | None = None) -> list[dict[str, Any]]:
    """The rows :func:`fit` did not see."""
    return [r for r in (f or _stored_fit()).rows if not r["trained"]]


def stored_fork_seconds(size_bytes: int, folio: str, mode: str = "fresh") -> float | None:
    """The stored real fork() time (net of the baseline, the minimum of interleaved runs
    over every stored session) for this size and layout, or None if it was not
    measured."""
    from .realkernel.calibrate import load, pooled
    for run in pooled(load()):
        if run["size_bytes"] == size_bytes and run["mode"] == mode and \
                folio in run["net_min_ns"]:
            return float(run["net_min_ns"][folio]) / 1e9
    return None
