"""The live-kernel scenarios and the write script each of them runs after fork.

Simulator concept (no kernel file).  Each scenario names a memory layout (built for the
real kernel by :mod:`pkmm.realkernel.layouts_real` and for the model by
:mod:`pkmm.realkernel.layouts_model`), the pages w1/w2/w3 of the script, and the rule of
that each phase of the script checks.
Taught in: notebooks/09-real-kernel-lab.ipynb
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from .observe import Step

RULES = {
    "1": "which VMAs fork copies at all (anon_vma, uffd-wp child, DONTFORK, WIPEONFORK)",
    "2": "copied private anon PTEs: same PFN, both read-only, AE cleared, mapcount 1->2",
    "3": "PMD-mapped THP: the PMD itself is shared",
    "4": "zero pages: copied as PTEs, never counted, never reused",
    "5": "first write to a shared anon page copies only that 4K page (PMD split first)",
    "6": "second writer: order-0 reuse; large folio reuse only when mapped by one mm alone",
    "7": "pinned (maybe-DMA-pinned + AE + MMF_HAS_PINNED) pages are copied at fork",
    "8": "uffd-wp bit kept in the child only with UFFD_FEATURE_EVENT_FORK",
    "9": "mprotect(PROT_READ|PROT_WRITE) maps AnonExclusive pages writable at once",
    "10": "swap entries: fork shares the slot; a swap-in after fork maps the page read-only "
          "from the swap cache, and a write copies while another entry uses the slot",
    "11": "hugetlb: fork shares the huge page (copies a pinned one); a write copies all of "
          "it unless this mapping is its only one",
    "12": "a R/W long-term pin write-faults first: the zero page or a page-cache page of a "
          "private mapping becomes an exclusive anon page, which fork then copies",
}

_DEFAULT_RULES = {"pre": "9", "fork": "2", "read": "1", "first": "5", "second": "6",
                  "exit": "6"}


@dataclass(frozen=True)
class Scenario:
    """One scenario: layout, script pages, what the machine must offer, rules checked."""

    id: str
    title: str
    npages: int
    w1: int | None
    w2: int | None
    w3: int | None
    show: tuple[int, ...]
    child_reads: bool = False
    folio: str = "4K"                 # "4K" | "64K" | "2M": THP knobs the layout needs
    needs: tuple[str, ...] = ()        # capabilities: io_uring, uffd, ext4, tmpfs, hzero,
                                       # swap, hugetlb
    writer_mprotect: bool = False      # j1: each writer mprotect(RW)s the region first
    pre_write: int | None = None       # the parent writes this page before fork (observed)
    shared: bool = False               # a MAP_SHARED mapping (shmem, hugetlb memfd): row f's kind
    rules: dict[str, str] = field(default_factory=dict)

    def rule(self, phase: str) -> str:
        return self.rules.get(phase, _DEFAULT_RULES[phase])


def _s(id: str, title: str, npages: int, w: tuple[int | None, int | None, int | None],
       show: tuple[int, ...], **kw: object) -> Scenario:
    return Scenario(id, title, npages, *w, show, **kw)  # type: ignore[arg-type]


_NO_COPY = {"fork": "1", "first": "1", "second": "6"}
_PIN = {"fork": "7", "first": "7", "second": "7"}
_SWAP = {"fork": "10", "read": "10", "first": "10", "second": "10", "exit": "10"}
_HUGETLB = {"fork": "11", "first": "11", "second": "11", "exit": "11"}
_RW_PIN = {"fork": "12", "first": "7", "second": "7", "exit": "7"}

SCENARIOS: tuple[Scenario, ...] = (
    _s("a", "private anon 4K, written", 16, (0, 1, 2), (0, 1, 2, 3)),
    _s("b1", "zero pages only, no anon_vma", 16, (0, 1, 2), (0, 1, 2, 3), child_reads=True,
       rules={"fork": "1", "first": "4", "second": "4", "exit": "4"}),
    _s("b2", "zero pages + one written page", 16, (0, 1, 2), (0, 1, 2, 15),
       rules={"fork": "4", "first": "4", "second": "4", "exit": "4"}),
    _s("b3", "zero pages, anon_vma from a VMA split", 16, (0, 1, 2), (0, 1, 2, 3),
       child_reads=True, rules={"fork": "1", "first": "4", "second": "4", "exit": "4"}),
    _s("c", "64K mTHP, PTE-mapped", 64, (3, 5, 7), (0, 1, 3, 5, 7, 16), folio="64K"),
    _s("c2", "64K mTHP, head write after child exit", 64, (None, None, 16), (16, 17, 18),
       folio="64K"),
    _s("d1", "2M THP PTE-mapped, 3 VMAs", 512, (3, 5, 7), (0, 1, 3, 5, 7, 100, 511),
       folio="2M"),
    _s("d2", "2M THP PTE-mapped, 1 VMA", 512, (3, 5, 7), (0, 1, 3, 5, 7, 100, 511),
       folio="2M"),
    _s("e", "2M THP PMD-mapped", 512, (3, 5, 7), (0, 1, 3, 5, 7, 511), folio="2M",
       rules={"fork": "3"}),
    _s("e2", "huge zero page (PMD)", 512, (3, 5, 7), (0, 1, 3, 5, 7), folio="2M",
       needs=("hzero",), rules={"fork": "4", "first": "4", "second": "4", "exit": "4"}),
    _s("f", "MAP_SHARED|MAP_ANONYMOUS", 16, (0, 1, 2), (0, 1, 2, 3), child_reads=True,
       rules=dict(_NO_COPY, first="1", second="1", exit="1"), shared=True),
    _s("g1", "private file (ext4), read only", 16, (0, 1, 2), (0, 1, 2, 3), child_reads=True,
       needs=("ext4",), rules=_NO_COPY),
    _s("g2", "private file (tmpfs), read only", 16, (0, 1, 2), (0, 1, 2, 3), child_reads=True,
       needs=("tmpfs",), rules=_NO_COPY),
    _s("g3", "private file (ext4), page 1 CoWed", 16, (0, 1, 2), (0, 1, 2, 3),
       child_reads=True, needs=("ext4",), rules={"fork": "1"}),
    _s("g4", "private file (tmpfs), page 1 CoWed", 16, (0, 1, 2), (0, 1, 2, 3),
       child_reads=True, needs=("tmpfs",), rules={"fork": "1"}),
    _s("h1", "4K page pinned (io_uring)", 16, (1, 2, 3), (1, 2, 3), needs=("io_uring",),
       rules=_PIN),
    _s("h2", "one page of a 64K mTHP pinned", 64, (4, 3, 17), (0, 1, 3, 4, 15, 16, 17),
       folio="64K", needs=("io_uring",), rules=_PIN),
    _s("h3", "one page of a PMD-mapped 2M THP pinned", 512, (4, 3, 5), (0, 1, 3, 4, 511),
       folio="2M", needs=("io_uring",), rules=dict(_PIN, exit="7")),
    _s("h4", "pinned then unpinned before fork", 16, (1, 2, 3), (1, 2, 3),
       needs=("io_uring",)),
    _s("h5a", "1280 vmsplice refs, nothing pinned", 16, (1, 2, 3), (1, 2, 3, 8),
       rules={"fork": "7"}),
    _s("h5b", "1280 vmsplice refs + another page pinned", 16, (1, 2, 3), (1, 2, 3, 8),
       needs=("io_uring",), rules=_PIN),
    _s("h6", "whole 64K folio pinned", 64, (1, 3, 16), (0, 1, 3, 15, 16), folio="64K",
       needs=("io_uring",), rules=_PIN),
    _s("h7", "64K folio, only pinned page 5 AE", 64, (4, 5, 6), (0, 4, 5, 6, 15, 16),
       folio="64K", needs=("io_uring",), rules=dict(_PIN, first="5", exit="6")),
    _s("i1", "MADV_DONTFORK", 16, (0, 1, 2), (0, 1, 2), child_reads=True,
       rules=dict(_NO_COPY, first="1", second="1", exit="1")),
    _s("i2", "MADV_WIPEONFORK", 16, (0, 1, 2), (0, 1, 2), child_reads=True,
       rules=dict(_NO_COPY, first="1", second="1", exit="1")),
    _s("j1", "mprotect(PROT_READ) before fork", 16, (0, 1, 2), (0, 1, 2),
       writer_mprotect=True),
    _s("j2", "64K folio across 3 VMAs", 64, (4, 6, 0), (0, 4, 5, 6, 16), folio="64K"),
    _s("j3", "64K folio, mixed writable/AE PTEs", 64, (1, 0, 17), (0, 1, 2, 16, 17),
       folio="64K"),
    _s("k1", "anon uffd-wp, no EVENT_FORK", 16, (None, None, None), (0, 1, 2),
       needs=("uffd",), rules={"fork": "8"}),
    _s("k2", "anon uffd-wp, EVENT_FORK", 16, (None, None, None), (0, 1, 2),
       needs=("uffd",), rules={"fork": "8"}),
    _s("k3", "shmem uffd-wp, EVENT_FORK", 16, (None, None, None), (0, 1, 2),
       needs=("uffd",), rules={"fork": "8"}, shared=True),
    _s("k4", "shmem uffd-wp, no EVENT_FORK", 16, (None, None, None), (0, 1, 2),
       needs=("uffd",), rules={"fork": "8"}, shared=True),
    # mprotect, munmap, madvise, mremap, swap, R/W pins on non-anon pages, hugetlb
    _s("mp1", "mprotect RO->RW of AE pages (write upgrade)", 16, (1, 2, 3), (0, 1, 2, 3),
       pre_write=0),
    _s("mp2", "mprotect RO->RW after a throwaway fork", 16, (1, 2, 3), (0, 1, 2, 3),
       pre_write=0, rules={"pre": "6"}),
    _s("u1", "munmap 4 middle pages of a 64K mTHP", 16, (1, 9, 12), (0, 1, 4, 8, 9, 12),
       folio="64K"),
    _s("u2", "MADV_DONTNEED all but one PTE of a 64K mTHP", 16, (0, None, None), (0, 1),
       folio="64K"),
    _s("r1", "mremap upper half of a 64K mTHP", 32, (1, 25, 26), (0, 1, 8, 24, 25, 26),
       folio="64K"),
    _s("r2", "mremap upper half of a PMD-mapped THP", 1024, (3, 800, 801),
       (0, 3, 255, 256, 768, 800, 801), folio="2M"),
    _s("s1", "4K pages swapped out before fork", 16, (0, 1, 2), (0, 1, 2, 3),
       child_reads=True, needs=("swap",), rules=_SWAP),
    _s("s2", "64K mTHP swapped out before fork", 16, (3, 5, 7), (0, 3, 5, 7),
       folio="64K", needs=("swap",), rules=_SWAP),
    _s("p1", "R/W pin (io_uring) on zero pages", 16, (1, 2, 3), (0, 1, 2, 3),
       needs=("io_uring",), rules=_RW_PIN),
    _s("p2", "R/W pin (io_uring) on a private file page", 16, (1, 2, 3), (0, 1, 2, 3),
       needs=("io_uring", "ext4"), rules=_RW_PIN),
    _s("p3", "R/W pin (io_uring) on shared shmem", 16, (1, 2, 3), (0, 1, 2, 3),
       child_reads=True, needs=("io_uring",), rules=dict(_NO_COPY, first="1", second="1",
                                                       exit="1"), shared=True),
    _s("t1", "private hugetlb 2M, written", 512, (3, 5, 7), (0, 3, 5, 7, 511),
       needs=("hugetlb",), rules=_HUGETLB),
    _s("t2", "private hugetlb 2M, pinned (io_uring)", 512, (3, 5, 7), (0, 3, 5, 7, 511),
       needs=("hugetlb", "io_uring"), rules=dict(_HUGETLB, fork="7")),
    _s("t3", "shared hugetlb 2M (memfd)", 512, (3, 5, 7), (0, 3, 5, 7, 511),
       child_reads=True, needs=("hugetlb",), rules=dict(_HUGETLB, fork="1"), shared=True),
    _s("i3", "MADV_DONTFORK then MADV_DOFORK", 16, (0, 1, 2), (0, 1, 2)),
    _s("i4", "MADV_WIPEONFORK then MADV_KEEPONFORK", 16, (0, 1, 2), (0, 1, 2)),
    _s("x1", "PTE-mapped 2M THP, MADV_COLLAPSE", 512, (3, 5, 7), (0, 1, 3, 5, 7, 511),
       folio="2M", rules={"fork": "3"}),
)

BY_ID = {s.id: s for s in SCENARIOS}

# The label a report prints for a scenario, where its stored id would read as something
# else: "x1" is also the token part "exclusively mapped", so the MADV_COLLAPSE row shows
# as "col".  The stored results keep the id.
LABELS: dict[str, str] = {"x1": "col"}


def label(sid: str) -> str:
    """The label the reports print for scenario ``sid`` (its id unless :data:`LABELS`
    renames it)."""
    return LABELS.get(sid, sid)

# What the scenarios test, one group per lesson, with the notebooks that teach the rule
# ("" = taught on the reference page only; the glossary has the term).  The report shows
# the rows in these groups, in this order.
TOPICS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("private memory: the basic copy-on-write rows", "02, 06, 07",
     ("a", "c", "c2", "d1", "d2", "e", "x1")),
    ("large folios cut up, and mprotect()", "06, 07",
     ("j1", "j2", "j3", "mp1", "mp2", "u1", "u2", "r1", "r2")),
    ("the zero page and the huge zero page", "02, 07", ("b1", "b2", "b3", "e2")),
    ("shared and file mappings", "05", ("f", "g1", "g2", "g3", "g4")),
    ("pinned pages, and references that look like pins", "04",
     ("h1", "h2", "h3", "h4", "h5a", "h5b", "h6", "h7", "p1", "p2", "p3")),
    ("MADV_DONTFORK and MADV_WIPEONFORK", "", ("i1", "i2", "i3", "i4")),
    ("uffd-wp (userfaultfd write-protect)", "05", ("k1", "k2", "k3", "k4")),
    ("swapped-out pages", "01, 06", ("s1", "s2")),
    ("hugetlb pages", "09", ("t1", "t2", "t3")),
)

# What each scenario sets up before fork, in one clause (the probe's layout builder does
# it; the report prints this under the row, with the script the row really ran).  Words
# for the set-up only: what happened after fork is the report's, from the run.
ABOUT: dict[str, str] = {
    "a": "4K pages, every page written: the plain copy-on-write row for small pages",
    "b1": "every page only read, so each maps the zero page; nothing written, so no anon_vma",
    "b2": "pages 0-14 only read (zero page), page 15 written (the VMA's anon_vma)",
    "b3": "the upper half of a 32-page VMA whose page below the region was written, then "
          "split off by MADV_NOHUGEPAGE; the region itself is only read (zero pages)",
    "c": "four 64K folios, every page written: the plain row for large folios",
    "c2": "as c, but only the parent writes, after the child exited: page 16, a head page",
    "d1": "a 2M THP's PMD mapping split to PTEs (the folio stays whole) by mprotect(PROT_READ) "
          "of page 100, which also cuts the VMA in 3 (below page 100, page 100, above): one "
          "folio in three VMAs",
    "d2": "as d1, then page 100 made read-write again: the three VMAs merge back into one, "
          "the folio stays PTE-mapped",
    "e": "a 2M THP mapped by one PMD entry, every page written",
    "e2": "THP enabled and every page only read: one PMD entry maps the huge zero page",
    "f": "MAP_SHARED|MAP_ANONYMOUS (shmem), every page written",
    "g1": "a MAP_PRIVATE mapping of an ext4 file, every page only read: page-cache pages",
    "g2": "as g1, a tmpfs file",
    "g3": "as g1, then page 1 written before fork: that write copied it into an anonymous page",
    "g4": "as g3, a tmpfs file",
    "h1": "4K pages written, page 2 pinned by io_uring (a registered buffer)",
    "h2": "four 64K folios written, page 3 pinned by io_uring: a pin in the first folio",
    "h3": "a PMD-mapped 2M THP written, page 3 pinned by io_uring",
    "h4": "as h1, but the pin is released before fork",
    "h5a": "4K pages written, page 2 held 1280 times by a pipe (vmsplice); nothing pinned",
    "h5b": "as h5a, and page 8 pinned by io_uring: the process has pinned a page",
    "h6": "four 64K folios written, the whole first folio (pages 0-15) pinned",
    "h7": "four 64K folios, forked once and that child gone (no page AnonExclusive), then "
          "page 5 written (reused: AnonExclusive again) and pinned",
    "i1": "4K pages written, then MADV_DONTFORK: fork does not give the child the VMA",
    "i2": "4K pages written, then MADV_WIPEONFORK: the child gets the VMA, empty",
    "i3": "MADV_DONTFORK undone by MADV_DOFORK before fork: plain 4K pages again",
    "i4": "MADV_WIPEONFORK undone by MADV_KEEPONFORK before fork: plain 4K pages again",
    "j1": "4K pages written, then the region mprotect(PROT_READ); each process makes it "
          "read-write again (mprotect) before its first write",
    "j2": "four 64K folios, page 5 made read-only: the first folio spans three VMAs",
    "j3": "four 64K folios, forked once and that child gone, then pages 0, 2 and 16 "
          "written again: only those PTEs are writable and AnonExclusive",
    "k1": "4K pages written, write-protected through userfaultfd (uffd-wp), no fork events",
    "k2": "as k1, with fork events (UFFD_FEATURE_EVENT_FORK)",
    "k3": "shmem pages written, uffd-wp, with fork events",
    "k4": "shmem pages written, uffd-wp, no fork events",
    "mp1": "4K pages written, mprotect(PROT_READ), then read-write again: still "
          "AnonExclusive, so the PTEs become writable at once (the parent's write to page "
          "0 before fork does not fault)",
    "mp2": "as mp1, but forked once first (that child gone): no page is AnonExclusive, so "
          "mprotect() leaves the PTEs read-only and the write before fork faults",
    "u1": "one 64K folio with its pages 4-7 unmapped (munmap): the folio spans two VMAs",
    "u2": "one 64K folio with all its pages but page 0 dropped by MADV_DONTNEED: one PTE "
          "left",
    "r1": "a 64K folio whose upper half mremap() moved to page 24: one folio, two places",
    "r2": "a PMD-mapped 2M THP whose upper half mremap() moved to page 768: moving half of "
          "a PMD splits the PMD mapping, so both halves are mapped by PTEs",
    "s1": "4K pages written, then all swapped out by MADV_PAGEOUT",
    "s2": "one 64K folio written, then swapped out by MADV_PAGEOUT",
    "p1": "every page only read (zero page), then pages 2-3 pinned for writing by io_uring",
    "p2": "a private ext4 file mapping only read, then pages 2-3 pinned for writing",
    "p3": "shmem pages written, then pages 2-3 pinned for writing",
    "t1": "one private 2 MiB hugetlb page (MAP_HUGETLB), every page written",
    "t2": "as t1, page 3 pinned by io_uring",
    "t3": "one shared 2 MiB hugetlb page (a hugetlb memfd), every page written",
    "x1": "as d2, then MADV_COLLAPSE: the THP is mapped by one PMD entry again",
}

# Why a row's outcome is not plain copy-on-write (row a for 4K pages, row c for large
# folios): one line per row that the basic copy-on-write rules do not predict.  Words
# only: the numbers are the report's own ({w1}, {w2}, {w3}: the scenario's own page).
# A test keeps this list equal to the rows that really differ in the stored run.
WHY: dict[str, str] = {
    "b1": "only zero pages and no anon_vma: fork skips the VMA; a write to the zero page "
          "always gets a new page (it is never copied from, never reused)",
    "b2": "the zero-page PTEs are shared, but a write to the zero page always gets a new page",
    "b3": "the VMA it was split from had an anon_vma, and a split gives both halves the "
          "same one, so fork copies its zero-page PTEs; every write still gets a new page",
    "e2": "the huge zero page: fork shares its PMD; a write gets a whole new THP, because a "
          "page of zeros has nothing to copy: the new THP is only zero-filled, as a first write "
          "to an empty region would get",
    "g1": "read-only private file pages, no anon_vma: fork skips the VMA; every write copies, "
          "because the page cache keeps its own reference to the file page",
    "g2": "as g1, on tmpfs",
    "g3": "writing page {w2} (the script's w2) before fork gave the VMA an anon_vma, so fork "
          "copies the page table; page-cache pages still copy, the anonymous page {w2} is "
          "reused by its last user",
    "g4": "as g3, on tmpfs",
    "h1": "the pinned page (w2) is copied at fork, and fork write-protects only what it "
          "shares, so neither process's write to it faults",
    "h2": "one pin makes the whole folio maybe pinned: fork copies its AnonExclusive pages, "
          "so the writes inside that folio do not fault",
    "h3": "a pin in a PMD-mapped THP: fork splits the parent's PMD and copies every page "
          "for the child; nothing is shared, so no write faults",
    "h5a": "the pipe's references make the page look pinned, but nothing is pinned: fork "
           "shares it, and the extra references make the child's write copy, not reuse",
    "h5b": "another page is pinned, so the vmsplice'd page counts as maybe pinned too: fork "
           "copies both, and the writes to them do not fault",
    "h6": "the whole folio is pinned: fork copies it, and the writes inside it do not fault",
    "h7": "only the pinned page is AnonExclusive, so fork copies only it; the pin's reference "
          "then stops the parent from reusing the rest of the folio",
    "i1": "MADV_DONTFORK: the child has no such region (SIGSEGV); the parent's pages were "
          "never write-protected",
    "i2": "MADV_WIPEONFORK: the child gets an empty region (new pages); the parent's pages "
          "were never write-protected",
    "k1": "without fork events the child's copies lose the uffd-wp mark (uwp cleared): "
          "nobody monitors the child, so fork clears the bit",
    "k3": "shared memory, yet fork copies its entries: with fork events the child's mapping "
          "is monitored too, and only its own entries can carry the uwp marks",
    "s1": "swapped out: the child has only swap entries; its read swaps the page in "
          "read-only, so its write copies; every other first access faults a page in",
    "s2": "swapped out: every first access faults the page in from swap; the first writer "
          "copies it (the other still holds the slot), the second keeps the page read back",
    "p1": "the R/W pin first replaced the zero pages by exclusive anonymous pages, which fork "
          "copies because they are pinned; the pinned pages then never fault",
    "p2": "the R/W pin first replaced the file page by an exclusive anonymous page, which "
          "fork copies because it is pinned; the other pages are still the file's page-cache "
          "pages, so every write to them copies, even the last user's (w1 parent)",
    "t1": "a hugetlb page is copied or reused whole: the child's first write copies the "
          "whole page (every page of it, pg0 to pg511, is new in the child), and the parent, then "
          "its only mapping, reuses the original; each process now writes its own huge "
          "page, so no later write faults",
    "t2": "a pinned hugetlb page cannot be split: fork gives the child a copy of the whole "
          "huge page, so no write faults",
}


class Backend(Protocol):
    """A world the script runs in: the real kernel (processes) or the pkmm model."""

    def observe(self, name: str, who: str) -> Step: ...
    def access(self, name: str, who: str, page: int, *, write: bool) -> Step: ...
    def fork(self) -> None: ...
    def child_exit(self) -> None: ...


def run_script(sc: Scenario, be: Backend) -> list[Step]:
    """Observe, fork, then the fixed sequence of reads and one-byte writes."""
    steps = [be.observe("before fork", "parent")]
    if sc.pre_write is not None:
        steps.append(be.access("parent writes before fork", "parent", sc.pre_write,
                               write=True))
    be.fork()
    steps += [be.observe("after fork", "child"), be.observe("after fork", "parent")]
    if sc.child_reads:
        steps.append(be.access("child reads w1", "child", _page(sc.w1, sc), write=False))
    if sc.w1 is not None:
        steps.append(be.access("child writes w1 (first writer)", "child", sc.w1, write=True))
    steps.append(be.observe("parent view after child wrote w1", "parent"))
    if sc.w1 is not None:
        steps.append(be.access("parent writes w1 (second writer)", "parent", sc.w1,
                               write=True))
    if sc.w2 is not None:
        steps.append(be.access("parent writes w2 (first writer)", "parent", sc.w2, write=True))
        steps.append(be.access("child writes w2 (second writer)", "child", sc.w2, write=True))
    be.child_exit()
    steps.append(be.observe("parent after child exit", "parent"))
    if sc.w3 is not None:
        steps.append(be.access("parent writes w3 after child exit", "parent", sc.w3,
                               write=True))
    return steps


def _page(w: int | None, sc: Scenario) -> int:
    if w is None:
        raise ValueError(f"scenario {sc.id}: child_reads needs a w1 page")
    return w


def phase(step_name: str) -> str:
    """Which rule phase a step checks: pre, fork, read, first, second or exit."""
    if step_name == "parent writes before fork":
        return "pre"
    if step_name.startswith("child reads"):
        return "read"
    if "first writer" in step_name:
        return "first"
    if "second writer" in step_name or step_name == "parent view after child wrote w1":
        return "second"
    if "after child exit" in step_name:
        return "exit"
    return "fork"
