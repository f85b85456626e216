"""One page's states after fork: CoW-shared read-only -> copy or reuse -> exclusive writable.

Simulator concept (views layer).  The layout is built, forked, then each process does
what ``actions`` says; after every step the picture reads, for each process, the page it
maps at the slot (the original or a new copy), its AnonExclusive flag, its PTE's write
bit and its mapcount.  The arrows carry the fault path the model took and its reason.
Taught in: notebooks/07-after-fork.ipynb
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ...errors import FaultError, LayoutError
from ...fork import fork
from ...kernels import DEFAULT_KERNEL
from ...process import Process
from ...pte import PAGE_SIZE
from .core import CHAR_W, Canvas, Picture, wrap
from .scene import folio_name, need_kernel


@dataclass(frozen=True)
class PageState:
    """What one process has at the slot."""

    state: str        # "exclusive, writable", "CoW-shared, read-only", ...
    page: str         # "F0:0 (original)" / "f7:0 (new copy)" / "none"
    detail: str       # counters

    @property
    def role(self) -> str:
        """Palette role for this state."""
        return {"exclusive, writable": "ok", "CoW-shared, read-only": "special",
                "no page": "none"}.get(self.state, "anon")


def page_state(p: Process, addr: int, original: int, names: dict[int, str]) -> PageState:
    """The state of the page ``p`` maps at ``addr`` (``original``: its pfn before fork)."""
    if p.exited:
        return PageState("no page", "process exited", "")
    pte = p.pte(addr)
    hit = p.page_at(addr)
    if pte is None or hit is None:
        return PageState("no page", "none", "empty PTE: the next access faults")
    folio, i = hit
    pg = folio.pages[i]
    excl = pg.anon_exclusive or (folio.entire_mapcount and folio.pages[0].anon_exclusive)
    state = (("exclusive" if excl else "CoW-shared" if pg.mapcount > 1 else "not exclusive")
             + (", writable" if pte.write else ", read-only"))
    which = "original" if pte.pfn == original else "new copy"
    return PageState(state, f"{folio_name(names, folio)}:{i} ({which})",
                     # a large folio's reuse test compares the folio's mappings, not the
                     # page's, with the refcount: the box carries the number the rule reads
                     f"mapcount {pg.mapcount}"
                     + (f" (large {folio.large_mapcount})" if folio.order else "")
                     + f", refcount {folio.refcount}"
                     + (", AnonExclusive" if pg.anon_exclusive else ""))


#: The key under every picture: what a box's colour says, and the thick border.
STATE_LEGEND = (("box", "ok", "exclusive, writable: this process's alone"),
                ("box", "special", "CoW-shared, read-only: both map it"),
                ("box", "anon", "any other state, named in the box"),
                ("box", "none", "no page"))
NOTES = ("Thick border: the process that acted in that step.",
         "mapcount: this page's mappings (PTEs mapping it + PMD entries mapping its folio).",
         "(large N): the large mapcount, all mappings of a large folio's pages, which its "
         "reuse test compares with the refcount.",
         "refcount: the whole folio's references.")

_PFN = re.compile(r"\bpage (0x[0-9a-f]+)\b")


def _name_new(names: dict[int, str], procs: Iterable[Process], addr: int) -> None:
    """Name a folio mapped at ``addr`` that has no name yet ``new1``, ``new2``, ... in the
    order they appear: the scheme of memory_map() and the after-fork playground (a page
    allocated after the layout was built, never an allocation counter)."""
    for p in procs:
        hit = None if p.exited else p.page_at(addr)
        if hit is not None and hit[0].pfn not in names and hit[0].kind not in (
                "zero", "huge_zero"):
            names[hit[0].pfn] = f"new{sum(n.startswith('new') for n in names.values()) + 1}"


def _sentences(reasons: Iterable[str], machine: Any, names: dict[int, str]) -> list[str]:
    """One sentence per decision of the fault path, pages named as the boxes name them
    ("A:0" for pfn 0x1000) -- the trace's reasons are written for pfns."""
    def name(m: re.Match[str]) -> str:
        hit = machine.pfn_folio(int(m.group(1), 16))
        return m.group(0) if hit is None else f"page {folio_name(names, hit[0])}:{hit[1]}"
    out = []
    for r in reasons:
        r = _PFN.sub(name, r.strip())
        out.append(r[0].upper() + r[1:] + ("" if r.endswith(".") else "."))
    return out


