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

import math
import os
import sys
import weakref
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any

from .errors import StoredDataError
from .pte import PAGE_SIZE
from .scenario import Scenario, load_scenario

STORED = Path(__file__).resolve().parent / "data" / "snapshot-python-6.18.json"
#: a Python process whose 128 MiB NumPy array sits in 64 KiB folios (how it was made: the
#: file's ``description``)
STORED_LARGE = Path(__file__).resolve().parent / "data" / "snapshot-numpy-64k-6.18.json"
KINDS = ("private anon", "private file", "shared file", "shmem", "raw PFN map")

__all__ = ["QUESTIONS", "REGIONS", "SHARES", "anon_pages_line", "batch_stops", "batches_lines",
           "check", "choices", "close_up", "copied_vmas", "details", "Folded", "fork_gap_lines",
           "fork_hint_lines", "fork_time", "full_key", "guesses_changed", "kind",
           "large_folio_notes", "large_folio_process", "large_folio_report", "lockbreak_lines",
           "map_kinds", "plot_map", "price_lines", "raw_view", "region", "scans_past_folio_end",
           "short_table", "stored_baseline_ms", "this_process", "traced_fork",
           "unpriced_split_lines", "versions_line", "vma_table"]

PAGE = PAGE_SIZE   # the model's page size (4 KiB, as on x86-64)
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


#: JupyterLab's output CSS gives a ``<pre>`` inside an HTML output the page's proportional
#: font (``.jp-OutputArea-output pre {font-family: inherit}``), so a folded table's columns
#: would not line up: the folds ask for the code font themselves
PRE = '<pre style="font-family: var(--jp-code-font-family, monospace)">'


class Folded:
    """Text shown folded on a notebook page (an HTML ``<details>``), plain in a terminal."""

    def __init__(self, title: str, text: str) -> None:
        self.title, self.text = title, text

    def __repr__(self) -> str:
        return f"{self.title}\n{self.text}"

    def _repr_html_(self) -> str:
        import html
        return (f"<details><summary>{html.escape(self.title)}</summary>"
                f"{PRE}{html.escape(self.text)}</pre></details>")


class FoldedView:
    """Printed text and pictures shown together under one fold (an HTML ``<details>``), so
    that a static page shows no answer before the reader opens it; plain in a terminal.
    A part is a string (shown as printed text), a :class:`Folded`, a picture with
    ``_repr_html_`` or ``_repr_svg_``, or a matplotlib figure (drawn as SVG and closed, so
    that the notebook does not show it a second time, unfolded)."""

    def __init__(self, title: str, *parts: Any) -> None:
        from .errors import LayoutError
        if not parts:
            raise LayoutError("FoldedView(title, *parts): give at least one part to fold")
        self.title, self.parts = title, parts

    def __repr__(self) -> str:
        return "\n".join([self.title, *(p if isinstance(p, str) else repr(p)
                                          for p in self.parts)])

    @staticmethod
    def _html(part: Any) -> str:
        import html
        if isinstance(part, str):
            return f"{PRE}{html.escape(part)}</pre>"
        if hasattr(part, "savefig"):            # a matplotlib figure (its own HTML is None)
            import io

            import matplotlib.pyplot as plt
            buf = io.StringIO()
            # text stays <text> (not glyph outlines): a static page's reader, a screen
            # reader and a search find the picture's labels and counts
            with plt.rc_context({"svg.fonttype": "none"}):
                part.savefig(buf, format="svg", bbox_inches="tight")
            plt.close(part)
            svg = buf.getvalue()
            return svg[svg.find("<svg"):]
        for method in ("_repr_html_", "_repr_svg_"):
            shown = getattr(part, method, lambda: None)()
            if shown is not None:
                return str(shown)
        return f"{PRE}{html.escape(repr(part))}</pre>"

    def _repr_html_(self) -> str:
        import html
        return (f"<details><summary>{html.escape(self.title)}</summary>"
                + "".join(self._html(p) for p in self.parts) + "</details>")


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


_TRACED: dict[tuple[int, str], tuple[Any, Any]] = {}   # (id, kernel) -> (weak ref, result)


def traced_fork(sc: Scenario, kernel: str) -> Any:
    """The step-by-step model's fork of ``sc`` under ``kernel`` (a :class:`pkmm.fork.ForkResult`
    with its trace), made once per scenario and kernel: the page's notes read one fork."""
    from .fork import fork
    ref, res = _TRACED.get((id(sc), kernel), (None, None))
    if ref is None or ref() is not sc:
        res = fork(sc.build()[0], kernel)
        if len(_TRACED) >= 4:   # a traced fork of a whole process is large: keep a few
            _TRACED.pop(next(iter(_TRACED)))
        _TRACED[(id(sc), kernel)] = (weakref.ref(sc), res)
    return res


def _entries(sc: Scenario, *, zero_only: bool = False) -> list[tuple[int, int]]:
    """``(address, pages)`` of the scenario's entries: all of them, or only the zero-page
    ones (the entries fork copies by value)."""
    entries = [] if zero_only else [
        (e["addr"], e["npages"]) for e in sc.runs + sc.swap + sc.markers + sc.pfnmaps
        if isinstance(e, dict)]
    entries += [(z, 1) if isinstance(z, int) else (z["addr"], z["npages"]) for z in sc.zero]
    entries += [(a, 512) for a in sc.huge_zero]
    return entries


