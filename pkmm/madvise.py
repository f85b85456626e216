"""madvise(): advice that changes VMA flags, or drops, pages out or collapses a range.

Mirrors: mm/madvise.c do_madvise() -> madvise_walk_vmas() -> madvise_vma_behavior(),
madvise_update_vma(), madvise_dontneed_single_vma(); mm/khugepaged.c hugepage_madvise();
v6.8 .. v6.17.  MADV_PAGEOUT is :func:`pkmm.swap.madvise_pageout`, MADV_COLLAPSE
:func:`pkmm.khugepaged.madvise_collapse`.
Simplified: the range must be mapped (the kernel applies the advice to the mapped parts
and returns -ENOMEM; pkmm refuses before changing anything, see :class:`pkmm.Process`).
Taught in: notebooks/05-shared-vs-private.ipynb
"""

from __future__ import annotations

import errno

from .khugepaged import madvise_collapse
from .mm import MmStruct
from .mmap import vma_merge_around, vma_modify, zap_page_range_single
from .swap import madvise_pageout
from .vma import (
    VM_DONTCOPY,
    VM_HUGEPAGE,
    VM_NOHUGEPAGE,
    VM_PFNMAP,
    VM_SHARED,
    VM_WIPEONFORK,
    Vma,
)

__all__ = ["ADVICES", "do_madvise"]

#: advice -> (VM flags set, VM flags cleared) for the advice that only changes flags
FLAG_ADVICE: dict[str, tuple[int, int]] = {
    "MADV_DONTFORK": (VM_DONTCOPY, 0),
    "MADV_DOFORK": (0, VM_DONTCOPY),
    "MADV_WIPEONFORK": (VM_WIPEONFORK, 0),
    "MADV_KEEPONFORK": (0, VM_WIPEONFORK),
    "MADV_HUGEPAGE": (VM_HUGEPAGE, VM_NOHUGEPAGE),
    "MADV_NOHUGEPAGE": (VM_NOHUGEPAGE, VM_HUGEPAGE),
}
ADVICES = (*FLAG_ADVICE, "MADV_DONTNEED", "MADV_PAGEOUT", "MADV_COLLAPSE")


def _flag_advice_invalid(vma: Vma, advice: str) -> bool:
    """madvise_vma_behavior()'s -EINVAL cases for the flag advice."""
    anon_private = vma.backing == "anon" and not vma.vm_flags & VM_SHARED
    if advice == "MADV_WIPEONFORK":
        return not anon_private         # kernel: "MADV_WIPEONFORK is only supported on
    if advice in ("MADV_HUGEPAGE", "MADV_NOHUGEPAGE"):   # anonymous memory"
        return bool(vma.hugetlb_kb) or bool(vma.vm_flags & VM_PFNMAP)
    return False


def madvise_update_vma(vma: Vma, start: int, end: int, advice: str) -> Vma:
    """Set or clear the advice's VM flags on [start, end) of ``vma``: split, change,
    merge again with compatible neighbours (mm/madvise.c madvise_update_vma())."""
    on, off = FLAG_ADVICE[advice]
    new_flags = (vma.vm_flags | on) & ~off
    if new_flags == vma.vm_flags:
        return vma
    vma = vma_modify(vma, start, end)
    vma.vm_flags = new_flags
    return vma_merge_around(vma)


def do_madvise(mm: MmStruct, start: int, end: int, advice: str) -> int:
    """Apply ``advice`` to [start, end) of ``mm``: 0, or a negative errno as the system
    call returns it (-EINVAL for advice the VMA cannot take).  The caller checked that
    the range is mapped."""
    if advice == "MADV_COLLAPSE":
        return madvise_collapse(mm, start, end)
    vmas = [v for v in mm.vmas if v.vm_start < end and v.vm_end > start]
    if advice in FLAG_ADVICE and any(_flag_advice_invalid(v, advice) for v in vmas):
        return -errno.EINVAL
    for vma in vmas:
        lo, hi = max(start, vma.vm_start), min(end, vma.vm_end)
        if advice in FLAG_ADVICE:
            madvise_update_vma(vma, lo, hi, advice)
        elif advice == "MADV_DONTNEED":
            if vma.vm_flags & VM_PFNMAP:
                return -errno.EINVAL    # kernel: madvise_dontneed_free_valid_vma()
            zap_page_range_single(vma, lo, hi)
        elif advice == "MADV_PAGEOUT":
            madvise_pageout(vma, lo, hi)
    return 0
