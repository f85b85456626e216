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

from ..fork import fork
from ..kernels.common import stop_words
from ..pte import SETTABLE_BITS
from . import EXERCISES, Exercise
from .base import index_of
from .layout import DEFAULTS

#: What fork does to each bit of a child PTE, per version (exercise (b)'s table; the
#: rules are the variant modules' copy_present_ptes(), pkmm/kernels/).
BIT_TABLE = "\n".join([
    "| " + " | ".join([
        'bit',
        'v6.8 (one PTE per call)',
        'batch-v3',
        'v6.9, v6.17',
    ]) + " |",
    "| " + " | ".join([
        '---',
        '---',
        '---',
        '---',
    ]) + " |",
    "| " + " | ".join([
        '[A](../glossary.ipynb#A)',
        'cleared',
        'cleared',
        'cleared',
    ]) + " |",
    "| " + " | ".join([
        "[W](../glossary.ipynb#W), [private](../glossary.ipynb#private-mapping)",
        "cleared (the parent's too)",
        "cleared (the parent's too)",
        "cleared (the parent's too)",
    ]) + " |",
    "| " + " | ".join([
        'W, [shared](../glossary.ipynb#shared-mapping)',
        'kept',
        '1 only if *every* PTE of the batch was writable, else 0',
        '1 if *any* PTE of the batch was writable ([any_writable](../glossary.ipynb#any_writable))',
    ]) + " |",
    "| " + " | ".join([
        '[D](../glossary.ipynb#D), private',
        'kept',
        '1 if *any* PTE of the batch was dirty',
        'kept (a change of D ends the batch)',
    ]) + " |",
    "| " + " | ".join([
        'D, shared',
        'cleared',
        'cleared',
        'cleared',
    ]) + " |",
    "| " + " | ".join([
        '[SD](../glossary.ipynb#SD)',
        'kept',
        '**cleared in every child PTE**',
        "tracking on: kept (a change ends the batch); off: the batch's first PTE's "
        "(SD does not end the batch)",
    ]) + " |",
    "| " + " | ".join([
        '[UW](../glossary.ipynb#UW)',
        'cleared unless the child VMA is uffd-wp',
        'same',
        'same',
    ]) + " |",
])