def _pages(sc: Scenario, *, zero_only: bool = False) -> list[int]:
    """Present or non-present entries per VMA of the scenario (``zero_only``: the
    zero-page entries only)."""
    starts = [v["start"] for v in sc.vmas]
    ends = [v["start"] + v["npages"] * PAGE for v in sc.vmas]
    out = [0] * len(sc.vmas)
    for addr, n in _entries(sc, zero_only=zero_only):
        for k, (lo, hi) in enumerate(zip(starts, ends, strict=True)):
            if lo <= addr < hi:
                out[k] += n
                break
    return out


def vma_table(sc: Scenario) -> str:
    """VMAs by kind: how many, their size, their mapped pages, how many fork copies, the
    pages of those, and how many of those are zero-page entries (copied by value)."""
    copied = copied_vmas(sc)
    rows: dict[str, list[int]] = {k: [0, 0, 0, 0, 0, 0] for k in KINDS}
    for v, c, n, z in zip(sc.vmas, copied, _pages(sc), _pages(sc, zero_only=True),
                          strict=True):
        r = rows[kind(v)]
        r[0] += 1
        r[1] += v["npages"]
        r[2] += n
        r[3] += c
        r[4] += n if c else 0
        r[5] += z if c else 0
    lines = [f"{'':14s}{'':6s}{'':9s}{'mapped':>9s}{'copied':>8s}{'their':>7s}{'of them':>9s}",
             f"{'VMA kind':14s}{'VMAs':>6s}{'MiB':>9s}{'pages':>9s}{'VMAs':>8s}{'pages':>7s}"
             f"{'zero':>9s}"]
    for k, (nv, npg, mapped, nc, cp, z) in rows.items():
        if nv:
            lines.append(f"{k:14s}{nv:6d}{npg * 4 / 1024:9.1f}{mapped:9d}{nc:8d}{cp:7d}{z:9d}")
    return "\n".join(lines)


def anon_pages_line(sc: Scenario) -> str:
    """One sentence joining the summary's ``anon`` page count to :func:`vma_table`'s
    *mapped pages* of the private anon VMAs: those count the zero-page entries (and any
    swap entries) too, and private file VMAs hold anonymous pages as well (the ones the
    process wrote, copied on write).  Every number is counted from the snapshot."""
    from textwrap import fill
    starts = [v["start"] for v in sc.vmas]
    ends = [v["start"] + v["npages"] * PAGE for v in sc.vmas]
    anon: dict[str, int] = {}
    for e in sc.runs:
        if e.get("backing", "anon") != "anon":
            continue
        k = next(kind(sc.vmas[i]) for i, (lo, hi) in enumerate(zip(starts, ends, strict=True))
                 if lo <= e["addr"] < hi)
        anon[k] = anon.get(k, 0) + e["npages"]
    mapped = zero = 0
    for v, n, z in zip(sc.vmas, _pages(sc), _pages(sc, zero_only=True), strict=True):
        if kind(v) == "private anon":
            mapped, zero = mapped + n, zero + z
    in_anon = anon.get("private anon", 0)
    other = mapped - zero - in_anon
    rest = ", ".join(f"{n:,} in the {k} VMAs" for k, n in anon.items() if k != "private anon")
    return fill(f"The summary's {sum(anon.values()):,} anon pages: {in_anon:,} in the private "
                f"anon VMAs (the table's {mapped:,} mapped pages there also count "
                f"{_n(zero, 'zero-page entry').replace('ys', 'ies')}"
                + (f" and {_n(other, 'swap entry').replace('ys', 'ies')}" if other else "") + ")"
                + (f", and {rest} (library pages the process wrote, copied on write)"
                   if rest else "") + ".", 88)


#: the parts of a process the memory map draws, in the order it draws them: the VMA kinds
#: of :func:`vma_table` and the snapshot's summary, so that the page groups its VMAs one way
REGIONS = KINDS


def region(v: dict[str, Any]) -> str:
    """Which bar of the memory map a VMA is drawn in (see :data:`REGIONS`): its
    :func:`kind`, the same grouping as the table's lines."""
    return kind(v)


def map_kinds(sc: Scenario) -> list[tuple[str, int, int, int, int]]:
    """Per VMA kind (:func:`region`) that it has: ``(region, copied VMAs, their
    mapped pages, VMAs not copied, their mapped pages)``, in :data:`REGIONS` order."""
    sums = {r: [0, 0, 0, 0] for r in REGIONS}
    for v, c, n in zip(sc.vmas, copied_vmas(sc), _pages(sc), strict=True):
        s = sums[region(v)]
        s[0 if c else 2] += 1
        s[1 if c else 3] += n
    return [(r, *s) for r, s in sums.items() if s[0] or s[2]]  # type: ignore[misc]


def _n(n: int, what: str) -> str:
    return f"{n:,} {what}{'' if n == 1 else 's'}"


