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

from ..folio import GUP_PIN_COUNTING_BIAS
from ..fork import fork
from ..kernels import get_kernel
from ..kernels.common import stop_words
from ..pte import PAGE_SIZE, PMD_SIZE, PTE_BIT, SETTABLE_BITS
from . import EXERCISES, Exercise
from .base import index_of, ptes_of
from .counts import folio_counts
from .layout import BASE, DEFAULTS, scenario
from .probes import CMP_BITS, ignored_bits


def _sd_off_example(kernel: str = "v6.9") -> str:
    """The table's example of a batch without soft-dirty tracking, from the model: three
    PTEs of one folio whose SD is 1 0 0, forked under ``kernel``."""
    folios = {"A": {"order": 2}}
    parent = [1, 0, 0]
    ptes: list[dict[str, Any]] = [{"addr": BASE + i * PAGE_SIZE, "folio": "A", "page": i,
                                   "nr": 1, "soft_dirty": bool(sd)}
                                  for i, sd in enumerate(parent)]
    p, _ = scenario("sd-off", folios, ptes, npages=4).build()
    child = [int(fork(p, kernel).child.pte(e["addr"]).soft_dirty)  # type: ignore[union-attr]
             for e in ptes]
    return (f"e.g. parent SD {' '.join(map(str, parent))} gives the child "
            f"{' '.join(map(str, child))}")


def _refcount_one_example(kernel: str = "v6.8") -> str:
    """Exercise (e)'s case of the v6.8 / batch-v3 reuse rule, from the model: an order-2
    folio the parent maps whole, forked under ``kernel``; the child exits and the parent
    writes its four pages in order."""
    from .cow import KINDS
    ptes = [{"addr": BASE + i * PAGE_SIZE, "folio": "A", "page": i, "nr": 1}
            for i in range(4)]
    p, folios = scenario("refcount-one", {"A": {"order": 2}}, ptes, npages=4).build()
    child = fork(p, kernel).child
    child.exit()
    ref = folio_counts(folios)["A"]["refcount"]
    said = []
    for i in range(4):
        before = folio_counts(folios)["A"]["refcount"]
        p.write(BASE + i * PAGE_SIZE, i + 1)
        kind = p.last_fault.kind  # type: ignore[union-attr]
        said.append(f'row {i} (refcount {before}): "{KINDS.get(kind, kind)}"')
    return (f"For example, an order-2 folio the parent maps whole has refcount {ref} after "
            "the child exits; the parent then writes rows 0-3 in order, and each copy drops "
            "one reference: " + "; ".join(said) + ".")


SD_OFF_EXAMPLE = _sd_off_example()
REFCOUNT_ONE_EXAMPLE = _refcount_one_example()
#: The pin bias the (c) and (d) prose quotes, from the model (pkmm.folio).
_BIAS, _BIAS_1 = str(GUP_PIN_COUNTING_BIAS), str(GUP_PIN_COUNTING_BIAS + 1)
#: What one page table maps (a PMD's span), in the words (a) uses.
_PT_SPAN = f"{PMD_SIZE >> 20} MiB"

#: The probes of exercise (a)'s table: which VMA each column of the rule forks under.
_PRIVATE: tuple[tuple[str, Any], ...] = ()
_TRACKED = (("soft_dirty_tracking", True),)
_SHARED = (("backing", "shmem"), ("shared", True), ("uffd_fork", True), ("uffd_wp", True))
#: How the table words each pattern of (private, private + soft-dirty tracking, shared)
#: "does a change of the bit end a batch?".
_WHEN = {
    (False, False, False): "never",
    (True, True, True): "always",
    (True, True, False): "in a private mapping only (a shared child's PTEs are made clean "
                         "anyway)",
    (False, True, False): "only with [soft-dirty](../glossary.ipynb#soft-dirty) tracking on "
                          "(below the table)",
}


def batch_stop_rows(kernels: tuple[str, ...] = ("v6.9", "v6.17")) -> list[tuple[str, str]]:
    """Exercise (a)'s table: (bit letters, when a change of them ends a batch), read from
    the model's batch scan (:func:`pkmm.exercises.probes.ignored_bits`) under ``kernels``,
    which must agree (the table has one column for them)."""
    def pattern(kernel: str, bit: str) -> tuple[bool, bool, bool]:
        private, tracked, shared = (ignored_bits(kernel, kw)[bit] == "compared"
                                    for kw in (_PRIVATE, _TRACKED, _SHARED))
        return private, tracked, shared
    rows: dict[str, list[str]] = {}
    for bit in CMP_BITS:
        seen = {pattern(k, bit) for k in kernels}
        if len(seen) != 1:
            raise ValueError(f"batch_stop_rows: kernels {kernels} compare {bit} "
                             "differently; give them one column each")
        rows.setdefault(_WHEN[seen.pop()], []).append(PTE_BIT[bit].letter)
    order = ["never", *(w for w in rows if w not in ("never", "always")), "always"]
    return [(", ".join(rows[w]), w) for w in order if w in rows]


