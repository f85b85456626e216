"""LayoutModel: the learner's layout as plain data (no widget library needed).

Simulator concept (views layer).  It holds the learner's choices -- VMA kind and size,
folios, which page each PTE maps with which bits, pins -- and turns them into a
:class:`pkmm.scenario.Scenario`; every change is validated by building that scenario
with the model, so an impossible layout is refused with the model's own
:class:`pkmm.LayoutError` message, before anything changes.
Taught in: notebooks/01-ptes-folios-vmas.ipynb
"""

from __future__ import annotations

import random
from typing import Any

from ..errors import LayoutError, ScenarioError
from ..process import Process
from ..scenario import Scenario
from .render import BIT_LETTERS

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
BITS = BIT_LETTERS   # (name, letter) of every settable bit (pkmm.pte.SETTABLE_BITS)


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
        self._check_kind(kind)
        self._check_npages(npages)
        self.kind = kind
        self.npages = npages
        self.folios: list[tuple[str, int]] = []
        self.slots: dict[int, dict[str, Any]] = {}
        self.pins: list[tuple[str, int]] = []
        self.revision = 0                      # bumped by every change that sticks
        self._listeners: list[Any] = []
        self.validate()

    def subscribe(self, fn: Any) -> None:
        """Call ``fn()`` after every change that sticks (widgets made from this layout
        follow it)."""
        self._listeners.append(fn)

    def _changed(self) -> None:
        self.revision += 1
        for fn in list(self._listeners):
            fn()

    # -- helpers -------------------------------------------------------------------------
    @staticmethod
    def _check_npages(npages: object) -> None:
        if isinstance(npages, bool) or not isinstance(npages, int) or not 1 <= npages <= 512:
            raise LayoutError(f"npages={npages!r}: a VMA of 1..512 slots (one PMD slice)")

    @staticmethod
    def _check_kind(kind: object) -> None:
        if not isinstance(kind, str) or kind not in VMA_KINDS:
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
        self._changed()
        self._built, self._built_at = self._pending, self.revision

    def validate(self) -> Process:
        """Build the scenario (raises LayoutError with the model's message if impossible)."""
        try:
            built = self.scenario().build()
        except ScenarioError as e:
            msg = str(e).split(": ", 1)[-1]
            raise LayoutError(msg) from None
        self._pending = built
        return built[0]

    def built(self) -> tuple[Process, dict[str, Any]]:
        """The layout built by the model (the last successful validation; read it, do not
        change it): what the pictures draw."""
        if getattr(self, "_built_at", None) != self.revision:
            self.validate()
            self._built, self._built_at = self._pending, self.revision
        return self._built

    # -- mutators ------------------------------------------------------------------------
    def set_kind(self, kind: str) -> None:
        """Change the VMA kind (mapped folios must suit it)."""
        self._check_kind(kind)

        def change() -> None:
            self.kind = kind
        try:
            self._transaction(change)
        except LayoutError as e:
            raise LayoutError(f"kind={kind!r} cannot hold this layout ({e}); clear the "
                              "layout first, or pick another kind") from None

    def set_npages(self, npages: int) -> None:
        """Resize the VMA (1..512 slots; mapped slots must stay inside)."""
        self._check_npages(npages)
        if self.slots and max(self.slots) >= npages:
            raise LayoutError(f"npages={npages}: slot {max(self.slots)} is mapped; "
                              "clear it first or keep the VMA larger")

        def change() -> None:
            self.npages = npages
        self._transaction(change)

    def add_folio(self, order: int) -> str:
        """Allocate a folio of ``order`` (0..9); returns its name (F0, F1, ...)."""
        if isinstance(order, bool) or not isinstance(order, int) or not 0 <= order <= 9:
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
        self._check_slot(slot)
        if slot not in self.slots:
            raise LayoutError(f"PTE #{slot} is empty; map a folio there before setting its "
                              "bits")

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
        self._check_slot(slot)
        if slot not in self.slots:
            raise LayoutError(f"PTE #{slot} is empty; pick a mapped PTE to pin its page")
        self.pin(self.slots[slot]["folio"], self.slots[slot]["page"])

    def _check_slot(self, slot: object) -> None:
        if isinstance(slot, bool) or not isinstance(slot, int) or not 0 <= slot < self.npages:
            raise LayoutError(f"PTE #{slot!r} is outside this {self.npages}-slot VMA; pick "
                              f"0..{self.npages - 1}")

    def clear(self) -> None:
        """Forget folios, mappings and pins (the VMA kind and size stay)."""
        self.folios, self.slots, self.pins = [], {}, []
        self._changed()

    # -- export --------------------------------------------------------------------------
    def scenario(self, name: str = "layout") -> Scenario:
        """The layout as a :class:`pkmm.scenario.Scenario`."""
        kw, backing = VMA_KINDS[self.kind]
        d: dict[str, Any] = {"name": name, "vmas": [{"start": START, "npages": self.npages,
                                                       **kw}]}
        folios = {n: {"order": o, "backing": backing} for n, o in self.folios}
        ptes: list[dict[str, Any]] = []
        for s, e in sorted(self.slots.items()):
            last = ptes[-1] if ptes else None
            # one entry per run of slots mapping consecutive pages with the same bits
            # (a 512-slot layout builds with one map() call, not 512)
            if last is not None and last["addr"] + last["nr"] * 4096 == START + s * 4096 \
                    and last["folio"] == e["folio"] and last["page"] + last["nr"] == e["page"] \
                    and all(last[b] == e[b] for b, _ in BITS):
                last["nr"] += 1
            else:
                ptes.append({"addr": START + s * 4096, "nr": 1, **e})
        if self.kind.startswith("private file + anon_vma"):
            # pkmm: one private anon page (a COWed copy) in the last slot gives the VMA
            # its anon_vma, so vma_needs_copy() copies the whole VMA.
            cow = self.npages - 1
            if cow in self.slots:
                raise LayoutError(f"slot {cow} holds this VMA's COWed anon page; keep it free")
            folios["COW"] = {"order": 0, "backing": "anon"}
            ptes.append({"addr": START + cow * 4096, "folio": "COW"})
        d["folios"] = folios
        d["ptes"] = ptes
        d["pins"] = [{"folio": f, "page": p} for f, p in self.pins]
        return Scenario.from_dict(d)