#: Exercise name -> (notebook stem, the introduction students read first).
INTROS: dict[str, tuple[str, str]] = {
    "batches": ("a-batch-sizes", """\
When the parent maps a [large folio](../glossary.ipynb#large-folio) with many PTEs, modern
kernels copy those PTEs in **[batches](../glossary.ipynb#batch)**: one call of the
present-PTE copy function handles a run of PTEs and returns how many it took.

Every batching version agrees on four stops:

- a batch never leaves its folio;
- a small (order-0) folio is always a call of 1;
- a pfn gap ends it (the next PTE must map the next page of the folio);
- an empty slot is no call at all (the copy loop skips it) and ends the run. The layouts
  here have no swap or migration entries (those would end a run too).

What else ends a batch depends on the version:

- **v6.8** does not batch: one call per PTE.
- **batch-v3** (the [seed patch](../glossary.ipynb#seed-patch)) also stops at the end of
  the range being copied (the VMA's end or the end of the 512-PTE
  [PMD slice](../glossary.ipynb#PMD-slice); every layout here lies inside one slice, so
  only the folio's end matters). Of the bits it compares only two: a batch ends where
  [PN](../glossary.ipynb#PN) changes, or [UW](../glossary.ipynb#UW) when the child VMA is
  uffd-wp. D and W never end a batch: the patch counts how many PTEs have them and sets
  the child's batch from the counts (exercise (b)).
- **v6.9 and v6.17** compare the PTE bits ([folio_pte_batch](../glossary.ipynb#folio_pte_batch)),
  ignoring A and W always, D only in a shared mapping (so in a private mapping a change of
  D ends the batch), and SD unless soft-dirty tracking is on; UW and PN are always
  compared. The two make the same batches (they differ in how they read the PTEs, which
  this exercise does not ask).

No problem of this exercise has a pin (`MMF_HAS_PINNED: no`), so no call returns -EAGAIN
and every answer is a list of ints. AE and pins are facts about the page a row maps, not
PTE bits: they never end a batch here.

A generated layout may carry details that do not matter for its question; telling which do
is part of the exercise. Look at the table and predict what each call returns."""),
    "child-bits": ("b-child-pte-bits", """\
fork() writes one child PTE per parent PTE, and the child's bits are not a plain copy.
A [batch](../glossary.ipynb#batch) writes all its child PTEs from one value: its first
PTE's bits, with the changes below (where a cell says *any* or *every*, the value comes
from the whole batch instead). So first split the rows into each version's batches
(exercise (a)), then apply this table to each batch.

""" + BIT_TABLE + """
Why W may be merged in a shared mapping: a read-only shared PTE without a UW mark is only
waiting for its first write fault, which would make it writable anyway. For the same
reason such a PTE is clean (the write fault sets W and D together), so in the shared
problems every read-only PTE shows D 0.

A shared mapping is normally not copied at fork at all: the child's faults can rebuild
every PTE from the [page cache](../glossary.ipynb#page-cache)
([vma_needs_copy](../glossary.ipynb#vma_needs_copy)). A child VMA that is
[uffd-wp](../glossary.ipynb#uffd-wp) (registered with EVENT_FORK) forces the copy: its
write-protect marks live only in the PTEs, and a fault could not rebuild them. That is why
the shared problems carry it. (A [shmem](../glossary.ipynb#shmem) folio's refcount also
holds the page cache's references, one per page: it does not change any bit.)

The problem names two versions: `ARG kernel` and `ARG other kernel`. Predict one bit of every
child PTE under each."""),
    "pin-copies": ("c-pin-copies", """\
A page pinned for [DMA](../glossary.ipynb#DMA) ([io_uring](../glossary.ipynb#io_uring), RDMA)
must stay with the parent: if fork shared it, the parent's next write would copy it away
from the device. So fork gives the child a copy of such a page at once.

**Which pages are copied** (notebook 04 §3). A page is copied, not shared, when all three hold:

1. the process has ever pinned a page ([MMF_HAS_PINNED](../glossary.ipynb#MMF_HAS_PINNED): yes);
2. its folio [may be pinned](../glossary.ipynb#maybe-pinned): a
   [FOLL_PIN](../glossary.ipynb#FOLL_PIN) pin adds
   [GUP_PIN_COUNTING_BIAS](../glossary.ipynb#GUP_PIN_COUNTING_BIAS) = 1024 to a *small*
   folio's refcount (test: refcount ≥ 1024; 1024 [vmsplice](../glossary.ipynb#vmsplice)
   references also pass it: a small folio with refcount ≥ 1024 and no `FOLL_PIN` on its
   line is such a case), but 1 to a large folio's refcount and 1 to its
   [pincount](../glossary.ipynb#pincount) (test: pincount > 0). On either size the folio
   line shows the number of pins as `(N FOLL_PIN)`;
3. the page is [AnonExclusive](../glossary.ipynb#AnonExclusive) (AE 1). A page that is not
   AE is already shared by an earlier fork, and GUP pins only AE pages, so it cannot be
   pinned: it is shared again.

The pin is counted per folio, not per page, so the kernel cannot tell *which* page of a
large folio is pinned: it copies every AE page of that folio. That is why the table has no
per-row pins column: fork sees only the folio line's count.

Why one page per round: fork copies under the page-table lock, where it must not sleep,
so it cannot allocate there; it backs out, allocates one page with the lock dropped, and
retries. The kernel keeps this simple: one spare page at a time.

**How many rounds.** Each copy needs a
[preallocated page](../glossary.ipynb#preallocated-page): fork drops its locks, allocates
and retries (one [-EAGAIN](../glossary.ipynb#-EAGAIN) round). Write the calls as in
notebook 04: a number per call, `E` for a call that returned -EAGAIN.

- **v6.8**: one PTE per call; each copied page costs `E, 1`.
- **batch-v3**: a batch is cut at the first page that needs a copy (the pages before it
  are shared in that call); that page then costs `E, 1` (copied alone), and batching starts
  again at the next PTE.
- **v6.9, v6.17**: a batch's pages are checked in one call, all or nothing.
  1. A batch that holds a page needing a copy is refused as a whole (`E`).
  2. The retry takes its first PTE alone: copied if the three tests hold for it, else
     shared (the preallocated page is then freed unused, but the round was spent).
  3. Batching resumes at the next PTE.

  So the rounds depend on where the batches end: in a private mapping a change of D ends
  one (exercise (a)).

Predict which rows are copied, and how many rounds fork takes."""),
    "refcounts": ("d-refcount-mapcount", """\
Every problem of this exercise is a private anonymous mapping, whose page table fork
always copies.
For each row, fork either *shares* the page with the child or gives the child a *copy*:

- **shared**: one more folio reference ([refcount](../glossary.ipynb#refcount) + 1) and one
  more mapping of that page (its per-page [mapcount](../glossary.ipynb#mapcount) + 1);
- **copied**: the original folio's counters do not change (the copy is a new folio, not
  asked about), and the parent keeps its page as it was: AE, PTE still writable.
  A page is copied when `MMF_HAS_PINNED` is yes, its folio may be pinned,
  and the page is AE: for a large folio that is *every* AE page of it, not only the
  pinned one (exercise (c) gives the rule and its reasons). The non-AE pages of such a
  folio are shared as usual.

Pins ([FOLL_PIN](../glossary.ipynb#FOLL_PIN): 1024 on a small folio, 1 on a large one) and
[vmsplice](../glossary.ipynb#vmsplice) references count in the refcount but in no mapcount:
they are not page-table entries. The PTE bits (D, W, ...) and the version (of the four
offered, which all share or copy the same rows) change no counter. The refcount before fork
is one reference per mapped PTE plus the pins and vmsplice references; a page no PTE maps
has mapcount 0 and, in these layouts, holds no reference.
Predict the counters of every folio in the table after fork. "mapcount" means the
per-page mapcount, one number per page of the folio."""),
    "cow-after-fork": ("e-cow-or-reuse", """\
After fork, both processes map shared pages read-only. A write then does one of three
things (notebook 07's names in brackets):

- **"copy"** (07's `cow-copy`, a [CoW fault](../glossary.ipynb#CoW-fault)): it faults and
  the writer gets a new page of its own;
- **"reuse"** (07's `reuse`; see [reuse](../glossary.ipynb#reuse)): it faults and the kernel
  makes the writer's PTE writable in place, because it can prove nobody else uses the page;
- **"none"** (07's `no fault`): an earlier write fault of the same process already made the
  PTE writable.

When is a page reused? (07's first rule, "reuse a page that is still AnonExclusive",
never fires here: fork left no shared page AE.)

- A small page: when its refcount is 1 (nobody else at all: no other mapping, pin or pipe).
- A page of a large folio, **v6.8 and batch-v3** (the seed patch changed fork, not the
  fault): the same test on the folio's refcount, so only once every other page of the folio
  is unmapped and nobody else holds it.
- **v6.9**: never; it copies even when the writer is alone.
- **v6.17**: when the writer's process alone maps the folio (the kernel reads a "maybe
  mapped shared" flag; with only a parent and a child, it says "alone" exactly when the
  other process maps none of the folio), every reference is one of its
  mappings (no pin, no pipe), *and* it maps more than one page of it. If the written page
  is its last mapped page of the folio, v6.17 copies it, so that the whole large folio can
  be freed.

"the child exits" is a step, not a write: it gets no answer, and it drops all the child's
mappings and references. Predict what each write in the sequence does."""),
    "fork-cost": ("f-fork-cost", """\
Batching is about cost. Notebook 08's model prices fork per PTE written (`pte_writes`)
and per copy call (`set_ptes_calls`: the call, its set_ptes() and its refcount update),
among a few other terms; this exercise counts what those two prices are multiplied by.
The rmap dup calls have no price of their own in 08: its fitted prices absorb them. Count,
for this layout and version:

- `calls`: the calls of the present-PTE copy function (one per batch);
- `set_ptes_calls`: the [set_ptes](../glossary.ipynb#set_ptes)() calls that write child PTEs;
- `pte_writes`: the child PTEs written;
- `anon_dup_checks`: the anon [rmap dup](../glossary.ipynb#rmap-dup) calls. The lab names
  them "checks" because each call also checks whether the child may share the page(s) and
  refuses for a maybe-pinned AE page; it is one count per call.

No problem of this exercise has a pin, so no call is refused and there are no retries:
`calls` and `set_ptes_calls` are always equal here (a refused call would write no PTE).
The checker asks both so that you see that set_ptes() is per batch. An order-0 folio is
one call, one set_ptes() and one rmap dup in every version.
Batching does not shorten all four alike:

- **v6.8**: one of everything per PTE (it writes with set_pte_at(), which is set_ptes()
  for one PTE).
- **batch-v3**: one call and one set_ptes() per batch, but it still duplicates the anon rmap
  page by page (`page_try_dup_anon_rmap()` in a loop over the batch): one per PTE.
- **v6.9, v6.17**: one of each per batch; a whole batch's rmap is duplicated in one call
  (`folio_try_dup_anon_rmap_ptes()`).
- every version writes every child PTE once: batching cannot remove per-PTE work, so
  `pte_writes` is the number of rows.

Every PTE has the same bits except A, which no batching version compares. Notebook 08
counts more operations (refcount updates, PTE reads); this exercise asks for these four."""),
}

