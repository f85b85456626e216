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

__all__ = ["QUESTIONS", "Folded", "check", "close_up", "copied_groups", "copied_vmas", "fork_time",
           "full_key", "kind", "large_folio_process", "plot_map", "this_process",
           "versions_line", "vma_table"]

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


def copied_groups(sc: Scenario, groups: int = 30) -> list[tuple[int, int, int]]:
    """The VMAs in address order cut into at most ``groups`` runs of equal length:
    ``(first, last, copied)`` per run, ``copied`` the VMAs in it whose page tables fork
    copies.  A page a few hundred VMAs wide cannot show one readable marker per VMA; a
    count per run can."""
    if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1:
        from .errors import LayoutError
        raise LayoutError(f"groups={groups!r}: the number of runs to count in, at least 1")
    copied = copied_vmas(sc)
    size = max(1, -(-len(copied) // groups))
    return [(i, min(i + size, len(copied)) - 1, sum(copied[i:i + size]))
            for i in range(0, len(copied), size)]


def plot_map(sc: Scenario, top: int = 12, groups: int = 30) -> Any:
    """The memory map as a picture: every VMA in address order, its width the pages it
    maps (log scale), its colour its kind.  A strip above it says where fork copies page
    tables: a tick over each copied VMA, and for each of at most ``groups`` runs of VMAs
    the number of copied VMAs in it (:func:`copied_groups`)."""
    import matplotlib.pyplot as plt
    copied = copied_vmas(sc)
    runs = copied_groups(sc, groups)
    pages = _pages(sc)
    colours = dict(zip(KINDS, ("tab:orange", "tab:blue", "tab:cyan", "tab:green",
                               "tab:gray"), strict=True))
    fig, (strip, ax) = plt.subplots(2, 1, figsize=(10, 4.0), sharex=True,
                                    gridspec_kw={"height_ratios": (1, 5), "hspace": 0.05})
    xs = range(len(sc.vmas))
    ax.bar(xs, [max(n, 0.8) for n in pages], width=1.0,
           color=[colours[kind(v)] for v in sc.vmas])
    # the ticks sit in a strip of their own, one per copied VMA at full strip height: on
    # the bars, markers a few pixels apart blurred into a dotted line; the counts per run
    # are what a reader can check at the page's width
    strip.vlines([i for i, c in enumerate(copied) if c], 0.0, 0.45, color="black",
                 linewidth=0.8)
    for r, (first, last, n) in enumerate(runs):
        strip.axvspan(first - 0.5, last + 0.5, 0.5, 1.0, color="0.85" if r % 2 else "0.93",
                      linewidth=0)
        strip.text((first + last) / 2, 0.74, str(n), ha="center", va="center", fontsize=8)
    strip.set_ylim(0, 1)
    strip.set_yticks([])
    strip.set_title(f"{sc.name}: {len(sc.vmas)} VMAs, {sum(pages)} mapped pages; fork "
                    f"copies the page tables of {sum(copied)} (ticks; count per "
                    f"{runs[0][1] - runs[0][0] + 1} VMAs)" if runs else sc.name, fontsize=9)
    ax.set_yscale("log")
    ax.set_ylim(0.6, max(pages + [1]) * 40)     # head room for the rotated labels
    ax.set_xlim(-1, len(sc.vmas))
    ax.set_ylabel("mapped pages")
    ax.set_xlabel("VMAs in address order")
    # label the biggest VMAs, but never two within a few bars of each other: rotated
    # labels of neighbours overprint each other
    gap = max(len(sc.vmas) // 40, 3)
    labelled: list[int] = []
    for i in sorted(range(len(pages)), key=lambda i: -pages[i]):
        if len(labelled) == top:
            break
        if any(abs(i - j) < gap for j in labelled):
            continue
        labelled.append(i)
        label = Path(sc.vmas[i].get("label", "")).name or "[anon]"
        ax.annotate(label[:18], (i, max(pages[i], 1)), fontsize=6, rotation=60,
                    xytext=(0, 6), textcoords="offset points")
    present = {kind(v) for v in sc.vmas}       # the legend lists only kinds this process has
    for k, col in colours.items():
        if k in present:
            ax.bar([0], [0], color=col, label=k)
    ax.legend(fontsize=7, ncol=5, loc="upper center", bbox_to_anchor=(0.5, -0.22))
    fig.subplots_adjust(left=0.07, right=0.99, top=0.92, bottom=0.22)
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


def fork_time(n: int = 7) -> float | None:
    """The fastest of ``n`` fork() calls of this very process (ms), or None off Linux."""
    if not hasattr(os, "fork") or not sys.platform.startswith("linux"):
        return None
    from .realkernel.timing import fork_ns
    return min(fork_ns() for _ in range(n)) / 1e6