def plot_map(sc: Scenario) -> Any:
    """The memory map as a picture: one horizontal bar per VMA kind (the table's lines)
    (:func:`map_kinds`), as long as its VMAs, split into the VMAs whose page tables fork
    copies (orange) and those it leaves for the child to fault in (blue); the VMA and
    page counts of both halves are written beside the bar."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    rows = map_kinds(sc)
    colour = {True: "tab:orange", False: "tab:blue"}
    fig, ax = plt.subplots(figsize=(10, 0.55 * len(rows) + 1.9))
    ys = list(range(len(rows)))[::-1]          # the first region on top
    most = max(r[1] + r[3] for r in rows)
    for y, (_, cv, cp, nv, np_) in zip(ys, rows, strict=True):
        ax.barh(y, cv, color=colour[True], height=0.6)
        ax.barh(y, nv, left=cv, color=colour[False], height=0.6)
        ax.text(cv + nv + most * 0.015, y,
                f"{cv} copied ({_n(cp, 'page')}), {nv} not ({_n(np_, 'page')})",
                va="center", fontsize=11)
    ax.set_yticks(ys, [r[0] for r in rows], fontsize=11)
    ax.set_xlim(0, most * 2.3)                 # room for the counts right of the bars
    # the axis itself stops at the longest bar: the space past it holds text, not VMAs
    ax.set_xticks([t for t in ax.get_xticks() if 0 <= t <= most])
    ax.spines["bottom"].set_bounds(0, most)
    ax.set_xlabel("VMAs", fontsize=11)
    ax.tick_params(axis="x", labelsize=11)
    ncopied = sum(r[1] for r in rows)
    ax.set_title(f"{sc.name}\nfork copies the page tables of {ncopied} of "
                 f"{len(sc.vmas)} VMAs", fontsize=12)
    ax.legend(handles=[Patch(color=colour[True], label="page tables copied at fork"),
                       Patch(color=colour[False], label="not copied: the child faults "
                                                        "them in")],
              fontsize=11, loc="lower right")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
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
    return (f"the {len(cow)} copy-on-write versions (apart: (largest - smallest) / "
            "largest):\n"
            f"  PTEs written {span([r.ptes_copied for r in cow], ',')}\n"
            f"  batches      {span([r.batches for r in cow], ',')}\n"
            f"  predicted    {span([r.predicted_ms for r in cow], '.2f', ' ms')}")


# --- predict, then check ------------------------------------------------------------

QUESTIONS = {
    "copied": "How many of this process's VMAs will fork copy page tables for?",
    "copied-share": "What share of this process's VMAs will fork copy page tables for?",
    "eager": "How many pages does eager-copy copy at fork for this process?",
    "calls-v68": "How many present-copy calls does v6.8 make for this process?",
}


#: the answers "copied-share" offers: a letter, its words, and the share of the VMAs it
#: covers, [low, high)
SHARES = (("A", "under a sixth", Fraction(0), Fraction(1, 6)),
          ("B", "a sixth to a third", Fraction(1, 6), Fraction(1, 3)),
          ("C", "a third to two thirds", Fraction(1, 3), Fraction(2, 3)),
          ("D", "two thirds or more, but not all", Fraction(2, 3), Fraction(1)),
          ("E", "all of them", Fraction(1), Fraction(2)))


def choices(question: str, sc: Scenario) -> list[str]:
    """The answers a multiple-choice question offers for ``sc`` (empty for a question
    answered with a number), each with the VMA counts it covers."""
    if question != "copied-share":
        return []
    n = len(sc.vmas)
    out = []
    for letter, words, lo, hi in SHARES:
        # the counts k with lo <= k/n < hi
        first, last = math.ceil(lo * n), min(math.ceil(hi * n) - 1, n)
        span = f"{n}" if first == last == n else f"{first} to {last}"
        out.append(f"{letter}: {words} ({span} of {n} VMAs)")
    return out


def _share(n: int, total: int) -> str:
    return next(letter for letter, _, lo, hi in SHARES if lo <= Fraction(n, total) < hi)


def _answer(question: str, sc: Scenario) -> tuple[int | str, str]:
    from .forksim import forksim
    if question == "copied-share":
        n = sum(copied_vmas(sc))
        return _share(n, len(sc.vmas)), (
            f"fork copies {n} of {len(sc.vmas)} VMAs: the private anonymous ones that ever "
            "held a page, and of each library the parts written once (.data, .bss, "
            "RELRO), not its code and constants")
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
    offered = choices(question, sc)
    if answer is Ellipsis:
        from textwrap import fill
        return "\n".join([f"? {QUESTIONS[question]}", *(f"  {c}" for c in offered), fill(
            "Your prediction first: on a page you only read, "
            + ("choose" if offered else "predict") + " and then open the "
            "answer below; running the notebook, replace the ... in this cell with "
            + ("a letter" if offered else "a number") + " and run the cell again.", 86,
            initial_indent="  ", subsequent_indent="  ")])
    want, why = _answer(question, sc)
    if offered:
        got_letter = str(answer).strip().upper()[:1]
        if got_letter not in {c[0] for c in offered}:
            return f"Please answer with one of {', '.join(c[0] for c in offered)}."
        if got_letter == want:
            return f"Right ({want}): {why}."
        return f"Not quite: you said {got_letter}, the answer is {want}. Why: {why}."
    try:
        got = int(str(answer).replace(",", "").replace("_", "").strip())
    except ValueError:
        return f"Please answer with a number. The answer is {want}: {why}."
    if got == want:
        return f"Right ({want}): {why}."
    off = "more" if got < int(want) else "fewer"
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
    step, so it passes at most one check however long it is.  Variants with equal totals
    share one line, named in order."""
    from .memory import PROGRESS_BREAK, PROGRESS_ENTRY, PROGRESS_NONE
    # variants with the same totals and checks share one line: five equal lines would only
    # say five times that the versions agree
    lines: dict[tuple[int, int, int], list[str]] = {}
    for r in rows:
        writes, reads = r.ops.get("pte_writes", 0), r.ops.get("pte_reads", 0)
        lines.setdefault((writes, max(reads - writes, 0), r.ops.get("lockbreak_checks", 0)),
                         []).append(r.kernel)
    out = []
    for (writes, empty, checks), names in lines.items():
        bound = (PROGRESS_ENTRY * writes + PROGRESS_NONE * empty) // PROGRESS_BREAK
        out.append(f"{', '.join(names)}: ({PROGRESS_ENTRY} x {writes} PTEs + "
                   f"{PROGRESS_NONE} x {empty} other reads) / {PROGRESS_BREAK} = {bound}; "
                   f"lockbreak_checks {checks}, within that upper bound")
    return out


