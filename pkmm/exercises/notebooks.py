"""The exercise notebooks, as nbformat-4 JSON: the lab's self-study version and the
graded course versions (nbgrader source, otter master).

Simulator concept (a build tool for the teaching layer).  Notebooks are plain dicts
written with :mod:`json`, so ``import pkmm`` and ``python -m pkmm course`` need no Jupyter
package.  Cells follow one convention shared with the lesson notebooks: a cell tagged
``remove-cell`` (asserts that pin a notebook's claims for the test run) is left out of
both static sites and shows collapsed in the lab.
Taught in: notebooks/exercises/README.md
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from ..pte import SETTABLE_BITS
from . import EXERCISES, Exercise
from .layout import DEFAULTS

#: Exercise name -> (notebook stem, the introduction students read first).
INTROS: dict[str, tuple[str, str]] = {
    "batches": ("a-batch-sizes", """\
When the parent maps a [large folio](../glossary.ipynb#large-folio) with many PTEs, modern
kernels copy those PTEs in **[batches](../glossary.ipynb#batch)**: one call of the
present-PTE copy function handles a run of PTEs and returns how many it took. Every version
agrees on three things: a batch never leaves its folio; a small (order-0) folio is always a
call of 1; an empty slot is no call at all (the copy loop skips it) and ends the run. What
else ends a batch depends on the version:

- **v6.8** does not batch: one call per PTE.
- **batch-v3** (the [seed patch](../glossary.ipynb#seed-patch)) takes consecutive pages of
  one folio; besides the stops every version shares (a pfn gap, an empty or non-present
  slot, the folio's or the range's end) it compares only two bits: a batch ends where
  [PN](../glossary.ipynb#PN) changes, or [UW](../glossary.ipynb#UW) when the child VMA is
  uffd-wp. D and W are counted, not compared.
- **v6.9 and v6.17** compare the PTE bits ([folio_pte_batch](../glossary.ipynb#folio_pte_batch)),
  ignoring A and W always, D only in a shared mapping (so in a private mapping a change of
  D ends the batch), and SD unless soft-dirty tracking is on; UW and PN are compared.

A generated layout may carry details that do not matter for its question; telling which do
is part of the exercise. Look at the table and predict what each call returns."""),
    "child-bits": ("b-child-pte-bits", """\
fork() writes one child PTE per parent PTE, and the child's bits are not a plain copy.

**What you need from 05.** The child's PTE is old ([A](../glossary.ipynb#A) cleared) and, in
a [private mapping](../glossary.ipynb#private-mapping), write-protected like the parent's. A
[batch](../glossary.ipynb#batch) writes all its child PTEs from its first PTE's bits, so a bit
that differs inside a batch is either a reason to end the batch (each batch then gets exact
bits) or *merged*: batch-v3 marks a private batch dirty ([D](../glossary.ipynb#D)) if any
PTE was dirty, and makes a shared batch read-only ([W](../glossary.ipynb#W) 0) unless every
PTE was writable, while v6.9 and v6.17 make a shared batch writable if any PTE was
([any_writable](../glossary.ipynb#any_writable)). v6.8 copies one PTE per call, so nothing is
merged. A [shared mapping](../glossary.ipynb#shared-mapping) is normally not copied at fork at
all (the child faults its pages in later, [vma_needs_copy](../glossary.ipynb#vma_needs_copy));
a child VMA that is [uffd-wp](../glossary.ipynb#uffd-wp) (registered with EVENT_FORK) forces the
copy, which is why the shared problems carry it. A shmem folio's refcount also holds the
[page cache](../glossary.ipynb#page-cache)'s reference, one per page.

The problem names two versions: `ARG kernel` and `ARG other kernel`. Predict one bit of every
child PTE under each."""),
    "pin-copies": ("c-pin-copies", """\
A page pinned for [DMA](../glossary.ipynb#DMA) ([io_uring](../glossary.ipynb#io_uring), RDMA)
must stay with the parent: if fork shared it, the parent's next write would copy it away
from the device.

**What you need from 04.** A [FOLL_PIN](../glossary.ipynb#FOLL_PIN) pin adds
[GUP_PIN_COUNTING_BIAS](../glossary.ipynb#GUP_PIN_COUNTING_BIAS) = 1024 to a *small* folio's
refcount, but only 1 to a large folio's refcount and 1 to its
[pincount](../glossary.ipynb#pincount). So a small folio [may be
pinned](../glossary.ipynb#maybe-pinned) when its refcount is at least 1024, a large one when
its pincount is above 0. Fork asks only if the process has ever pinned a page
([MMF_HAS_PINNED](../glossary.ipynb#MMF_HAS_PINNED)), and then gives the child a private copy
of every [AnonExclusive](../glossary.ipynb#AnonExclusive) page of a folio that may be pinned:
the kernel does not know *which* page of a large folio is pinned. Each copy needs a
[preallocated page](../glossary.ipynb#preallocated-page): fork drops its locks, allocates and
retries (an [-EAGAIN](../glossary.ipynb#-EAGAIN) round). v6.8 and batch-v3 check page by
page. v6.9 and v6.17 check a batch's anonymous pages in one call, all or nothing: if any page
of the batch must be copied, the whole batch is refused, fork allocates a page, and the retry
takes that one PTE alone — sharing it if it is not AnonExclusive (the allocated page is then
wasted, but the round was spent), copying it if it is.

Predict which rows are copied, and how many rounds fork takes."""),
    "refcounts": ("d-refcount-mapcount", """\
Sharing a page with the child costs one folio reference and one mapping per PTE
([refcount](../glossary.ipynb#refcount), [mapcount](../glossary.ipynb#mapcount)). Pins
([FOLL_PIN](../glossary.ipynb#FOLL_PIN): 1024 on a small folio, 1 on a large one) and
[vmsplice](../glossary.ipynb#vmsplice) references also count in the refcount but in no
mapcount; a page copied for the child leaves the original folio untouched. The PTE bits (D,
W, ...) change no counter. Predict the counters of every folio in the table after fork (the
child's new copies are new folios, not asked about)."""),
    "cow-after-fork": ("e-cow-or-reuse", """\
After fork, both processes map shared pages read-only. A write then either faults and
**copies** the page ("copy", a [CoW fault](../glossary.ipynb#CoW-fault)), faults and
**reuses** it in place ("reuse", [reuse](../glossary.ipynb#reuse)) when the kernel can prove
nobody else uses it, or does not fault at all ("none", notebook 07's `no fault`) because an
earlier write fault of the same process already made its PTE writable. A small page is reused
when its refcount is 1. A page of a large folio is never reused by v6.8 and v6.9; v6.17
reuses it once the folio is mapped by one process only and every reference is one of that
process's mappings (no pin, no pipe). "the child exits" is a step, not a write: it gets no
answer. Predict what each write in the sequence does."""),
    "fork-cost": ("f-fork-cost", """\
Batching is about cost: fewer calls, fewer [set_ptes](../glossary.ipynb#set_ptes)() and
fewer rmap updates per PTE. Count, for this layout and version: the calls of the present-PTE
copy function (one per batch), the set_ptes() calls, the child PTEs written, and the anon
[rmap dup](../glossary.ipynb#rmap-dup) calls (`anon_dup_checks`: the calls that add the
child's mappings, and may refuse for a pinned page). Batching does not shorten all of them
alike: v6.8 makes one call per PTE; **batch-v3** takes one call, one reference addition and
one set_ptes() per batch, but still duplicates the anon rmap page by page
(`page_try_dup_anon_rmap()` in a loop over the batch: one per PTE); v6.9 and v6.17 duplicate a
whole batch's rmap in one call (`folio_try_dup_anon_rmap_ptes()`). Notebook 08 counts more
operations (refcount updates, PTE reads); this exercise asks for these four. Every PTE has
the same bits except A, which no batching version compares."""),
}

#: The lesson notebooks each exercise follows (paths relative to notebooks/).
LEARN: dict[str, list[str]] = {
    "batches": ["03-seed-patch-batching", "06-upstream-batching"],
    "child-bits": ["05-shared-vs-private", "06-upstream-batching"],
    "pin-copies": ["04-pinned-pages"],
    "refcounts": ["02-fork-one-pte-at-a-time", "04-pinned-pages"],
    "cow-after-fork": ["07-after-fork"],
    "fork-cost": ["06-upstream-batching", "08-cost"],
}

#: Exercise name -> (the seed of the self-study problem, the seed of its worked example).
#: Chosen so that the six pages show different versions (the seed draws the version) and
#: each worked example runs another version than its page's problem.
LAB_SEEDS: dict[str, tuple[int, int]] = {
    "batches": (5, 7),            # v6.17; example v6.9
    "child-bits": (3, 0),         # batch-v3 and v6.9; example v6.17 and batch-v3
    "pin-copies": (2, 5),         # v6.8; example v6.9
    "refcounts": (7, 2),          # v6.9; example v6.8
    "cow-after-fork": (19, 7),    # v6.17 (a large folio reused); example v6.9
    "fork-cost": (4, 0),          # batch-v3; example v6.17
}

#: The typical wrong answer :func:`misconception` builds, in words.
MISCONCEPTIONS: dict[str, str] = {
    "batches": "one call per folio, the bits do not matter",
    "child-bits": "the child copies the parent's bits",
    "pin-copies": "only the pinned page is copied, in one round",
    "refcounts": "every page is shared, so every counter doubles",
    "cow-after-fork": "every write after fork copies",
    "fork-cost": "no batching: one of everything per PTE",
}

#: How to work each exercise, step by step (the worked example applies it).
METHOD: dict[str, str] = {
    "batches": ("Walk the table from row 0. A call starts at a row and takes the next row "
                "while that row maps the next page of the same folio and nothing this "
                "version compares has changed; an empty slot or a new folio ends the call. "
                "Write down each call's length; the lengths add up to the number of rows."),
    "child-bits": ("Split the rows into the batches each version makes (exercise (a)'s "
                   "method). Within one batch every child PTE gets the same bit: the first "
                   "PTE's, or the merged value if the version merges this bit. Then apply "
                   "what the version does to that bit in every child PTE (A is always "
                   "cleared, W removed in a private mapping, SD cleared by the seed "
                   "patch)."),
    "pin-copies": ("First look at MMF_HAS_PINNED: if no, nothing is copied. Otherwise decide "
                   "for each folio whether it may be pinned (refcount or pincount, see "
                   "above); copy every AE row of such a folio, none of the others. Then "
                   "count the rounds call by call, as the version batches."),
    "refcounts": ("For each folio: start from its refcount and mapcounts before fork; for "
                  "every row the child *shares*, add one reference and one mapping to that "
                  "page; for a row the child gets a *copy* of (a pinned AE page), change "
                  "nothing."),
    "cow-after-fork": ("Keep a small table of who maps what. For each write: is the "
                       "writer's PTE already writable (an earlier write of its own)? Then "
                       "\"none\". Otherwise it faults: reuse if nobody else uses the page "
                       "(small page: refcount 1; large folio: only under v6.17, and only "
                       "when this process alone maps the folio), else copy, after which the "
                       "writer maps a new page of its own."),
    "fork-cost": ("Find the batches (exercise (a)'s method): with only A differing, a "
                  "batching version makes one batch per folio, v6.8 one per PTE. Then count "
                  "per batch: one call, one set_ptes(), as many PTE writes as PTEs, and the "
                  "rmap dup calls the version makes for it (per batch or per page)."),
}


def worked_example(name: str) -> str:
    """The folded answer of a page's worked example, computed from the model: the key, the
    method, and what the checker says about the typical wrong answer."""
    ex = _example(name)
    key = ex.solve()
    if name == "cow-after-fork":
        # Every write gets the other outcome, so the checker explains each one of them.
        wrong: Any = ["reuse" if k == "copy" else "copy" for k in key]
        label = "each write given another outcome than its own"
    else:
        wrong, label = misconception(ex), MISCONCEPTIONS[name]
    verdict = ex.check(wrong).explanation
    return ("<details><summary><b>Answer and explanation of the example</b> (work it "
            "first, then open)</summary>\n\n"
            f"**Answer:** `{json.dumps(key)}`\n\n**Method.** {METHOD[name]}\n\n"
            f"**A wrong answer** ({label}): `{json.dumps(wrong)}`. "
            "What the checker says about it, rule by rule:\n\n" + verdict + "\n\n</details>")


def _example(name: str) -> Exercise:
    from . import make
    return make(name, LAB_SEEDS[name][1])


KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
REMOVE = {"tags": ["remove-cell"], "jupyter": {"source_hidden": True, "outputs_hidden": True}}


def misconception(ex: Exercise) -> Any:
    """A typical wrong answer for ``ex`` (the misconception is named in each comment).
    It can coincide with the key on a layout where the misconception does no harm."""
    key = ex.solve()
    rows = sorted(ex.scenario.ptes, key=lambda e: e["addr"])
    if ex.name == "batches":           # "one batch per folio, bits do not matter"
        per_folio: list[int] = []
        for i, e in enumerate(rows):
            if i and e["folio"] == rows[i - 1]["folio"]:
                per_folio[-1] += 1
            else:
                per_folio.append(1)
        return per_folio if per_folio != key else [1] * sum(key)
    if ex.name == "child-bits":        # "the child copies the parent's bits"
        bit = ex.bit  # type: ignore[attr-defined]
        return {k: [int(e.get(bit, DEFAULTS[bit])) for e in rows] for k in key}
    if ex.name == "pin-copies":        # "only the pinned page is copied, once"
        pinned = [i for i, e in enumerate(rows)
                  if {"folio": e["folio"], "page": e["page"]} in ex.scenario.pins]
        return {"copied": pinned, "eagain": len(pinned)}
    if ex.name == "refcounts":         # "every page is shared: everything doubles"
        return {n: {"refcount": 2 * v["refcount"], "mapcount": [2] * len(v["mapcount"])}
                for n, v in key.items()}
    if ex.name == "cow-after-fork":    # "every write after fork copies"
        return ["copy"] * len(key)
    n = len(rows)                      # "no batching: one of everything per PTE"
    return {"calls": n, "set_ptes_calls": n, "pte_writes": n, "anon_dup_checks": n}


def new_cell(kind: str, source: str, stem: str, n: int, **metadata: Any) -> dict[str, Any]:
    """One nbformat-4.5 cell with a stable id (same notebook, same ids: clean diffs)."""
    cell_id = hashlib.sha256(f"{stem}:{n}".encode()).hexdigest()[:12]
    cell: dict[str, Any] = {"cell_type": kind, "id": cell_id, "metadata": metadata,
                            "source": source}
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def new_notebook(cells: list[dict[str, Any]]) -> dict[str, Any]:
    return {"cells": cells, "metadata": {"kernelspec": dict(KERNELSPEC),
                                         "language_info": {"name": "python"}},
            "nbformat": 4, "nbformat_minor": 5}


def dumps(nb: dict[str, Any]) -> str:
    """The notebook as text, formatted the way Jupyter writes it."""
    return json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n"


def intro(name: str, up: str) -> str:
    """The first markdown cell; ``up`` leads from the notebook to notebooks/ ("" in a
    course folder, where the lessons and the glossary are not beside the notebook)."""
    stem, text = INTROS[name]
    cls = EXERCISES[name]
    learn = ", ".join(f"[{n}]({up}{n}.ipynb)" for n in LEARN[name]) if up else \
        ", ".join(f"`{n}`" for n in LEARN[name])
    if not up:
        text = re.sub(r"\[([^]]+)\]\(\.\./glossary\.ipynb#[^)]*\)", r"\1", text)
    legend = ", ".join(f"{b.letter} {b.name.replace('_', '-')}" for b in SETTABLE_BITS)
    legend = (f"[the PTE legend]({up}glossary.ipynb#the-PTE-legend)" if up else
              "the PTE legend") + f": {legend}, AE AnonExclusive, pins: FOLL_PIN pins"
    return (f"# Exercise ({stem[0]}): {cls.title}\n\n{text}\n\n"
            f"Answer format: {cls.answer_format}.\n\nLearn it in: {learn}.\n\n"
            f"Table columns ({legend}). The `#` column numbers the *present PTEs* in address "
            "order, and answers refer to those numbers; an empty slot between two PTEs is "
            "shown as an unnumbered `(none)` line, so row 4 is not always slot 4 of the VMA "
            "(the lessons' pictures number slots, empty ones included). The `ARG` lines at "
            "the top of a problem echo its arguments: the same seed and version give the "
            "same problem again.\n\n"
            "*Predict first; use the model only to check yourself afterwards.*")


CHECK_MD = ("## Check\n\nPrints your score (0 to 1) and, for each mistake, the kernel rule "
            "that decides it. It never fails, so you can iterate.")

STATIC_MD = ("On a static page nothing can be graded: open the notebook in a running "
             "Jupyter (Binder, JupyterLite or your own) to set `ANSWER` and check it, or "
             "change `SEED` for another problem. The answer of this seed is printed nowhere a "
             "student reads; the worked example above shows the method on another seed.")


def lab_notebook(name: str, seed: int | None = None) -> dict[str, Any]:
    """The self-study notebook of notebooks/exercises/ (no key of its own problem anywhere
    a student reads; the worked example's key, for another seed, is folded)."""
    stem, _ = INTROS[name]
    seed = LAB_SEEDS[name][0] if seed is None else seed
    example = _example(name)
    if example.seed == seed:
        raise ValueError(f"lab_notebook: seed={seed} is the worked example's seed; pick "
                         "another")
    kernels = ", ".join(repr(k) for k in EXERCISES[name].kernels)
    src = [
        ("markdown", intro(name, "../"), {}),
        ("markdown", f"## A worked example\n\nFirst a solved problem of the same kind, seed "
                     f"{example.seed} under {example.kernel}: try it, then open the answer "
                     "below it.", {}),
        ("code", "import pkmm.exercises\n\n"
                 f"example = pkmm.exercises.make({name!r}, {example.seed})\nprint(example)", {}),
        ("markdown", worked_example(name), {}),
        ("markdown", "## Your problem", {}),
        ("code", f"SEED = {seed}          # any int: every seed is another problem\n"
                 f"KERNEL = None     # None: the seed picks the version; or one of {kernels}\n"
                 f"ex = pkmm.exercises.make({name!r}, SEED, kernel=KERNEL)\nprint(ex)", {}),
        ("markdown", "## Your answer\n\nReplace `None` with your prediction, in the answer "
                     "format printed above.", {}),
        ("code", "ANSWER = None", {}),
        ("markdown", CHECK_MD, {}),
        ("code", "print(ex.check(ANSWER))", {}),
        ("markdown", STATIC_MD, {}),
        ("code", "# Self-test of the exercise (hidden on the site): the key scores full "
                 "marks, the same seed\n# gives the same problem, and no answer scores 0.\n"
                 "key = ex.solve()\nassert ex.check(key).full\n"
                 f"assert pkmm.exercises.make({name!r}, SEED, kernel=KERNEL).show() == "
                 "ex.show()\nassert ex.check(None).score == 0", REMOVE),
    ]
    return new_notebook([new_cell(k, s, stem, i, **m) for i, (k, s, m) in enumerate(src)])
