"""Invariant checks over the simulated machine (what VM_BUG_ON/VM_WARN_ON would catch).

Simulator concept: recomputes every counter from the page tables of the live mms of the
machine and compares it with what the model maintained incrementally, in one pass over
the page tables (linear in PTEs).  Checked:
refcount = mappings + pins + page-cache references; per-page mapcount = mappings;
rss = mapped pages by type; an AnonExclusive page is mapped by one process at most, and
only anon pages are AE; a writable PTE in a COW mapping maps an AE page (so no private anon
page is writable in two processes); MMF_HAS_PINNED is set on every mm holding a pin.
Taught in: notebooks/04-pinned-pages.ipynb
"""

from __future__ import annotations

from collections import Counter, defaultdict

from .errors import InvariantError
from .folio import GUP_PIN_COUNTING_BIAS, Folio
from .mm import MM_SWAPENTS, NR_MM_COUNTERS, MmStruct, mm_counter
from .perf import cyclic_gc_paused
from .pgtable import Pmd
from .process import Process
from .pte import PAGE_SIZE, PMD_SIZE, PTRS_PER_PTE, is_migration_entry, is_swap_entry
from .vma import is_cow_mapping

__all__ = ["check_invariants"]


def check_invariants(*processes: Process) -> None:
    """Raise :class:`pkmm.InvariantError` listing every violation found.

    Counts are recomputed over *all* live processes of the machines involved (a folio's
    refcount includes mappings in every process); per-process checks (rss, writable
    private pages) run for each process given.
    """
    with cyclic_gc_paused():
        bad = _violations(processes)
    if bad:
        raise InvariantError(bad)


def _violations(processes: tuple[Process, ...]) -> list[str]:
    bad: list[str] = []
    machines = {id(p.machine): p.machine for p in processes}
    given = {id(p.mm) for p in processes}
    for m in machines.values():
        pte_maps: Counter[int] = Counter()            # pfn -> PTE mappings
        pmd_maps: Counter[int] = Counter()            # head pfn -> PMD mappings
        mappers: dict[int, set[int]] = defaultdict(set)   # pfn -> mm ids mapping it
        writable_cow: list[tuple[str, int, int]] = []
        for mm in m.mms:
            _scan(mm, pte_maps, pmd_maps, mappers, writable_cow, bad,
                  check_rss=id(mm) in given)
        cache_refs = _page_cache_refs(m.mms)
        for folio in list(m.folios.values()):
            if folio.kind in ("zero", "huge_zero"):
                continue
            _check_folio(folio, pte_maps, pmd_maps, mappers, cache_refs, bad)
        for name, addr, pfn in writable_cow:
            found = m.pfn_folio(pfn)
            if found is None:
                continue
            folio, i = found
            page = folio.pages[i]
            head_ae = folio.entire_mapcount > 0 and folio.pages[0].anon_exclusive
            if folio.kind == "anon" and not (page.anon_exclusive or head_ae):
                bad.append(f"{name}: writable PTE at {addr:#x} in a COW mapping maps "
                           f"non-exclusive anon page {pfn:#x} (a write would be seen by "
                           "another process)")
        for mm in m.mms:
            if mm.pins and not mm.has_pinned:
                bad.append(f"{mm.owner}: holds pins but MMF_HAS_PINNED is clear")
            for f, i in mm.pins:
                # a maybe-pinned exclusive page is never shared at fork, so the
                # pinning process keeps mapping the very page the device writes to
                pfn = f.pfn + i
                if f.kind == "anon" and mappers[pfn] != {mm.mm_id}:
                    bad.append(f"{mm.owner}: pinned page {pfn:#x} is mapped by "
                               f"{len(mappers[pfn])} process(es) other than just its pinner: "
                               "device writes are lost to the pinning process")
    return bad


