"""Scenario files: a whole layout (VMAs, folios, PTEs, pins) as plain data.

Simulator concept.  A scenario is a dict (or a JSON file) that builds a
:class:`pkmm.Process`; the widgets export and import them, the quiz and exercises generate
them.  Every field is validated before anything is built; a bad field raises
:class:`pkmm.ScenarioError` naming its path (``ptes[2].folio``) and the fix.

>>> s = Scenario.from_dict({"name": "T05", "vmas": [{"start": "0x200000", "npages": 16}],
...     "folios": {"F": {"order": 4}}, "ptes": [{"addr": "0x200000", "folio": "F"}]})
>>> p, folios = s.build()
>>> folios["F"].refcount, p.pte(0x200000)
(16, Pte(pfn=0x1000 P W D A))
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import LayoutError, ScenarioError
from .folio import Folio
from .kernels import DEFAULT_KERNEL, KERNELS
from .perf import cyclic_gc_paused
from .process import Process
from .pte import PAGE_SIZE
from .vma import TASK_SIZE

__all__ = ["Scenario", "as_scenario", "load_scenario"]

_VMA_KEYS = {"start": int, "npages": int, "backing": str, "shared": bool, "write": bool,
             "uffd_wp": bool, "uffd_fork": bool, "pfnmap": bool, "dontfork": bool,
             "wipeonfork": bool, "soft_dirty_tracking": bool, "anon_vma": bool, "label": str}
_PTE_KEYS = {"addr": int, "folio": str, "page": int, "nr": int, "write": bool, "dirty": bool,
             "young": bool, "soft_dirty": bool, "uffd_wp": bool, "protnone": bool,
             "anon_exclusive": bool}
# A run: ``npages`` consecutive pages from ``addr`` mapping consecutive pages of fresh
# folios of ``order`` (from page ``page`` of the first), each PTE with the same bits; with
# ``continue`` it goes on with the folio the previous run ended in, or, with ``page`` too,
# with the last folio of its order and backing a run left unfinished, from that page on (a
# real process whose folio is interrupted by one CoW-copied page); ``pmd`` maps each
# order-9 folio with one PMD; ``pinned`` takes a FOLL_PIN on every page it maps (as an
# io_uring fixed buffer over the run would).  Real processes are written this way (see
# pkmm.realkernel.snapshot); hand-made layouts can too.
_RUN_KEYS = {"addr": int, "npages": int, "order": int, "page": int, "backing": str,
             "pmd": bool, "continue": bool, "write": bool, "dirty": bool, "young": bool,
             "soft_dirty": bool, "uffd_wp": bool, "anon_exclusive": bool, "pinned": bool}
_RANGE_KEYS: dict[str, type] = {"addr": int, "npages": int}
_SECTIONS = {"name", "kernel", "description", "vmas", "folios", "ptes", "pmds", "zero",
             "huge_zero", "swap", "markers", "pins", "vmsplice", "runs", "pfnmaps",
             "approximations", "source"}
_ADDR_KEYS = {"start", "addr"}
#: Counts that are not addresses: folio page indexes, PTE counts, references.
_COUNT_MAX = {"npages": TASK_SIZE // 4096, "page": 1 << 9, "nr": 1 << 9, "order": 9,
              "refs": 1 << 20, "value": 1 << 64}
#: Bytes in a scenario file: a layout of a million PTEs fits in far less.
MAX_FILE_BYTES = 64 << 20


def _int(path: str, v: Any) -> int:
    """An int field (or a string like '0x200000'), within the bounds its key allows."""
    if isinstance(v, bool):
        raise ScenarioError(f"{path}: expected an int, got {v!r} (true/false are not "
                            "numbers here)")
    n: int | None = v if isinstance(v, int) else None
    if isinstance(v, str) and len(v) <= 40:
        try:
            n = int(v, 0)
        except ValueError:
            n = None
    if n is None:
        shown = repr(v) if len(repr(v)) <= 60 else repr(v)[:57] + "..."
        raise ScenarioError(f"{path}: expected an int (or a string like '0x200000'), got "
                            f"{shown}")
    key = path.rsplit(".", 1)[-1].split("[", 1)[0]
    high = TASK_SIZE if key in _ADDR_KEYS or path.startswith(("zero[", "huge_zero[")) \
        else _COUNT_MAX.get(key, 1 << 64)
    if not 0 <= n <= high:
        raise ScenarioError(f"{path}: {_short(n)} is out of range; use 0..{high:#x}"
                            + (" (the 47-bit user address space)" if high == TASK_SIZE
                               else ""))
    return n


def _short(n: int) -> str:
    text = str(n)
    return text if len(text) <= 24 else f"a {len(text)}-digit number"


def _shown(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _fields(path: str, d: Any, spec: dict[str, type], required: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(d, dict):
        raise ScenarioError(f"{path}: expected an object with keys {sorted(spec)}, got "
                            f"{_shown(d)}")
    unknown = sorted(set(d) - set(spec))
    if unknown:
        raise ScenarioError(f"{path}: unknown key(s) {unknown}; allowed: {sorted(spec)}")
    for k in required:
        if k not in d:
            raise ScenarioError(f"{path}: missing required key {k!r}")
    out: dict[str, Any] = {}
    for k, v in d.items():
        t = spec[k]
        if t is int:
            out[k] = _int(f"{path}.{k}", v)
        elif t is bool:
            if not isinstance(v, bool):
                raise ScenarioError(f"{path}.{k}: expected true/false, got {_shown(v)}")
            out[k] = v
        else:
            if not isinstance(v, str):
                raise ScenarioError(f"{path}.{k}: expected a string, got {_shown(v)}")
            out[k] = v
    return out


def _list(path: str, v: Any) -> list[Any]:
    if not isinstance(v, list):
        raise ScenarioError(f"{path}: expected a list, got {type(v).__name__}")
    return v


@dataclass
class Scenario:
    """A validated layout description; :meth:`build` turns it into a process."""

    name: str
    kernel: str = DEFAULT_KERNEL
    description: str = ""
    vmas: list[dict[str, Any]] = field(default_factory=list)
    folios: dict[str, dict[str, Any]] = field(default_factory=dict)
    ptes: list[dict[str, Any]] = field(default_factory=list)
    pmds: list[dict[str, Any]] = field(default_factory=list)
    zero: list[int | dict[str, int]] = field(default_factory=list)
    huge_zero: list[int] = field(default_factory=list)
    swap: list[dict[str, Any]] = field(default_factory=list)
    markers: list[dict[str, Any]] = field(default_factory=list)
    pins: list[dict[str, Any]] = field(default_factory=list)
    vmsplice: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    pfnmaps: list[dict[str, Any]] = field(default_factory=list)
    approximations: list[str] = field(default_factory=list)   # what could not be seen
    source: dict[str, Any] = field(default_factory=dict)      # where the layout came from

    @classmethod
    def from_dict(cls, d: Any) -> Scenario:
        """Validate ``d`` field by field (ScenarioError names the first bad one)."""
        if not isinstance(d, dict):
            raise ScenarioError(f"scenario: expected an object, got {type(d).__name__}")
        unknown = sorted(set(d) - _SECTIONS)
        if unknown:
            raise ScenarioError(f"scenario: unknown section(s) {unknown}; allowed: "
                                f"{sorted(_SECTIONS)}")
        name = d.get("name", "scenario")
        if not isinstance(name, str):
            raise ScenarioError(f"name: expected a string, got {_shown(name)}")
        kernel = d.get("kernel", DEFAULT_KERNEL)
        if not isinstance(kernel, str) or kernel not in KERNELS:
            raise ScenarioError(f"kernel: {_shown(kernel)} is not one of {', '.join(KERNELS)}")
        description = d.get("description", "")
        if not isinstance(description, str):
            raise ScenarioError(f"description: expected a string, got {_shown(description)}")
        s = cls(name=name, kernel=kernel, description=description)
        s.vmas = [_fields(f"vmas[{i}]", v, _VMA_KEYS, ("start", "npages"))
                  for i, v in enumerate(_list("vmas", d.get("vmas", [])))]
        folios = d.get("folios", {})
        if not isinstance(folios, dict):
            raise ScenarioError("folios: expected an object mapping names to "
                                "{order, backing}")
        s.folios = {str(k): _fields(f"folios.{k}", v, {"order": int, "backing": str},
                                    ("order",)) for k, v in folios.items()}
        s.ptes = [_fields(f"ptes[{i}]", v, _PTE_KEYS, ("addr", "folio"))
                  for i, v in enumerate(_list("ptes", d.get("ptes", [])))]
        s.pmds = [_fields(f"pmds[{i}]", v, {"addr": int, "folio": str, "write": bool,
                                             "dirty": bool}, ("addr", "folio"))
                  for i, v in enumerate(_list("pmds", d.get("pmds", [])))]
        s.zero = [_addr_or_range(f"zero[{i}]", v)
                  for i, v in enumerate(_list("zero", d.get("zero", [])))]
        s.huge_zero = [_int(f"huge_zero[{i}]", v)
                       for i, v in enumerate(_list("huge_zero", d.get("huge_zero", [])))]
        s.swap = [_fields(f"swap[{i}]", v, {"addr": int, "value": int, "exclusive": bool,
                                             "soft_dirty": bool, "uffd_wp": bool,
                                             "npages": int}, ("addr",))
                  for i, v in enumerate(_list("swap", d.get("swap", [])))]
        s.markers = []
        for i, v in enumerate(_list("markers", d.get("markers", []))):
            if not isinstance(v, dict) or not {"addr", "markers"} <= set(v) <= \
                    {"addr", "markers", "npages"} or not isinstance(v["markers"], list) or \
                    not all(isinstance(m, str) for m in v["markers"]):
                raise ScenarioError(f"markers[{i}]: expected {{addr, markers: [names]}} "
                                    "with marker names as strings (and optionally npages)")
            s.markers.append({"addr": _int(f"markers[{i}].addr", v["addr"]),
                              "markers": list(v["markers"]),
                              **({"npages": _int(f"markers[{i}].npages", v["npages"])}
                                 if "npages" in v else {})})
        s.runs = [_fields(f"runs[{i}]", v, _RUN_KEYS, ("addr", "npages"))
                  for i, v in enumerate(_list("runs", d.get("runs", [])))]
        s.pfnmaps = [_fields(f"pfnmaps[{i}]", v, {"addr": int, "npages": int, "pfn": int,
                                                   "write": bool, "dirty": bool},
                             ("addr", "pfn"))
                     for i, v in enumerate(_list("pfnmaps", d.get("pfnmaps", [])))]
        s.approximations = [str(a) for a in _list("approximations",
                                                  d.get("approximations", []))]
        source = d.get("source", {})
        if not isinstance(source, dict):
            raise ScenarioError("source: expected an object (where the layout came from)")
        s.source = dict(source)
        s.pins = [_fields(f"pins[{i}]", v, {"folio": str, "page": int}, ("folio",))
                  for i, v in enumerate(_list("pins", d.get("pins", [])))]
        s.vmsplice = [_fields(f"vmsplice[{i}]", v, {"folio": str, "page": int, "refs": int},
                              ("folio",))
                      for i, v in enumerate(_list("vmsplice", d.get("vmsplice", [])))]
        for sec in ("ptes", "pmds", "pins", "vmsplice"):
            for i, e in enumerate(getattr(s, sec)):
                if e["folio"] not in s.folios:
                    raise ScenarioError(f"{sec}[{i}].folio: {e['folio']!r} is not declared "
                                        f"in folios ({sorted(s.folios) or 'none'})")
        return s

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-ready); ``Scenario.from_dict(s.to_dict())`` round-trips."""
        d: dict[str, Any] = {"name": self.name, "kernel": self.kernel}
        if self.description:
            d["description"] = self.description
        for sec in ("vmas", "folios", "ptes", "pmds", "zero", "huge_zero", "swap", "markers",
                    "pins", "vmsplice", "runs", "pfnmaps", "approximations", "source"):
            v = getattr(self, sec)
            if v:
                d[sec] = v
        return d

    def build(self) -> tuple[Process, dict[str, Folio]]:
        """A fresh process laid out as described, and its folios by name.

        Layout mistakes (overlaps, out-of-VMA addresses, ...) surface as ScenarioError with
        the offending entry named; nothing is half-built (the process is discarded).
        """
        with cyclic_gc_paused():
            return self._build()

    def _build(self) -> tuple[Process, dict[str, Folio]]:
        p = Process(self.kernel)
        folios: dict[str, Folio] = {}
        # where we are, formatted only if an entry fails (a 1 GiB layout has 262,144)
        section, key = "vmas", ""
        i = 0
        try:
            for i, v in enumerate(self.vmas):
                p.mmap(**({k: x for k, x in v.items() if k != "label"} if "label" in v else v))
            section = "folios"
            for key, fd in self.folios.items():
                folios[key] = p.alloc_folio(fd["order"], backing=fd.get("backing", "anon"))
            section = "ptes"
            for i, e in enumerate(self.ptes):
                if len(e) == 2:
                    p.map(e["addr"], folios[e["folio"]])
                else:
                    p.map(e["addr"], folios[e["folio"]],
                          **{k: v for k, v in e.items() if k != "addr" and k != "folio"})
            section = "runs"
            runs = _RunBuilder(p)
            for i, e in enumerate(self.runs):
                runs.add(e)
            section = "pmds"
            for i, e in enumerate(self.pmds):
                p.map_pmd(e["addr"], folios[e["folio"]], write=e.get("write", True),
                          dirty=e.get("dirty", True))
            section = "zero"
            for i, z in enumerate(self.zero):
                a, n = (z, 1) if isinstance(z, int) else (z["addr"], z["npages"])
                for k in range(n):
                    p.map_zero_page(a + k * PAGE_SIZE)
            section = "huge_zero"
            for i, a in enumerate(self.huge_zero):
                p.map_huge_zero_pmd(a)
            section = "swap"
            for i, e in enumerate(self.swap):
                for k in range(_count(e)):
                    p.map_swap(e["addr"] + k * PAGE_SIZE, e.get("value", 0),
                               exclusive=e.get("exclusive", True),
                               soft_dirty=e.get("soft_dirty", False),
                               uffd_wp=e.get("uffd_wp", False))
            section = "markers"
            for i, e in enumerate(self.markers):
                for k in range(_count(e)):
                    p.map_marker(e["addr"] + k * PAGE_SIZE, *e["markers"])
            section = "pfnmaps"
            for i, e in enumerate(self.pfnmaps):
                for k in range(_count(e)):
                    p.map_pfn(e["addr"] + k * PAGE_SIZE, e["pfn"] + k,
                              write=e.get("write", False), dirty=e.get("dirty", False))
            section = "pins"
            for i, e in enumerate(self.pins):
                p.pin(folios[e["folio"]], e.get("page", 0))
            section = "vmsplice"
            for i, e in enumerate(self.vmsplice):
                p.vmsplice(folios[e["folio"]], e.get("page", 0), e.get("refs", 1))
        except LayoutError as err:
            step = f"folios.{key}" if section == "folios" else f"{section}[{i}]"
            raise ScenarioError(f"{step}: {err}") from None
        return p, folios