#: The lesson notebooks each exercise follows (paths relative to notebooks/).
LEARN: dict[str, list[str]] = {
    "batches": ["03-seed-patch-batching", "06-upstream-batching"],
    "child-bits": ["03-seed-patch-batching", "05-shared-vs-private", "06-upstream-batching"],
    "pin-copies": ["04-pinned-pages"],
    "refcounts": ["02-fork-one-pte-at-a-time", "04-pinned-pages"],
    "cow-after-fork": ["07-after-fork"],
    "fork-cost": ["03-seed-patch-batching", "06-upstream-batching", "08-cost"],
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

#: Student seeds are 32-bit (base.seed_for), so seeds from 2**32 on are no student's.
OUTSIDE_STUDENT_SEEDS = 2 ** 32
#: Exercise name -> (seed, version, what it shows) of a page's second worked example: the
#: hardest version or case of the exercise, from a seed no student can draw.
EXTRA: dict[str, tuple[int, str, str]] = {
    "batches": (OUTSIDE_STUDENT_SEEDS + 29, "batch-v3",
                "batch-v3, where W and D never end a batch but a UW change does "
                "(the child VMA is uffd-wp)"),
    "child-bits": (OUTSIDE_STUDENT_SEEDS + 4, "batch-v3",
                   "a shared mapping with mixed W, where batch-v3 and v6.9 disagree most"),
    "pin-copies": (OUTSIDE_STUDENT_SEEDS + 3, "batch-v3",
                   "batch-v3's cut at the first page that needs a copy"),
    "refcounts": (OUTSIDE_STUDENT_SEEDS + 43, "v6.9",
                  "a pinned folio only partly mapped, and vmsplice references on a shared "
                  "folio"),
    "cow-after-fork": (OUTSIDE_STUDENT_SEEDS, "v6.17",
                       "the reuse rule of v6.17 for a page of a large folio"),
    "fork-cost": (OUTSIDE_STUDENT_SEEDS, "batch-v3",
                  "batch-v3, whose rmap dup stays per page"),
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
                "Write down each call's length; the lengths add up to the number of rows. "
                "The usual distractors: refcounts, AE, A and W; D and SD only where the "
                "version compares them. Whether the child VMA is uffd-wp matters only to "
                "batch-v3: a change of UW ends a batch in v6.9 and v6.17 always, in "
                "batch-v3 only when the child VMA is uffd-wp. Where no UW bit changes, "
                "the child VMA's uffd-wp decides nothing."),
    "child-bits": ("Split the rows into the batches each version makes (exercise (a)'s "
                   "method). Within one batch every child PTE gets the same bit: the first "
                   "PTE's, or the merged value if the version merges this bit. Then apply "
                   "what the version does to that bit in every child PTE (A is always "
                   "cleared; W cleared in a private mapping; D cleared in a shared one; "
                   "SD cleared by batch-v3; UW cleared unless the child VMA is uffd-wp: the "
                   "table above)."),
    "pin-copies": ("First look at MMF_HAS_PINNED: if no, nothing is copied. Otherwise decide "
                   "for each folio whether it may be pinned (refcount or pincount, see "
                   "above); copy every AE row of such a folio, none of the others. Then "
                   "write the calls down one by one, as the version batches (a number per "
                   "call, E for -EAGAIN), and count the E's."),
    "refcounts": ("For each folio: start from its refcount and mapcounts before fork; for "
                  "every row the child *shares*, add one reference and one mapping to that "
                  "page; for a row the child gets a *copy* of (an AE page of a folio that "
                  "may be pinned: for a large folio every AE page), change nothing."),
    "cow-after-fork": ("Keep a small table of who maps what. For each write: is the "
                       "writer's PTE already writable (an earlier write of its own)? Then "
                       "\"none\". Otherwise it faults: reuse if nobody else uses the page "
                       "(the rules above, per version), else copy, after which the writer "
                       "maps a new page of its own. An exit drops every mapping and "
                       "reference of the exiting process."),
    "fork-cost": ("Find the batches (exercise (a)'s method): with only A differing, a "
                  "batching version makes one batch per folio, v6.8 one per PTE. Then count "
                  "per batch: one call, one set_ptes(), as many PTE writes as PTEs, and the "
                  "rmap dup calls the version makes for it (per batch or per page)."),
}


