"""What notebooks/10-real-process.ipynb calls: a snapshot of the notebook's own process
(or the stored one), its memory map as a picture, the five variants side by side,
predict-then-check questions about them, and this process's own fork() time.

Teaching layer: reads a live process through :mod:`pkmm.realkernel.snapshot`, forks it
through :mod:`pkmm.forksim`, and times this process's fork(2) for :func:`fork_time`.
Taught in: notebooks/10-real-process.ipynb

Where /proc cannot be read (not Linux, JupyterLite) the stored snapshot of a Python
process on the development machine (``pkmm/data/snapshot-python-6.18.json``) stands in,
and every function says which one it shows.
"""

from __future__ import annotations

import os
import sys
import weakref
from pathlib import Path
from typing import Any

from .scenario import Scenario, load_scenario

STORED = Path(__file__).resolve().parent / "data" / "snapshot-python-6.18.json"
#: a Python process whose 128 MiB NumPy array sits in 64 KiB folios (how it was made: the
#: file's ``description``)
STORED_LARGE = Path(__file__).resolve().parent / "data" / "snapshot-numpy-64k-6.18.json"
KINDS = ("private anon", "private file", "shared file", "shmem", "raw PFN map")

__all__ = ["QUESTIONS", "Folded", "check", "close_up", "copied_vmas", "fork_time",
           "full_key", "kind", "large_folio_process", "lockbreak_lines", "map_groups",
           "plot_map", "this_process", "versions_line", "vma_table"]

PAGE = 4096
#: close_up()'s regions stay mapped while the notebook runs (address -> length)
_CLOSE_UPS: dict[int, int] = {}


def this_process(privileged: bool = True) -> tuple[Scenario, str]:
    """A snapshot of this process, or the stored one where /proc is not readable; and a
    sentence saying which, and what the kernel would not show.  ``privileged=False``:
    read only what a user without root may (see :func:`pkmm.realkernel.snapshot`)."""
    from .realkernel.procpid import SnapshotError
    from .realkernel.snapshot import snapshot
    if sys.platform.startswith("linux"):
        try:
            sc = snapshot(os.getpid(), privileged=privileged)
            sc.name = f"this process ({sc.source['comm']})"   # no PID: outputs stay stable
            seen = "as root" if sc.source.get("kpageflags") else (
                "without root" if privileged else "as a user without root would")
            return sc, (f"live snapshot of this process, read {seen}; "
                        f"{len(sc.approximations)} thing(s) approximated")
        except SnapshotError as e:
            why = str(e)
    else:
        why = f"no /proc here ({sys.platform})"
    sc = load_scenario(STORED)
    return sc, f"stored snapshot of a Python process ({why})"


def large_folio_process() -> Scenario:
    """The stored snapshot of a real Python process whose heap holds large anonymous
    folios (a 128 MiB NumPy array in 64 KiB folios, made on the development machine): the
    layout where the copy-on-write versions' forks differ.  The same on every machine."""
    return load_scenario(STORED_LARGE)


class Folded:
    """Text shown folded on a notebook page (an HTML ``<details>``), plain in a terminal."""

    def __init__(self, title: str, text: str) -> None:
        self.title, self.text = title, text

    def __repr__(self) -> str:
        return f"{self.title}\n{self.text}"

    def _repr_html_(self) -> str:
        import html
        return (f"<details><summary>{html.escape(self.title)}</summary>"
                f"<pre>{html.escape(self.text)}</pre></details>")


def full_key(rows: list[Any]) -> Folded:
    """The full key of a forksim table, folded: every column and every counter printed."""
    from .forksim import key_lines
    return Folded("The full key: every column and every counter of the table",
                  "\n".join(key_lines(rows)))


