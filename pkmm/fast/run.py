"""The state of one bulk fork: parent, child, machine, version, counters.

Simulator concept: the bulk counterpart of :class:`pkmm.context.ForkContext`.  Counters
(``ops``, ``step_counts``, ``eagain`` ...) have the traced model's names and meaning.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np

from ..vma import VM_LOCKED, VM_UFFD_WP, VM_WRITE
from .layout import BulkMachine, BulkMM, BulkVma

CopyPresent = Callable[["Run", int, int, int, dict[str, int]], int]


def child_vmas(parent: BulkMM) -> list[BulkVma]:
    """dup_mmap(): the child's VMAs (mlock not inherited; uffd-wp only with EVENT_FORK)."""
    out = []
    for v in parent.vmas:
        flags = v.flags & ~int(VM_LOCKED)
        if flags & VM_UFFD_WP and not v.uffd_fork:
            flags &= ~int(VM_UFFD_WP)
        out.append(BulkVma(v.start, v.end, flags, v.slot0, v.anon_vma, v.uffd_fork))
    return out


class Run:
    """One fork of a :class:`~pkmm.fast.layout.Bulk` (see :func:`pkmm.fast.fork_bulk`)."""

    def __init__(self, parent: BulkMM, machine: BulkMachine, version: str,
                 without: frozenset[str], need_resched: bool,
                 fail_prealloc: int | bool) -> None:
        self.parent, self.machine, self.version = parent, machine, version
        self.ignore_pins = "pinned-copy" in without
        self.no_wrprotect = "cow-wrprotect" in without
        self.need_resched, self.fail_prealloc = need_resched, fail_prealloc
        n = len(parent.bits)
        self.child = BulkMM(child_vmas(parent), np.zeros(n, np.int64),
                            np.zeros(n, np.uint16), rss={})
        self.pfn, self.bits = parent.pfn, parent.bits
        self.cpfn, self.cbits = self.child.pfn, self.child.bits
        self._dst_flags = [v.flags for v in self.child.vmas]
        self.ops: Counter[str] = Counter()
        self.step_counts: Counter[tuple[str, str]] = Counter()
        self.eagain = self.copies = self.wasted = self.passes = self.lock_breaks = 0
        self.prealloc_calls = 0
        self.prealloc: int | None = None
        z = np.zeros(0, np.int64)
        # PMD leaves the vectorised path shared: (pmd index, pfn, child bits)
        self.vec_pmds: tuple[np.ndarray, np.ndarray, np.ndarray] = (z, z, z)
        self.copy_present: CopyPresent

    def dst_uffd(self, vma: int) -> bool:
        """userfaultfd_wp(dst_vma)."""
        return bool(self._dst_flags[vma] & VM_UFFD_WP)

    def dst_write(self, vma: int) -> bool:
        """dst_vma->vm_flags & VM_WRITE."""
        return bool(self._dst_flags[vma] & VM_WRITE)

    def step(self, action: str, key: str, n: int = 1) -> None:
        """ForkContext.step() summarised: count (action, stop or reason)."""
        self.step_counts[(action, key)] += n

    def page_copy_prealloc(self) -> bool:
        """Mirrors: folio_prealloc(): one order-0 page from the bump allocator, or fail."""
        self.prealloc_calls += 1
        fail = self.fail_prealloc
        if fail is True or (fail and self.prealloc_calls == fail):
            return False
        self.prealloc = self.machine.next_pfn
        self.machine.next_pfn += 1
        return True

    def folio_page(self, s: int) -> tuple[int, int] | None:
        """vm_normal_page() + page_folio(): (folio index, page index) or None."""
        if self.bits[s] & 128:   # special: zero page / raw PFN
            return None
        page = int(self.pfn[s]) - self.machine.base
        if not 0 <= page < len(self.machine.page_folio) or self.machine.page_folio[page] < 0:
            return None
        return int(self.machine.page_folio[page]), page