def _count(e: dict[str, Any]) -> int:
    n = e.get("npages", 1)
    if n < 1:
        raise LayoutError(f"npages={n}: at least 1")
    return int(n)


def _addr_or_range(path: str, v: Any) -> int | dict[str, int]:
    """A zero-page entry: an address, or ``{addr, npages}`` for consecutive pages."""
    if isinstance(v, dict):
        r = _fields(path, v, _RANGE_KEYS, ("addr", "npages"))
        if r["npages"] < 1:
            raise ScenarioError(f"{path}.npages: at least 1, got {r['npages']}")
        return r
    return _int(path, v)


class _RunBuilder:
    """Maps the ``runs`` of a scenario: fresh folios, or the one the last run ended in."""

    def __init__(self, p: Process) -> None:
        self.p = p
        self.folio: Folio | None = None    # the last run's last folio, if not fully mapped
        self.next = 0                      # its next unmapped page
        #: per (order, backing): the last folio a run left unfinished, and its next page
        self.open: dict[tuple[int, str], tuple[Folio, int]] = {}

    def add(self, e: dict[str, Any]) -> None:
        order, npages, pmd = e.get("order", 0), e["npages"], e.get("pmd", False)
        backing = e.get("backing", "anon")
        if not 0 <= order <= 9:
            raise LayoutError(f"order={order}: folios have orders 0..9 in pkmm")
        if npages < 1:
            raise LayoutError(f"npages={npages}: a run maps at least one page")
        if pmd and (order != 9 or npages % 512 or "page" in e or e.get("continue")):
            raise LayoutError("pmd=True: a run of whole order-9 folios (order 9, npages a "
                              "multiple of 512, no page/continue)")
        folio, idx = None, e.get("page", 0)
        if e.get("continue") and "page" in e:
            folio, nxt = self.open.get((order, backing), (None, 0))
            if folio is None:
                raise LayoutError(f"continue=True, page={idx}: no earlier run left a folio of "
                                  f"order {order} ({backing}) unfinished; drop 'continue' to "
                                  "start a new folio")
            if not nxt <= idx < 1 << order:
                raise LayoutError(f"continue=True, page={idx}: the unfinished folio of order "
                                  f"{order} goes on at page {nxt} or later, up to "
                                  f"{(1 << order) - 1}")
        elif e.get("continue"):
            if self.folio is None or self.folio.order != order or self.folio.kind != backing:
                raise LayoutError("continue=True but the previous run did not stop inside a "
                                  f"folio of order {order} ({backing}); start a new folio, or "
                                  "give 'page' to go on with an earlier unfinished one")
            folio, idx = self.folio, self.next
        elif not 0 <= idx < 1 << order:
            raise LayoutError(f"page={idx}: a folio of order {order} has pages "
                              f"0..{(1 << order) - 1}")
        kw = {k: v for k, v in e.items() if k in ("write", "dirty", "young", "soft_dirty",
                                                   "uffd_wp", "anon_exclusive")}
        addr, left = e["addr"], npages
        while left:
            folio = folio or self.p.alloc_folio(order, backing=backing)
            take = min((1 << order) - idx, left)
            if pmd:
                self.p.map_pmd(addr, folio, write=kw.get("write"), dirty=kw.get("dirty", True))
            else:
                self.p.map(addr, folio, idx, take, **kw)
            for k in range(idx, idx + take) if e.get("pinned") else ():
                self.p.pin(folio, k)
            addr, left, idx = addr + take * PAGE_SIZE, left - take, idx + take
            if idx == 1 << order:
                if folio is self.open.get((order, backing), (None, 0))[0]:
                    del self.open[(order, backing)]
                folio, idx = None, 0
        self.folio, self.next = folio, idx
        if folio is not None:
            self.open[(order, backing)] = (folio, idx)


