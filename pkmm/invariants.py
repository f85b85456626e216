"""Invariant checks over the simulated machine (what VM_BUG_ON/VM_WARN_ON would catch).

Simulator concept: recomputes every counter from the page tables of the live mms of the
machine and compares it with what the model maintained incrementally, in one pass over
the page tables (linear in PTEs).  Checked:
refcount = mappings + pins + page-cache references; per-page mapcount = mappings;
rss = mapped pages by type; an AnonExclusive page is mapped by one process at most, and
only anon pages are AE; a writable PTE in a COW mapping maps an AE page (so no private anon
page is writable in two processes); MMF_HAS_PINNED is set on every mm holding a pin; a
pinned page that its pinner maps in a COW mapping is an AnonExclusive anon page
(gup_must_unshare()).
Taught in: notebooks/04-pinned-pages.ipynb
"""

from __future__ import annotations

from collections import Counter, defaultdict

from .errors import InvariantError
from .folio import GUP_PIN_COUNTING_BIAS, Folio
from .machine import Machine
from .mm import MM_SWAPENTS, NR_MM_COUNTERS, MmStruct, mm_counter
from .perf import cyclic_gc_paused
from .pgtable import Pmd, PteTable
from .process import Process
from .pte import PAGE_SIZE, PMD_SIZE, PTRS_PER_PTE, Pte, is_migration_entry, is_swap_entry
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
        cow_maps: set[tuple[int, int]] = set()        # (mm id, pfn) mapped in a COW VMA
        migrating: Counter[int] = Counter()          # head pfn -> migration entries
        for mm in m.mms:
            _scan(mm, pte_maps, pmd_maps, mappers, writable_cow, bad,
                  check_rss=id(mm) in given, cow_maps=cow_maps, migrating=migrating)
        cache_refs = _page_cache_refs(m.mms)
        _check_swap(m, bad)
        for folio in list(m.folios.values()):
            if folio.kind in ("zero", "huge_zero"):
                continue
            _check_folio(folio, pte_maps, pmd_maps, mappers, cache_refs, bad,
                         migrating[folio.pfn])
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
                               f"{len(mappers[pfn])} process"
                               f"{'' if len(mappers[pfn]) == 1 else 'es'}, not only by its pinner: "
                               "device writes are lost to the pinning process")
                # mm/internal.h gup_must_unshare(): a FOLL_PIN pin in a COW mapping is
                # only ever taken on an exclusive anon page (GUP unshares first)
                exclusive = f.kind == "anon" and (f.pages[i].anon_exclusive or (
                    f.entire_mapcount > 0 and f.pages[0].anon_exclusive))
                if (mm.mm_id, pfn) in cow_maps and not exclusive:
                    bad.append(f"{mm.owner}: pinned page {pfn:#x} in a COW "
                               f"mapping is not an AnonExclusive anon page"
                               f"{'' if f.kind == 'anon' else f' (it is {f.kind})'}: a "
                               "later write would CoW away from the pinned page")
    return bad


def _scan(mm: MmStruct, pte_maps: Counter[int], pmd_maps: Counter[int],
          mappers: dict[int, set[int]], writable_cow: list[tuple[str, int, int]],
          bad: list[str], check_rss: bool, cow_maps: set[tuple[int, int]],
          migrating: Counter[int]) -> None:
    name = mm.owner
    rss: Counter[str] = Counter()
    for haddr, hpte in mm.hugetlb.items():
        _scan_hugetlb(mm, haddr, hpte, pmd_maps, mappers, cow_maps, bad)
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
            cow = vma is not None and is_cow_mapping(vma.vm_flags)
            for k in range(found[0].nr_pages):
                mappers[ent.pfn + k].add(mm.mm_id)
                if cow:
                    cow_maps.add((mm.mm_id, ent.pfn + k))
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
                if is_cow_mapping(v.vm_flags):
                    cow_maps.add((mm.mm_id, pte.pfn))
                    if pte.write:
                        writable_cow.append((name, addr, pte.pfn))
            elif is_swap_entry(pte):
                rss[MM_SWAPENTS] += 1
            elif is_migration_entry(pte) and pte.swp is not None:
                found = mm.machine.pfn_folio(pte.swp.offset)
                if found is None:
                    bad.append(f"{name}: migration entry at {addr:#x} names freed pfn "
                               f"{pte.swp.offset:#x}")
                else:
                    rss[mm_counter(found[0])] += 1
                    migrating[found[0].pfn] += 1
    if check_rss:
        for counter in NR_MM_COUNTERS:
            if mm.rss[counter] != rss[counter]:
                bad.append(f"{name}: rss {counter} is {mm.rss[counter]} but its page "
                           f"tables map {rss[counter]}")


