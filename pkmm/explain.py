"""Plain words for what the model did: the sentences :mod:`pkmm.check` leads with.

Teaching layer.  Nothing here decides a kernel rule.  Every function reads what the model
*did* -- a fork's steps and trace, a fault's kind, the state before and after -- and says it
in words a learner who never read kernel C can follow; the kernel's own names come second,
in the "kernel detail" a checker prints after the plain sentence.  Only clauses that
applied are said: a child PTE is said to lose uffd-wp only if some parent PTE had it.
Taught in: notebooks/02-fork-one-pte-at-a-time.ipynb (and every later notebook)

>>> slots_text([0, 1, 2, 5])
'PTEs 0-2 and 5'
>>> fault_words("reuse")
'no copy: the writer is the only user left, so the kernel just makes its PTE writable again'
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .kernels.common import stop_words
from .pte import PAGE_SIZE

__all__ = ["FAULT_WORDS", "WHY_BIT", "fault_words", "join", "n_of", "slot_of", "slots_text",
           "stop_text"]

#: What each fault path did, for a learner (keys: ``FaultResult.kind``, plus "no fault").
FAULT_WORDS = {
    "no fault": "no page fault: the PTE already allowed this access",
    "cow-copy": "copy-on-write: the page may still be used by the other process, so the "
                "kernel copies it (4 KiB) and maps the copy, writable, for the writer only",
    "reuse": "no copy: the writer is the only user left, so the kernel just makes its PTE "
             "writable again",
    "cow-zero": "a write to the zero page: the kernel gives the writer a new zero-filled page, "
                "mapped writable (the zero page itself is never written)",
    "thp-reuse": "no copy: the writer is the only user of the whole 2 MiB huge page, so its "
                 "PMD is made writable again",
    "split-pmd": "the writer's 2 MiB PMD mapping is split into 512 PTEs first",
    "huge-zero-thp": "a write to the huge zero page: the kernel allocates a whole new zeroed "
                     "2 MiB huge page for the writer",
    "zero": "a read of memory never written: the kernel maps the shared zero page",
    "anonymous": "a first touch of anonymous memory: the kernel allocates a zero-filled page",
    "file-read": "a read of a file mapping: the kernel maps the file's page from the page "
                 "cache",
    "cow-file": "a write to a private file mapping: the kernel copies the file's page into a "
                "private anonymous page",
    "shared": "a write to a shared mapping: no copy, the PTE is made writable (and dirty)",
    "shared-write": "a write to a shared mapping: the page-cache page is mapped writable",
    "swapin": "the page was swapped out: the fault reads it back into a new page",
    "migration": "the page was being migrated: the fault waits and maps it again",
    "numa": "a NUMA-hinting fault: the kernel notes who touched the page and restores the PTE",
}

#: Why fork treats a bit the way it does, keyed by (bit, what happened to it in the child).
#: Used only when the model's outcome shows that case happened.
WHY_BIT = {
    ("young", "cleared"): "fork makes every inherited child PTE old (A = 0): the child has "
                          "not used the page yet, and A is how page reclaim learns which "
                          "mappings really use a page",
    ("dirty", "cleared-shared"): "in a shared mapping the child's PTE is made clean: the "
                                 "parent's PTE still says the page is dirty, so writeback "
                                 "will not miss it, and the child has written nothing yet",
    ("dirty", "merged"): "the whole child batch is marked dirty because some PTE of the "
                         "scanned range was dirty (the seed patch counts dirty PTEs "
                         "instead of comparing them)",
    ("uffd_wp", "cleared"): "the child's VMA is not registered for userfaultfd "
                            "write-protect, so nobody would handle its uffd-wp faults: "
                            "the bit is dropped in the child",
    ("uffd_wp", "uffd-kept"): "the child's VMA is registered for userfaultfd write-protect "
                         "(EVENT_FORK), so the child keeps each PTE's uffd-wp bit",
    ("dirty", "kept-private"): "in a private mapping the child's PTE keeps the parent's "
                               "dirty bit: the page holds data that exists nowhere else "
                               "(not yet in swap), and D says so",
    ("write", "cow"): "the mapping is private, so the page is now shared copy-on-write: "
                      "parent and child PTEs are both read-only, and the first write by "
                      "either process faults and gets its own copy",
    ("write", "shared-kept"): "a shared mapping needs no copy-on-write (both processes are "
                              "meant to see each other's writes), so W is not taken away",
    ("write", "merged"): "the batch is written from one PTE value: W was merged over the "
                         "batch, so one writable PTE makes the child's whole batch "
                         "writable (harmless in a shared mapping)",
    ("write", "mixed-ro"): "only some PTEs of the batch were writable, so the seed patch "
                           "made the child's whole batch read-only; a write fault makes it "
                           "writable again later",
    ("soft_dirty", "first"): "soft-dirty tracking is off for this VMA, so the batch "
                             "ignored SD when it was formed and the child's whole batch "
                             "takes the first PTE's SD",
    ("soft_dirty", "cleared"): "the child's soft-dirty bits were cleared: the seed patch "
                               "clears SD in every child batch",
    ("any", "kept"): "the child's PTE keeps the parent's value",
    ("any", "copied"): "this page may be pinned for DMA, so the child got its own copy, "
                       "mapped by a brand-new PTE: writable, dirty (the copy was just "
                       "written) and accessed (the VMA's default protection includes A on "
                       "x86 and arm64)",
}


def n_of(n: int, word: str, plural: str = "") -> str:
    """``n`` and the word, singular or plural.

    >>> n_of(1, "page"), n_of(4, "page"), n_of(2, "batch", "batches")
    ('1 page', '4 pages', '2 batches')
    """
    return f"{n} {word if n == 1 else plural or word + 's'}"


def slot_of(addr: int, base: int) -> int:
    """The PTE number of ``addr`` counted from ``base`` (the VMA start).

    >>> slot_of(0x202000, 0x200000)
    2
    """
    return (addr - base) // PAGE_SIZE


def slots_text(slots: Iterable[int], word: str = "PTE") -> str:
    """PTE numbers as ranges: ``[0, 1, 2, 5]`` -> ``'PTEs 0-2 and 5'``.

    >>> slots_text([3])
    'PTE 3'
    >>> slots_text([0, 1], word="page")
    'pages 0-1'
    """
    s = sorted(set(slots))
    runs: list[tuple[int, int]] = []
    for x in s:
        if runs and x == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], x)
        else:
            runs.append((x, x))
    parts = [f"{a}" if a == b else f"{a}-{b}" for a, b in runs]
    word = word if len(s) == 1 else word + "s"
    if len(parts) <= 1:
        return f"{word} {''.join(parts)}"
    return f"{word} {', '.join(parts[:-1])} and {parts[-1]}"


def stop_text(stop: str) -> str:
    """Why a batch ended, in the words of the one stop-reason vocabulary.

    >>> stop_text("bit:dirty")
    'next PTE differs in the dirty bit'
    """
    return stop_words(stop)


def fault_words(kind: str) -> str:
    """What a fault path did, in plain words (``kind`` as in :class:`pkmm.FaultResult`)."""
    return FAULT_WORDS.get(kind, kind)


def join(parts: Sequence[str]) -> str:
    """Sentences joined with '; ', empty parts dropped."""
    return "; ".join(p for p in parts if p)
