"""Present-PTE copy of each kernel version on the bulk form, one call per batch.

Mirrors: copy_present_pte() (v6.8, pkmm.kernels.v6_8), copy_present_ptes() with
folio_nr_pages_cont_mapped() (batch-v3), folio_pte_batch() (v6.9),
folio_pte_batch_flags() (v6.17), and xv6 uvmcopy() (eager-copy).  Same returns as the
model: the number of PTEs done, or -EAGAIN.  Used by :mod:`pkmm.fast.seq`.
Taught in: notebooks/08-cost.ipynb
"""

from __future__ import annotations

from ..memory import EAGAIN
from ..mm import MM_ANONPAGES
from ..vma import VM_SOFTDIRTY
from .layout import NP, PN, SD, UW, A, D, P, W
from .run import CopyPresent, Run
from .seq import (
    COPIED,
    NEED,
    RAW,
    copy_present_page,
    diff_stop,
    share_ptes,
    single_pte,
    try_dup_anon,
)


def _raw(r: Run, s: int, vma: int, key: str) -> int:
    share_ptes(r, s, 1, vma, int(r.bits[s]), not r.no_wrprotect)
    r.step("raw", key)
    return 1


def copy_present_pte(r: Run, s: int, max_nr: int, vma: int, rss: dict[str, int]) -> int:
    """Mirrors: copy_present_pte(), v6.8: one PTE, never batched."""
    fp = r.folio_page(s)
    if fp is None:
        return _raw(r, s, vma, RAW)
    return single_pte(r, s, vma, rss, fp[0], fp[1], "anon page shared with the child", "")


def batch_mask(r: Run, vma: int) -> int:
    """Bits a v6.9/v6.17 batch must agree on: all but young and write, and soft-dirty
    only while tracking is on (FPB_IGNORE_SOFT_DIRTY / FPB_RESPECT_SOFT_DIRTY)."""
    mask = 0xFFFF & ~(W | A)
    if r.parent.vmas[vma].flags & VM_SOFTDIRTY:
        mask &= ~SD
    return mask


def folio_pte_batch(r: Run, s: int, max_nr: int, vma: int, folio: int) -> tuple[int, bool, str]:
    """Mirrors: folio_pte_batch() v6.9 (equality first, folio end after) and
    folio_pte_batch_flags() v6.17 (max_nr clamped to the folio end first)."""
    r.ops["batch_scans"] += 1
    m = r.machine
    folio_end = int(m.folio_pfn[folio]) + (1 << int(m.folio_order[folio]))
    pfn0, mask = int(r.pfn[s]), batch_mask(r, vma)
    mb0 = int(r.bits[s]) & mask
    stop = "range-end"
    if r.version == "v6.17":
        to_end = folio_end - pfn0
        stop = "folio-end" if to_end <= max_nr else "range-end"
        max_nr = min(max_nr, to_end)
    nr, anyw = 1, False
    while nr < max_nr:
        t = s + nr
        b = int(r.bits[t])
        r.ops["pte_reads"] += 1
        if not b or b & NP or int(r.pfn[t]) != pfn0 + nr or b & mask != mb0:
            stop = diff_stop(r, t, pfn0 + nr, mb0, mask)
            break
        if r.version == "v6.9" and pfn0 + nr >= folio_end:
            stop = "folio-end"
            break
        anyw |= bool(b & W)
        nr += 1
    return nr, anyw, stop


def copy_present_ptes(r: Run, s: int, max_nr: int, vma: int, rss: dict[str, int]) -> int:
    """Mirrors: copy_present_ptes(), v6.9 and v6.17 (same control flow)."""
    fp = r.folio_page(s)
    if fp is None:
        return _raw(r, s, vma, "no-page")
    folio, page = fp
    m = r.machine
    large = m.folio_order[folio] > 0
    # kernel: "If we likely have to copy, just don't bother with batching."
    if r.prealloc is None and large and max_nr != 1:
        nr, anyw, stop = folio_pte_batch(r, s, max_nr, vma, folio)
        m.refcount[folio] += nr
        r.ops["refcount_ops"] += 1
        if try_dup_anon(r, folio, page, nr):
            m.refcount[folio] -= nr
            r.step("eagain", "anon-dup-failed")
            return -EAGAIN
        rss[MM_ANONPAGES] += nr
        r.ops["rss_updates"] += 1
        share_ptes(r, s, nr, vma, int(r.bits[s]) | (W if anyw else 0), not r.no_wrprotect)
        r.step("share", stop)
        return nr
    why = ("prealloc-held" if r.prealloc is not None else
           "small-folio" if not large else "max_nr-1")
    return single_pte(r, s, vma, rss, folio, page, "", why)


