"""Trace events and copy-loop steps: every decision fork makes, and why.

Simulator concept.  Each event names the kernel function that decided, the kernel version
whose rule fired, a short rule id (stable, for tests and widgets) and a sentence for people.
At scale a trace can be *summarised* (``detail=False``): events are not stored, but the
counts per (function, rule) and per step action/reason stay exact.
Taught in: notebooks/02-fork-one-pte-at-a-time.ipynb
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any, Literal, NamedTuple

__all__ = ["ACTIONS", "Action", "Event", "Step", "Trace"]

Action = Literal["share", "copy", "raw", "eagain", "nonpresent"]
ACTIONS: tuple[Action, ...] = ("share", "copy", "raw", "eagain", "nonpresent")


class Event(NamedTuple):
    """One decision: ``func`` (kernel name) applied ``rule`` at ``addr`` for ``nr`` PTEs.

    An immutable record (a tuple underneath: a traced 1 GiB fork keeps a million).
    """

    seq: int
    func: str
    version: str
    rule: str
    reason: str
    addr: int | None = None
    nr: int = 0
    data: tuple[tuple[str, Any], ...] = ()

    def get(self, key: str, default: Any = None) -> Any:
        """A detail recorded with the event."""
        for k, v in self.data:
            if k == key:
                return v
        return default

    def __str__(self) -> str:
        where = f" @{self.addr:#x}" if self.addr is not None else ""
        nr = f" nr={self.nr}" if self.nr else ""
        return f"[{self.version}] {self.func}: {self.rule}{where}{nr} -- {self.reason}"


class Step(NamedTuple):
    """One return of the present/non-present copy function in ``copy_pte_range``.

    ``action``: "share" (child maps the same page(s)), "copy" (a private copy for the
    child), "raw" (no struct page: copied by value), "eagain" (needs a preallocated page;
    nothing copied, ``nr`` 0), "nonpresent" (a swap/migration/marker entry).
    ``stop`` says why a batch ended (for share steps of large folios), else "".
    """

    addr: int
    nr: int
    action: Action
    reason: str
    func: str
    stop: str = ""

    def __str__(self) -> str:
        return f"{self.addr:#x} {self.action} nr={self.nr} ({self.func}: {self.reason})"


class Trace:
    """An ordered list of :class:`Event` (or only their counts when ``detail=False``)."""

    def __init__(self, version: str, detail: bool = True) -> None:
        self.version = version
        self.detail = detail
        self.events: list[Event] = []
        self.counts: Counter[tuple[str, str]] = Counter()
        self._seq = 0

    def emit(self, func: str, rule: str, reason: str, addr: int | None = None,
             nr: int = 0, **data: Any) -> Event | None:
        """Record that ``func`` applied ``rule`` (``reason`` says why, for a learner);
        returns the event (None when the trace is summarised)."""
        self.counts[(func, rule)] += 1
        ev = None
        if self.detail:
            ev = Event(self._seq, func, self.version, rule, reason, addr, nr,
                       tuple(sorted(data.items())) if len(data) > 1 else tuple(data.items()))
            self.events.append(ev)
        self._seq += 1
        return ev

    def __iter__(self) -> Iterator[Event]:
        return iter(self.events)

    def __len__(self) -> int:
        return len(self.events)

    def __getitem__(self, i: int) -> Event:
        return self.events[i]

    def filter(self, func: str | None = None, rule: str | None = None) -> list[Event]:
        """Events of one function and/or rule (rule matches as a prefix)."""
        return [e for e in self.events
                if (func is None or e.func == func)
                and (rule is None or e.rule.startswith(rule))]

    def to_text(self, limit: int | None = None) -> str:
        """One line per event."""
        ev = self.events if limit is None else self.events[:limit]
        return "\n".join(str(e) for e in ev)

    def __repr__(self) -> str:
        n = len(self.events) if self.detail else sum(self.counts.values())
        return f"Trace({self.version}, {n} events{'' if self.detail else ', summarised'})"