#: the priced counts as the tables above name them (costmodel.PRICED's keys)
_PRICE_NAMES = {"pte_writes": "PTEs written", "set_ptes_calls": "copy calls",
                "batch_scans": "batch scans", "pmd_copies": "PMDs copied"}


def price_lines(sc: Scenario, kernel: str, *, sums: bool = True) -> list[str]:
    """The cost model's sum for forking ``sc`` under ``kernel``, spelled out so that a
    reader can predict *pred ms* by hand: each priced count times its price, where a price
    mixes the FRESH and REPEAT fits by the share of copied entries that were writable
    (:func:`pkmm.costmodel.predict_seconds` does exactly this sum).  ``sums=False``
    prints the prices only, for a page that asks the reader to do the sum first."""
    from . import costmodel
    f = costmodel.scenario_counts(sc, kernel)
    fitted = costmodel._stored_fit()
    w = costmodel.writable_share(f)
    # the share with one decimal more than a percent: the mixed price is computed from the
    # unrounded share, and a reader redoing the mix from a rounded one would be off by 0.1 ns
    # "read-only" is not "REPEAT": the read-only entries of a never-forked process are
    # RELRO, page-cache and zero-page ones; they are priced like a REPEAT parent's entries
    # because fork does the same for them (no write-protect)
    out = [f"{kernel}: {w:.1%} of the copied PTEs were writable (priced at the FRESH fit), "
           "the rest", "  read-only already (e.g. RELRO, page-cache, zero-page entries), "
           "at the REPEAT fit;",
           f"  each price is {w:.3f} times its FRESH fit plus {1 - w:.3f} times its REPEAT fit"]
    # each term prints rounded to the nearest microsecond, on its own: the same count at the
    # same price prints the same product in every kernel's lines (spreading the rounding
    # over the terms to hit the total exactly made two equal products differ by 1 us).  The
    # sum line adds the printed terms, so a reader's hand sum matches it; the tables'
    # figure, rounded to 0.01 ms, is the model's unrounded total
    terms = [(k, n, ns, fresh, repeat) for k, n, ns, fresh, repeat
             in costmodel.price_terms(f, fitted) if ns]     # a zero price adds nothing
    raw = [ns * n / 1e3 for _, n, ns, _, _ in terms] + (
        [fitted.fixed_ns / 1e3] if fitted.fixed_ns else [])
    total = costmodel.predict_seconds(f, fitted) * 1e9
    us = [round(r) for r in raw]
    for (k, n, ns, fresh, repeat), u in zip(terms, us, strict=False):
        # two decimals: two kernels' products can differ where one decimal looks the same
        what = f"{n:,} x {ns:.2f} ns = {u / 1e3:.3f} ms" if sums else \
            f"{ns:.1f} ns each (FRESH {fresh:.2f}, REPEAT {repeat:.2f})"
        out.append(f"  {_PRICE_NAMES.get(k, k):24s} {what}")
    if fitted.fixed_ns:
        out.append(f"  plus {us[-1] / 1e3:.3f} ms for forking a process at all")
    if sums:
        out += [f"  sum: {sum(us) / 1e3:.3f} ms ({total / 1e6:.2f} ms in the tables)",
                f"  no price for: {', '.join(costmodel.unpriced(f)) or 'nothing'}"]
    return out


def large_folio_lines(sc: Scenario) -> list[str]:
    """Where the snapshot's large folios (order 1 and up) lie: how many of each order sit
    in VMAs whose page tables fork copies (only those can make a batch longer than one
    PTE) and how many in VMAs it skips (library code and data the child refills from the
    page cache)."""
    tally: dict[int, list[int]] = {}
    seen: set[int] = set()
    parent = sc.build()[0]
    for vma, copied in zip(parent.vmas, copied_vmas(sc), strict=True):
        for addr, _ in parent.ptes(vma.vm_start, vma.vm_end):
            mapped = parent.page_at(addr)
            if mapped is None or not mapped[0].order or id(mapped[0]) in seen:
                continue
            # a folio is counted once, in the VMA where the walk first meets it
            seen.add(id(mapped[0]))
            tally.setdefault(mapped[0].order, [0, 0])[0 if copied else 1] += 1
    if not tally:
        return ["large folios (order 1 and up): none in this snapshot"]
    return ["large folios (order 1 and up): in VMAs fork copies | in VMAs it skips"] + [
        f"  {f'order {o} ({4 << o}K):':20s}{a:>8,} | {b:,}" for o, (a, b) in sorted(tally.items())]


