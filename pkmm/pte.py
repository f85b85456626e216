"""Page-table entry values: present PTEs and the non-present (swap-style) encodings.

Mirrors: include/linux/pgtable.h (pte_mk*, pte_wrprotect, pte_same) and
include/linux/swapops.h / mm_inline.h (swap, migration and PTE-marker entries).
The architecture is x86-64 with CONFIG_MEM_SOFT_DIRTY: ``pte_mkdirty`` sets the
soft-dirty bit too (arch/x86/include/asm/pgtable.h), while the CPU's own store sets only
the dirty bit (:func:`pte_hw_mkdirty`); ``pte_batch_hint`` is 1 (no arm64 contpte).
Taught in: notebooks/01-ptes-folios-vmas.ipynb

A ``Pte`` is an immutable value, like ``pte_t`` in C: every ``pte_mk*`` helper returns a
new one, and only the page-table helpers in :mod:`pkmm.pgtable` change a table slot.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal, NamedTuple

from .errors import KernelBug

__all__ = ["BULK_NONPRESENT", "BULK_PRESENT", "HPAGE_PMD_NR", "HPAGE_PMD_ORDER", "MARKERS",
           "MAX_PAGE_ORDER", "PAGE_SHIFT", "PAGE_SIZE", "PMD_BULK_HUGE_ZERO", "PMD_SHIFT",
           "PMD_SIZE", "PTE_BIT", "PTE_BITS", "PTRS_PER_PTE", "Pte", "PteBit", "SETTABLE_BITS",
           "SwpEntry", "SwpKind", "bit_table", "is_migration_entry", "is_pte_marker",
           "is_swap_entry", "make_pte_marker", "make_readable_migration_entry", "mk_swap_pte",
           "pte_advance_pfn", "pte_clear_protnone", "pte_clear_soft_dirty", "pte_mksoft_dirty",
           "pte_clear_uffd_wp",
           "pte_hw_mkdirty",
           "pte_mkclean", "pte_mkdirty", "pte_mkold", "pte_mkuffd_wp", "pte_mkwrite",
           "pte_mkyoung", "pte_swp_clear_exclusive", "pte_wrprotect"]

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
PTRS_PER_PTE = 512
PMD_SHIFT = PAGE_SHIFT + 9
PMD_SIZE = 1 << PMD_SHIFT
HPAGE_PMD_ORDER = PMD_SHIFT - PAGE_SHIFT
HPAGE_PMD_NR = 1 << HPAGE_PMD_ORDER
MAX_PAGE_ORDER = HPAGE_PMD_ORDER  # pkmm models folios of order 0..9



@dataclass(frozen=True, slots=True)
class PteBit:
    """One named bit of a present PTE: the one table every printout, picture, exercise
    and the bulk path read (``bulk``: its flag in the bulk path's ``uint16`` encoding;
    ``pmd_bulk``: its flag in a PMD leaf's ``uint8``, 0 when a PMD has no such bit)."""

    name: str        # the Pte (and Pmd) field
    letter: str      # how repr, tables and pictures print it
    meaning: str     # one line for a learner
    bulk: int
    pmd_bulk: int
    settable: bool   # a layout may set it on a PTE (special comes from zero page / PFN map)

    @property
    def pmd(self) -> bool:
        """A PMD leaf has this bit too."""
        return self.pmd_bulk != 0


#: The bits of a present PTE, in the order ``repr`` prints them.
PTE_BITS: tuple[PteBit, ...] = (
    PteBit("write", "W", "writable: a store goes through without a fault", 2, 1, True),
    PteBit("dirty", "D", "dirty: written since the page was last cleaned", 4, 2, True),
    PteBit("young", "A", "accessed (young): touched since the page was last aged", 8, 4,
           True),
    PteBit("soft_dirty", "SD", "soft-dirty: written since user space last cleared the "
           "soft-dirty bits (checkpoint/restore tracking)", 16, 8, True),
    PteBit("uffd_wp", "UW", "userfaultfd write-protect: a store is reported to the "
           "monitor first", 32, 16, True),
    PteBit("protnone", "PN", "PROT_NONE for NUMA hinting: any access faults", 64, 0, True),
    PteBit("special", "SP", "special: no refcounted page behind it (zero page, PFN map)",
           128, 0, False),
)


def bit_table() -> str:
    """The bit table as Markdown (README.md carries this very text; a test compares).

    >>> bit_table().splitlines()[2]
    '| W | `write` | writable: a store goes through without a fault |'
    """
    rows = ["| letter | field | meaning |", "|---|---|---|"]
    rows += [f"| {b.letter} | `{b.name}` | {b.meaning} |" for b in PTE_BITS]
    return "\n".join(rows)


#: The same bits by name.
PTE_BIT: dict[str, PteBit] = {b.name: b for b in PTE_BITS}
#: Bits a layout sets on a PTE (scenario files, builders, exercises).
SETTABLE_BITS: tuple[PteBit, ...] = tuple(b for b in PTE_BITS if b.settable)
#: The bulk encoding's flags that are not bits of a present PTE.
BULK_PRESENT, BULK_NONPRESENT = 1, 256
#: A PMD leaf's bulk flag for the huge zero page (its other flags: ``PteBit.pmd_bulk``).
PMD_BULK_HUGE_ZERO = 32

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


class Pte(NamedTuple):
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

    pkmm: an immutable tuple underneath (the value helpers below rebuild it in C time,
    which a million-PTE fork needs); its fields are read by name like a struct's.
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
        bits = " ".join(b.letter for b in PTE_BITS if getattr(self, b.name))
        if self.present:
            head = f"pfn={self.pfn:#x} P" + (" PMD" if self.pmd else "")
            return f"Pte({head}{' ' + bits if bits else ''})"
        s = self.swp
        if s is None:
            return f"Pte(non-present, no payload {bits})"
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
        return {b.name: bool(getattr(self, b.name)) for b in PTE_BITS}


# --- present-PTE value helpers (include/linux/pgtable.h) -------------------------------

_PTE_NEW = tuple.__new__
(_WRITE, _DIRTY, _YOUNG, _SOFT_DIRTY, _UFFD_WP, _PROTNONE) = (
    Pte._fields.index(n) for n in ("write", "dirty", "young", "soft_dirty", "uffd_wp",
                                   "protnone"))


def _with(pte: Pte, i: int, value: bool) -> Pte:
    """``pte`` with field ``i`` set to ``value`` (a new value; ``pte`` is unchanged)."""
    return _PTE_NEW(Pte, pte[:i] + (value,) + pte[i + 1:])


def pte_mkwrite(pte: Pte) -> Pte:
    """Set the write bit.

    >>> pte_mkwrite(Pte(pfn=1))
    Pte(pfn=0x1 P W)
    """
    return pte if pte.write is True else _with(pte, _WRITE, True)


def pte_wrprotect(pte: Pte) -> Pte:
    """Clear the write bit: the next write faults.

    >>> pte_wrprotect(Pte(pfn=1, write=True, dirty=True))
    Pte(pfn=0x1 P D)
    """
    return pte if pte.write is False else _with(pte, _WRITE, False)


def pte_mkdirty(pte: Pte) -> Pte:
    """Set the dirty bit -- and, on x86, the soft-dirty bit: ``pte_set_flags(pte,
    _PAGE_DIRTY | _PAGE_SOFT_DIRTY)`` (arch/x86/include/asm/pgtable.h pte_mkdirty()).

    >>> pte_mkdirty(Pte(pfn=1))
    Pte(pfn=0x1 P D SD)
    """
    if pte.dirty is True and pte.soft_dirty is True:
        return pte
    return _with(_with(pte, _DIRTY, True), _SOFT_DIRTY, True)


def pte_hw_mkdirty(pte: Pte) -> Pte:
    """What the CPU does on a store through a writable PTE: set ``_PAGE_DIRTY`` only
    (soft-dirty is the kernel's software bit; the hardware never sets it).

    >>> pte_hw_mkdirty(Pte(pfn=1, write=True))
    Pte(pfn=0x1 P W D)
    """
    return pte if pte.dirty is True else _with(pte, _DIRTY, True)


def pte_mkclean(pte: Pte) -> Pte:
    """Clear the dirty bit.

    >>> pte_mkclean(Pte(pfn=1, dirty=True, young=True))
    Pte(pfn=0x1 P A)
    """
    return pte if pte.dirty is False else _with(pte, _DIRTY, False)


def pte_mkyoung(pte: Pte) -> Pte:
    """Set the accessed bit.

    >>> pte_mkyoung(Pte(pfn=1))
    Pte(pfn=0x1 P A)
    """
    return pte if pte.young is True else _with(pte, _YOUNG, True)


def pte_mkold(pte: Pte) -> Pte:
    """Clear the accessed bit.

    >>> pte_mkold(Pte(pfn=1, young=True))
    Pte(pfn=0x1 P)
    """
    return pte if pte.young is False else _with(pte, _YOUNG, False)


def pte_clear_soft_dirty(pte: Pte) -> Pte:
    """Clear the soft-dirty bit.

    >>> pte_clear_soft_dirty(Pte(pfn=1, soft_dirty=True))
    Pte(pfn=0x1 P)
    """
    return pte if pte.soft_dirty is False else _with(pte, _SOFT_DIRTY, False)


def pte_mksoft_dirty(pte: Pte) -> Pte:
    """Set the soft-dirty bit (also the swap-PTE soft-dirty bit of a non-present entry).

    >>> pte_mksoft_dirty(Pte(pfn=1))
    Pte(pfn=0x1 P SD)
    """
    return pte if pte.soft_dirty is True else _with(pte, _SOFT_DIRTY, True)


def pte_clear_protnone(pte: Pte) -> Pte:
    """Give a NUMA-hinting (protnone) PTE its access back (what do_numa_page restores).

    >>> pte_clear_protnone(Pte(pfn=1, protnone=True))
    Pte(pfn=0x1 P)
    """
    return pte if pte.protnone is False else _with(pte, _PROTNONE, False)


def pte_mkuffd_wp(pte: Pte) -> Pte:
    """Set the uffd-wp bit."""
    return pte if pte.uffd_wp is True else _with(pte, _UFFD_WP, True)


def pte_clear_uffd_wp(pte: Pte) -> Pte:
    """Clear the uffd-wp bit (also the swap-PTE uffd-wp bit of a non-present entry)."""
    return pte if pte.uffd_wp is False else _with(pte, _UFFD_WP, False)


def pte_advance_pfn(pte: Pte, nr: int) -> Pte:
    """The same entry ``nr`` pages further on.

    >>> pte_advance_pfn(Pte(pfn=0x10, write=True), 3)
    Pte(pfn=0x13 P W)
    """
    return _PTE_NEW(Pte, (pte.pfn + nr, *pte[1:]))


def pte_swp_clear_exclusive(pte: Pte) -> Pte:
    """Clear the swap-exclusive bit of a swap PTE.

    >>> pte_swp_clear_exclusive(mk_swap_pte("swap", 7, exclusive=True))
    Pte(swap off=0x7)
    """
    if pte.swp is None:
        raise KernelBug(f"pte_swp_clear_exclusive: {pte!r} is not a swap PTE")
    return pte._replace(swp=replace(pte.swp, exclusive=False))


def make_readable_migration_entry(pte: Pte) -> Pte:
    """The same migration entry, made plain readable (no write, no exclusive).

    >>> make_readable_migration_entry(mk_swap_pte("migration_write", 0x1000))
    Pte(migration_read pfn=0x1000)
    """
    if pte.swp is None or not pte.swp.kind.startswith("migration"):
        raise KernelBug(f"make_readable_migration_entry: {pte!r} is not a migration entry")
    return pte._replace(swp=replace(pte.swp, kind="migration_read"))


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