def _scan_hugetlb(mm: MmStruct, haddr: int, hpte: Pte, pmd_maps: Counter[int],
                  mappers: dict[int, set[int]], cow_maps: set[tuple[int, int]],
                  bad: list[str]) -> None:
    """One huge PTE of a hugetlb VMA: a whole-folio mapping, not counted in rss."""
    vma = mm.find_vma(haddr)
    found = mm.machine.pfn_folio(hpte.pfn)
    if vma is None or not vma.hugetlb_kb:
        bad.append(f"{mm.owner}: huge PTE at {haddr:#x} lies outside every hugetlb VMA")
        return
    if found is None or not found[0].hugetlb or found[1]:
        bad.append(f"{mm.owner}: huge PTE at {haddr:#x} does not map a hugetlb folio's head")
        return
    folio = found[0]
    pmd_maps[folio.pfn] += 1
    cow = is_cow_mapping(vma.vm_flags)
    for k in range(folio.nr_pages):
        mappers[folio.pfn + k].add(mm.mm_id)
        if cow:
            cow_maps.add((mm.mm_id, folio.pfn + k))
    if hpte.write and cow and not folio.pages[0].anon_exclusive:
        bad.append(f"{mm.owner}: writable huge PTE at {haddr:#x} in a COW mapping maps a "
                   "non-exclusive huge page")


def _check_swap(m: Machine, bad: list[str]) -> None:
    """Each slot's swap count is the number of swap PTEs naming it (swap_map), and a slot
    is only kept while referred to or cached."""
    refs: Counter[int] = Counter()
    for mm in m.mms:
        for ent in mm.pmds.values():
            if isinstance(ent, PteTable):
                for pte in ent.ptes:
                    if pte is not None and is_swap_entry(pte) and pte.swp is not None:
                        refs[pte.swp.offset] += 1
    for off, slot in m.swap.items():
        if slot.count != refs[off]:
            bad.append(f"swap slot {off}: swap count {slot.count} != {refs[off]} swap PTEs")
        if slot.count == 0 and slot.cache is None:
            bad.append(f"swap slot {off}: neither referred to nor cached, yet not free")
        if slot.cache is not None and (slot.cache.freed or slot.cache.swap != off):
            bad.append(f"swap slot {off}: its swap-cache folio does not belong to it")
    for off in set(refs) - set(m.swap):
        bad.append(f"swap slot {off}: {refs[off]} swap PTE(s) name a free slot")


def _page_cache_refs(mms: list[MmStruct]) -> set[int]:
    """uids of folios that sit in some file's page cache (they hold nr_pages refs)."""
    seen: set[int] = set()
    files = {id(v.vm_file): v.vm_file for mm in mms for v in mm.vmas if v.vm_file is not None}
    for file in files.values():
        for page in file.cache.values():
            seen.add(page.folio.uid)
    return seen


def _check_folio(folio: Folio, pte_maps: Counter[int], pmd_maps: Counter[int],
                 mappers: dict[int, set[int]], cache_refs: set[int], bad: list[str],
                 migrating: int = 0) -> None:
    name = f"folio {folio.kind} order {folio.order} at pfn {folio.pfn:#x}"
    maps = sum(pte_maps[folio.pfn + i] for i in range(folio.nr_pages)) + pmd_maps[folio.pfn]
    pin_refs = folio.pins if folio.order else folio.pins * GUP_PIN_COUNTING_BIAS
    cache = folio.nr_pages if folio.kind != "anon" or folio.swap is not None else 0
    migration_ref = 1 if migrating else 0      # one for the migration, not one per entry
    expected = maps + pin_refs + cache + folio.gup_refs + migration_ref
    if folio.refcount != expected:
        bad.append(f"{name}: refcount {folio.refcount} != mappings {maps} + pin refs "
                   f"{pin_refs} + page/swap cache {cache} + plain GUP refs {folio.gup_refs}"
                   f" + migration {migration_ref}")
    if folio.migration_entries != migrating:
        bad.append(f"{name}: counts {folio.migration_entries} migration entries, the page "
                   f"tables hold {migrating}")
    if folio.total_mapcount != maps:
        bad.append(f"{name}: folio mapcount {folio.total_mapcount} != mappings {maps}")
    if folio.swap is not None:
        slot = folio.machine.swap.get(folio.swap)
        if slot is None or slot.cache is not folio:
            bad.append(f"{name}: in the swap cache for slot {folio.swap}, which does not "
                       "hold it")
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
