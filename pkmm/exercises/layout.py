"""Random PTE layouts for exercises and the quiz, and their text table.

Simulator concept.  :func:`random_ptes` draws runs of PTEs over folios of random orders,
each run with at most one *twist* (a bit pattern or mapping quirk that one kernel version
treats differently from another); every draw goes through the caller's seeded
``random.Random``.  :func:`describe` prints a layout as a readable PTE table.
Taught in: notebooks/exercises/README.md
"""

from __future__ import annotations

import random
from typing import Any

from ..pte import PAGE_SIZE, SETTABLE_BITS
from ..scenario import Scenario

BASE = 0x200000          # start of a PMD slice: every generated PTE lies in one slice
BITS = tuple(b.name for b in SETTABLE_BITS)           # pkmm.pte.PTE_BITS
LETTERS = {b.name: b.letter for b in SETTABLE_BITS}
#: Twists a run of PTEs can carry; "none" keeps the defaults (W D A, exclusive).
TWISTS = ("none", "dirty", "young", "write", "uffd_wp", "protnone", "soft_dirty",
          "reverse", "partial")


#: The bits of a PTE entry that a scenario leaves out (Process.map's defaults).
DEFAULTS = {"write": True, "dirty": True, "young": True, "soft_dirty": False,
            "uffd_wp": False, "protnone": False, "anon_exclusive": True}


def per_slot(s: Scenario) -> Scenario:
    """``s`` with one PTE entry per slot, every bit spelled out, in address order (entries
    with ``nr`` > 1 are split), so row numbers and bit lookups are simple."""
    ptes = []
    for e in sorted(s.ptes, key=lambda e: e["addr"]):
        for k in range(e.get("nr", 1)):
            ptes.append({**DEFAULTS, **e, "addr": e["addr"] + k * PAGE_SIZE,
                         "page": e.get("page", 0) + k, "nr": 1})
    d = s.to_dict()
    d["ptes"] = ptes
    return Scenario.from_dict(d)


def folio_name(i: int) -> str:
    """Folio names: A..Z, then F26, F27, ...

    >>> folio_name(0), folio_name(25), folio_name(26)
    ('A', 'Z', 'F26')
    """
    return chr(ord("A") + i) if i < 26 else f"F{i}"


def _split(rng: random.Random, nr: int) -> list[bool]:
    """A run of ``nr`` flags that changes value once, at a random point inside the run."""
    k = rng.randint(1, nr - 1) if nr > 1 else 1
    first = rng.random() < 0.5
    return [first] * k + [not first] * (nr - k)


def _twist_bits(rng: random.Random, twist: str, nr: int) -> list[dict[str, bool]]:
    """Per-PTE bits for a run of ``nr`` PTEs carrying ``twist``."""
    bits = [dict(write=True, dirty=True, young=True, soft_dirty=False, uffd_wp=False,
                 protnone=False) for _ in range(nr)]
    if twist in ("dirty", "uffd_wp", "protnone"):
        for b, on in zip(bits, _split(rng, nr), strict=True):
            b[twist] = on
            if twist != "dirty" and on:
                b["write"] = False          # uffd-wp / NUMA-hinting PTEs are read-only
    elif twist in ("young", "write", "soft_dirty"):
        for b in bits:
            b[twist] = rng.random() < 0.5
    return bits


def random_ptes(rng: random.Random, n: int, *, orders: tuple[int, ...] = (0, 1, 2, 3),
                twists: tuple[str, ...] = TWISTS, gap: float = 0.15,
                base: int = BASE) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """Folios and about ``n`` PTEs (one scenario entry per slot) in consecutive slots.

    Folios are named A, B, C, ... in allocation order, so adjacent folios are also
    physically adjacent (the next folio's first pfn follows the previous one's last).
    """
    folios: dict[str, dict[str, Any]] = {}
    ptes: list[dict[str, Any]] = []
    addr = base
    while len(ptes) < n:
        name = folio_name(len(folios))
        order = rng.choice(orders)
        folios[name] = {"order": order}
        npages = 1 << order
        twist = rng.choice(twists) if npages > 1 else "none"
        first, nr = 0, npages
        if twist == "partial":
            first = rng.randint(0, npages - 1)
            nr = rng.randint(1, npages - first)
        pages = list(range(first, first + nr))
        if twist == "reverse":
            pages.reverse()
        for page, bits in zip(pages, _twist_bits(rng, twist, nr), strict=True):
            ptes.append({"addr": addr, "folio": name, "page": page, "nr": 1, **bits})
            addr += PAGE_SIZE
        if rng.random() < gap:
            addr += PAGE_SIZE
    return folios, ptes


