"""What the shared kernel paths consult while they run: the version, the fork's context.

Simulator concept (no kernel file).  The core (:mod:`pkmm.memory`, :mod:`pkmm.huge_memory`,
:mod:`pkmm.fault`) is written once for every version; where versions differ it asks a
:class:`KernelVersion` -- a hook (``copy_present``, ``copy_huge``) or a flag
(``guard_markers``, ``wp_large_folio`` ...).  The variant modules under
:mod:`pkmm.kernels` build one ``KernelVersion`` each; the core defines the type, so the
core never imports a variant (dependency inversion).  :class:`ForkContext` carries one
fork's version, ablations, trace, steps and counters down the copy path; :class:`Prealloc`
is the ``struct folio **prealloc`` slot of ``copy_pte_range``.
Taught in: notebooks/06-upstream-batching.ipynb (versions), notebooks/04-pinned-pages.ipynb
(the preallocated page)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from .errors import LayoutError
from .trace import Action, Event, Step, Trace

if TYPE_CHECKING:  # pragma: no cover
    from .folio import Folio
    from .pte import Pte
    from .vma import Vma

__all__ = ["ABLATIONS", "CopyHuge", "CopyPresent", "FaultResult", "FolioEnd", "ForkContext",
           "KernelVersion", "OP_MEANINGS", "Observer", "Prealloc", "Release", "AnonDup",
           "WpLargeFolio", "check_ablations"]

#: Ablations a learner can switch off with ``pkmm.fork(p, without={...})``.
ABLATIONS = {
    "pinned-copy": "share maybe-pinned AnonExclusive pages instead of copying them "
                   "(folio_needs_cow_for_dma ignored): the parent can lose DMA writes",
    "cow-wrprotect": "leave COW PTEs writable in parent and child: a write by one "
                     "process becomes visible to the other",
}



def check_ablations(without: Iterable[str]) -> frozenset[str]:
    """``without`` as a set of known ablation names (a single name is allowed).

    >>> sorted(check_ablations("pinned-copy"))
    ['pinned-copy']
    >>> check_ablations({"pins"})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pkmm.errors.LayoutError: without=['pins']: unknown ablation(s) ['pins']; known: ...
    """
    if isinstance(without, str):
        without = {without}
    try:
        w = frozenset(without)
    except TypeError:
        raise LayoutError(f"without={without!r}: give a set of ablation names, e.g. "
                          "{'pinned-copy'}") from None
    unknown = sorted(str(x) for x in w - set(ABLATIONS))
    if unknown:
        raise LayoutError(f"without={sorted(map(str, w))!r}: unknown ablation(s) {unknown}; "
                          "known: " + ", ".join(sorted(ABLATIONS)))
    return w


#: wp_can_reuse_anon_folio() for a large folio: the small-folio refcount test applies to
#: it too (v6.8 and older), it is never reused (v6.9 .. v6.14), or
#: __wp_can_reuse_large_anon_folio() reuses it when this mm alone maps it (v6.15+).
WpLargeFolio = Literal["as-small", "never", "exclusive"]
#: A Linux release as (major, minor), e.g. ``(6, 17)``.
Release = tuple[int, int]
#: How a batch function meets the end of the folio (``"none"``: the variant never batches).
FolioEnd = Literal["none", "clamp", "after-compare"]
#: How the anon rmap of a batch is duplicated: one call per PTE, page by page with the
#: batch cut at the first page that must be copied, or one all-or-nothing call.
AnonDup = Literal["per-pte", "truncate", "all-or-nothing"]

CopyPresent = Callable[["ForkContext", "Vma", "Vma", "Pte", int, int, dict[str, int],
                        "Prealloc"], int]
CopyHuge = Callable[["ForkContext", "Vma", "Vma", int], int]
#: Called after every recorded trace event and copy step (see :mod:`pkmm.replay`).
Observer = Callable[["ForkContext", "Event | Step"], None]


@dataclass(frozen=True)
class KernelVersion:
    """One kernel variant: its copy hooks and the flags the shared code consults.

    Hooks: ``copy_present`` is what ``copy_pte_range`` calls for a present PTE (the part
    the versions disagree on); ``copy_huge`` replaces ``copy_huge_pmd`` for PMD leaves
    (None: the shared one).  Flags switch version-specific branches of the shared core.
    Declarations (``folio_end``, ``anon_dup``, ``copy_on_write``) state the loop structure
    of the variant's own copy function for code that must not run it per PTE (the bulk
    path, the exercises' wording); a test checks each against the function it describes.
    ``since`` is the first Linux release with this behaviour (None: never released);
    ``checked`` the newest release it was compared against on a live kernel.  A new
    after-fork behaviour is a field *with a default*, set only by the variants that differ.
    """

    name: str
    spec: str               # label in the fork spec (A/B/C/D, or "-")
    title: str
    present_func: str       # the kernel function copy_pte_range calls for present PTEs
    batch_func: str         # the batch-size function ("" when there is none)
    copy_present: CopyPresent
    guard_markers: bool     # copy_pte_marker() copies PTE_MARKER_GUARD (v6.13+)
    wp_large_folio: WpLargeFolio  # how do_wp_page decides whether to reuse a large folio
    huge_zero_wp_thp: bool  # write to the huge zero PMD allocates a whole THP (v6.17)
    hwpoison_copy: bool     # copy_present_page() returns -EHWPOISON on a memory error
    copy_huge: CopyHuge | None = None   # PMD leaves: None = huge_memory.copy_huge_pmd
    since: Release | None = None        # first Linux release behaving so (None: unreleased)
    checked: Release | None = None      # newest release compared against a live kernel
    copy_on_write: bool = True          # False: private pages are copied at fork (no CoW)
    folio_end: FolioEnd = "none"
    anon_dup: AnonDup = "per-pte"
    #: the allocator copy_pte_range() calls after -EAGAIN: Kefeng Wang's rename
    #: ("mm: memory: rename page_copy_prealloc() to folio_prealloc()", need_zero=false
    #: for fork) is in the v6.9 copy_pte_range() the batching patch applies to
    prealloc_func: str = "page_copy_prealloc"
    #: bits (Pte field names) the batch scan lets differ and *counts*: the child's value
    #: for the whole batch is decided from how many PTEs had the bit, not from the first
    #: PTE (the seed patch's dirty and writable counts)
    counted_bits: frozenset[str] = frozenset()
    #: bits the batch scan lets differ and *merges* into the first PTE: if any later PTE
    #: of the batch has the bit, the whole batch gets it (v6.9's any_writable,
    #: v6.17's FPB_MERGE_WRITE: "pte = pte_mkwrite(pte, src_vma)")
    merged_bits: frozenset[str] = frozenset()

    def __repr__(self) -> str:
        return f"KernelVersion({self.name})"


class Prealloc:
    """The ``struct folio **prealloc`` slot of copy_pte_range: at most one order-0 page."""

    __slots__ = ("folio",)

    def __init__(self) -> None:
        self.folio: Folio | None = None


class ForkContext:
    """pkmm-only state of one fork: the version, ablations, trace, steps and counters.

    ``observer`` (None unless a replay is recording) is called after each event and step;
    ``rss`` is the running copy_pte_range pass's local ``rss[]`` vector (None between
    passes), so an observer sees counts the kernel has not yet added to the child's mm.
    """

    def __init__(self, kernel: KernelVersion, without: frozenset[str], detail: bool,
                 need_resched: bool, fail_prealloc: int | bool) -> None:
        self.kernel = kernel
        self.version = kernel.name
        self.without = without
        self.trace = Trace(kernel.name, detail)
        self.steps: list[Step] = []
        self.step_counts: Counter[tuple[str, str]] = Counter()
        self.batch_sizes: Counter[int] = Counter()   # nr of each share/copy/raw step
        self.need_resched = need_resched
        self.fail_prealloc = fail_prealloc
        self.eagain = 0
        self.copies = 0
        self.wasted = 0
        self.passes = 0
        self.lock_breaks = 0
        self.prealloc_calls = 0
        self.ops: Counter[str] = Counter()
        self.observer: Observer | None = None
        self.rss: dict[str, int] | None = None

    def emit(self, func: str, rule: str, reason: str, addr: int | None = None,
             nr: int = 0, **data: object) -> None:
        """Record a decision (see :class:`pkmm.trace.Trace`)."""
        ev = self.trace.emit(func, rule, reason, addr, nr, **data)
        if self.observer is not None and ev is not None:
            self.observer(self, ev)

    def step(self, addr: int, nr: int, action: Action, reason: str, func: str,
             stop: str = "") -> None:
        """Record one return of the present/non-present copy function."""
        self.step_counts[(action, stop or reason)] += 1
        if action in ("share", "copy", "raw"):
            self.batch_sizes[nr] += 1
        if self.trace.detail:
            st = Step(addr, nr, action, reason, func, stop)
            self.steps.append(st)
            if self.observer is not None:
                self.observer(self, st)

    def ablated(self, name: str) -> bool:
        """Whether the learner switched rule ``name`` off."""
        return name in self.without


@dataclass
class ForkCounts:
    """The counters every fork reports, traced (:class:`pkmm.ForkResult`) or bulk
    (:class:`pkmm.fast.FastForkResult`), so the two are compared field by field.

    ``eagain``: -EAGAIN lock-drop/preallocate/retry rounds; ``copies``: pages copied for
    the child; ``wasted``: preallocated pages freed unused; ``passes``: copy_pte_range
    passes (a pass ends at a lock break, an -EAGAIN or the end of the range);
    ``lock_breaks``: times the copy loop dropped its locks to reschedule; ``ops``:
    operation counts for the cost model; ``step_counts``: (action, stop) -> steps;
    ``batch_sizes``: how many share, copy and raw steps copied each number of PTEs.
    """

    eagain: int = 0
    copies: int = 0
    wasted: int = 0
    passes: int = 0
    lock_breaks: int = 0
    ops: Counter[str] = field(default_factory=Counter)
    step_counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    batch_sizes: Counter[int] = field(default_factory=Counter)

    def actions(self) -> Counter[str]:
        """Step counts per action (exact even when a trace is summarised)."""
        c: Counter[str] = Counter()
        for (action, _), n in self.step_counts.items():
            c[action] += n
        return c


#: What each counter of :attr:`ForkCounts.ops` counts, in a learner's words: the one place
#: they are defined, printed under every table that shows them (``pkmm forksim``).
OP_MEANINGS = {
    # plain words first, the kernel's name after (in parentheses): a learner reads the
    # sentence, a kernel reader greps the name
    "pte_reads": "page-table slots of the parent read: every slot the copy loop visits, "
                 "empty ones included, plus the next entries a batch scan compares",
    "pte_writes": "page-table entries written into the child",
    "set_ptes_calls": "calls that write a run of shared entries into the child at once, "
                      "one per batch (set_ptes()); an entry of a page copied for the child "
                      "is written one at a time (set_pte_at()) and not counted here",
    "batch_scans": "looks ahead at the next entries to find where the run of one large "
                   "folio ends (folio_pte_batch())",
    "refcount_ops": "raises of a folio's reference count, one per batch or PMD of pages "
                    "with a struct page (folio_ref_add(), folio_get())",
    "mapcount_ops": "raises of a page's mapcount -- how many page-table entries map it -- one per "
                    "page mapped by both parent and child (folio_try_dup_anon_rmap_*(), "
                    "folio_dup_file_rmap_*())",
    "anon_dup_checks": "checks, before sharing an anonymous page, that nothing may have "
                       "pinned it for DMA; one per batch (folio_try_dup_anon_rmap_*())",
    "wrprotect_calls": "write-protects: a writable entry of a private mapping made "
                       "read-only in parent and child, so the first write copies "
                       "(ptep_set_wrprotect(), wrprotect_ptes())",
    "rss_updates": "updates of the child's resident-page counters: one per PTE-mapped "
                   "page or batch of them the child starts with (shared or, under "
                   "eager-copy, copied), plus one flush per pass (add_mm_rss_vec())",
    "lockbreak_checks": "times the copy loop asked whether another task should run "
                        "first (need_resched()): its progress counter adds 8 for every "
                        "PTE a copy step covers and 1 per empty slot, is asked "
                        "at the top of a step once it reaches 32, then restarts at 0, and "
                        "restarts at 0 for each page table (copy_pte_range())",
    "lock_breaks": "times it did drop its locks to let another task run",
    "passes": "runs of the copy loop over one page table; a run ends at a lock break, a "
              "retry or the table's end (copy_pte_range())",
    "page_copies": "pages copied for the child at fork (every private page under "
                   "eager-copy; a page that may be pinned otherwise)",
    "pmd_copies": "PMD entries copied: a whole 2 MiB THP each (copy_huge_pmd())",
    "eagain_rounds": "retries: the loop stopped, allocated a page to copy a page that may "
                     "be pinned into, and went on (-EAGAIN)",
}


@dataclass
class FaultResult:
    """What one read/write did: ``kind`` names the path, ``events`` the decisions.

    The fault path's counterpart of a fork's trace: every fault function notes the rule
    it applied and why.
    """

    addr: int
    write: bool
    kind: str = "none"          # "none" = no fault: the PTE allowed the access
    events: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def faulted(self) -> bool:
        """Whether the access took a page fault (what a minor-fault counter would see)."""
        return self.kind != "none"

    def note(self, func: str, rule: str, reason: str) -> None:
        """Record a decision."""
        self.events.append((func, rule, reason))

    def __str__(self) -> str:
        op = "write" if self.write else "read"
        lines = [f"{op} {self.addr:#x}: {self.kind}"]
        lines += [f"  {f}: {r} -- {why}" for f, r, why in self.events]
        return "\n".join(lines)
