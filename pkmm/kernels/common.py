"""Pieces every variant's present-PTE copy uses: traced rmap duplication, batch stop
reasons, and the v6.9 .. v6.17 inner worker __copy_present_ptes().

Simulator helpers around the kernel's own calls: each wraps one kernel call (named by the
variant, so the trace names the function that ran) and records the decision it made and
why, so the variant modules read like the kernel.
Taught in: notebooks/06-upstream-batching.ipynb
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from ..context import ForkContext, Prealloc
from ..folio import Folio, Page, folio_maybe_dma_pinned
from ..memory import EAGAIN, copy_present_page
from ..pgtable import set_ptes, wrprotect_ptes
from ..pte import PTE_BITS, Pte, pte_clear_uffd_wp, pte_mkclean, pte_mkold, pte_wrprotect
from ..rmap import (
    folio_dup_file_rmap_pte,
    folio_dup_file_rmap_ptes,
    folio_try_dup_anon_rmap_pte,
    folio_try_dup_anon_rmap_ptes,
    page_dup_file_rmap,
    page_try_dup_anon_rmap,
)
from ..vma import VM_SHARED, Vma, is_cow_mapping, userfaultfd_wp

__all__ = ["STOPS", "STOP_WORDS", "Stop", "__copy_present_ptes", "copy_for_child", "dup_file",
           "pte_diff", "stop_words", "try_dup_anon"]

# The rmap calls a variant may name, each run as the kernel function of that name.
_ANON_DUP: dict[str, Callable[[Folio, Page, int, Vma, Vma, bool], int]] = {
    "folio_try_dup_anon_rmap_ptes": folio_try_dup_anon_rmap_ptes,
    "folio_try_dup_anon_rmap_pte":
        lambda f, pg, nr, dst, src, ign: folio_try_dup_anon_rmap_pte(f, pg, dst, src, ign),
    "page_try_dup_anon_rmap":
        lambda f, pg, nr, dst, src, ign: page_try_dup_anon_rmap(pg, dst, src, ign),
}
_FILE_DUP: dict[str, Callable[[Folio, Page, int, Vma], None]] = {
    "folio_dup_file_rmap_ptes": folio_dup_file_rmap_ptes,
    "folio_dup_file_rmap_pte": lambda f, pg, nr, dst: folio_dup_file_rmap_pte(f, pg, dst),
    "page_dup_file_rmap": lambda f, pg, nr, dst: page_dup_file_rmap(pg, dst),
}


def try_dup_anon(fc: ForkContext, func: str, folio: Folio, page: Page, nr: int,
                 dst_vma: Vma, src_vma: Vma, addr: int) -> int:
    """Call the rmap dup ``func`` (a kernel name, e.g. ``folio_try_dup_anon_rmap_ptes``)
    for pages [page, page+nr) and trace the outcome."""
    fc.ops["anon_dup_checks"] += 1
    ret = _ANON_DUP[func](folio, page, nr, dst_vma, src_vma, fc.ablated("pinned-copy"))
    if ret:
        pinned = ("pincount > 0" if folio.order else
                  f"refcount {folio.refcount} >= 1024 (GUP_PIN_COUNTING_BIAS)")
        fc.emit(func, "anon-dup:busy",
                f"folio may be DMA-pinned ({pinned}, parent mm has MMF_HAS_PINNED) and "
                f"{'a page' if nr > 1 else 'the page'} is AnonExclusive: sharing would let "
                "a later CoW fault replace the pinned page, so the child needs a copy",
                addr, nr)
    else:
        fc.ops["mapcount_ops"] += nr
        why = "AnonExclusive cleared, mapcount + 1 per page"
        if fc.ablated("pinned-copy") and src_vma.vm_mm.has_pinned and \
                folio_maybe_dma_pinned(folio):
            why += " (ABLATION pinned-copy: the pin check was skipped)"
        fc.emit(func, "anon-dup:ok", why, addr, nr)
    return ret


def copy_for_child(fc: ForkContext, func: str, dst_vma: Vma, src_vma: Vma, pte: Pte,
                   addr: int, rss: dict[str, int], prealloc: Prealloc, page: Page,
                   stop: str = "") -> int:
    """copy_present_page() for one PTE, recording the step: 1 when copied, else the error
    (-EAGAIN: no preallocated page yet; -EHWPOISON: memory error in the source page)."""
    ret = copy_present_page(fc, dst_vma, src_vma, pte, addr, rss, prealloc, page)
    if ret == 0:
        fc.step(addr, 1, "copy", "maybe-pinned AnonExclusive page copied", func, stop)
        return 1
    if ret == -EAGAIN:
        fc.step(addr, 0, "eagain", "needs a preallocated page for the copy", func, stop)
    else:
        fc.step(addr, 0, "copy", "memory error while copying: -EHWPOISON", func, stop)
    return ret


def dup_file(fc: ForkContext, func: str, folio: Folio, page: Page, nr: int,
             dst_vma: Vma, addr: int) -> None:
    """File rmap dup ``func`` (cannot fail), traced."""
    _FILE_DUP[func](folio, page, nr, dst_vma)
    fc.ops["mapcount_ops"] += nr
    fc.emit(func, "file-dup", "page-cache page: mapcount + 1 per page, no exclusivity to "
            "give up", addr, nr)


def __copy_present_ptes(fc: ForkContext, dst_vma: Vma, src_vma: Vma, pte: Pte, addr: int,
                        nr: int) -> Pte:
    """Write ``nr`` child PTEs from ``pte``; write-protect the parent's in COW mappings.

    Mirrors: mm/memory.c __copy_present_ptes(), v6.9 .. v6.17.  Returns the child value.
    """
    f = "__copy_present_ptes"
    src_mm = src_vma.vm_mm
    # kernel: "If it's a COW mapping, write protect it both processes."
    if is_cow_mapping(src_vma.vm_flags) and pte.write and not fc.ablated("cow-wrprotect"):
        wrprotect_ptes(src_mm, addr, nr)
        pte = pte_wrprotect(pte)
        fc.ops["wrprotect_calls"] += 1
        fc.emit(f, "cow-wrprotect", f"COW mapping: write-protect {nr} parent PTE(s) "
                "(wrprotect_ptes) and the child's", addr, nr)
    # kernel: "If it's a shared mapping, mark it clean in the child."
    if src_vma.vm_flags & VM_SHARED:
        pte = pte_mkclean(pte)
    pte = pte_mkold(pte)
    # Say "uffd-wp cleared" only when there was a uffd-wp bit to clear.
    uffd_cleared = pte.uffd_wp and not userfaultfd_wp(dst_vma)
    if not userfaultfd_wp(dst_vma):
        pte = pte_clear_uffd_wp(pte)
    set_ptes(dst_vma.vm_mm, addr, pte, nr)
    fc.ops["pte_writes"] += nr
    fc.ops["set_ptes_calls"] += 1
    fc.emit(f, "set-ptes", f"{nr} child PTE(s): old"
            + (", clean (shared)" if src_vma.vm_flags & VM_SHARED else "")
            + (", uffd-wp cleared (child not uffd-wp registered)" if uffd_cleared else ""),
            addr, nr,
            child=pte)
    return pte


def pte_diff(expected: Pte, p: Pte | None) -> str:
    """Why PTE ``p`` does not continue a batch whose next entry should be ``expected``.

    >>> pte_diff(Pte(pfn=5, dirty=True), Pte(pfn=5))
    'bit:dirty'
    >>> pte_diff(Pte(pfn=5), Pte(pfn=9))
    'pfn-gap'
    """
    if p is None:
        return "pte-none"
    if not p.present:
        return "not-present"
    if p.pfn != expected.pfn:
        return "pfn-gap"
    for b in PTE_BITS:
        if getattr(p, b.name) != getattr(expected, b.name):
            return f"bit:{b.name}"
    return "same"


class Stop(NamedTuple):
    """One reason a batch ends, in the three phrasings pkmm uses.

    ``words``: the trace's short form; ``starts``: in plain words, why the *next* PTE
    begins a new call; ``detail``: the kernel's side of it.
    """

    words: str
    starts: str
    detail: str


#: The one stop-reason vocabulary (trace, views, checkers and exercises read it).
STOPS: dict[str, Stop] = {
    "range-end": Stop("reached the end of this PMD slice / VMA (max_nr)",
                      "the batch before it reached the end of the range being copied",
                      "a batch stops at the end of the PMD slice or VMA (max_nr)"),
    "folio-end": Stop("reached the end of the folio",
                      "the batch before it reached the end of its folio",
                      "a batch never crosses into another folio, even a physically "
                      "adjacent one"),
    "pfn-gap": Stop("next PTE maps a page that does not follow (pfn gap)",
                    "it does not map the page right after the previous PTE's page",
                    "a batch needs consecutive pages (pfns) of one folio"),
    "pte-none": Stop("next slot is empty", "an empty slot comes right before it",
                     "a batch covers present PTEs only"),
    "not-present": Stop("next entry is not present (swap, migration or marker)",
                        "a non-present entry comes right before it",
                        "a batch covers present PTEs only"),
    "small-folio": Stop("order-0 folio: nothing to batch",
                        "it maps a single-page (order-0) folio",
                        "there is nothing to batch: folio_test_large() is false"),
    "prev-single": Stop("the PTE before was a call of its own",
                        "the PTE before it maps a single-page folio and was a call of its own",
                        "the next call starts here"),
    "no-page": Stop("no struct page: always a batch of 1",
                    "it has no struct page (vm_normal_page() is NULL)",
                    "such a PTE is always a call of its own"),
    "prealloc-held": Stop("a preallocated page is held: per-PTE path first",
                          "fork holds a page it preallocated after an -EAGAIN",
                          "the retry copies one PTE before batching again"),
    "max_nr-1": Stop("only one PTE left to copy in this page table and VMA",
                     "only one PTE was left to copy in this page table and VMA",
                     "with max_nr == 1 there is nothing to batch"),
    "anon-dup-failed": Stop("anon dup failed at a later page: batch truncated",
                            "the batch before it was cut where a page needed copying",
                            "the page that needs copying gets a call of its own"),
}
STOP_WORDS = {k: v.words for k, v in STOPS.items()}


def stop_words(stop: str) -> str:
    """A sentence for a stop reason id (``bit:<name>`` included)."""
    if stop.startswith("bit:"):
        return f"next PTE differs in the {stop[4:]} bit"
    return STOP_WORDS.get(stop, stop)