def page_state_machine(layout: Any, kernel: str = DEFAULT_KERNEL, slot: int = 0,
                       actions: Sequence[tuple[str, str]] = (("child", "write"),
                                                             ("parent", "write")), *,
                       without: Iterable[str] = ()) -> Picture:
    """The page at ``slot`` in parent and child: before fork, after fork, after each
    action (``("parent" | "child", "read" | "write" | "exit")``), with the fault path
    taken.

    >>> pic = page_state_machine({"vmas": [{"start": 0, "npages": 1}],
    ...     "folios": {"F": {"order": 0}}, "ptes": [{"addr": 0, "folio": "F"}]})
    >>> pic.data["faults"]
    ['child write: cow-copy', 'parent write: reuse']
    """
    from ...scenario import as_scenario
    need_kernel(kernel, "page_state_machine")
    bad = [a for a in actions if not (isinstance(a, (tuple, list)) and len(a) == 2
                                       and a[0] in ("parent", "child")
                                       and a[1] in ("read", "write", "exit"))]
    if bad or not actions:
        raise LayoutError(f"actions={list(actions)!r}: give pairs like ('child', 'write'); "
                          "who is 'parent' or 'child', what is 'read', 'write' or 'exit'")
    sc = as_scenario(layout)
    parent, folios = sc.build()
    if not parent.vmas:
        raise LayoutError("page_state_machine: the layout has no VMA")
    v = parent.vmas[0]
    addr = v.vm_start + slot * PAGE_SIZE if isinstance(slot, int) else -1
    if not v.vm_start <= addr < v.vm_end or parent.page_at(addr) is None:
        raise LayoutError(f"slot={slot!r}: pick a slot of the first VMA that maps a page")
    names = {f.pfn: n for n, f in folios.items()}
    pte0 = parent.pte(addr)
    assert pte0 is not None
    original = pte0.pfn
    cols = [("before fork", {"parent": page_state(parent, addr, original, names)}, "", "")]
    r = fork(parent, kernel=kernel, without=frozenset(without))
    procs = {"parent": parent, "child": r.child}

    def states() -> dict[str, PageState]:
        return {w: page_state(p, addr, original, names) for w, p in procs.items()}
    cols.append(("fork()", states(), "", "copied at fork" if r.copies else "CoW-shared at fork"))
    faults = []
    for n, (who, what) in enumerate(actions, 1):
        p = procs[who]
        if what == "exit":
            p.exit()
            faults.append(f"{who} exit")
            cols.append((f"{who} exits", states(), who, "its mappings are gone"))
            continue
        try:
            if what == "write":
                p.write(addr, 100 + n)
            else:
                p.read(addr)
        except FaultError as e:
            raise LayoutError(f"actions[{n - 1}]: {who} {what} failed: {e}") from None
        fr = p.last_fault
        kind = fr.kind if fr is not None and fr.faulted else "no fault"
        _name_new(names, procs.values(), addr)
        why = _sentences((r for _, _, r in fr.events), parent.machine, names) \
            if fr is not None else []
        faults.append(f"{who} {what}: {kind}")
        # The note names the actor: it sits under the child row whoever acted.
        cols.append((f"{who} {what}s", states(), who,
                     "\n".join([f"{who}'s {what}: {kind}"] + why)))
    return _draw(kernel, cols, faults)


def _draw(kernel: str, cols: list[tuple[str, dict[str, PageState], str, str]],
          faults: list[str]) -> Picture:
    # A column fits the longest state ("not exclusive, read-only", bold) in its box.
    w, h, x0 = 214, 62, 64
    c = Canvas(x0 + w * len(cols) + 8)
    c.text(8, 14, f"{kernel}: the page's state in each process", "pk-h")
    bottom: float = 40 + 2 * h + 48
    for i, who in enumerate(("parent", "child")):
        c.text(8, 64 + i * (h + 48), who, "pk-h")
    for j, (label, st, actor, why) in enumerate(cols):
        x = x0 + j * w
        c.text(x + 4, 32, f"{j}. {label}", "pk-t", extra=' font-weight="bold"')
        for i, who in enumerate(("parent", "child")):
            y = 40 + i * (h + 48)
            s = st.get(who)
            if s is None:
                c.text(x + 8, y + 30, "(no process yet)", "pk-t2")
                continue
            on = actor == who
            c.rect(x + 4, y, w - 30, h, s.role, rx=10, tip=f"{who}: {s.state}; {s.page}; "
                   f"{s.detail}", extra=' stroke-width="2.5"' if on else "")
            c.text(x + 10, y + 15, s.state, "pk-t", extra=' font-weight="bold"')
            c.text(x + 10, y + 29, s.page, "pk-t2")
            # counters: two lines, short enough to clear the box's right border
            for k, line in enumerate(wrap(s.detail, 26)[:2]):   # 11 px glyphs
                c.text(x + 10, y + 42 + 12 * k, line, "pk-t2")
            prev = cols[j - 1][1].get(who) if j else None
            if prev is not None:
                c.path(f"M{x - 24:g},{y + h / 2:g} L{x + 2:g},{y + h / 2:g}",
                       "lit" if on else "", width=2 if on else 1, arrow=True)
        if why:
            # The whole fault path, one sentence per decision, each starting on its own
            # line; the canvas grows to fit.
            y = 40 + 2 * h + 48 + 14
            for k, sentence in enumerate(why.split("\n")):
                for line in wrap(sentence, 29):   # 29: clear of the next column
                    c.text(x + 4, y, line, "pk-t",
                           extra=' font-weight="bold"' if k == 0 else "")
                    y += 13
                y += 4
            bottom = max(bottom, y)
    key_y = c.legend(bottom + 14, STATE_LEGEND)
    for note in NOTES:
        for line in wrap(note, int((c.width - 16) / CHAR_W)):
            key_y += 13
            c.text(8, key_y, line, "pk-t2")
    desc = f"{kernel}: " + "; ".join(faults)
    return c.picture("page-states", "page states after fork", desc,
                     data={"faults": faults,
                           "states": [{k: v.state for k, v in st.items()}
                                      for _, st, _, _ in cols]})