def _scan(mm: MmStruct, pte_maps: Counter[int], pmd_maps: Counter[int],
          mappers: dict[int, set[int]], writable_cow: list[tuple[str, int, int]],
          bad: list[str], check_rss: bool) -> None:
    name = mm.owner
    rss: Counter[str] = Counter()
    for idx, ent in mm.pmds.items():
        base = idx * PMD_SIZE
        vma = mm.find_vma(base)
        if isinstance(ent, Pmd):
            if ent.huge_zero:
                continue
            found = mm.machine.pfn_folio(ent.pfn)
            if found is None:
                bad.append(f"{name}: PMD at {base:#x} maps freed pfn {ent.pfn:#x}")
                continue
            pmd_maps[ent.pfn] += 1
            for k in range(found[0].nr_pages):
                mappers[ent.pfn + k].add(mm.mm_id)
            rss[mm_counter(found[0])] += found[0].nr_pages
            if ent.write and vma is not None and is_cow_mapping(vma.vm_flags) \
                    and not found[0].pages[0].anon_exclusive:
                bad.append(f"{name}: writable PMD at {base:#x} maps a non-exclusive THP")
            continue
        for i in range(PTRS_PER_PTE):
            pte = ent.ptes[i]
            if pte is None:
                continue
            addr = base + i * PAGE_SIZE
            v = mm.find_vma(addr)
            if v is None:
                bad.append(f"{name}: PTE at {addr:#x} lies outside every VMA")
                continue
            if pte.present:
                if pte.special:
                    continue
                found = mm.machine.pfn_folio(pte.pfn)
                if found is None:
                    bad.append(f"{name}: PTE at {addr:#x} maps freed pfn {pte.pfn:#x}")
                    continue
                pte_maps[pte.pfn] += 1
                mappers[pte.pfn].add(mm.mm_id)
                rss[mm_counter(found[0])] += 1
                if pte.write and is_cow_mapping(v.vm_flags):
                    writable_cow.append((name, addr, pte.pfn))
            elif is_swap_entry(pte):
                rss[MM_SWAPENTS] += 1
            elif is_migration_entry(pte) and pte.swp is not None:
                found = mm.machine.pfn_folio(pte.swp.offset)
                if found is not None:
                    rss[mm_counter(found[0])] += 1
    if check_rss:
        for counter in NR_MM_COUNTERS:
            if mm.rss[counter] != rss[counter]:
                bad.append(f"{name}: rss {counter} is {mm.rss[counter]} but its page "
                           f"tables map {rss[counter]}")


def _page_cache_refs(mms: list[MmStruct]) -> set[int]:
    """uids of folios that sit in some file's page cache (they hold nr_pages refs)."""
    seen: set[int] = set()
    files = {id(v.vm_file): v.vm_file for mm in mms for v in mm.vmas if v.vm_file is not None}
    for file in files.values():
        for page in file.cache.values():
            seen.add(page.folio.uid)
    return seen


def _check_folio(folio: Folio, pte_maps: Counter[int], pmd_maps: Counter[int],
                 mappers: dict[int, set[int]], cache_refs: set[int], bad: list[str]) -> None:
    name = f"folio {folio.kind} order {folio.order} at pfn {folio.pfn:#x}"
    maps = sum(pte_maps[folio.pfn + i] for i in range(folio.nr_pages)) + pmd_maps[folio.pfn]
    pin_refs = folio.pins if folio.order else folio.pins * GUP_PIN_COUNTING_BIAS
    cache = folio.nr_pages if folio.kind != "anon" else 0
    expected = maps + pin_refs + cache + folio.gup_refs
    if folio.refcount != expected:
        bad.append(f"{name}: refcount {folio.refcount} != mappings {maps} + pin refs "
                   f"{pin_refs} + page cache {cache} + plain GUP refs {folio.gup_refs}")
    if folio.refcount < folio.mapcount + folio.pincount:
        bad.append(f"{name}: refcount {folio.refcount} < mapcount {folio.mapcount} + "
                   f"pincount {folio.pincount}")
    if folio.order and folio.pincount != folio.pins:
        bad.append(f"{name}: pincount {folio.pincount} != pins taken {folio.pins}")
    if folio.entire_mapcount != pmd_maps[folio.pfn]:
        bad.append(f"{name}: entire_mapcount {folio.entire_mapcount} != PMD mappings "
                   f"{pmd_maps[folio.pfn]}")
    for p in folio.pages:
        n = pte_maps[p.pfn]
        if p.pte_mapcount != n:
            bad.append(f"{name}: page {p.pfn:#x} mapcount {p.pte_mapcount} != PTE mappings "
                       f"{n}")
        if p.anon_exclusive:
            if folio.kind != "anon":
                bad.append(f"{name}: page {p.pfn:#x} is AnonExclusive but not anon")
            elif len(mappers[p.pfn]) > 1 or p.mapcount > 1:
                bad.append(f"{name}: page {p.pfn:#x} is AnonExclusive but mapped "
                           f"{p.mapcount} times by {len(mappers[p.pfn])} processes")
    if folio.kind != "anon" and folio.uid not in cache_refs and folio.mapcount:
        bad.append(f"{name}: mapped file folio is not in any page cache")