def fork_gap_lines(sc: Scenario, kernel: str, measured_ms: float | None) -> list[str]:
    """The cost model's price of forking ``sc`` under ``kernel`` beside a measured
    ``fork()`` of the same process (``measured_ms``; None where fork cannot be timed).

    The measured figure is the fastest of several forks: the first one write-protected
    the parent's entries, so the later ones found them read-only (REPEAT).  The share and
    the unpriced part are therefore taken against the REPEAT price.  The FRESH price (the
    entries as snapshotted) is higher, so it would *shrink* the gap, by at most the
    difference printed: the state of the entries cannot explain any of the gap.  The
    share is named by the section-4 choice it falls in (:data:`FORK_SHARES`)."""
    from . import costmodel
    f = costmodel.scenario_counts(sc, kernel)
    priced = costmodel.predict_seconds(f) * 1e3
    repeat = costmodel.predict_seconds({**f, "wrprotected": 0}) * 1e3
    fresh = f"model, {costmodel.writable_share(f):.1%} of entries writable (as snapshotted)"
    out = [f"  {fresh:58s} {priced:6.2f} ms",
           f"  {'model, every entry read-only (REPEAT: the timed forks)':58s} "
           f"{repeat:6.2f} ms"]
    if measured_ms is None:
        return [*out, "  fork() cannot be timed here: nothing to compare"]
    share = repeat / measured_ms
    words = next(w for w, lo, hi in FORK_SHARES if lo <= share < hi)
    return [*out,
            f"  {'measured fork(), fastest of the timed forks':58s} {measured_ms:6.2f} ms",
            f"  priced as REPEAT, the page-table copy is {share:.0%} of the measured fork() "
            f"({words});",
            f"  {_unpriced_ms(repeat, measured_ms):.2f} ms have no price in the model.",
            f"  Priced as snapshotted it would cost {priced - repeat:.2f} ms more: that narrows"
            " the gap,"
            " it explains none of it."]


# the section-4 question's choices: they cover every share, so any printed share is one
FORK_SHARES = (("over two thirds", 2 / 3, math.inf), ("a third to two thirds", 1 / 3, 2 / 3),
               ("under a third", -math.inf, 1 / 3))


def _unpriced_ms(priced_ms: float, measured_ms: float) -> float:
    """The measured fork less its priced part, from the two figures *as printed* (to the
    hundredth), so that the printed lines subtract and add up exactly."""
    return round(measured_ms, 2) - round(priced_ms, 2)


def stored_baseline_ms() -> float | None:
    """The stored benchmarks' fastest fork of their small Python worker with no region in
    it (ms, to 0.01), or None when the stored timings hold none."""
    from .realkernel.calibrate import load
    base_ns = [r["baseline_min_ns"] for r in load().get("runs", []) if r.get("baseline_min_ns")]
    return round(min(base_ns) / 1e6, 2) if base_ns else None


def fork_hint_lines(sc: Scenario, kernel: str) -> list[str]:
    """What a learner may know before predicting section 4's share: the model's REPEAT
    price of ``sc``'s page-table copy, the stored fork of a small process, and how much
    of ``sc`` the model leaves unpriced (its VMAs, page tables and empty slots)."""
    from . import costmodel
    f = costmodel.scenario_counts(sc, kernel)
    repeat = costmodel.predict_seconds({**f, "wrprotected": 0}) * 1e3
    base = stored_baseline_ms()
    return [f"  {'the model: the page-table copy, priced REPEAT':58s} {repeat:6.2f} ms",
            *([f"  {'a fork of a small Python worker, no region (stored)':58s} {base:6.2f} ms"]
              if base is not None else []),
            f"  not priced: {f['vmas']:,} VMAs, {f['page_tables']:,} page tables, "
            f"{f['empty_reads']:,} empty slots read"]


def unpriced_split_lines(sc: Scenario, kernel: str, measured_ms: float | None) -> list[str]:
    """A rough split of the part of a measured ``fork()`` of ``sc`` that the cost model
    leaves unpriced, from data pkmm stores: the benchmarks' baseline fork (their small
    Python worker, forked with no region: the new task, Python's own fork bookkeeping and
    that worker's few VMAs) bounds what forking *at all* costs; the rest of the gap comes
    with this process's size, and dividing it by the VMAs bounds the price of one VMA
    (with its share of the page tables and empty slots).  Empty where fork cannot be
    timed or the stored timings hold no baseline."""
    from . import costmodel
    base = stored_baseline_ms()
    if measured_ms is None or base is None:
        return []
    f = costmodel.scenario_counts(sc, kernel)
    # against the REPEAT price, as fork_gap_lines: the timed forks found the entries read-only
    gap = _unpriced_ms(costmodel.predict_seconds({**f, "wrprotected": 0}) * 1e3, measured_ms)
    rest = gap - base
    copied = sum(copied_vmas(sc))
    out = [f"  {'the part with no price, split roughly:':58s} {gap:6.2f} ms",
           f"  {'  forking a small Python process at all (stored baseline)':58s} "
           f"{base:6.2f} ms",
           "    (the benchmarks' worker forked with no region, on the development machine:",
           "    the new task, Python's fork bookkeeping, and that worker's own VMAs; a",
           "    stand-in for this process's once-per-fork part, not a bound: this one may",
           "    pay more, for more open files to copy and more at-fork handlers)"]
    if rest <= 0:
        return [*out, "  the whole gap fits within what forking any small process costs"]
    return [*out,
            f"  {'  the rest, mostly work that grows with the process':58s} {rest:6.2f} ms",
            f"    over its {f['vmas']:,} VMAs ({f['anon_vmas']:,} with an anon_vma; "
            f"section 2's {copied:,} copied are these",
            "    and the raw PFN maps), "
            f"{f['page_tables']:,} page tables, {f['empty_reads']:,} empty slots:",
            f"    at most {rest / f['vmas'] * 1e3:.1f} µs per VMA, if the VMAs carried all of "
            "it"]