def close_up(npages: int = 8, privileged: bool = True) -> tuple[Scenario, str]:
    """A few pages of this process, small enough to draw every PTE: a fresh private
    anonymous mapping of ``npages`` pages (4K pages: MADV_NOHUGEPAGE), its first half
    written, the next quarter only read (the shared zero page), the rest never touched;
    snapshotted alone.  Where that cannot be done (not Linux, no /proc) the same layout
    written by hand stands in, and the sentence returned says so.
    """
    if isinstance(npages, bool) or not isinstance(npages, int) or not 4 <= npages <= 64:
        from .errors import LayoutError
        raise LayoutError(f"npages={npages!r}: a whole number of pages from 4 to 64")
    written, read = npages // 2, npages // 4
    why = f"no /proc here ({sys.platform})"
    if sys.platform.startswith("linux"):
        from .realkernel import libc as lc
        from .realkernel.procpid import SnapshotError
        from .realkernel.snapshot import snapshot
        try:
            size = npages * PAGE
            # PROT_NONE pages either side keep the region a VMA of its own
            base = lc.mmap(0, size + 2 * PAGE, lc.PROT_NONE,
                           lc.MAP_PRIVATE | lc.MAP_ANONYMOUS | lc.MAP_NORESERVE)
            a = base + PAGE
            lc.mmap(a, size, lc.PROT_RW, lc.MAP_FIXED | lc.MAP_PRIVATE | lc.MAP_ANONYMOUS)
            _CLOSE_UPS[base] = size + 2 * PAGE
            lc.madvise(a, size, lc.MADV_NOHUGEPAGE)
            for i in range(written):
                lc.poke(a + i * PAGE, 1)
            for i in range(written, written + read):
                lc.peek(a + i * PAGE)
            sc = snapshot(os.getpid(), within=[(a, a + size)], privileged=privileged)
            sc.name = f"{npages} pages of this process"
            return sc, (f"{npages} pages of this process: {written} written, {read} only "
                        f"read, {npages - written - read} never touched")
        except (OSError, SnapshotError) as e:
            why = str(e)
    a = 0x7F0000000000
    sc = Scenario.from_dict({
        "name": f"{npages} pages (stand-in)",
        "vmas": [{"start": a, "npages": npages, "anon_vma": True}],
        "runs": [{"addr": a, "npages": written}],
        "zero": [{"addr": a + written * PAGE, "npages": read}],
        "approximations": [f"written by hand: this process could not be read ({why})"]})
    return sc, f"a stand-in written by hand, not this process ({why})"


def kind(v: dict[str, Any]) -> str:
    """The VMA kind fork cares about (see :data:`KINDS`)."""
    if v.get("pfnmap"):
        return "raw PFN map"
    if v.get("backing") == "shmem":
        return "shmem"
    return ("shared " if v.get("shared") else "private ") + str(v.get("backing", "anon"))


_COPIED: dict[int, tuple[Any, list[bool]]] = {}     # id -> (weak reference, answer)


def copied_vmas(sc: Scenario) -> list[bool]:
    """For each VMA: does fork copy its page tables (the model's vma_needs_copy, under
    the scenario's kernel)?"""
    from .fast.convert import dup_vmas
    from .scenario_bulk import bulk_of
    ref, copied = _COPIED.get(id(sc), (None, []))
    if ref is None or ref() is not sc:
        copied = list(dup_vmas(bulk_of(sc), sc.kernel, frozenset())[1])
        _COPIED[id(sc)] = (weakref.ref(sc), copied)
    return copied


def _pages(sc: Scenario) -> list[int]:
    """Present or non-present entries per VMA of the scenario."""
    starts = [v["start"] for v in sc.vmas]
    ends = [v["start"] + v["npages"] * 4096 for v in sc.vmas]
    out = [0] * len(sc.vmas)
    entries = [(e["addr"], e["npages"]) for e in sc.runs + sc.swap + sc.markers + sc.pfnmaps
               if isinstance(e, dict)]
    entries += [(z, 1) if isinstance(z, int) else (z["addr"], z["npages"]) for z in sc.zero]
    entries += [(a, 512) for a in sc.huge_zero]
    for addr, n in entries:
        for k, (lo, hi) in enumerate(zip(starts, ends, strict=True)):
            if lo <= addr < hi:
                out[k] += n
                break
    return out


