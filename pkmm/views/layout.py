"""LayoutBuilder: build a VMA, folios, PTEs (with their bits) and pins by clicking.

Simulator concept (views layer).  :class:`LayoutModel` is plain Python: it holds the
learner's choices and turns them into a :class:`pkmm.scenario.Scenario`; every change is
validated by building that scenario with the model, so an impossible layout is refused
with the model's own :class:`pkmm.LayoutError` message.  :class:`LayoutBuilder` is the
ipywidgets view over it.
Taught in: notebooks/01-ptes-folios-vmas.ipynb
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets

from ..errors import LayoutError, ScenarioError
from ..process import Process
from ..pte import SETTABLE_BITS
from ..scenario import Scenario
from .base import PkmmWidget, button, html_box
from .render import CSS, error_box, folio_table, grid_html, process_cells

START = 0x200000   # 2 MiB aligned: up to 512 slots stay inside one PMD slice

#: VMA kinds offered by the builder: label -> (mmap keywords, folio backing).
VMA_KINDS: dict[str, tuple[dict[str, Any], str]] = {
    "private anon": ({}, "anon"),
    "private anon, soft-dirty tracked": ({"soft_dirty_tracking": True}, "anon"),
    "private anon, uffd-wp (EVENT_FORK)": ({"uffd_wp": True, "uffd_fork": True}, "anon"),
    "private file, no anon_vma": ({"backing": "file"}, "file"),
    "private file + anon_vma (one COWed page)": ({"backing": "file"}, "file"),
    "shmem shared, uffd-wp (EVENT_FORK)": ({"backing": "shmem", "shared": True,
                                           "uffd_wp": True, "uffd_fork": True}, "shmem"),
}
PATTERNS = ("contiguous", "shuffled", "partial", "across two folios")
BITS = tuple((b.name, b.letter) for b in SETTABLE_BITS)   # pkmm.pte.PTE_BITS


class LayoutModel:
    """The learner's layout as plain data; every mutator validates or raises LayoutError.

    >>> m = LayoutModel(npages=8)
    >>> m.add_folio(2)
    'F0'
    >>> m.map("F0", at=0)
    >>> m.scenario().build()[1]["F0"].refcount
    4
    >>> m.map("F0", at=2)
    Traceback (most recent call last):
    ...
    pkmm.errors.LayoutError: slot 2 is already mapped; pick a free slot or clear the layout
    """

    def __init__(self, npages: int = 16, kind: str = "private anon") -> None:
        self.kind = kind
        self.npages = npages
        self.folios: list[tuple[str, int]] = []
        self.slots: dict[int, dict[str, Any]] = {}
        self.pins: list[tuple[str, int]] = []
        self._check_kind(kind)
        self.validate()

    # -- helpers -------------------------------------------------------------------------
    @staticmethod
    def _check_kind(kind: str) -> None:
        if kind not in VMA_KINDS:
            raise LayoutError(f"kind={kind!r}: choose one of {', '.join(VMA_KINDS)}")

    @property
    def backing(self) -> str:
        """Backing of the folios this VMA kind takes."""
        return VMA_KINDS[self.kind][1]

    def _default_bits(self) -> dict[str, bool]:
        # pkmm: a private file page is mapped read-only and clean until written (a write
        # would CoW it); anon and shared pages start writable and dirty.
        private_file = self.backing == "file"
        return {"write": not private_file, "dirty": not private_file, "young": True,
                "soft_dirty": False, "uffd_wp": False, "protnone": False}

    def _transaction(self, change: Any) -> None:
        """Apply ``change()``; keep it only if the resulting scenario builds."""
        saved = (self.kind, self.npages, list(self.folios),
                 {k: dict(v) for k, v in self.slots.items()}, list(self.pins))
        try:
            change()
            self.validate()
        except (LayoutError, ScenarioError):
            self.kind, self.npages, self.folios, self.slots, self.pins = saved
            raise

    def validate(self) -> Process:
        """Build the scenario (raises LayoutError with the model's message if impossible)."""
        try:
            return self.scenario().build()[0]
        except ScenarioError as e:
            msg = str(e).split(": ", 1)[-1]
            raise LayoutError(msg) from None

    # -- mutators ------------------------------------------------------------------------
    def set_kind(self, kind: str) -> None:
        """Change the VMA kind (mapped folios must suit it)."""
        self._check_kind(kind)

        def change() -> None:
            self.kind = kind
        self._transaction(change)

    def set_npages(self, npages: int) -> None:
        """Resize the VMA (1..512 slots; mapped slots must stay inside)."""
        if not isinstance(npages, int) or not 1 <= npages <= 512:
            raise LayoutError(f"npages={npages!r}: a VMA of 1..512 slots (one PMD slice)")
        if self.slots and max(self.slots) >= npages:
            raise LayoutError(f"npages={npages}: slot {max(self.slots)} is mapped; "
                              "clear it first or keep the VMA larger")

        def change() -> None:
            self.npages = npages
        self._transaction(change)

    def add_folio(self, order: int) -> str:
        """Allocate a folio of ``order`` (0..9); returns its name (F0, F1, ...)."""
        if not isinstance(order, int) or not 0 <= order <= 9:
            raise LayoutError(f"order={order!r}: folio orders are 0..9 (4 KiB .. 2 MiB)")
        name = f"F{len(self.folios)}"

        def change() -> None:
            self.folios.append((name, order))
        self._transaction(change)
        return name

    def _order(self, folio: str) -> int:
        for n, o in self.folios:
            if n == folio:
                return o
        raise LayoutError(f"folio={folio!r}: add a folio first (have: "
                          f"{', '.join(n for n, _ in self.folios) or 'none'})")

    def pages_for(self, folio: str, pattern: str) -> list[tuple[str, int]]:
        """The (folio, page) sequence a mapping pattern lays down."""
        nr = 1 << self._order(folio)
        pages = list(range(nr))
        if pattern == "contiguous":
            return [(folio, i) for i in pages]
        if pattern == "shuffled":
            random.Random(nr + len(self.slots)).shuffle(pages)
            return [(folio, i) for i in pages]
        if pattern == "partial":
            return [(folio, i) for i in pages[: max(1, nr // 2)]]
        if pattern == "across two folios":
            names = [n for n, _ in self.folios]
            i = names.index(folio)
            if i + 1 >= len(names):
                raise LayoutError("across two folios: add a second folio after "
                                  f"{folio} (it is allocated right after, so its pfns follow)")
            nxt = names[i + 1]
            tail = [(folio, p) for p in pages[nr // 2:]]
            head_n = max(1, (1 << self._order(nxt)) // 2)
            return tail + [(nxt, p) for p in range(head_n)]
        raise LayoutError(f"pattern={pattern!r}: choose one of {', '.join(PATTERNS)}")

    def map(self, folio: str, at: int = 0, pattern: str = "contiguous") -> None:
        """Map ``folio``'s pages from slot ``at`` following ``pattern``."""
        seq = self.pages_for(folio, pattern)
        if not isinstance(at, int) or at < 0 or at + len(seq) > self.npages:
            raise LayoutError(f"at={at!r}: {len(seq)} page(s) from slot {at} do not fit "
                              f"in the {self.npages}-slot VMA; map at a lower slot or "
                              "enlarge the VMA")
        for k in range(len(seq)):
            if at + k in self.slots:
                raise LayoutError(f"slot {at + k} is already mapped; pick a free slot or "
                                  "clear the layout")

        def change() -> None:
            for k, (f, i) in enumerate(seq):
                self.slots[at + k] = {"folio": f, "page": i, **self._default_bits()}
        self._transaction(change)

    def toggle(self, slot: int, bit: str) -> None:
        """Flip one bit of the PTE in ``slot``."""
        if bit not in dict(BITS):
            raise LayoutError(f"bit={bit!r}: one of {', '.join(dict(BITS))}")
        if slot not in self.slots:
            raise LayoutError(f"slot {slot} is empty; map a folio there before toggling bits")

        def change() -> None:
            self.slots[slot][bit] = not self.slots[slot][bit]
        self._transaction(change)

    def pin(self, folio: str, page: int = 0) -> None:
        """FOLL_PIN one page of a mapped folio (sets MMF_HAS_PINNED)."""
        self._order(folio)

        def change() -> None:
            self.pins.append((folio, page))
        self._transaction(change)

    def pin_slot(self, slot: int) -> None:
        """FOLL_PIN the page mapped at PTE ``slot`` (what the "pin" button does)."""
        if slot not in self.slots:
            raise LayoutError(f"PTE #{slot} is empty; pick a mapped PTE to pin its page")
        self.pin(self.slots[slot]["folio"], self.slots[slot]["page"])

    def clear(self) -> None:
        """Forget folios, mappings and pins (the VMA kind and size stay)."""
        self.folios, self.slots, self.pins = [], {}, []

    # -- export --------------------------------------------------------------------------
    def scenario(self, name: str = "layout") -> Scenario:
        """The layout as a :class:`pkmm.scenario.Scenario`."""
        kw, backing = VMA_KINDS[self.kind]
        d: dict[str, Any] = {"name": name, "vmas": [{"start": START, "npages": self.npages,
                                                       **kw}]}
        folios = {n: {"order": o, "backing": backing} for n, o in self.folios}
        ptes = [{"addr": START + s * 4096, "nr": 1, **e}
                for s, e in sorted(self.slots.items())]
        if self.kind.startswith("private file + anon_vma"):
            # pkmm: one private anon page (a COWed copy) in the last slot gives the VMA
            # its anon_vma, so vma_needs_copy() copies the whole VMA.
            last = self.npages - 1
            if last in self.slots:
                raise LayoutError(f"slot {last} holds this VMA's COWed anon page; keep it free")
            folios["COW"] = {"order": 0, "backing": "anon"}
            ptes.append({"addr": START + last * 4096, "folio": "COW"})
        d["folios"] = folios
        d["ptes"] = ptes
        d["pins"] = [{"folio": f, "page": p} for f, p in self.pins]
        return Scenario.from_dict(d)


class LayoutBuilder(PkmmWidget):
    """Widget: pick a VMA kind, add folios, map pages, toggle PTE bits, pin pages.

    ``LayoutBuilder(npages=16, orders=(4,))`` starts with one order-4 folio mapped
    contiguously from slot 0.  ``.scenario`` exports the layout.
    Taught in: notebooks/01-ptes-folios-vmas.ipynb
    """

    def __init__(self, npages: int = 16, kind: str = "private anon",
                 orders: Sequence[int] = (), pattern: str = "contiguous") -> None:
        super().__init__("pkmm-layout-builder")
        self.model = LayoutModel(npages, kind)
        at = 0
        for o in orders:
            name = self.model.add_folio(o)
            seq = self.model.pages_for(name, pattern if pattern != "across two folios"
                                       else "contiguous")
            self.model.map(name, at, pattern if pattern != "across two folios"
                           else "contiguous")
            at += len(seq)
        self._kind = widgets.Dropdown(options=list(VMA_KINDS), value=kind,
                                      description="VMA")
        self._npages = widgets.BoundedIntText(value=npages, min=1, max=512,
                                              description="slots")
        self._order = widgets.Dropdown(options=list(range(10)), value=2,
                                       description="order")
        self._add = button("add folio")
        self._folio = widgets.Dropdown(options=[], description="folio")
        self._pattern = widgets.Dropdown(options=list(PATTERNS), description="pattern")
        self._at = widgets.BoundedIntText(value=at, min=0, max=511, description="at slot")
        self._map = button("map")
        self._slot = widgets.BoundedIntText(value=0, min=0, max=511, description="PTE #")
        self._toggles = []
        for bit, letter in BITS:
            b = button(letter, "pkmm-toggle-bit", tooltip=f"toggle {bit} on PTE #", width="44px")
            b.on_click(lambda _b, bit=bit: self.do("toggle", self._slot.value, bit))
            self._toggles.append(b)
        self._pin = button("pin its page", "pkmm-pin", tooltip="FOLL_PIN the page at PTE #")
        self._clear = button("clear")
        self._error = html_box()
        self._grid = html_box()
        self._table = html_box()
        self._kind.observe(lambda c: self.do("set_kind", c["new"]), names="value")
        self._npages.observe(lambda c: self.do("set_npages", c["new"]),
                             names="value")
        self._add.on_click(lambda _b: self.do("add_folio", self._order.value))
        self._map.on_click(lambda _b: self.do("map", self._folio.value,
                                               self._at.value, self._pattern.value))
        self._pin.on_click(lambda _b: self.do("pin_slot", self._slot.value))
        self._clear.on_click(lambda _b: self.do("clear"))
        row = widgets.HBox
        self.children = [
            html_box(CSS),
            row([self._kind, self._npages]),
            row([self._order, self._add, self._folio, self._pattern, self._at, self._map]),
            row([self._slot, *self._toggles, self._pin, self._clear]),
            self._error, self._grid, self._table]
        self.redraw()

    def __repr__(self) -> str:
        m = self.model
        return (f"LayoutBuilder(kind={m.kind!r}, slots={m.npages}, folios={len(m.folios)}, "
                f"mapped={len(m.slots)}, pins={len(m.pins)})")

    @property
    def scenario(self) -> Scenario:
        """The current layout as a Scenario (build it, fork it, step through it)."""
        return self.model.scenario()

    @property
    def error(self) -> str:
        """The message shown in the error box ("" when the last action worked)."""
        return self._error.value

    def do(self, action: str, *args: Any) -> bool:
        """Run a :class:`LayoutModel` method by name (``"map"``, ``"toggle"``, ``"pin"``,
        ...); an impossible choice shows its LayoutError message in the error box.
        Returns whether it worked."""
        ok = True
        try:
            getattr(self.model, action)(*args)
            self._error.value = ""
        except (LayoutError, ScenarioError) as e:
            self._error.value = error_box(str(e))
            ok = False
        self.redraw()
        return ok

    def grid_html(self) -> str:
        """The PTE grid of the current layout."""
        p, folios = self.model.scenario().build()
        names = {f.pfn: n for n, f in folios.items()}
        pinned = {f"{f}:{i}" for f, i in self.model.pins}
        return grid_html(process_cells(p, names), pinned=pinned), folio_table(folios)

    def redraw(self) -> None:
        """Re-render the grid and the folio table from the model."""
        names = [n for n, _ in self.model.folios]
        old = list(self._folio.options)
        if old != names:
            keep = self._folio.value
            self._folio.options = names
            # ipywidgets leaves value None after new options: pick the folio just added,
            # else keep the choice, else the first one
            added = [n for n in names if n not in old]
            self._folio.value = (added[-1] if old and added else keep if keep in names
                                 else names[0] if names else None)
        grid, table = self.grid_html()
        self._grid.value = (f"<b>{self.model.kind}</b>, {self.model.npages} slots from "
                            f"{START:#x}" + grid)
        self._table.value = table

    def static_html(self) -> str:
        return self._error.value + self._grid.value + self._table.value