def worked_example(name: str, ex: Exercise | None = None) -> str:
    """The folded answer of a page's worked example (``ex``; default: the first one),
    computed from the model: the key, the method, and what the checker says about the
    typical wrong answer."""
    ex = _example(name) if ex is None else ex
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
            f"**Answer:** `{json.dumps(key)}`\n\n{calls_behind(ex)}"
            f"**Method.** {METHOD[name]}\n\n"
            f"**A wrong answer** ({label}): `{json.dumps(wrong)}`. "
            "What the checker says about it, rule by rule:\n\n" + verdict + "\n\n</details>")


def calls_behind(ex: Exercise) -> str:
    """The fork calls behind a worked example's answer, from the model's own steps: what
    each present-PTE copy call returned (``E`` for -EAGAIN) and the rows it covered.
    Empty for the write-sequence exercise, whose answer is not about fork's calls."""
    if ex.name == "cow-after-fork":
        return ""
    versions = ex.versions if ex.name == "child-bits" else (ex.kernel,)  # type: ignore[attr-defined]
    lines = []
    for kernel in versions:
        p, _ = ex.build()
        r = fork(p, kernel)
        spans = []
        for st in r.steps:
            if st.action == "nonpresent":
                continue
            first = index_of(ex.scenario, st.addr)
            if st.action == "eagain":
                spans.append(f"E (row {first} needs a copy)")
                continue
            rows = f"row {first}" if st.nr == 1 else f"rows {first}-{first + st.nr - 1}"
            why = f" (ends: {stop_words(st.stop)})" if st.stop.startswith("bit:") else ""
            spans.append(rows + (" copied" if st.action == "copy" else "") + why)
        calls = "[" + ", ".join(str(b) for b in r.batches) + "]"
        lines.append(f"- {kernel}: `{calls}`: " + "; ".join(spans) + ".")
    return ("**The calls behind it** (what each present-PTE copy call returned, `E` for "
            "-EAGAIN, and the rows it took):\n\n" + "\n".join(lines) + "\n\n")