def load_scenario(source: str | Path | dict[str, Any]) -> Scenario:
    """A scenario from a dict, a JSON string, or a path to a JSON file (UTF-8).

    Whatever is wrong -- a missing or unreadable file, bytes that are not UTF-8, text that
    is not JSON, nesting too deep for the parser, a number with thousands of digits, JSON
    that is not an object -- raises :class:`pkmm.ScenarioError` saying what to fix.
    """
    if isinstance(source, dict):
        return Scenario.from_dict(source)
    if not isinstance(source, (str, Path)):
        raise ScenarioError(f"source={type(source).__name__}: pass a dict, a JSON string or "
                            "a path to a JSON file")
    text = str(source)
    if isinstance(source, Path) or not text.lstrip().startswith(("{", "[")):
        text = _read_scenario_file(text)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ScenarioError(f"scenario is not valid JSON: {e.msg} at line {e.lineno} "
                            f"column {e.colno}") from None
    except RecursionError:
        raise ScenarioError("scenario JSON is nested too deeply to read; a scenario is an "
                            "object of lists of flat objects (two or three levels)") from None
    except ValueError as e:     # e.g. an integer literal over Python's digit limit
        raise ScenarioError(f"scenario JSON holds a value pkmm cannot read ({e}); numbers "
                            "must be addresses or counts of at most 20 digits") from None
    return Scenario.from_dict(data)


