"""What the pictures read from the model: slots of a page table, pages of a folio, runs.

Simulator concept (views layer).  Plain data pulled from a :class:`pkmm.Process` and its
machine -- PTE values, folio counters, pins -- and grouped into *runs* so that a 512-PTE
table or an order-9 folio draws as a few boxes.  Nothing here decides a kernel rule.
Taught in: notebooks/01-ptes-folios-vmas.ipynb
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...errors import LayoutError
from ...folio import Folio
from ...fork import ForkResult
from ...process import Process
from ...pte import PAGE_SIZE, Pte
from ...scenario import Scenario, as_scenario
from ..render import BIT_LETTERS

#: The bits a PTE badge shows, with their letters (the table named once in render.py).
BITS: tuple[tuple[str, str], ...] = BIT_LETTERS


@dataclass(frozen=True)
class Slot:
    """One PTE slot as the pictures see it."""

    index: int               # slot number inside its VMA
    addr: int
    pte: Pte | None
    kind: str                # none, anon, file, shmem, special, nonpresent
    folio: Folio | None      # the folio a present PTE (or a migration entry) points into
    page: int                # page index inside that folio (-1: none)
    label: str               # "F0:3", "zero", "swap", "migration", "--"

    @property
    def letters(self) -> str:
        """The set bits as letters ('W D A'), '' for none."""
        p = self.pte
        if p is None:
            return ""
        return " ".join(ch for name, ch in BITS if getattr(p, name))


def _kind(folio: Folio | None, pte: Pte) -> str:
    if not pte.present:
        return "nonpresent"
    if folio is None or pte.special or folio.kind in ("zero", "huge_zero"):
        return "special"
    return folio.kind


def folio_name(names: Mapping[int, str], folio: Folio) -> str:
    """A folio's name from the scenario (by head pfn), else ``f<allocation number>``."""
    if folio.kind == "zero":
        return "zero"
    if folio.kind == "huge_zero":
        return "huge zero"
    return names.get(folio.pfn, f"f{folio.uid}")


def layout_names(folios: Mapping[str, Folio], procs: Iterable[Process],
                 named: Mapping[int, str] | None = None,
                 unnamed_layout: bool = False) -> dict[int, str]:
    """Head pfn -> name: the layout's names, then ``new1``, ``new2``, ... (allocation
    order) for folios these processes map that the layout did not name -- the pages fork
    (or a fault) copied.  A learner reads "new1", where an allocation number ("f3") looked
    like an internal counter.  With ``unnamed_layout`` the first process is the layout's
    parent, whose folios were all there before fork: a layout that names none (a process
    snapshot) gets ``page1``, ``page2``, ... for them, so its own pages do not read as
    pages fork allocated.

    >>> from pkmm.scenario import Scenario
    >>> from pkmm.fork import fork
    >>> p, fs = Scenario.from_dict({"vmas": [{"start": 0, "npages": 1}],
    ...     "folios": {"P": {"order": 0}}, "ptes": [{"addr": 0, "folio": "P"}],
    ...     "pins": [{"folio": "P"}]}).build()
    >>> sorted(layout_names(fs, [p, fork(p, kernel="v6.9").child]).values())
    ['P', 'new1']
    """
    names = {f.pfn: n for n, f in folios.items()}
    names.update(named or {})       # head pfn -> name, given by a caller that has no layout
    procs = list(procs)
    if unnamed_layout and procs and not names:
        own = {}
        for _, pte in procs[0].ptes():
            hit = procs[0].machine.pfn_folio(pte.pfn) if pte is not None and pte.present \
                else None
            if hit is not None and hit[0].kind not in ("zero", "huge_zero"):
                own[hit[0].pfn] = hit[0]
        for k, f in enumerate(sorted(own.values(), key=lambda f: f.uid), 1):
            names[f.pfn] = f"page{k}"
    new: dict[int, Folio] = {}
    for proc in procs:
        for _, pte in proc.ptes():
            hit = proc.machine.pfn_folio(pte.pfn) if pte is not None and pte.present else None
            if hit is not None and hit[0].pfn not in names and hit[0].kind not in (
                    "zero", "huge_zero"):
                new[hit[0].pfn] = hit[0]
    for k, f in enumerate(sorted(new.values(), key=lambda f: f.uid), 1):
        names[f.pfn] = f"new{k}"
    return names