def _example(name: str) -> Exercise:
    from . import make
    return make(name, LAB_SEEDS[name][1])


def _extra(name: str) -> Exercise:
    from . import make
    seed, kernel, _ = EXTRA[name]
    return make(name, seed, kernel=kernel)


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
              "the PTE legend") + f": {legend}, AE AnonExclusive"
    return (f"# Exercise ({stem[0]}): {cls.title}\n\n{text}\n\n"
            f"Answer format: {cls.answer_format}.\n\nLearn it in: {learn}.\n\n"
            "**How to read the table**\n\n"
            f"- Columns: {legend}.\n"
            "- `#` numbers the *present PTEs* in address order; answers use these numbers.\n"
            "- An empty slot is an unnumbered `(none)` line, so row 4 is not always slot 4 "
            "(the lessons' pictures number slots, empty ones included).\n"
            "- The `ARG` lines echo the problem's arguments: the same seed and version give "
            "the same problem again.\n\n"
            "*Predict first; use the model only to check yourself afterwards.*")


KERNEL_DEFAULT = "None: the seed picks the version"
#: The problem cell's comment on KERNEL, where "the seed picks the version" is not all.
KERNEL_COMMENT = {
    "child-bits": "None: the seed picks both versions (a version here sets ARG kernel)",
}