def scenario(name: str, folios: dict[str, dict[str, Any]], ptes: list[dict[str, Any]],
             *, npages: int = 64, vma: dict[str, Any] | None = None,
             **sections: Any) -> Scenario:
    """A one-VMA scenario at :data:`BASE` (``vma`` adds mmap options)."""
    d: dict[str, Any] = {"name": name, "vmas": [{"start": BASE, "npages": npages,
                                                  **(vma or {})}],
                         "folios": folios, "ptes": ptes, **sections}
    return Scenario.from_dict(d)


def vma_words(v: dict[str, Any]) -> str:
    """One line describing a scenario VMA entry."""
    kind = "shared shmem" if v.get("shared") else f"private {v.get('backing', 'anon')}"
    rw = "read/write" if v.get("write", True) else "read-only"
    sd = "ON" if v.get("soft_dirty_tracking") else "off"
    child_uffd = v.get("uffd_wp") and v.get("uffd_fork")
    end = v["start"] + v["npages"] * PAGE_SIZE
    return (f"VMA {v['start']:#x}-{end:#x} ({v['npages']} pages): {kind}, {rw}; "
            f"soft-dirty tracking {sd}; "
            + ("uffd-wp registered with EVENT_FORK (child VMA is uffd-wp)" if child_uffd
               else "uffd-wp registered, no EVENT_FORK (child VMA is not uffd-wp)"
               if v.get("uffd_wp") else "child VMA is not uffd-wp"))


def describe(s: Scenario) -> str:
    """The layout as text: VMAs, folios, and a PTE table (row numbers are the PTE
    indices answers refer to; empty slots between PTEs are shown without a number)."""
    p, folios = s.build()
    lines = [vma_words(v) for v in s.vmas]
    lines.append(f"MMF_HAS_PINNED: {'yes' if p.has_pinned else 'no'}")
    for name, f in folios.items():
        extra = []
        if f.pins:
            extra.append(f"{f.pins} FOLL_PIN")
        if f.gup_refs:
            extra.append(f"{f.gup_refs} vmsplice ref{'' if f.gup_refs == 1 else 's'}")
        lines.append(f"folio {name}: order {f.order} {f.kind}, pfn {f.pfn:#x}-"
                     f"{f.pfn + f.nr_pages - 1:#x}, refcount {f.refcount}"
                     + (f" ({', '.join(extra)})" if extra else ""))
    lines += ["", "  #  addr      folio.page  pfn     W D A SD UW PN  AE"]
    entries = sorted(s.ptes, key=lambda e: e["addr"])
    prev = None
    for i, e in enumerate(entries):
        if prev is not None and e["addr"] > prev + PAGE_SIZE:
            for a in range(prev + PAGE_SIZE, e["addr"], PAGE_SIZE):
                lines.append(f"     {a:#x}  (none)")
        pte = p.pte(e["addr"])
        assert pte is not None
        f = folios[e["folio"]]
        page = e.get("page", 0)
        bits = " ".join(f"{int(getattr(pte, b)):>{len(LETTERS[b])}}" for b in BITS)
        ae = int(f.page(page).anon_exclusive)
        # No per-row pins column: a pin is counted per folio (the folio line), and fork
        # cannot tell which page of a large folio the driver pinned.
        lines.append(f"{i:>3}  {e['addr']:#x}  {e['folio']}.{page:<9} {pte.pfn:#x}  {bits}"
                     f"   {ae}")
        prev = e["addr"]
    p.exit()
    return "\n".join(lines)
