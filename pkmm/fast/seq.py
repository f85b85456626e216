"""The per-entry path of the bulk fork: copy_pte_range one slot at a time, every version.

Mirrors: mm/memory.c copy_pte_range(), copy_present_pte(s) (v6.8, batch-v3, v6.9, v6.17,
xv6 uvmcopy), copy_present_page(), copy_nonpresent_pte() -- the same rules as
:mod:`pkmm.memory` and :mod:`pkmm.kernels`, on the bulk arrays, for the PMD slices the
vectorised path does not take (pins, non-present entries, lock breaks).  Step reasons
and ``ops`` are the traced model's, so the results compare one to one.
Taught in: notebooks/08-cost.ipynb
"""

from __future__ import annotations

from ..memory import EAGAIN, ENOMEM
from ..mm import MM_ANONPAGES, MM_SWAPENTS
from ..pte import (
    make_pte_marker,
    make_readable_migration_entry,
    pte_clear_uffd_wp,
    pte_swp_clear_exclusive,
)
from .layout import NP, PN, SD, SP, UW, A, D, P, W
from .run import Run

_PTE_BITS = ((W, "write"), (D, "dirty"), (A, "young"), (SD, "soft_dirty"), (UW, "uffd_wp"),
             (PN, "protnone"), (SP, "special"))
COPIED = "maybe-pinned AnonExclusive page copied"
NEED = "needs a preallocated page for the copy"
RAW = "no struct page (zero page / raw PFN): copied by value"


def diff_stop(r: Run, s: int, pfn: int, mbits: int, mask: int) -> str:
    """pkmm.kernels.common.pte_diff(): why slot ``s`` does not continue the batch."""
    b = int(r.bits[s])
    if not b:
        return "pte-none"
    if b & NP:
        return "not-present"
    if int(r.pfn[s]) != pfn:
        return "pfn-gap"
    for bit, name in _PTE_BITS:
        if (b & mask & bit) != (mbits & bit):
            return f"bit:{name}"
    return "same"


def copy_pte_range(r: Run, lo: int, hi: int, vma: int) -> int:
    """Mirrors: mm/memory.c copy_pte_range(), v6.8 .. v6.17, for slots [lo, hi)."""
    s, ret = lo, 0
    while True:
        progress = 0
        rss = {MM_ANONPAGES: 0, MM_SWAPENTS: 0}
        r.passes += 1
        while True:
            if progress >= 32:
                r.ops["lockbreak_checks"] += 1
                progress = 0
                if r.need_resched:
                    r.lock_breaks += 1
                    break
            b = int(r.bits[s])
            r.ops["pte_reads"] += 1
            if not b:
                progress += 1
                s += 1
            elif b & NP:
                ret = copy_nonpresent_pte(r, s, vma, rss)
                progress += 8
                s += 1
            else:
                ret = r.copy_present(r, s, hi - s, vma, rss)
                if ret < 0:
                    break
                if r.prealloc is not None:
                    # kernel: "pre-alloc page cannot be reused by next time ..."
                    r.prealloc = None
                    r.wasted += 1
                progress += 8 * ret
                s += ret
                ret = 0
            if s == hi:
                break
        for k, v in rss.items():
            r.child.rss[k] = r.child.rss.get(k, 0) + v
        r.ops["rss_updates"] += 1
        if ret == -EAGAIN:
            r.eagain += 1
            r.ops["eagain_rounds"] += 1
            if not r.page_copy_prealloc():
                return -ENOMEM
        elif ret < 0:
            return ret
        ret = 0
        if s == hi:
            r.prealloc = None
            return 0


def copy_present_page(r: Run, s: int, vma: int, rss: dict[str, int]) -> int:
    """Mirrors: mm/memory.c copy_present_page(): the child gets the preallocated page."""
    if r.prealloc is None:
        return -EAGAIN
    new, r.prealloc = r.prealloc, None
    r.machine.add_copies(new, 1)
    rss[MM_ANONPAGES] += 1
    bits = P | A | D | SD | (W if r.dst_write(vma) else 0)   # x86 pte_mkdirty(): D and SD
    if r.dst_uffd(vma) and r.bits[s] & UW:
        bits = (bits | UW) & ~W   # x86: uffd-wp implies read-only
    r.cpfn[s], r.cbits[s] = new, bits
    r.copies += 1
    r.ops["page_copies"] += 1
    r.ops["pte_writes"] += 1
    return 0