def vma_table(sc: Scenario) -> str:
    """VMAs by kind: how many, their size, their mapped pages, and how many fork copies."""
    copied = copied_vmas(sc)
    pages = _pages(sc)
    rows: dict[str, list[int]] = {k: [0, 0, 0, 0, 0] for k in KINDS}
    for v, c, n in zip(sc.vmas, copied, pages, strict=True):
        r = rows[kind(v)]
        r[0] += 1
        r[1] += v["npages"]
        r[2] += n
        r[3] += c
        r[4] += n if c else 0
    lines = [f"{'VMA kind':14s}{'VMAs':>6s}{'MiB':>9s}{'mapped pages':>14s}"
             f"{'copied VMAs':>13s}{'their pages':>13s}"]
    for k, (nv, npg, mapped, nc, cp) in rows.items():
        if nv:
            lines.append(f"{k:14s}{nv:6d}{npg * 4 / 1024:9.1f}{mapped:14d}{nc:13d}{cp:13d}")
    return "\n".join(lines)


def map_groups(sc: Scenario) -> list[tuple[int, int, str, bool, int]]:
    """Neighbouring VMAs of one kind, one copy decision and one emptiness joined into one
    bar: ``(first, last, kind, copied, mapped pages)`` per group, in address order.  A few
    hundred VMAs one bar each leave a bar a few pixels wide; a run of like neighbours
    (a library's text, data and RELRO pieces, a heap's arenas) says the same as one bar."""
    copied = copied_vmas(sc)
    pages = _pages(sc)
    out: list[tuple[int, int, str, bool, int]] = []
    for i, (v, c, n) in enumerate(zip(sc.vmas, copied, pages, strict=True)):
        k = kind(v)
        if out and out[-1][2] == k and out[-1][3] == c and (out[-1][4] == 0) == (n == 0):
            first, _, _, _, m = out[-1]
            out[-1] = (first, i, k, c, m + n)
        else:
            out.append((i, i, k, c, n))
    return out