def vma_count_key(sc: Scenario, counts: Mapping[str, int]) -> list[str]:
    """What the cost model's three VMA counts of forking ``sc`` are, with their numbers:
    ``anon_vmas`` and ``file_vmas`` overlap (a private file VMA with pages copied on write
    has an anon_vma *and* a file), so they do not add up to ``vmas``; the key says by how
    many.  The overlap and the VMAs in neither count come from the snapshot's VMAs."""
    both = sum(1 for v in sc.vmas if v.get("anon_vma") and v.get("backing") != "anon")
    neither = sum(1 for v in sc.vmas if not v.get("anon_vma") and v.get("backing") == "anon")
    n, an, fi = counts["vmas"], counts["anon_vmas"], counts["file_vmas"]
    anon = sum(1 for v in sc.vmas if kind(v) == "private anon")
    copied = sum(1 for v, c in zip(sc.vmas, copied_vmas(sc), strict=True)
                 if c and kind(v) == "private anon")
    return [f"  vmas      {n:>5,}  every VMA the child gets",
            f"  anon_vmas {an:>5,}  the VMAs with an anon_vma: the private anon ones that hold "
            "pages, and", f"                   the {both:,} private file VMAs of this snapshot "
            "with pages copied on write",
            f"  file_vmas {fi:>5,}  the VMAs backed by a file or a raw PFN map, private or shared,"
            " with", "                   or without an anon_vma",
            f"  so the {both:,} count twice, and the {neither:,} never-written private anon VMAs "
            "not at all", f"  (section 2's table: {anon:,} private anon VMAs, {copied:,} of "
            f"them copied; {anon:,} - {copied:,} = {anon - copied:,}):",
            f"  {an:,} + {fi:,} - {both:,} + {neither:,} = {an + fi - both + neither:,} = vmas"]