def folio_nr_pages_cont_mapped(r: Run, s: int, max_nr: int, vma: int,
                               folio: int) -> tuple[int, int, int, str]:
    """Mirrors: folio_nr_pages_cont_mapped() of the seed patch (batch-v3)."""
    b0 = int(r.bits[s])
    dn, wn = int(bool(b0 & D)), int(bool(b0 & W))
    m = r.machine
    if not m.folio_order[folio]:
        return 1, dn, wn, "small-folio"
    r.ops["batch_scans"] += 1
    pfn0 = int(r.pfn[s])
    to_end = int(m.folio_pfn[folio]) + (1 << int(m.folio_order[folio])) - pfn0
    floops = min(max_nr, to_end)
    stop = "folio-end" if floops == to_end else "range-end"
    enforce, i = r.dst_uffd(vma), 1
    while i < floops:
        b = int(r.bits[s + i])
        r.ops["pte_reads"] += 1
        if not b or b & NP:
            stop = "pte-none" if not b else "not-present"
            break
        if int(r.pfn[s + i]) != pfn0 + i:
            stop = "pfn-gap"
            break
        if (b ^ b0) & PN:
            stop = "bit:protnone"
            break
        if enforce and (b ^ b0) & UW:
            stop = "bit:uffd_wp"
            break
        dn += bool(b & D)
        wn += bool(b & W)
        i += 1
    return i, dn, wn, stop


def copy_present_ptes_v3(r: Run, s: int, max_nr: int, vma: int, rss: dict[str, int]) -> int:
    """Mirrors: copy_present_ptes() of the seed patch v3 (per-page anon dup, dirty and
    writable counted over the scan)."""
    nr, stop = 1, "no-page"
    b0 = int(r.bits[s])
    nd, nw = b0 & D, b0 & W
    fp = r.folio_page(s)
    m = r.machine
    if fp is not None:
        folio, page = fp
        nr, nd, nw, stop = folio_nr_pages_cont_mapped(r, s, max_nr, vma, folio)
        m.refcount[folio] += nr
        r.ops["refcount_ops"] += 1
        i = 0
        while i < nr:
            if try_dup_anon(r, folio, page + i, 1):
                if i != 0:
                    break
                m.refcount[folio] -= nr
                if copy_present_page(r, s, vma, rss) == 0:
                    r.step("copy", COPIED)
                    return 1
                r.step("eagain", NEED)
                return -EAGAIN
            rss[MM_ANONPAGES] += 1
            i += 1
        if i < nr:
            m.refcount[folio] -= nr - i
            nr, stop = i, "anon-dup-failed"
        r.ops["rss_updates"] += 1
    bits = b0 | (D if nd else 0)
    if nw and not r.no_wrprotect:
        r.bits[s:s + nr] &= 0xFFFF ^ W
        bits &= ~W
        r.ops["wrprotect_calls"] += 1
    bits &= ~(A | SD)
    if not r.dst_uffd(vma):
        bits &= ~UW
    pfn = int(r.pfn[s])
    r.cpfn[s:s + nr] = range(pfn, pfn + nr)
    r.cbits[s:s + nr] = bits
    r.ops["pte_writes"] += nr
    r.ops["set_ptes_calls"] += 1
    r.step("raw" if fp is None else "share", stop)
    return nr


def uvmcopy_pte(r: Run, s: int, max_nr: int, vma: int, rss: dict[str, int]) -> int:
    """Mirrors: xv6 uvmcopy() (eager-copy): the child gets a new page now."""
    if r.folio_page(s) is None:
        return copy_present_pte(r, s, max_nr, vma, rss)
    new = r.machine.next_pfn
    r.machine.next_pfn += 1
    r.machine.add_copies(new, 1)
    rss[MM_ANONPAGES] += 1
    b = int(r.bits[s])
    bits = P | (b & (W | D | A | SD | UW | PN))
    if not r.dst_write(vma):
        bits &= ~W
    if not r.dst_uffd(vma):
        bits &= ~UW
    r.cpfn[s], r.cbits[s] = new, bits
    r.copies += 1
    r.ops["page_copies"] += 1
    r.ops["pte_writes"] += 1
    r.step("copy", "private page copied eagerly (no copy-on-write)")
    return 1


COPY_PRESENT: dict[str, CopyPresent] = {
    "v6.8": copy_present_pte, "batch-v3": copy_present_ptes_v3, "v6.9": copy_present_ptes,
    "v6.17": copy_present_ptes, "eager-copy": uvmcopy_pte}