def slot_of(proc: Process, index: int, addr: int, pte: Pte | None,
            names: Mapping[int, str]) -> Slot:
    """Describe one slot from its PTE value and the folio behind it."""
    if pte is None:
        return Slot(index, addr, None, "none", None, -1, "--")
    if not pte.present:
        assert pte.swp is not None
        s = pte.swp
        if s.kind.startswith("migration"):
            hit = proc.machine.pfn_folio(s.offset)
            folio, page = (hit if hit is not None else (None, -1))
            return Slot(index, addr, pte, "nonpresent", folio, page, "migration")
        label = ("marker " + ",".join(sorted(s.markers)) if s.kind == "marker"
                 else s.kind)
        return Slot(index, addr, pte, "nonpresent", None, -1, label)
    hit = proc.machine.pfn_folio(pte.pfn)
    folio, page = hit if hit is not None else (None, -1)
    kind = _kind(folio, pte)
    if folio is None:
        label = f"pfn {pte.pfn:#x}"
    elif folio.kind in ("zero", "huge_zero"):
        label = folio_name(names, folio)
    else:
        label = f"{folio_name(names, folio)}:{page}"
    return Slot(index, addr, pte, kind, folio, page, label)


def vma_slots(proc: Process, names: Mapping[int, str]) -> list[tuple[Any, list[Slot]]]:
    """(vma, slots) for every VMA of ``proc``, in address order."""
    out = []
    for v in proc.vmas:
        slots = [slot_of(proc, (a - v.vm_start) // PAGE_SIZE, a, p, names)
                 for a, p in proc.ptes(v.vm_start, v.vm_end)]
        out.append((v, slots))
    return out


@dataclass(frozen=True)
class Run:
    """Consecutive slots that continue each other: same kind and bits, next page of the
    same folio (or all empty).  ``first``/``last`` are indexes into the slot list."""

    first: int
    last: int
    head: Slot
    parts: int = 1        # > 1: a bin of that many different runs ("mixed")

    @property
    def n(self) -> int:
        """How many slots the run covers."""
        return self.last - self.first + 1


def _continues(a: Slot, b: Slot) -> bool:
    if a.kind != b.kind or a.letters != b.letters:
        return False
    if a.pte is None or b.pte is None:
        return a.pte is None and b.pte is None
    if a.folio is None or b.folio is not a.folio or a.label == "migration":
        return False
    return b.page == a.page + 1 and a.pte.pmd == b.pte.pmd


def runs(slots: Sequence[Slot]) -> list[Run]:
    """Group slots into runs (see :class:`Run`).

    >>> from pkmm.pte import Pte
    >>> s = [Slot(i, i * 4096, None, "none", None, -1, "--") for i in range(3)]
    >>> [(r.first, r.last) for r in runs(s)]
    [(0, 2)]
    """
    out: list[Run] = []
    start = 0
    for i in range(1, len(slots) + 1):
        if i == len(slots) or not _continues(slots[i - 1], slots[i]):
            out.append(Run(start, i - 1, slots[start]))
            start = i
    return out


def bounded(slots: Sequence[Slot], most: int = 48) -> list[Run]:
    """Runs, or -- when even runs are more than ``most`` -- bins of 16 slots, each one
    run if its slots continue each other, else a "mixed" bin (the drawing stays small for
    any 512-PTE table).

    >>> s = [Slot(i, i * 4096, None, "none", None, -1, "--") for i in range(64)]
    >>> [(r.first, r.last, r.parts) for r in bounded(s, most=2)]
    [(0, 63, 1)]
    """
    rs = runs(slots)
    if len(rs) <= most:
        return rs
    out = []
    for lo in range(0, len(slots), 16):
        part = runs(slots[lo:lo + 16])
        out.append(Run(lo, lo + len(slots[lo:lo + 16]) - 1, slots[lo], len(part)))
    return out


def build_fork(layout: Any, kernel: str | None, without: Iterable[str] = ()
               ) -> tuple[Scenario, list[Process], dict[str, Folio], ForkResult | None]:
    """Build ``layout``; fork it under ``kernel`` when one is given."""
    from ...fork import fork
    sc = as_scenario(layout)
    parent, folios = sc.build()
    if kernel is None:
        return sc, [parent], folios, None
    r = fork(parent, kernel=kernel, without=frozenset(without))
    return sc, [parent, r.child], folios, r


def page_pins(procs: Iterable[Process]) -> dict[tuple[int, int], int]:
    """(folio head pfn, page) -> FOLL_PIN count held by these processes."""
    out: dict[tuple[int, int], int] = {}
    for p in procs:
        for f, page in p.pins:
            key = (f.pfn, page)
            out[key] = out.get(key, 0) + 1
    return out


def need_kernel(kernel: object, what: str) -> str:
    """Validate a kernel name argument for a picture (a LayoutError names the fix)."""
    from ...kernels import KERNELS
    if kernel not in KERNELS:
        raise LayoutError(f"{what}: kernel={kernel!r} is not a pkmm kernel; choose one of "
                          f"{', '.join(KERNELS)}")
    return str(kernel)