def raw_view(library: str = "libc.so") -> list[str]:
    """What the snapshot reads, unprocessed: this process's ``/proc/self/smaps`` lines for
    the VMAs of one shared ``library`` (address range, permissions, file; how much of it
    is anonymous -- copied-on-write pages, so the VMA has an anon_vma; its flags), and the
    64-bit pagemap entry of the first page of the first VMA, bit by bit.  Where /proc
    cannot be read, one line says so."""
    from .realkernel.procpid import (
        PM_FILE,
        PM_MMAP_EXCLUSIVE,
        PM_PFN_MASK,
        PM_PRESENT,
        PM_SWAP,
        PM_UFFD_WP,
    )
    try:
        text = Path("/proc/self/smaps").read_text()
    except OSError as why:
        return [f"/proc/self/smaps cannot be read here ({why.strerror or why}): nothing to show"]
    out: list[str] = []
    first: int | None = None
    for block in text.split("\n"):
        head = block.split()
        if head and "-" in head[0] and len(head) >= 6 and library in head[-1]:
            out.append(f"{head[0]} {head[1]} {Path(head[-1]).name}")
            first = int(head[0].split("-")[0], 16) if first is None else first
        elif out and not out[-1].startswith("  VmFlags") and head and \
                head[0] in ("Anonymous:", "VmFlags:"):
            out.append("  " + " ".join(head))
    if first is None:
        return [f"no VMA of {library!r} in this process: nothing to show"]
    try:
        with open("/proc/self/pagemap", "rb") as f:
            f.seek(first // PAGE * 8)
            e = int.from_bytes(f.read(8), sys.byteorder)
    except OSError as err:
        return [*out, f"/proc/self/pagemap cannot be read here ({err.strerror or err})"]
    bits = [("present", PM_PRESENT), ("swapped", PM_SWAP), ("file page", PM_FILE),
            ("uffd-wp", PM_UFFD_WP), ("mapped exclusively", PM_MMAP_EXCLUSIVE)]
    out.append(f"pagemap entry of page {first:#x}: {e:#018x}")
    # bit 56 is set only for a page exactly one page-table entry maps; a shared library's
    # page is mapped by every process that loaded it, so 0 is the usual value there
    note = {PM_MMAP_EXCLUSIVE: " (0: another page-table entry maps it too)"}
    out += [f"  bit {b.bit_length() - 1:2d} {name:19s} {int(bool(e & b))}"
            + ("" if e & b or not e & PM_PRESENT else note.get(b, "")) for name, b in bits]
    out.append(f"  bits 0-54 PFN {e & PM_PFN_MASK:#x}" +
               (" (0: PFNs need CAP_SYS_ADMIN)" if not e & PM_PFN_MASK else ""))
    return out


def short_table(rows: list[Any]) -> str:
    """The few numbers of a forksim run a reader compares: per variant the PTEs written
    into the child, the present-copy calls, the pages copied, and the predicted time."""
    from .forksim import pred_column
    lines = [f"{'variant':12s}{'PTEs written':>13s}{'copy calls':>12s}{'pages copied':>14s}"
             f"{'pred ms':>16s}"]
    lines += [f"{r.kernel:12s}{r.ptes_copied:13,d}{r.batches:12,d}{r.pages_copied:14,d}"
              f"{pred:>16s}" for r, pred in zip(rows, pred_column(rows), strict=True)]
    return "\n".join(lines)


def details(sc: Scenario, rows: list[Any]) -> Folded:
    """Everything forksim counted for ``rows``, folded: the full table without the
    layout's guesses (the page printed them once), the batch sizes in words, the
    lock-break arithmetic and the full key."""
    from .forksim import key_lines, render
    by = {r.kernel: r for r in rows}
    # where v6.9 reads more PTEs than v6.17 here, say why, from the trace (as 3b does)
    why = (["why v6.9 reads more PTEs than v6.17 (from the step-by-step model's trace):",
            large_folio_notes(sc, rows, "v6.9", "v6.17")[0]]
           if {"v6.9", "v6.17"} <= by.keys()
           and by["v6.9"].ops["pte_reads"] != by["v6.17"].ops["pte_reads"] else [])
    return Folded("Everything the forks counted, and the full key (for the engineer)",
                  "\n".join([render(sc, rows, key="differs", approximations=False),
                             *batches_lines(rows), *why,
                             "lock-break checks from the totals (an upper bound: each page "
                             "table restarts the count,", "  and a batch passes at most one "
                             "check):", *lockbreak_lines(rows),
                             "full key:", *key_lines(rows)]))


def large_folio_report(sc: Scenario, rows: list[Any]) -> FoldedView:
    """The stored large-folio process ``sc`` and its forks ``rows``, folded: how it was
    made, its summary, the short table, v6.17's copy calls by size, the prices of v6.8 and
    v6.17, and the gain against notebook 08's 1 GiB region all in 64 KiB folios.  A
    second fold inside it, for the engineer, holds the full table, the batch lines, where
    the large folios lie, the lock-break arithmetic and two differences said from the
    step-by-step model's trace.  One function, so that the cell a reader sees before
    predicting shows no part of the answer."""
    from textwrap import fill

    from . import costmodel
    from .forksim import render
    from .realkernel.snapshot import summary
    by = {r.kernel: r for r in rows}
    ptes = rows[0].ptes_copied
    in_64k = sc.source["folio_orders"].get("4", 0) * 16     # the PTEs in 64 KiB folios
    small, large = (costmodel.stored_fork_seconds(1 << 30, size) for size in ("4K", "64K"))
    if small is None or large is None:
        raise StoredDataError("large_folio_report: the stored timings lack the 1 GiB 4K or 64K "
                         "region; re-take them with python -m pkmm.realkernel.calibrate --save")
    gain = small / large
    last = rows[-1]
    # the summary's long lines wrap at a word, not inside one, on an 88-column page
    head = [fill(ln, 88, subsequent_indent="    ")
            for ln in summary(sc).split("\n  approximated")[0].splitlines()]
    sizes = " ".join(f"{n}x{c}" for n, c in sorted(last.batch_sizes.items()))
    engineer = Folded("Every counter of these forks (for the engineer; the key: the "
                      "appendix at the end of the page)", "\n".join([
                          render(sc, rows, key="differs").split("\nkey")[0],
                          versions_line(rows),
                          *batches_lines(rows),
                          *large_folio_lines(sc),
                          "lock-break checks from the totals (an upper bound: each page table "
                          "restarts the count,", "  and a batch passes at most one check):",
                          *lockbreak_lines(rows),
                          "two differences, counted from the step-by-step model's trace:",
                          *large_folio_notes(sc, rows, "v6.9", "v6.17")]))
    return FoldedView("The stored process and its five forks (open it after you predicted)",
                      "\n".join([
                          fill(sc.description, 88), *head,
                          short_table(rows),
                          f"{last.kernel}'s batch sizes (PTEs per call x calls): {sizes}",
                          *price_lines(sc, "v6.8"), *price_lines(sc, "v6.17"),
                          f"gain v6.8 -> v6.17: "
                          f"{by['v6.8'].predicted_ms / by['v6.17'].predicted_ms:.2f}x; notebook "
                          f"08's 1 GiB region, all of it in 64 KiB folios:",
                          f"  {gain:.1f}x (measured, FRESH)",
                          f"  here {ptes - in_64k:,} of the {ptes:,} PTEs written "
                          f"({1 - in_64k / ptes:.1%}) are not in 64 KiB folios"]),
                      engineer)


def guesses_changed(before: Scenario, after: Scenario) -> list[str]:
    """The guesses ``after`` makes that ``before`` did not, and the ones it no longer
    makes, each with the new guess about the same thing (the same first word) that took
    its place."""
    from textwrap import fill
    new = [a for a in after.approximations if a not in before.approximations]
    gone = [a for a in before.approximations if a not in after.approximations]
    out = [fill(a, 86, initial_indent="  - ", subsequent_indent="    ") for a in new]
    for a in gone:
        instead = [b for b in new if b.split()[0] == a.split()[0]]
        out.append(fill(f"no longer needed: \"{a}\"" + (
            f" -- the guess \"{instead[0].split(':')[0]}\" above replaces it" if instead
            else ""), 86, initial_indent="  - ", subsequent_indent="    "))
    return out


def batch_stops(sc: Scenario, kernel: str) -> tuple[dict[str, int], dict[str, int]]:
    """From the step-by-step model's fork of ``sc`` under ``kernel``: why each batch scan
    stopped (the trace's ``stop:...`` rules, e.g. ``folio-end``, ``range-end``: no entry
    left in the page table or VMA), and the copy calls by what they shared: ``anon`` (an
    anonymous folio: the pin check ran), ``file`` (a page-cache folio: no pin check) and
    ``by value`` (no page behind the entry: the zero page, raw PFNs).

    The kinds come from the fork's counters, so they hold for a ``kernel`` that checks
    pins once per copy call (v6.9 and later; batch-v3 checks page by page):
    ``anon_dup_checks`` is one per call that shared an anonymous folio, ``refcount_ops``
    one per call with a page behind it and one per PMD that maps a folio (a PMD copy is
    no copy call; the huge zero PMD takes no refcount)."""
    from collections import Counter
    res = traced_fork(sc, kernel)
    stops = Counter(e.rule.removeprefix("stop:") for e in res.trace
                    if e.rule.startswith("stop:"))
    huge_zero = sum(1 for e in res.trace if e.rule == "huge-zero")
    folio_pmds = res.ops.get("pmd_copies", 0) - huge_zero
    anon = res.ops.get("anon_dup_checks", 0)
    file = res.ops.get("refcount_ops", 0) - folio_pmds - anon
    return dict(stops), {"anon": anon, "file": file,
                         "by value": len(res.batches) - anon - file}


def scans_past_folio_end(sc: Scenario, kernel: str) -> dict[str, int]:
    """The batch scans of ``kernel``'s fork of ``sc`` that read the entry after their
    folio, by the stop rule the trace names.

    The kernel mirrors record it (``read_past`` in a stop event): v6.9's
    ``folio_pte_batch()`` is bounded by the page table and VMA only, so a scan that reaches
    its folio's last page reads one entry more.  Most such scans say ``folio-end`` (that
    entry maps the next folio's first page); a scan whose next entry maps some other page
    says ``pfn-gap`` or names the bit that differs, one entry past the folio all the same.
    v6.17 and batch-v3 cap a scan at its folio's end, so they never read past it.
    """
    from collections import Counter
    return dict(Counter(e.rule.removeprefix("stop:") for e in traced_fork(sc, kernel).trace
                        if e.rule.startswith("stop:") and e.get("read_past")))


def large_folio_notes(sc: Scenario, rows: list[Any], lookahead: str,
                      limited: str) -> list[str]:
    """Two differences of the large-folio fork said from the model's own trace: why
    ``lookahead`` reads more PTEs than ``limited`` (batches that ran into their folio's
    end, against ones that met the page table's end or a differing entry), and why the
    pin checks are fewer than the copy calls."""
    from textwrap import fill

    from .kernels.common import stop_words
    by = {r.kernel: r for r in rows}
    stops, kinds = batch_stops(sc, lookahead)
    past = scans_past_folio_end(sc, lookahead)
    more = by[lookahead].ops["pte_reads"] - by[limited].ops["pte_reads"]
    scans, ends = by[lookahead].ops["batch_scans"], sum(past.values())
    # what stopped the scans that did not run past their folio's end
    left = {why: n - past.get(why, 0) for why, n in stops.items()}
    rest = "; ".join(f"{n:,}: {stop_words(why)}" for why, n in sorted(left.items())
                     if n and why != "folio-end")
    odd = {why: n for why, n in past.items() if why != "folio-end"}
    which = "".join(
        f"; in {n:,} scan{'s' * (n != 1)} it was not: {stop_words(why)}"
        for why, n in sorted(odd.items()))
    return [fill(
        f"{lookahead} reads {more:,} more PTEs than {limited}: of its {scans:,} batch "
        f"scans, {ends:,} ran to the end of their folio and read the entry after it, where "
        f"{limited} knows the folio's size and stops without reading on (that entry is "
        f"{'mostly ' * bool(odd)}the next folio's first page{which})"
        + (f"; the other {scans - ends:,} stopped where both read the same ({rest})."
           if scans > ends else "."), 88),
        fill(f"pin checks (anon_dup_checks): {by[lookahead].ops['anon_dup_checks']:,} of "
             f"{by[lookahead].batches:,} copy calls -- the {kinds['anon']:,} that shared an "
             f"anonymous folio; of the rest, {kinds['file']:,} shared page-cache folios and "
             f"{kinds['by value']:,} copied an entry by value (all of them zero-page entries: "
             "pagemap shows no raw PFN entry, so a snapshot has none): neither needs the check.",
             88)]


def fork_time(n: int = 7) -> float | None:
    """The fastest of ``n`` fork() calls of this very process (ms), or None off Linux."""
    if not hasattr(os, "fork") or not sys.platform.startswith("linux"):
        return None
    from .realkernel.timing import fork_ns
    return min(fork_ns() for _ in range(n)) / 1e6

