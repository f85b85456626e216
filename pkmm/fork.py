"""fork(): duplicate a process's VMAs and copy (or skip) their page tables.

Mirrors: kernel/fork.c dup_mmap() (mm/ in the newest kernels), v6.8 .. v6.17: per VMA,
VM_DONTCOPY leaves a hole, VM_WIPEONFORK an empty VMA, userfaultfd registration is kept
only with UFFD_FEATURE_EVENT_FORK, mlock is not inherited, MMF_HAS_PINNED is not
inherited; then copy_page_range(); finally one TLB flush of the parent.
Taught in: notebooks/00-start-here.ipynb, notebooks/02-fork-one-pte-at-a-time.ipynb
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial

from .context import ABLATIONS, ForkContext, ForkCounts, check_ablations
from .errors import ForkError, LayoutError
from .kernels import DEFAULT_KERNEL, get_kernel
from .memory import ENOMEM, copy_page_range
from .perf import cyclic_gc_paused
from .process import Process
from .trace import Event, Step, Trace
from .vma import VM_DONTCOPY, VM_LOCKED, VM_UFFD_WP, VM_WIPEONFORK, AnonVma, Vma

__all__ = ["ForkObserver", "ForkResult", "dup_mmap", "fork"]

#: ``observer(parent, child, fc, item)``: see :func:`fork`.
ForkObserver = Callable[[Process, Process, ForkContext, "Event | Step"], None]


@dataclass(kw_only=True)
class ForkResult(ForkCounts):
    """Everything one fork did: the counters of :class:`pkmm.context.ForkCounts` (exact
    even when the trace is summarised), and ``steps``: one record per return of the
    present/non-present copy function.
    """

    parent: Process
    child: Process
    kernel: str
    without: frozenset[str]
    trace: Trace
    steps: list[Step]

    @property
    def batches(self) -> list[int | str]:
        """The spec's "batches" notation: what each present-copy call returned
        (``"E"`` for -EAGAIN), non-present entries left out.

        >>> import pkmm
        >>> p = pkmm.Process(); _ = p.mmap(0, 16); f = p.alloc_folio(4); p.map(0, f)
        >>> pkmm.fork(p, kernel="v6.9").batches
        [16]
        """
        return ["E" if s.action == "eagain" else s.nr for s in self.steps
                if s.action != "nonpresent"]

    def __repr__(self) -> str:
        return (f"ForkResult(kernel={self.kernel}, steps={sum(self.step_counts.values())}, "
                f"eagain={self.eagain}, copies={self.copies})")


def dup_mmap(fc: ForkContext, child: Process, parent: Process) -> int:
    """Duplicate every VMA of ``parent`` into ``child`` and copy page tables where needed.

    Mirrors: dup_mmap(), v6.8 .. v6.17.  Returns 0 or -ENOMEM.
    """
    f = "dup_mmap"
    for vma in parent.mm.vmas:
        if vma.vm_flags & VM_DONTCOPY:
            fc.emit(f, "skip:dontcopy", "VM_DONTCOPY (MADV_DONTFORK): the child gets no VMA "
                    "here at all", vma.vm_start)
            continue
        flags = vma.vm_flags & ~VM_LOCKED
        if vma.vm_flags & VM_UFFD_WP and not vma.uffd_fork:
            flags &= ~VM_UFFD_WP
            fc.emit(f, "uffd:cleared", "userfaultfd context without UFFD_FEATURE_EVENT_FORK: "
                    "the child VMA is not uffd-wp registered", vma.vm_start)
        tmp = Vma(child.mm, vma.vm_start, vma.vm_end, flags, vma.backing,
                  vma.vm_file, vma.vm_pgoff, uffd_fork=vma.uffd_fork,
                  hugetlb_kb=vma.hugetlb_kb)
        child.mm.insert_vma(tmp)
        if vma.vm_flags & VM_WIPEONFORK:
            fc.emit(f, "skip:wipeonfork", "VM_WIPEONFORK: the child VMA starts empty, without "
                    "an anon_vma; it will fault in fresh zero-filled memory", vma.vm_start)
            continue
        if vma.anon_vma is not None:
            tmp.anon_vma = AnonVma(vma.anon_vma)        # anon_vma_fork
        if copy_page_range(fc, tmp, vma):
            return -ENOMEM
    fc.emit("dup_mmap", "flush_tlb_mm", "one TLB flush of the parent makes its newly "
            "write-protected PTEs visible to every CPU")
    return 0


def fork(p: Process, kernel: str = DEFAULT_KERNEL, without: Iterable[str] = frozenset(), *,
         need_resched: bool = False, fail_prealloc: int | bool = False,
         detail: bool = True, observer: ForkObserver | None = None) -> ForkResult:
    """Fork ``p`` the way ``kernel`` does; returns the child and every decision made.

    ``without`` switches rules off (see :data:`pkmm.ABLATIONS`).
    ``need_resched=True`` makes every lock-break check break (spec T27);
    ``fail_prealloc=N`` fails the N-th preallocation (``True``: every one) so fork fails
    with ENOMEM (:class:`pkmm.ForkError`; the partial child is torn down).
    ``detail=False`` keeps only counts in the trace (for big layouts).
    ``observer(parent, child, fc, item)`` is called after every trace event and copy
    step with the model as it is at that point (what :mod:`pkmm.replay` records).
    Both processes then run the fault path of ``kernel``.
    """
    version = get_kernel(kernel)
    w = check_ablations(without)
    if not isinstance(p, Process):
        raise LayoutError(f"p={p!r}: fork a pkmm.Process")
    if p.exited:
        raise LayoutError(f"fork: process {p.name!r} has exited; fork a live process")
    if not isinstance(fail_prealloc, (bool, int)) or fail_prealloc < 0:
        raise LayoutError(f"fail_prealloc={fail_prealloc!r}: False, True or a count >= 1")
    for name, flag in (("need_resched", need_resched), ("detail", detail)):
        if type(flag) is not bool:
            raise LayoutError(f"{name}={flag!r}: pass True or False")
    if observer is not None and not detail:
        raise LayoutError("observer: a summarised fork (detail=False) records no events to "
                          "observe; pass detail=True")
    fc = ForkContext(version, w, detail, need_resched, fail_prealloc)
    child = Process(version.name, machine=p.machine,
                    name="child" if p.name == "parent" else f"{p.name}.child")
    if observer is not None:
        fc.observer = partial(observer, p, child)
    for name in sorted(w):
        fc.emit("fork", f"ablation:{name}", f"ABLATION: {ABLATIONS[name]}")
    p.kernel = version.name
    with cyclic_gc_paused():
        failed = dup_mmap(fc, child, p)
    if failed:
        child.exit()
        raise ForkError(f"fork with {version.name} failed with ENOMEM; the partial child was "
                        "torn down (see .trace)", fc.trace)
    return ForkResult(parent=p, child=child, kernel=version.name, without=w, trace=fc.trace,
                      steps=fc.steps, eagain=fc.eagain, copies=fc.copies, wasted=fc.wasted,
                      passes=fc.passes, lock_breaks=fc.lock_breaks, ops=fc.ops,
                      step_counts=fc.step_counts, batch_sizes=fc.batch_sizes)