BATCH_STOP_TABLE = "\n".join(
    ["| bit | ends a batch in v6.9, v6.17 |", "|---|---|"]
    + [f"| {bits} | {when} |" for bits, when in batch_stop_rows()])


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
        'cleared (the child has not used the page yet)',
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
        "1 if the first PTE or any later one of the batch was writable (the first "
        "PTE's W, or [any_writable](../glossary.ipynb#any_writable), which records the "
        "later ones)",
    ]) + " |",
    "| " + " | ".join([
        '[D](../glossary.ipynb#D), private',
        'kept',
        '1 if *any* PTE of the batch was dirty (harmless: below the table)',
        'kept (a change of D ends the batch)',
    ]) + " |",
    "| " + " | ".join([
        'D, shared',
        'cleared (why: below the table)',
        'cleared',
        'cleared',
    ]) + " |",
    "| " + " | ".join([
        '[SD](../glossary.ipynb#SD)',
        'kept',
        'cleared in every child PTE (it does not compare SD, so a batch may mix 0 '
        "and 1: clearing gives no PTE another PTE's mark)",
        "tracking on: kept (a change ends the batch); off: the batch's first PTE's "
        "(SD does not end the batch; " + SD_OFF_EXAMPLE + "; harmless: below the "
        "table)",
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
When the parent maps a [large folio](../glossary.ipynb#large-folio) (a folio, the block of
pages the kernel manages as one unit, of more than one page) with many PTEs, modern
kernels copy those PTEs in **[batches](../glossary.ipynb#batch)**: one call of the
function that copies present PTEs handles a run of PTEs and returns how many it took.
That function is `copy_present_ptes()` (in v6.8, which copies one PTE per call,
`copy_present_pte()`); fork's loop over a page table, `copy_pte_range()`, calls it.

Two terms first: a *pfn* ([page frame number](../glossary.ipynb#pfn)) says which physical
page a PTE maps, and an *order-n* folio ([order](../glossary.ipynb#order)) has 2<sup>n</sup> pages,
so an order-0 folio is one page.

Every batching version (batch-v3, v6.9, v6.17) agrees on these limits of a call:

- a batch never leaves its folio;
- so a small (order-0) folio, one page, is always a call of 1;
- a pfn gap ends it (the next PTE must map the next page of the folio);
- an empty slot is no call at all (the copy loop skips it) and ends the run. The layouts
  here have no swap or migration entries (those would end a run too);
- the end of the range being copied: the end of the [VMA](../glossary.ipynb#VMA) (a
  *virtual memory area*: one mapped range of the process, such as this region) or of the
  page table (""" + _PT_SPAN + """ on x86-64). No layout here reaches it.

What else ends a batch depends on the version:

- **v6.8** does not batch: one call per PTE.
- **batch-v3** (the [seed patch](../glossary.ipynb#seed-patch)) measures a batch with
  `folio_nr_pages_cont_mapped()`.
  - Of the PTE bits, it compares only two: [PN](../glossary.ipynb#PN) (protnone: made
    inaccessible on purpose, so that the next access faults and tells the kernel which
    CPU uses the page: NUMA hinting) always, and
    [UW](../glossary.ipynb#UW) (userfaultfd write-protect: "tell a monitor before any
    write") only when the child VMA is [uffd-wp](../glossary.ipynb#uffd-wp) (it
    keeps those marks). Otherwise the child drops UW anyway.
  - [D](../glossary.ipynb#D) (dirty) and [W](../glossary.ipynb#W) (writable) never end a
    batch: it counts how many PTEs have them and sets the child's
    batch from the counts. SD and A never end one either.
- **v6.9 and v6.17** compare the PTE bits with
  [folio_pte_batch](../glossary.ipynb#folio_pte_batch)() (v6.17:
  `folio_pte_batch_flags()`). Which bit changes end a batch there:

""" + BATCH_STOP_TABLE + """

The batch scan of v6.9 and v6.17 can be told to ignore D and SD, but not UW, so a UW change
ends a batch even where the child drops UW. A layout states the bits it wants. In a real
run, x86's pte_mkdirty() sets SD with D, so a row with D 1 and SD 0 is a PTE whose SD a
tracker cleared after the write (clearing SD leaves D). The problem's VMA line says
`soft-dirty tracking off` or `ON`. The VMA's VM_SOFTDIRTY flag means "count the whole VMA
as soft-dirty", so tracking *off* is that flag *set*, as in every new or grown VMA (a VMA
can get it back after a tracker cleared it): /proc/pid/pagemap then reports every page of
the VMA soft-dirty, whatever the PTE says, so the marks mean nothing and mixing them is
safe. On means a tool cleared that flag and the SD marks to watch for new writes.
v6.9 and v6.17 make the same batches (they differ in how they read the PTEs, which this
exercise does not ask).

No problem of this exercise has a pin (`MMF_HAS_PINNED: no`; a pin can make a call fail
and retry, exercise (c)), so every call succeeds and every answer is a list of ints. AE
([AnonExclusive](../glossary.ipynb#AnonExclusive): the page is this process's alone) and
refcounts are facts about the page a row maps, not PTE bits: they never end a batch here.

A generated layout may carry details that do not matter for its question; telling which do
is part of the exercise. Look at the table and predict what each call returns."""),
    "child-bits": ("b-child-pte-bits", """\
fork() writes one child PTE per parent PTE, and the child's bits are not a plain copy.
A [batch](../glossary.ipynb#batch) writes all its child PTEs from one value: its first
PTE's bits, with the changes below. Where a cell says *any* or *every*, the value comes
from the whole batch; a bit that may differ inside a batch but is not merged comes from the
first PTE for all of them (the SD cell's "first PTE's"). So first split the rows into each
version's batches (exercise (a)), then apply this table to each batch. No problem here has
a pin (`MMF_HAS_PINNED: no`), so fork shares every page and the private W row holds for all
of them (a pinned page that fork copies instead keeps the parent's PTE writable: exercises
(c), (d)).

""" + BIT_TABLE + """

Why W may be merged in a shared mapping: a PTE of a writable shared mapping is read-only
only so that its first write faults
([write-notify](../glossary.ipynb#write-notify)). A file system that writes pages back
wants that fault to hear of the write. The shared problems here are
[shmem](../glossary.ipynb#shmem), which writes nothing back (and is not anonymous, so its
rows show AE 0: AE marks anonymous pages only). Their PTEs are read-only because the VMA is
registered for [uffd-wp](../glossary.ipynb#uffd-wp): the kernel then builds every new PTE
of the VMA read-only, so that the only way to a writable PTE is a write fault, which first
looks for a UW mark. When a process writes through such a PTE of its own (parent's or
child's alike), that write fault makes the PTE writable; only a UW mark would stop it and
report the write to the monitor instead. So either direction is safe:

- batch-v3 is cautious: a batch with one read-only PTE gives a read-only child batch, and
  the child's first write fault makes it writable again;
- v6.9 and v6.17 are generous: one writable PTE makes the child's batch writable, which
  only skips that fault.

For the same reason such a PTE is clean (the write fault sets W and D together), so in
the shared problems every read-only PTE shows D 0. A PTE with UW 1 is always read-only,
and a UW change ends a batch here (exercise (a)), so a UW 1 batch has no W to merge: it
stays W 0.

Why batch-v3's merged D is harmless in a private mapping: for an anonymous page, D only
tells reclaim to write the page to swap before freeing it. A D 1 the child did not earn
costs at most one needless swap write; it never loses data. No program can see it either:
/proc/pid/pagemap reports a PTE's SD and UW, not its D.

Why taking the first PTE's SD (v6.9, v6.17) is harmless without tracking, even where a
child PTE loses a 1: with
tracking off, /proc/pid/pagemap reports every page of the VMA soft-dirty (its VM_SOFTDIRTY
flag), whatever the PTEs say, so no program can see the difference.

Why D is cleared in a shared child: D says "written through this PTE". The child has
written nothing, and the parent's PTE keeps its D, which is what later tells
[writeback](../glossary.ipynb#writeback) (the file system's write to disk) the page
changed.

Why a shared problem is copied at all: fork normally skips a shared mapping, since the
child's faults can map its pages again from the file's cache
([vma_needs_copy](../glossary.ipynb#vma_needs_copy)). A child VMA that is uffd-wp forces
the copy, because its write-protect marks live only in the PTEs. That is why every shared
problem's VMA line says the child VMA is uffd-wp (registered with
[EVENT_FORK](../glossary.ipynb#EVENT_FORK), which passes the registration on to the child).

The problem names two versions: `ARG kernel` and `ARG other kernel`. Predict one bit of every
child PTE under each."""),
    "pin-copies": ("c-pin-copies", """\
A page pinned by a driver for [DMA](../glossary.ipynb#DMA) (RDMA, say) or by
[io_uring](../glossary.ipynb#io_uring) must stay with the parent: if fork shared it, the
parent's next write would fault and give the parent a new copy (CoW), while the device
keeps using the old page. So fork gives the child a copy of such a page at once (the kernel's
`copy_present_page()`). The copy holds the page's bytes at that moment: fork does not wait
for the device, and later device writes reach the parent's page only.

**Which pages are copied** (notebook 04 §3). A page is copied, not shared, when all three hold:

1. the page is [AnonExclusive](../glossary.ipynb#AnonExclusive) (AE 1);
2. the process has ever pinned a page ([MMF_HAS_PINNED](../glossary.ipynb#MMF_HAS_PINNED): yes);
3. its folio [may be pinned](../glossary.ipynb#maybe-pinned) (the test is in the table
   below).

About test 1: a page that is not AE was shared by an earlier fork. The process it was
shared with may have exited since: the page stays non-AE until a write fault makes it the
writer's own again. Pins are taken by [GUP](../glossary.ipynb#GUP) (the kernel's "get user
pages", which drivers call), and GUP pins only AE pages. So a non-AE page cannot be
pinned: it is shared again, even in a folio that has a pin (the pin is on another, AE page
of it).

Test 3 depends on the folio's size. A [FOLL_PIN](../glossary.ipynb#FOLL_PIN) pin counts
differently in a small folio and in a large one (""" + _BIAS + """ is the kernel's
[GUP_PIN_COUNTING_BIAS](../glossary.ipynb#GUP_PIN_COUNTING_BIAS)):

| folio | one pin adds | "may be pinned" when |
|---|---|---|
| small (order 0) | """ + _BIAS + """ to the refcount | refcount ≥ """ + _BIAS + """ |
| large | 1 to the refcount and 1 to its [pincount](../glossary.ipynb#pincount) | pincount > 0 |

Why two ways: a large folio has room for an exact pin counter (in the
[struct page](../glossary.ipynb#struct-page), the kernel's record of one physical page, of
its second page); a small folio has only its own struct page, so a pin is folded into its
refcount as a big step. The small-folio test can therefore be fooled: """ + _BIAS + """ other
references, such as [vmsplice](../glossary.ipynb#vmsplice) ones, pass it too. A small
folio with refcount ≥ """ + _BIAS + """ and no `FOLL_PIN` on its line is such a case: for
example one mapping plus """ + _BIAS + """ vmsplice references (refcount """ + _BIAS_1 + """)
gets its AE page
copied. The folio line shows the pins as `(N FOLL_PIN)`; the rest of its refcount is one
reference per PTE of the table that maps one of its pages (the parent's PTEs: an earlier
sharer that has exited holds none).

The pin is counted per folio, not per page, so the kernel cannot tell *which* page of a
large folio is pinned: it copies every AE page of that folio. That is why the table has no
per-row pins column: fork sees only the folio line's count. A large folio can be partly AE:
an earlier fork cleared AE on all its pages, and later write faults reused some of them in
place, which makes a page AE again. A real run reaches this state most easily under v6.17,
the one version here that reuses a page of a large folio while other pages of it stay
mapped (exercise (e)). But the layouts are generated to exercise fork's rules, not
replayed from a run, so a problem under any version may show such a folio (the v6.9
example below does). Fork's three tests read only the state, not how it arose.

**How many rounds.** Fork copies under the page-table lock, where it must not sleep, so
it cannot allocate a page there. Each copy needs a
[preallocated page](../glossary.ipynb#preallocated-page): the call returns
[-EAGAIN](../glossary.ipynb#-EAGAIN), fork drops its locks, allocates one page and
retries. That is one round. The page serves only the call it was allocated for: if that
call does not use it, it is freed at once, never kept for a later PTE (the kernel
allocates each page for its address, as the memory policy asks). Write the calls down: a
number per call (the PTEs it took), `E` for a call that returned -EAGAIN. The rounds are the
E's: the call that succeeds after a retry is not another round.

- **v6.8**: one PTE per call; each copied page costs `E, 1`, any other page `1`.
- **batch-v3**: a batch is cut at the first page that needs a copy (the pages before it
  are shared in that call); that page then costs `E, 1` (copied alone), and batching starts
  again at the next PTE.
- **v6.9, v6.17**: a batch's pages are checked in one call (the
  [rmap dup](../glossary.ipynb#rmap-dup), which adds the child's mapping to the pages'
  reverse map, the record of who maps a page that reclaim walks), all or nothing.
  1. A batch that holds a page needing a copy is refused as a whole (`E`).
  2. The retry takes its first PTE alone: copied if the three tests hold for it, else
     shared (the preallocated page is then freed unused, but the round was spent: a
     cost the kernel accepts, as pinned folios are rare, to keep the common path simple).
  3. Batching resumes at the next PTE.

  So the rounds depend on where the batches end: in v6.9 and v6.17 a change of D ends
  one in a private mapping (exercise (a)).

Predict which rows are copied, and how many -EAGAIN rounds fork takes (count the E's)."""),
    "refcounts": ("d-refcount-mapcount", """\
Every problem of this exercise is a private anonymous mapping, whose page table fork
always copies.

Before fork, each page a PTE maps has mapcount 1 (one mapping: the parent's), and a page
no PTE maps has mapcount 0. The refcount is one reference per mapped PTE plus the pins
and vmsplice references; in these layouts an unmapped page holds no reference. A large
folio can be partly mapped: munmap() or MADV_DONTNEED of part of it unmaps those pages,
and the kernel does not split the folio at once (the second worked example has two such
folios).

For each row, fork either *shares* the page with the child or gives the child a *copy*:

- **shared**: one more folio reference ([refcount](../glossary.ipynb#refcount) + 1) and one
  more mapping of that page (its per-page [mapcount](../glossary.ipynb#mapcount) + 1);
  the page loses AE and both PTEs are read-only (no counter changes for that);
- **copied**: the original folio's counters do not change (the copy is a new folio, not
  asked about), and the parent keeps its page as it was: AE, PTE still writable.
  A page is copied when `MMF_HAS_PINNED` is yes, its folio may be pinned,
  and the page is AE: for a large folio that is *every* AE page of it, not only the
  pinned one (exercise (c) gives the rule and its reasons). The non-AE pages of such a
  folio are shared as usual.

Pins ([FOLL_PIN](../glossary.ipynb#FOLL_PIN): """ + _BIAS + """ on a small folio, 1 on a large one)
and
[vmsplice](../glossary.ipynb#vmsplice) references count in the refcount but in no mapcount:
they are not page-table entries. The PTE bits (D, W, ...) change no counter.

The version does not change them either: all four versions offered copy the same rows (each
keeps a large folio's pincount the same way).
The three tests of (c) look at the process, the folio and the page, never at batches;
batching changes only how many calls and rounds fork takes.

Predict the counters of every folio in the table after fork: its refcount, and its
mapcount per page, one number per page of the folio (how many PTEs map that page; 0 for a
page no PTE maps)."""),
    "cow-after-fork": ("e-cow-or-reuse", """\
**What you are given.** The table shows the parent's PTEs before fork: one large folio (`A`)
and one or two small (order-0) pages, every page writable (W 1) and the parent's own (AE 1).
The folio lines give each folio's refcount: one reference per mapped PTE. Nothing is pinned.

**What fork does.** It shares every page: the child's PTE maps the same page, both PTEs
become read-only (W 0), the page loses AE, and each page's mapcount and its folio's refcount
grow by one. No page is copied.

**What a write can then do** (the names notebook 07 uses):

- **"no fault"**: this process already took a write fault on this PTE, which left it writable;
- otherwise it faults, and the kernel asks
  ([wp_can_reuse_anon_folio](../glossary.ipynb#wp_can_reuse_anon_folio)()) whether anyone
  else may still use the page:
  - **"reuse"** (see [reuse](../glossary.ipynb#reuse)): nobody can, so the writer's PTE is
    made writable in place;
  - **"cow-copy"** (a [CoW fault](../glossary.ipynb#CoW-fault)): someone may, so the writer
    gets a new small page of its own, outside the old folio. The old page loses the writer's
    mapping (its mapcount - 1) and its folio a reference (the folio's refcount - 1).

"the child exits" is a step, not a write: it gets no answer, and it drops all the child's
mappings and references.

**What to look at, write by write:**

1. Has this process already faulted on this PTE since fork? Then "no fault". (The kernel
   also reuses at once any page that is still AE. You need not track AE here: after fork no
   page is AE, and a page that becomes AE again by a reuse has a writable PTE, so its next
   write is "no fault" already.)
2. A small page: "reuse" when its refcount is 1 (no other mapping, pin or pipe), else
   "cow-copy".
3. A page of the large folio: it depends on the version.
   - **v6.8 and batch-v3** (the seed patch changed fork, not the fault): the same test on the
     folio's refcount. Refcount 1 means the written PTE is the folio's only reference: every
     other page of the folio is unmapped, by both processes, the writer included. So a parent
     that alone maps every page of the folio still copies: its other PTEs are references too.
     """ + REFCOUNT_ONE_EXAMPLE + """
   - **v6.9**: always "cow-copy" (a small page is still reused at refcount 1). The kernel's
     reason: the test above passes only when no other page of the folio is mapped, and then a
     copy moves that last page to a new 4K page and lets the whole large folio be freed at
     once, where a reuse would keep all of it allocated for one page.
   - **v6.17**: "reuse" when all three hold, else "cow-copy":
     1. the other process maps no page of the folio any more (it has exited, or has copied
        every page of it away). The kernel reads a
        [maybe mapped shared](../glossary.ipynb#maybe-mapped-shared) flag, set while two
        processes map pages of the folio and cleared once only one does (exact with only a
        parent and a child);
     2. every reference to the folio is one of the writer's mappings (no pin, no pipe): the
        kernel compares the refcount with the folio's
        [large mapcount](../glossary.ipynb#large_mapcount), one counter it keeps
        for the whole folio: the number of PTEs mapping any of its pages, which is the sum
        of the folio's per-page mapcounts in your table (here both processes' PTEs, until
        condition 1 leaves only the writer's);
     3. the writer maps more than one page of the folio. If this is its last one, the copy
        drops the folio's last mapping and all of the folio, unmapped pages too, is freed.

Keep a small table of each folio's refcount and per-page mapcounts after every step, as the
worked examples below do, and predict what each write in the sequence does."""),
    "fork-cost": ("f-fork-cost", """\
Batching is about cost. Notebook 08 computes fork's cost from counts like these, each
multiplied by a price it fitted to measured fork() times. This exercise asks for the
counts, for this layout and version:

- `calls`: the calls of the present-PTE copy function (one per batch);
- `set_ptes_calls`: the [set_ptes](../glossary.ipynb#set_ptes)() calls that write child PTEs;
- `pte_writes`: the child PTEs written;
- `anon_dup_checks`: the anon [rmap dup](../glossary.ipynb#rmap-dup) calls (the child's
  mapping is added to the page's reverse map). The lab names them "checks" because each
  call also checks whether the child may share the page(s) and refuses for a
  maybe-pinned AE page; it is one count per rmap dup call.

The rmap dup calls have no price of their own in 08: its prices are fitted to measured
fork() times, so their cost is already inside the per-call and per-PTE prices. They are
counted here because they show the one thing batch-v3 did not batch: it dups page by
page so that it can refuse one page of a batch for a pin (exercise (c)).

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

Notebook 08 counts more operations (refcount updates, PTE reads, batch scans); this
exercise asks for these four."""),
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
    "child-bits": (1, 0),         # batch-v3 and v6.8, dirty; examples soft-dirty, shared W
    "pin-copies": (2, 249),       # v6.8; example v6.9 (a retry that shares: a wasted round)
    "refcounts": (7, 2),          # v6.9; example v6.8
    "cow-after-fork": (19, 7),    # v6.17 (a large folio reused); example v6.9
    "fork-cost": (16, 0),         # v6.9; examples v6.17 and batch-v3
}

#: Student seeds are 32-bit (base.seed_for), so seeds from 2**32 on are no student's.
OUTSIDE_STUDENT_SEEDS = 2 ** 32
#: Exercise name -> (seed, version, what it shows) of a page's second worked example: the
#: hardest version or case of the exercise, from a seed no student can draw.
EXTRA: dict[str, tuple[int, str, str]] = {
    "batches": (OUTSIDE_STUDENT_SEEDS + 29, "batch-v3",
                "batch-v3, where W and D never end a batch but a UW change does "
                "(the child VMA is uffd-wp)"),
    "child-bits": (OUTSIDE_STUDENT_SEEDS + 107, "batch-v3",
                   "a shared mapping with mixed W over folios of several sizes, where "
                   "batch-v3 and v6.9 disagree most"),
    "pin-copies": (OUTSIDE_STUDENT_SEEDS + 3, "batch-v3",
                   "batch-v3's cut at the first page that needs a copy"),
    "refcounts": (OUTSIDE_STUDENT_SEEDS + 43, "v6.9",
                  "a pinned folio only partly mapped, and vmsplice references on a folio "
                  "fork shares with the child"),
    "cow-after-fork": (OUTSIDE_STUDENT_SEEDS, "v6.17",
                       "the reuse rule of v6.17 for a page of a large folio"),
    "fork-cost": (OUTSIDE_STUDENT_SEEDS, "batch-v3",
                  "batch-v3, whose rmap dup stays per page, on folios of several sizes"),
}

#: What a reader needs for a second worked example's layout alone, said beside it.
EXTRA_NOTE: dict[str, str] = {
    "child-bits": " Its folios are [shmem](../glossary.ipynb#shmem): a shmem folio's "
                  "refcount also counts the page cache's references, one per page, so "
                  "it is higher than the PTEs alone give. No bit depends on it.",
}

#: The typical wrong answer :func:`misconception` builds, in words.
MISCONCEPTIONS: dict[str, str] = {
    "batches": "one call per folio, the bits do not matter",
    "child-bits": "the child copies the parent's bits",
    "pin-copies": "a pin copies its whole folio, AE or not, in one round",
    "refcounts": "the pin changes nothing: every row is shared",
    "cow-after-fork": "every write after fork faults and copies",
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
                       "\"no fault\". Otherwise it faults: \"reuse\" if nobody else uses "
                       "the page (the rules above, per version), else \"cow-copy\", after "
                       "which the writer "
                       "maps a new page of its own. An exit drops every mapping and "
                       "reference of the exiting process."),
    "fork-cost": ("Find the batches (exercise (a)'s method): v6.8 makes one per PTE; a "
                  "batching version makes one per folio unless a bit it compares changes "
                  "inside the folio (W and A never end a batch; v6.9 and v6.17 end one where "
                  "D changes in a private mapping). Then count "
                  "per batch: one call, one set_ptes(), as many PTE writes as PTEs, and the "
                  "rmap dup calls the version makes for it (per batch or per page)."),
}


def worked_example(name: str, ex: Exercise | None = None) -> str:
    """The folded answer of a page's worked example (``ex``; default: the first one),
    computed from the model: the key, the method, and what the checker says about the
    typical wrong answer."""
    first = ex is None
    ex = _example(name) if ex is None else ex
    key = ex.solve()
    wrong, label = misconception(ex), MISCONCEPTIONS[name]
    verdict = link_terms(ex.check(wrong).explanation)
    return ("<details><summary><b>Answer and explanation of the example</b> (work it "
            "first, then open)</summary>\n\n"
            f"**Answer:** `{json.dumps(key)}`\n\n{calls_behind(ex)}"
            f"{strip_key(ex, first)}{priced(ex)}"
            f"**Method.** {METHOD[name]}\n\n"
            f"**A wrong answer** ({label}): `{json.dumps(wrong)}`. "
            "What the checker says about it, rule by rule:\n\n" + verdict + "\n\n</details>")


def calls_behind(ex: Exercise) -> str:
    """The fork calls behind a worked example's answer, from the model's own steps: what
    each present-PTE copy call returned (``E`` for -EAGAIN) and the rows it covered.
    Empty for the write-sequence exercise, whose answer is not about fork's calls."""
    if ex.name == "cow-after-fork":
        return bookkeeping(ex)
    versions = ex.versions if ex.name == "child-bits" else (ex.kernel,)  # type: ignore[attr-defined]
    lines = []
    for kernel in versions:
        p, _ = ex.build()
        r = fork(p, kernel)
        spans = []
        steps = [st for st in r.steps if st.action != "nonpresent"]
        # the scans that stopped on the entry after their folio (the mirrors' read_past):
        # v6.9 compares that entry's bits before its folio test, so it may name a bit there
        past = {e.addr for e in r.trace if e.rule.startswith("stop:") and e.get("read_past")}
        for n, st in enumerate(steps):
            first = index_of(ex.scenario, st.addr)
            retry = steps[n + 1] if n + 1 < len(steps) else None
            if st.action == "eagain":
                spans.append(f"E (row {first} needs a copy)" if retry is not None and
                             retry.action == "copy" else
                             f"E (the batch from row {first} holds a page that needs a copy)")
                continue
            rows = f"row {first}" if st.nr == 1 else f"rows {first}-{first + st.nr - 1}"
            rows += _strip_slots(ex, st.addr, st.nr)
            # a bit stop is named only inside a folio: at a folio's end the reader sees the
            # new folio, not the bit v6.9 reported on the entry past it
            why = f" (ends: {stop_words(st.stop)})" if st.stop.startswith("bit:") and \
                st.addr not in past else ""
            wasted = (" shared, the preallocated page unused" if n and st.action == "share"
                      and steps[n - 1].action == "eagain" else "")
            spans.append(rows + (" copied" if st.action == "copy" else wasted) + why)
        calls = "[" + ", ".join(str(b) for b in r.batches) + "]"
        lines.append(f"- {kernel}: `{calls}`: " + "; ".join(spans) + ".")
    legend = ", `E` for -EAGAIN," if any(" E" in line or "[E" in line for line in lines) \
        else ""
    return ("**The calls behind it** (what each present-PTE copy call returned"
            f"{legend} and the rows it took"
            + ("; shown for interest, not asked" if ex.name == "refcounts" else "")
            + "):\n\n" + "\n".join(lines) + "\n\n")


def _strip_slots(ex: Exercise, addr: int, nr: int) -> str:
    """For the exercise whose worked examples show a batch strip: the strip's slot numbers
    of a call's rows, where they differ from the row numbers (an empty slot before them)."""
    if ex.name not in PICTURES:
        return ""
    slot = (addr - ex.scenario.vmas[0]["start"]) // PAGE_SIZE
    if slot == index_of(ex.scenario, addr):
        return ""
    return f" = strip #{slot}" if nr == 1 else f" = strip #{slot}-#{slot + nr - 1}"


def strip_key(ex: Exercise, first: bool = True) -> str:
    """How to read the batch strip folded below a worked example's answer: where its text
    is, what its first line says, and which end it names where two apply at once (from the
    version's batch scan: ``folio_end``, pkmm/kernels/). The page's second example gets
    only what differs from the first's."""
    if ex.name not in PICTURES:
        return ""
    names: dict[str, list[str]] = {"after-compare": [], "clamp": []}
    for k in ("batch-v3", "v6.9", "v6.17"):
        names[get_kernel(k).folio_end].append(k)
    reads, clamps = " and ".join(names["after-compare"]), " and ".join(names["clamp"])
    moved = any(_strip_slots(ex, e["addr"], 1) for e in ptes_of(ex.scenario))
    slots = ("the calls line above gives a call's strip numbers after `=`, where they "
             "differ from its rows" if moved else
             "no slot before a row is empty here, so the strip's numbers are the rows")
    if not first:
        own = ("reads the next PTE before it tests the folio's end, so at a folio's last "
               "page its notes name what comes next" if get_kernel(ex.kernel).folio_end ==
               "after-compare" else "stops the scan at a folio's end without reading "
               f"further, so at a folio's last page its notes say \"{stop_words('folio-end')}\"")
        return (f"**Reading the strip below**: as the first example's; {slots}. "
                f"{ex.kernel} {own}.\n\n")
    vma = ex.scenario.vmas[0]
    nslots = vma["npages"]
    uffd = ("`uffd-wp` (the VMA is registered for uffd-wp) and " if vma.get("uffd_wp")
            else "")
    return ("**Reading the strip below** (open it after the answer). It numbers slots, "
            f"empty ones included; {slots}. The lines of text under the brackets "
            "(`note 1`, `note 2`, ...) say why each call ended. A block's label, the folio "
            "and page it starts at (`D:2...` is folio D from page D.2 on) and then the "
            "bits set in it (in `A:0... W D A` the first A is folio A, the last the "
            "accessed bit), is written in the block where it fits, else shown when you "
            f"hover over the block. The picture's description (`{ex.kernel} fork of "
            f"{nslots} PTEs: ...`) counts the VMA's {nslots} slots, empty ones included. "
            "The strip's first line names the version's copy function, its second "
            f"describes the VMA: {uffd}`anon_vma` (it has an "
            "[anon_vma](../glossary.ipynb#anon_vma): it holds private pages, so fork "
            "copies its page table). Where two ends meet, a folio's last page followed by "
            "an empty slot or a changed bit, a note names the one the version's scan meets "
            f"first: {reads} reads the next PTE and compares it before it tests the "
            f"folio's end, so it names the empty slot or the bit; {clamps} stop the scan "
            "at the folio's end without reading further, so they name that. Either way the "
            "call ends at the same row.\n\n")


def bookkeeping(ex: Exercise) -> str:
    """The write-sequence exercise's "who maps what" table, from the model: after fork and
    after each step, every original folio's refcount and per-page mapcounts (a page
    copied away is no longer the old folio's)."""
    from .cow import KINDS
    p, folios = ex.build()
    child = fork(p, ex.kernel).child

    def state() -> str:
        return "; ".join(f"{n}: ref {c['refcount']}, mapcount {c['mapcount']}"
                         for n, c in folio_counts(folios).items())
    rows = [f"| after fork | | {state()} |"]
    n = 0
    for op in ex.ops:  # type: ignore[attr-defined]
        proc = p if op[0] == "parent" else child
        if op[1] == "exit":
            proc.exit()
            rows.append(f"| the {op[0]} exits | | {state()} |")
            continue
        proc.write(BASE + op[2] * PAGE_SIZE, n + 1)
        kind = proc.last_fault.kind  # type: ignore[union-attr]
        rows.append(f"| write {n}: {op[0]}, row {op[2]} | {KINDS.get(kind, kind)} | "
                    f"{state()} |")
        n += 1
    return ("**The bookkeeping behind it** (the Method's table: each folio's refcount and "
            "per-page mapcounts after every step):\n\n| step | outcome | counters after "
            "it |\n|---|---|---|\n" + "\n".join(rows) + "\n\n")


#: Terms a checker's verdict may use, linked to the glossary at their first use in a page's
#: folded answer (the verdict itself is plain text: the check cell prints it).
TERM_LINKS = {"rmap dup": "rmap-dup", "GUP": "GUP", "EVENT_FORK": "EVENT_FORK",
              "copy_present_page": "copy_present_page",
              "folio_nr_pages_cont_mapped": "folio_nr_pages_cont_mapped"}


def link_terms(text: str) -> str:
    """``text`` with the first use of each :data:`TERM_LINKS` term linked to the glossary.

    >>> link_terms("the anon rmap dup failed; rmap dup again")
    'the anon [rmap dup](../glossary.ipynb#rmap-dup) failed; rmap dup again'
    """
    for term, anchor in TERM_LINKS.items():
        def link(m: re.Match[str], a: str = anchor) -> str:
            return f"[{m.group(0).strip('`')}](../glossary.ipynb#{a})"
        text = re.sub(rf"(?<![\w\[`])`?{re.escape(term)}(\(\))?`?(?![\w\]])", link, text,
                      count=1)
    return text


#: How the fork-cost example words each priced count of notebook 08.
PRICE_WORDS = {"pte_writes": "PTE written", "set_ptes_calls": "call",
               "batch_scans": "batch scan"}


def priced(ex: Exercise) -> str:
    """For the fork-cost exercise, what 08's stored prices make of the example's counts
    (its version against v6.8's one-PTE-per-call copy), with the prices and the sums
    spelled out; empty for the others."""
    if ex.name != "fork-cost":
        return ""
    from .. import costmodel
    sums, prices = [], {}
    totals = {}
    for kernel in dict.fromkeys(("v6.8", ex.kernel)):
        counts = costmodel.scenario_counts(ex.scenario, kernel)
        terms = [(k, n, each) for k, n, each, _, _ in costmodel.price_terms(counts) if each]
        unknown = [k for k, _, _ in terms if k not in PRICE_WORDS]
        if unknown:
            raise ValueError(f"priced: no words for the priced counts {unknown}")
        prices.update({k: each for k, _, each in terms})
        totals[kernel] = {k: n * each for k, n, each in terms}
        ns = costmodel.predict_seconds(counts, baseline=False) * 1e9
        sums.append(f"{kernel}: " + " + ".join(f"{n} × {each:.2f}" for _, n, each in terms)
                    + f" ns = {ns / 1e3:.2f} µs")
    said = ", ".join(f"{each:.2f} ns per {PRICE_WORDS[k]}" for k, each in prices.items())
    old, new = totals["v6.8"], totals[ex.kernel]
    calls = (old.get("set_ptes_calls", 0) - new.get("set_ptes_calls", 0)) / 1e3
    scans = new.get("batch_scans", 0) / 1e3
    return ("**What it costs.** The prices notebook 08 fitted to fork() times measured on "
            "one machine are "
            f"{said} (a batch scan is the look along the PTEs that measures a batch: one "
            "per call on a large folio, even a call that takes only one PTE of it: the "
            "scan runs before the kernel knows how far the batch goes; a count this "
            "exercise does not ask). Copying "
            "these PTEs, without the fixed cost of "
            "forking a process at all:\n\n" + "\n".join(f"- {line}" for line in sums)
            + f"\n\nWhy the saving is small: the calls batching removes save {calls:.2f} "
            f"µs, its batch scans add {scans:.2f} µs back, and the per-PTE writes "
            f"({old.get('pte_writes', 0) / 1e3:.2f} µs) stay.\n\n")


def _worked(name: str) -> bool:
    """Whether the exercise draws its worked examples from a family of their own."""
    return bool(EXERCISES[name].families)


def _example(name: str) -> Exercise:
    from . import make
    return make(name, LAB_SEEDS[name][1], example=_worked(name))


def _extra(name: str) -> Exercise:
    from . import make
    seed, kernel, _ = EXTRA[name]
    return make(name, seed, kernel=kernel, example=_worked(name))


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
    if ex.name == "pin-copies":        # "a pin copies its whole folio, in one round"
        # the folios the key copies from are the maybe-pinned ones (the model's verdict)
        hit = {rows[i]["folio"] for i in key["copied"]}
        return {"copied": [i for i, e in enumerate(rows) if e["folio"] in hit],
                "eagain": len(hit)}
    if ex.name == "refcounts":         # "the pin changes nothing: every row is shared"
        p, folios = ex.build()
        before = folio_counts(folios)
        p.exit()
        for e in rows:
            before[e["folio"]]["refcount"] += 1
            before[e["folio"]]["mapcount"][e["page"]] += 1
        return before
    if ex.name == "cow-after-fork":    # "every write after fork copies"
        return ["cow-copy"] * len(key)
    n = len(rows)                      # "no batching: one of everything per PTE"
    return {"calls": n, "set_ptes_calls": n, "pte_writes": n, "anon_dup_checks": n}


def errno_as_code(markdown: str) -> str:
    """``markdown`` with each bare ``-EAGAIN`` set as code, which the static pages keep on
    one line (broken after its dash it reads as a minus and a word); link anchors
    (``#-EAGAIN``) are left alone.

    >>> errno_as_code("returns -EAGAIN; [-EAGAIN](g.ipynb#-EAGAIN), `-EAGAIN`")
    'returns `-EAGAIN`; [`-EAGAIN`](g.ipynb#-EAGAIN), `-EAGAIN`'
    """
    return re.sub(r"(?<![`#\w])-EAGAIN(?![`\w])", "`-EAGAIN`", markdown)


def new_cell(kind: str, source: str, stem: str, n: int, **metadata: Any) -> dict[str, Any]:
    """One nbformat-4.5 cell with a stable id (same notebook, same ids: clean diffs)."""
    if kind == "markdown":
        source = errno_as_code(source)
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
            "- `#` numbers the *present PTEs* (those that map a page) in address order; "
            "answers use these row numbers.\n"
            "- An empty slot is an unnumbered `(none)` line, so row 4 is not always slot 4 "
            "(the lessons' pictures number slots, empty ones included).\n"
            "- The `ARG` lines echo the problem's arguments: the same seed and version give "
            "the same problem again.\n\n"
            "*Predict first, then check (in Jupyter: see the end of this page).*")


#: Exercise name -> (imports, picture call with {var} for the example's name): a picture of
#: the package that a worked example shows folded below its answer.
PICTURES: dict[str, tuple[str, str]] = {
    "batches": ("from pkmm.processlab import FoldedView\n"
                "from pkmm.views.pictures import batch_strip\n\n",
                'FoldedView("After the answer: its calls as a strip, one bracket per call '
                '(open it after you predicted; the strip numbers slots, empty ones '
                'included)",\n           batch_strip({var}.scenario, {var}.kernel))'),
}


def picture_cell(name: str, var: str, first: bool) -> list[tuple[str, str, dict[str, Any]]]:
    """The code cell that shows worked example ``var``'s picture (none if the exercise has
    no picture); the first one carries the imports."""
    if name not in PICTURES:
        return []
    imports, call = PICTURES[name]
    return [("code", (imports if first else "") + call.format(var=var), {})]


KERNEL_DEFAULT = "None: the seed picks the version"
#: The problem cell's comment on KERNEL, where "the seed picks the version" is not all.
KERNEL_COMMENT = {
    "child-bits": "None: the seed picks both versions (a version here sets ARG kernel)",
}

CHECK_MD = ("## Check\n\nIn Jupyter this prints your score (0 to 1) and the kernel rule "
            "behind each mistake; change `ANSWER` and run it again as often as you like. "
            "On a static web page it shows only the \"no answer yet\" message.")

STATIC_MD = ("**On a static web page nothing runs**, and no page shows your problem's "
             "answer. To check an answer, open this notebook in Jupyter: in a copy of the "
             "pkmm repository run `./dev lab` (its README says how; `./dev lite` builds a "
             "browser-only JupyterLite copy), or use your course's Binder or JupyterLite "
             "link. If your course gives you a seed, set `SEED` to it and run the cells: "
             "that prints your own problem. Without Jupyter, solve the problem shown "
             "above (its seed is in the code cell).")


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
    worked = ", example=True" if _worked(name) else ""
    family = (f"\n\nIts layout is of another kind than any student's problem "
              f"({EXERCISES[name].families[1]}, where a student's has "
              f"{EXERCISES[name].families[0]}): work it for the method, not the answer."
              if _worked(name) else "")
    src = [
        ("markdown", intro(name, "../"), {}),
        ("markdown", f"## A worked example\n\nFirst a solved problem of the same kind, seed "
                     f"{example.seed} under {example.kernel}: try it, then open the answer "
                     f"below it.{family}", {}),
        ("code", "import pkmm.exercises\n\n"
                 f"example = pkmm.exercises.make({name!r}, {example.seed}{worked})\n"
                 "print(example)", {}),
        ("markdown", worked_example(name), {}),
        *picture_cell(name, "example", True),
        ("markdown", f"## A second worked example\n\n{what[0].upper() + what[1:]}: seed "
                     f"{extra_seed} (2**32 + {extra_seed - OUTSIDE_STUDENT_SEEDS}, a seed no "
                     f"student is given) under {extra.kernel}.{EXTRA_NOTE.get(name, '')}",
         {}),
        ("code", f"example2 = pkmm.exercises.make({name!r}, {extra.seed}, "
                 f"kernel={extra.kernel!r}{worked})\nprint(example2)", {}),
        ("markdown", worked_example(name, extra).replace(
            "of the example</b>", "of the second example</b>"), {}),
        *picture_cell(name, "example2", False),
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