def _read_scenario_file(text: str) -> str:
    shown = text if len(text) <= 80 else text[:77] + "..."
    try:
        path = Path(text)
        if not path.is_file():
            what = "is a directory" if path.is_dir() else "does not exist"
            raise ScenarioError(f"scenario file {shown!r} {what}; pass the path of a JSON "
                                "file (or the JSON text itself, starting with '{')")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ScenarioError(f"scenario file {shown!r} is larger than "
                                f"{MAX_FILE_BYTES >> 20} MiB; a scenario is a small JSON file")
        raw = path.read_bytes()
    except (OSError, ValueError) as e:
        if isinstance(e, ScenarioError):
            raise
        raise ScenarioError(f"scenario file {shown!r} cannot be read ({e}); pass the path "
                            "of a readable JSON file") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ScenarioError(f"scenario file {shown!r} is not UTF-8 text (byte {e.start}); "
                            "save it as UTF-8 JSON") from None


def as_scenario(layout: Any) -> Scenario:
    """Accept a Scenario, a scenario dict, or anything with a ``.scenario`` attribute (a
    LayoutBuilder): what the checkers and widgets take as "a layout"."""
    if isinstance(layout, Scenario):
        return layout
    if isinstance(layout, dict):
        return Scenario.from_dict(layout)
    sc = getattr(layout, "scenario", None)
    if isinstance(sc, Scenario):
        return sc
    raise LayoutError(f"layout={type(layout).__name__}: pass a pkmm.scenario.Scenario, a "
                      "scenario dict or a LayoutBuilder")
