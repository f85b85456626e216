"""Page-table entry values: present PTEs and the non-present (swap-style) encodings.

Mirrors: include/linux/pgtable.h (pte_mk*, pte_wrprotect, pte_same) and
include/linux/swapops.h / mm_inline.h (swap, migration and PTE-marker entries).
Simplified: a generic architecture -- ``pte_mkdirty`` sets only the dirty bit (x86 would
also set soft-dirty) and ``pte_batch_hint`` is always 1 (no arm64 contpte).
Taught in: notebooks/01-ptes-folios-vmas.ipynb

A ``Pte`` is an immutable value, like ``pte_t`` in C: every ``pte_mk*`` helper returns a
new one, and only the page-table helpers in :mod:`pkmm.pgtable` change a table slot.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
PTRS_PER_PTE = 512
PMD_SHIFT = PAGE_SHIFT + 9
PMD_SIZE = 1 << PMD_SHIFT
HPAGE_PMD_ORDER = PMD_SHIFT - PAGE_SHIFT
MAX_PAGE_ORDER = HPAGE_PMD_ORDER  # pkmm models folios of order 0..9

#: The bits a learner can set on a present PTE, in the order ``repr`` prints them.
PTE_BITS = ("write", "dirty", "young", "soft_dirty", "uffd_wp", "protnone", "special")
_BIT_LETTERS = {"write": "W", "dirty": "D", "young": "A", "soft_dirty": "SD",
                "uffd_wp": "UW", "protnone": "PN", "special": "SP"}

SwpKind = Literal["swap", "migration_read", "migration_read_exclusive",
                  "migration_write", "marker", "hwpoison"]
#: PTE marker bits (include/linux/swapops.h PTE_MARKER_*).
MARKERS = ("uffd_wp", "poisoned", "guard")


@dataclass(frozen=True, slots=True)
class SwpEntry:
    """The payload of a non-present, non-none PTE (``swp_entry_t`` plus its kind).

    ``offset`` is the swap slot for ``swap`` entries and the pfn for migration entries.
    ``exclusive`` is the swap PTE's ``pte_swp_exclusive`` bit (only meaningful for swap).
    ``markers`` is the set of ``PTE_MARKER_*`` bits for ``marker`` entries.
    """

    kind: SwpKind
    offset: int = 0
    exclusive: bool = False
    markers: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True)
class Pte:
    """One page-table entry value (``pte_t``).

    A present entry has ``present=True`` and a ``pfn``; a non-present entry has
    ``present=False`` and a ``swp`` payload, and its ``soft_dirty`` / ``uffd_wp`` fields
    are the swap-PTE bits (``pte_swp_soft_dirty`` / ``pte_swp_uffd_wp``).  A none slot is
    not a ``Pte`` at all: page tables hold ``None`` there.  ``pmd`` is True only for the
    read-only view :meth:`pkmm.Process.pte` gives of a page inside a PMD mapping.

    >>> Pte(pfn=0x1a3, write=True, dirty=True, young=True)
    Pte(pfn=0x1a3 P W D A)
    >>> pte_wrprotect(Pte(pfn=0x1a3, write=True))
    Pte(pfn=0x1a3 P)
    """

    pfn: int = 0
    present: bool = True
    write: bool = False
    dirty: bool = False
    young: bool = False
    soft_dirty: bool = False
    uffd_wp: bool = False
    protnone: bool = False
    special: bool = False
    swp: SwpEntry | None = None
    pmd: bool = False

    def __repr__(self) -> str:
        bits = " ".join(_BIT_LETTERS[b] for b in PTE_BITS if getattr(self, b))
        if self.present:
            head = f"pfn={self.pfn:#x} P" + (" PMD" if self.pmd else "")
            return f"Pte({head}{' ' + bits if bits else ''})"
        assert self.swp is not None
        s = self.swp
        if s.kind == "marker":
            body = "marker " + ",".join(sorted(s.markers))
        elif s.kind == "swap":
            body = f"swap off={s.offset:#x}" + (" EX" if s.exclusive else "")
        else:
            body = f"{s.kind} pfn={s.offset:#x}"
        return f"Pte({body}{' ' + bits if bits else ''})"

    @property
    def bits(self) -> dict[str, bool]:
        """The named bits as a dict (for tables and views)."""
        return {b: bool(getattr(self, b)) for b in PTE_BITS}


# --- present-PTE value helpers (include/linux/pgtable.h) -------------------------------

def pte_mkwrite(pte: Pte) -> Pte:
    """Set the write bit.  >>> pte_mkwrite(Pte(pfn=1)).write
    True
    """
    return replace(pte, write=True)


def pte_wrprotect(pte: Pte) -> Pte:
    """Clear the write bit: the next write faults."""
    return replace(pte, write=False)


def pte_mkdirty(pte: Pte) -> Pte:
    """Set the dirty bit (generic arch: soft-dirty untouched)."""
    return replace(pte, dirty=True)


def pte_mkclean(pte: Pte) -> Pte:
    """Clear the dirty bit."""
    return replace(pte, dirty=False)


def pte_mkyoung(pte: Pte) -> Pte:
    """Set the accessed bit."""
    return replace(pte, young=True)


def pte_mkold(pte: Pte) -> Pte:
    """Clear the accessed bit."""
    return replace(pte, young=False)


def pte_clear_soft_dirty(pte: Pte) -> Pte:
    """Clear the soft-dirty bit."""
    return replace(pte, soft_dirty=False)


def pte_mkuffd_wp(pte: Pte) -> Pte:
    """Set the uffd-wp bit."""
    return replace(pte, uffd_wp=True)


def pte_clear_uffd_wp(pte: Pte) -> Pte:
    """Clear the uffd-wp bit (also the swap-PTE uffd-wp bit of a non-present entry)."""
    return replace(pte, uffd_wp=False)


def pte_advance_pfn(pte: Pte, nr: int) -> Pte:
    """The same entry ``nr`` pages further on.

    >>> pte_advance_pfn(Pte(pfn=0x10, write=True), 3)
    Pte(pfn=0x13 P W)
    """
    return replace(pte, pfn=pte.pfn + nr)


def pte_swp_clear_exclusive(pte: Pte) -> Pte:
    """Clear the swap-exclusive bit of a swap PTE."""
    assert pte.swp is not None
    return replace(pte, swp=replace(pte.swp, exclusive=False))


def mk_swap_pte(kind: SwpKind, offset: int, *, exclusive: bool = False,
                soft_dirty: bool = False, uffd_wp: bool = False) -> Pte:
    """Build a non-present entry of ``kind``.

    >>> mk_swap_pte("swap", 7, exclusive=True)
    Pte(swap off=0x7 EX)
    """
    return Pte(present=False, swp=SwpEntry(kind, offset, exclusive),
               soft_dirty=soft_dirty, uffd_wp=uffd_wp)


def make_pte_marker(markers: frozenset[str]) -> Pte:
    """A PTE-marker entry (``make_pte_marker``).

    >>> make_pte_marker(frozenset({"guard"}))
    Pte(marker guard)
    """
    return Pte(present=False, swp=SwpEntry("marker", markers=frozenset(markers)))


def is_swap_entry(pte: Pte) -> bool:
    """A genuine swap entry (not migration, marker or hwpoison)."""
    return pte.swp is not None and pte.swp.kind == "swap"


def is_migration_entry(pte: Pte) -> bool:
    """Any kind of migration entry."""
    return pte.swp is not None and pte.swp.kind.startswith("migration")


def is_pte_marker(pte: Pte) -> bool:
    """A PTE marker (uffd-wp, poisoned or guard)."""
    return pte.swp is not None and pte.swp.kind == "marker"