CHECK_MD = ("## Check\n\nPrints your score (0 to 1) and, for each mistake, the kernel rule "
            "that decides it. It never fails, so you can iterate.")

STATIC_MD = ("By design this page never shows the answer of your problem: in a graded "
             "course every student gets their own seed. To check yours, run this notebook in "
             "Jupyter (your course's Binder or JupyterLite link, or Jupyter on your own "
             "machine), set `ANSWER` and run the Check cell: it prints your score and the "
             "rule behind each mistake.")


def lab_notebook(name: str, seed: int | None = None) -> dict[str, Any]:
    """The self-study notebook of notebooks/exercises/ (no key of its own problem anywhere
    a student reads; the worked example's key, for another seed, is folded)."""
    stem, _ = INTROS[name]
    seed = LAB_SEEDS[name][0] if seed is None else seed
    example, extra = _example(name), _extra(name)
    extra_seed, _, what = EXTRA[name]
    if seed in (example.seed, extra.seed):
        raise ValueError(f"lab_notebook: seed={seed} is a worked example's seed; pick "
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
        ("markdown", f"## A second worked example\n\n{what[0].upper() + what[1:]}: seed "
                     f"{extra_seed} (2**32 + {extra_seed - OUTSIDE_STUDENT_SEEDS}, a seed no "
                     f"student is given) under {extra.kernel}.", {}),
        ("code", f"example2 = pkmm.exercises.make({name!r}, {extra.seed}, "
                 f"kernel={extra.kernel!r})\nprint(example2)", {}),
        ("markdown", worked_example(name, extra).replace(
            "of the example</b>", "of the second example</b>"), {}),
        ("markdown", "## Your problem", {}),
        ("code", f"SEED = {seed}          # any int: every seed is another problem\n"
                 f"KERNEL = None     # {KERNEL_COMMENT.get(name, KERNEL_DEFAULT)}; "
                 f"or one of {kernels}\n"
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
