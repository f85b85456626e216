"""The kernel rules, one sentence each, that exercise explanations cite.

Simulator concept.  Sentences only: every decision is made by the model; these words
say *which* rule made it, per version (spec: shared/spec/kernel-fork-spec.md §5, §7-§10;
A = v6.8, B = batch-v3, C = v6.9, D = v6.17).
Taught in: notebooks/exercises/README.md
"""

from __future__ import annotations

BATCH_FUNC = {"eager-copy": "copy_one_pte", "v6.8": "copy_present_pte",
              "batch-v3": "folio_nr_pages_cont_mapped", "v6.9": "folio_pte_batch",
              "v6.17": "folio_pte_batch_flags"}

_NO_BATCH = "{k} copies one PTE per call ({f} has no batching): every PTE is its own call"


def starts_batch(kernel: str, stop: str) -> str:
    """Why a PTE starts a new batch, given the stop reason of the batch before it
    (or ``small-folio`` / ``no-page`` / ``prev-single`` for single-PTE steps)."""
    f = BATCH_FUNC[kernel]
    if kernel in ("v6.8", "eager-copy"):
        return _NO_BATCH.format(k=kernel, f=f)
    k = f"{kernel} {f}"
    if stop.startswith("bit:"):
        bit = stop[4:]
        if bit == "dirty":
            flag = ("FPB_IGNORE_DIRTY is set only for shared mappings" if kernel == "v6.9"
                    else "FPB_RESPECT_DIRTY is passed for private mappings")
            return f"{k} compares the dirty bit in private mappings ({flag})"
        if bit == "soft_dirty":
            return f"soft-dirty tracking is on for this VMA, so {k} compares soft-dirty"
        if bit == "uffd_wp":
            return f"{k} compares uffd-wp: " + (
                "the child VMA is uffd-wp" if kernel == "batch-v3"
                else "always, even when the child VMA is not uffd-wp")
        return f"{k} breaks a batch where the {bit} bit changes"
    words = {
        "folio-end": f"the previous batch reached the end of its folio ({k} never crosses "
                     "a folio boundary, even into a physically adjacent folio)",
        "pfn-gap": f"it does not map the page after the previous PTE's page (pfn gap); {k} "
                   "needs consecutive pfns",
        "pte-none": f"an empty slot ends the previous batch ({k} needs present PTEs)",
        "not-present": f"a non-present entry ends the previous batch ({k} needs present "
                       "PTEs)",
        "small-folio": "it maps an order-0 folio: nothing to batch (folio_test_large() is "
                       "false)",
        "prev-single": "the PTE before it maps an order-0 folio and was a call of its own",
        "no-page": "it has no struct page: always a batch of 1",
        "range-end": "the previous batch reached the end of the VMA / PMD slice (max_nr)",
        "prealloc-held": f"{kernel} holds a preallocated page after -EAGAIN, so it takes "
                         "the per-PTE path",
        "anon-dup-failed": "the previous batch was cut where a page needed copying",
    }
    return words.get(stop, f"{k} stopped the previous batch ({stop})")


def continues_batch(kernel: str, diff: list[str], shared: bool = False) -> str:
    """Why a PTE does *not* start a new batch although it differs in ``diff``."""
    f = BATCH_FUNC[kernel]
    d = f"; it differs from the PTE before only in {', '.join(diff)}" if diff else ""
    if kernel == "batch-v3":
        return (f"batch-v3 {f} ignores dirty, write, young and soft-dirty (and uffd-wp unless "
                "the child VMA is uffd-wp), so the next page of the same folio continues "
                f"the batch{d}")
    masked = "young and write" + (", dirty (shared mapping)" if shared else "")
    return (f"{kernel} {f} ignores {masked}, and soft-dirty unless tracking is on, so the "
            f"next page of the same folio continues the batch{d}")


def child_bit(kernel: str, bit: str, shared: bool, tracking: bool, child_uffd: bool) -> str:
    """How ``kernel`` sets ``bit`` in a child PTE that shares the parent's page (§5.5)."""
    if bit == "young":
        return f"{kernel}: every child PTE is made old (pte_mkold): A = 0"
    if bit == "uffd_wp":
        return (f"{kernel}: the child VMA is uffd-wp, so each child PTE keeps the parent's UW"
                if child_uffd else f"{kernel}: the child VMA is not uffd-wp, so UW is "
                "cleared in every child PTE")
    if bit == "dirty":
        if shared:
            return f"{kernel}: shared mapping, so child PTEs are made clean (pte_mkclean): D = 0"
        return {"v6.8": "v6.8 copy_present_pte copies each PTE's own dirty bit",
                "batch-v3": "batch-v3 counts dirty PTEs over the whole scanned range "
                            "(nr_dirty) and, if any is dirty, marks the whole child batch dirty",
                }.get(kernel, f"{kernel} keeps the parent's dirty bit exactly: in private "
                      f"mappings {BATCH_FUNC[kernel]} splits batches where D changes")
    if bit == "soft_dirty":
        if kernel == "v6.8":
            return "v6.8 copy_present_pte: the child inherits each PTE's soft-dirty bit"
        if kernel == "batch-v3":
            return "batch-v3 always clears soft-dirty in the child"
        return (f"{kernel}: soft-dirty tracking is on, so batches split on SD and each child "
                "PTE keeps its own SD" if tracking else
                f"{kernel}: soft-dirty tracking is off, so {BATCH_FUNC[kernel]} ignores SD "
                "and the whole child batch gets the FIRST PTE's SD")
    if bit == "write":
        if not shared:
            return (f"{kernel}: private (COW) mapping, so parent and child PTEs are "
                    "write-protected: child W = 0")
        return {"v6.8": "v6.8: shared mapping, the child PTE keeps each PTE's own W",
                "batch-v3": "batch-v3: shared mapping, the child batch is writable only if "
                            "ALL its PTEs are writable (0 < nr_writable < nr makes it read-only)",
                }.get(kernel, f"{kernel}: shared mapping, the child batch is writable if ANY "
                      "of its PTEs is writable (any_writable / FPB_MERGE_WRITE)")
    return f"{kernel}: child {bit} = parent's"