def plot_map(sc: Scenario, top: int = 10) -> Any:
    """The memory map as a picture: one bar per group of neighbouring VMAs of one kind
    and one copy decision (:func:`map_groups`), in address order.  Its height is the pages
    the group maps (log scale), its colour says whether fork copies its page tables, a
    hollow box at the bottom marks a group that maps no page, the strip under the bars
    gives the kind, and a number over a bar the VMAs it joins when more than one."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    if not isinstance(top, int) or isinstance(top, bool) or top < 0:
        from .errors import LayoutError
        raise LayoutError(f"top={top!r}: the number of biggest bars to label, 0 or more")
    groups = map_groups(sc)
    fill = {True: "tab:orange", False: "tab:blue"}
    kinds = dict(zip(KINDS, ("0.15", "0.45", "0.65", "tab:green", "tab:purple"),
                     strict=True))
    fig, (ax, strip) = plt.subplots(2, 1, figsize=(10, 4.2), sharex=True,
                                    gridspec_kw={"height_ratios": (12, 1), "hspace": 0.04})
    xs = list(range(len(groups)))
    full = [(x, g) for x, g in zip(xs, groups, strict=True) if g[4]]
    empty = [(x, g) for x, g in zip(xs, groups, strict=True) if not g[4]]
    # a bar from 0.5 up to its page count: a one-page group reaches 1, an empty group is a
    # hollow box that stops at 0.8, so "no page" never reads as "one page"
    ax.bar([x for x, _ in full], [g[4] - 0.5 for _, g in full], bottom=0.5, width=0.85,
           color=[fill[g[3]] for _, g in full])
    ax.bar([x for x, _ in empty], [0.3] * len(empty), bottom=0.5, width=0.85,
           facecolor="white", edgecolor=[fill[g[3]] for _, g in empty], linewidth=0.8)
    ax.set_yscale("log")
    most = max([g[4] for g in groups] + [1])
    ax.set_ylim(0.5, most * 60)                 # head room for the labels
    ax.set_xlim(-1, len(groups))
    ax.set_ylabel("mapped pages")
    for x, g in zip(xs, groups, strict=True):
        if g[1] > g[0]:
            ax.text(x, max(g[4], 0.8) * 1.15, str(g[1] - g[0] + 1), ha="center",
                    va="bottom", fontsize=4.5, color="0.3")
    # name the biggest bars, never two within a few bars of each other: rotated labels
    # of neighbours overprint each other
    gap = max(len(groups) // 30, 2)
    labelled: list[int] = []
    for x in sorted(xs, key=lambda x: -groups[x][4]):
        if len(labelled) == top or not groups[x][4]:
            break
        if any(abs(x - j) < gap for j in labelled):
            continue
        labelled.append(x)
        label = Path(sc.vmas[groups[x][0]].get("label", "")).name or "[anon]"
        ax.annotate(label[:18], (x, groups[x][4]), fontsize=6, rotation=60,
                    xytext=(0, 9), textcoords="offset points")
    strip.bar(xs, [1] * len(groups), width=1.0, color=[kinds[g[2]] for g in groups])
    strip.set_ylim(0, 1)
    strip.set_yticks([])
    strip.set_xlabel("groups of neighbouring VMAs in address order")
    ncopied = sum(c for c in copied_vmas(sc))
    ax.set_title(f"{sc.name}\n{len(sc.vmas)} VMAs in {len(groups)} bars, "
                 f"{sum(g[4] for g in groups)} mapped pages; fork copies the page tables "
                 f"of {ncopied} VMAs (orange)", fontsize=9)
    handles = [Patch(color=fill[True], label="page tables copied"),
               Patch(color=fill[False], label="not copied"),
               Patch(facecolor="white", edgecolor="0.3",
                             label="maps no page")]
    present = {g[2] for g in groups}           # the key lists only kinds this process has
    handles += [Patch(color=col, label=f"strip: {k}")
                for k, col in kinds.items() if k in present]
    fig.legend(handles=handles, fontsize=7, ncol=4, loc="lower center")
    fig.subplots_adjust(left=0.07, right=0.99, top=0.89, bottom=0.2)
    return fig


def versions_line(rows: list[Any]) -> str:
    """What differs between the copy-on-write versions' forks of one layout (forksim
    rows): the PTEs written, the calls and the predicted time, each as a range and the
    largest relative difference, so a reader sees whether batching mattered here."""
    from .kernels import COW_KERNELS
    cow = [r for r in rows if r.kernel in COW_KERNELS]
    if len(cow) < 2:
        return "fewer than two copy-on-write versions forked: nothing to compare"

    def span(vals: list[float], fmt: str, unit: str = "") -> str:
        lo, hi = min(vals), max(vals)
        rel = (hi - lo) / hi if hi else 0.0
        return f"{format(lo, fmt)}..{format(hi, fmt)}{unit} ({rel:.1%} apart)"

    # one figure a line: a static page wraps a long line anywhere, also inside a number
    return (f"the {len(cow)} copy-on-write versions:\n"
            f"  PTEs written {span([r.ptes_copied for r in cow], ',')}\n"
            f"  batches      {span([r.batches for r in cow], ',')}\n"
            f"  predicted    {span([r.predicted_ms for r in cow], '.2f', ' ms')}")


# --- predict, then check ------------------------------------------------------------

QUESTIONS = {
    "copied": "How many of this process's VMAs will fork copy page tables for?",
    "eager": "How many pages does eager-copy copy at fork for this process?",
    "calls-v68": "How many present-copy calls does v6.8 make for this process?",
}


def _answer(question: str, sc: Scenario) -> tuple[int, str]:
    from .forksim import forksim
    if question == "copied":
        n = sum(copied_vmas(sc))
        return n, ("only VMAs with an anon_vma (private memory that ever had an anonymous "
                   "page), PFN maps and uffd-wp ones are copied; the others -- shared "
                   "memory, clean library text -- are refilled by page faults in the child")
    _, rows = forksim(sc, ("eager-copy", "v6.8"))
    if question == "eager":
        return rows[0].pages_copied, ("xv6's uvmcopy copies every present page of every "
                                      "copied VMA; only the zero page and raw PFN entries "
                                      "are copied by value")
    return rows[1].batches, ("v6.8 copies one PTE per copy_present_pte() call, so the "
                             "calls equal the PTEs it copies: every present entry of every "
                             "copied VMA")


def check(question: str, answer: object, sc: Scenario) -> str:
    """Check a prediction about ``sc``; a wrong one gets the reason.  ``...`` (no
    prediction yet) only asks: the answer is never printed before a prediction."""
    if question not in QUESTIONS:
        return f"unknown question {question!r}; choose one of {', '.join(QUESTIONS)}"
    if answer is Ellipsis:
        return (f"? {QUESTIONS[question]}\n  Your prediction first: replace the ... in this "
                f"cell with a number, then run the cell again.")
    want, why = _answer(question, sc)
    try:
        got = int(str(answer).replace(",", "").replace("_", "").strip())
    except ValueError:
        return f"Please answer with a number. The answer is {want}: {why}."
    if got == want:
        return f"Right ({want}): {why}."
    off = "more" if got < want else "fewer"
    return f"Not quite: you said {got}, the answer is {want} ({off}). Why: {why}."


def batches_lines(rows: list[Any]) -> list[str]:
    """Per copy-on-write version: how many of its copy calls copy a single PTE, and the
    longest batch -- the numbers the histogram holds, said in words for any process."""
    from .kernels import COW_KERNELS
    out = []
    for r in rows:
        if r.kernel in COW_KERNELS and r.batches:
            one = r.batch_sizes.get(1, 0)
            out.append(f"{r.kernel}: {one:,} of {r.batches:,} calls copy 1 PTE "
                       f"({one / r.batches:.1%}); longest {max(r.batch_sizes)}; "
                       f"batch scans {r.ops.get('batch_scans', 0):,}")
    return out


def lockbreak_lines(rows: list[Any]) -> list[str]:
    """copy_pte_range's ``progress`` rule applied to the totals of each row: entries copied
    one per step add :data:`~pkmm.memory.PROGRESS_ENTRY` each, empty slots
    :data:`~pkmm.memory.PROGRESS_NONE`, and a check comes once per
    :data:`~pkmm.memory.PROGRESS_BREAK`.  From totals this is an upper bound: each page
    table's loop restarts at 0 and drops what it had, and a batch adds 8 per PTE in one
    step, so it passes at most one check however long it is."""
    from .memory import PROGRESS_BREAK, PROGRESS_ENTRY, PROGRESS_NONE
    out = []
    for r in rows:
        writes, reads = r.ops.get("pte_writes", 0), r.ops.get("pte_reads", 0)
        empty = max(reads - writes, 0)
        bound = (PROGRESS_ENTRY * writes + PROGRESS_NONE * empty) // PROGRESS_BREAK
        out.append(f"{r.kernel:11s}({PROGRESS_ENTRY} x {writes} PTEs + {PROGRESS_NONE} x "
                   f"{empty} other reads) / {PROGRESS_BREAK} = {bound:6d}   "
                   f"lockbreak_checks {r.ops.get('lockbreak_checks', 0):6d}")
    return out


def fork_time(n: int = 7) -> float | None:
    """The fastest of ``n`` fork() calls of this very process (ms), or None off Linux."""
    if not hasattr(os, "fork") or not sys.platform.startswith("linux"):
        return None
    from .realkernel.timing import fork_ns
    return min(fork_ns() for _ in range(n)) / 1e6