def copy_nonpresent_pte(r: Run, s: int, vma: int, rss: dict[str, int]) -> int:
    """Mirrors: mm/memory.c copy_nonpresent_pte(), v6.8 .. v6.17 (see pkmm.memory)."""
    orig = r.parent.nonpresent[s]
    assert orig.swp is not None
    pte, kind = orig, orig.swp.kind
    if kind == "swap":
        r.machine.swap[orig.swp.offset] += 1
        r.child.on_mmlist = True
        if orig.swp.exclusive:
            pte = pte_swp_clear_exclusive(orig)
            r.parent.nonpresent[s] = pte
        rss[MM_SWAPENTS] += 1
        why = "swap entry: swap count + 1, swap-exclusive cleared in parent and child"
    elif kind.startswith("migration"):
        rss[MM_ANONPAGES] += 1   # pkmm: bulk folios are anon (mm_counter)
        why = "migration entry: counted in rss; no refcount/mapcount (page is unmapped)"
        if kind != "migration_read":   # private anon: always a COW mapping
            pte = make_readable_migration_entry(orig)
            r.parent.nonpresent[s] = pte
            why += "; writable/exclusive entry made plain readable in the parent (COW)"
    elif kind == "marker":
        keep = {"poisoned", "guard"} if r.version == "v6.17" else {"poisoned"}
        m = set(orig.swp.markers & keep)
        if "uffd_wp" in orig.swp.markers and r.dst_uffd(vma):
            m.add("uffd_wp")
        if m:
            r.child.nonpresent[s] = make_pte_marker(frozenset(m))
            r.cbits[s] = NP
        dropped = sorted(orig.swp.markers - m)
        why = ("PTE marker: copy_pte_marker keeps " + (",".join(sorted(m)) or "nothing")
               + (f", drops {','.join(dropped)}" if dropped else ""))
        r.step("nonpresent", why)
        return 0
    else:
        why = "hwpoison entry: copied as-is (no dedicated branch)"
    if not r.dst_uffd(vma):
        pte = pte_clear_uffd_wp(pte)
    r.child.nonpresent[s] = pte
    r.cbits[s] = NP
    r.ops["pte_writes"] += 1
    r.step("nonpresent", why)
    return 0


def share_ptes(r: Run, s: int, nr: int, vma: int, bits: int, wrprotect: bool) -> None:
    """Mirrors: __copy_present_ptes() (v6.9+) / the tail of copy_present_pte (v6.8).

    ``bits`` is the first PTE's value, write bit already merged; ``wrprotect`` says
    whether the parent's PTEs are write-protected (COW mapping, not ablated).
    """
    if bits & W and wrprotect:
        r.bits[s:s + nr] &= 0xFFFF ^ W
        bits &= ~W
        r.ops["wrprotect_calls"] += 1
    bits &= ~A
    if not r.dst_uffd(vma):
        bits &= ~UW
    pfn = int(r.pfn[s])
    r.cpfn[s:s + nr] = range(pfn, pfn + nr)
    r.cbits[s:s + nr] = bits
    r.ops["pte_writes"] += nr
    r.ops["set_ptes_calls"] += 1


def try_dup_anon(r: Run, folio: int, page: int, nr: int) -> bool:
    """Mirrors: __folio_try_dup_anon_rmap() (pkmm.rmap); True when it fails (-EBUSY)."""
    r.ops["anon_dup_checks"] += 1
    m = r.machine
    if not r.ignore_pins and r.parent.has_pinned:
        pinned = (m.pincount[folio] > 0 if m.folio_order[folio]
                  else m.refcount[folio] >= 1024)
        if pinned and m.ae[page:page + nr].any():
            return True
    m.ae[page:page + nr] = False
    m.mapcount[page:page + nr] += 1
    r.ops["mapcount_ops"] += nr
    return False


def single_pte(r: Run, s: int, vma: int, rss: dict[str, int], folio: int, page: int,
               why: str, stop: str) -> int:
    """The per-PTE path of v6.8 (``stop`` empty) and v6.9/v6.17 (``stop`` the reason)."""
    m = r.machine
    m.refcount[folio] += 1           # folio_get
    r.ops["refcount_ops"] += 1
    if try_dup_anon(r, folio, page, 1):
        m.refcount[folio] -= 1
        err = copy_present_page(r, s, vma, rss)
        if err:
            r.step("eagain", stop or NEED)
            return err
        r.step("copy", stop or COPIED)
        return 1
    rss[MM_ANONPAGES] += 1
    r.ops["rss_updates"] += 1
    share_ptes(r, s, 1, vma, int(r.bits[s]), not r.no_wrprotect)
    r.step("share", stop or why)
    return 1
