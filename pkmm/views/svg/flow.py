"""The decision flow of copy_present_pte(s) for one version, the path of one PTE lit.

Simulator concept (views layer).  Nodes are the decisions the variant's code recorded
(function and outcome, :mod:`pkmm.views.svg.calls`), observed over probe layouts that
reach every branch plus the learner's own layout; ranks follow the order the code took
them.  The chosen PTE's call(s) are lit, and the trace's reasons are listed below.
Taught in: notebooks/02-fork-one-pte-at-a-time.ipynb
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from ...errors import LayoutError
from ...kernels import DEFAULT_KERNEL, get_kernel
from ...kernels.common import stop_words
from ...pte import PAGE_SIZE
from .calls import Call, Node, call_path, observed_paths, present_calls
from .core import CHAR_W, Canvas, Picture, action_word, wrap
from .scene import build_fork, need_kernel

# 62 px between ranks: a grey arrow crossing a band sideways stays steep enough to follow
NODE_H, RANK_H, PAD = 34, 96, 14
LANE_W = 8          # the width an edge's own lane takes in a rank it passes through
RETURNS = {"share": "returns nr: mapped, no copy", "copy": "returns 1: copied",
           "raw": "returns 1: by value", "-EAGAIN": "returns -EAGAIN"}
# A variant without a batch function copies one PTE per call, so its "mapped" return is
# 1, not a batch size nr (a reader of v6.8's flow asked what nr was).  "mapped", not
# "shared": that word is kept for a shared mapping (MAP_SHARED).
RETURNS_UNBATCHED = {**RETURNS, "share": "returns 1: mapped, no copy"}
#: What a call's return means, for the line under the flow that says what the call did.
CALL_WORDS = {"share": "PTEs mapped, no page copied",
              "copy": "the page copied for the child", "raw": "PTE copied by value",
              "eagain": "nothing done: retry after a page is ready"}


def _collapse(path: Sequence[Node]) -> tuple[Node, ...]:
    """Drop consecutive repeats (a per-page loop is one node that says it loops)."""
    out: list[Node] = []
    for n in path:
        if not out or out[-1] != n:
            out.append(n)
    return tuple(out)


def _ranks(paths: Sequence[Sequence[Node]]) -> dict[Node, int]:
    """Longest-path rank of each node over the observed paths (the order code ran)."""
    rank: dict[Node, int] = {}
    for _ in range(len(paths) + 2):             # relax until stable (paths are short)
        changed = False
        for p in paths:
            for i, n in enumerate(p):
                r = 0 if i == 0 else rank.get(p[i - 1], 0) + 1
                if rank.get(n, -1) < r and r < 64:
                    rank[n] = r
                    changed = True
        if not changed:
            break
    returns = max(rank.values(), default=0)
    for n in rank:                              # every return on the last rank
        if n[0] == "return":
            rank[n] = returns
    return rank


#: The kernel's three questions for a present PTE, in the order copy_present_pte(s) asks
#: them (mm/memory.c): 1 is there a struct page (vm_normal_page())?  2 anon or page cache
#: (folio_test_anon(), then the rmap dup of that kind)?  3 a CoW mapping with a writable
#: PTE?  Outcome codes of the trace in words, each numbered with its question.
OUTCOMES = {
    ("vm_normal_page", "page"): "1 struct page? yes",
    ("vm_normal_page", "no-page:special"): "1 struct page? no: special",
    ("vm_normal_page", "no-page:bad-pfn"): "1 struct page? no: bad pfn",
    ("anon", "anon-dup:ok"): "2 anon: rmap dup'd",
    ("anon", "anon-dup:busy"): "2 anon: maybe pinned, refused",
    ("file", "file-dup"): "2 page cache: rmap dup'd",
    ("", "cow-wrprotect"): "3 CoW: write-protect both",
    ("", "stop"): "a batch of nr PTEs",
    ("", "need-prealloc"): "no page ready: ask for one",
    ("", "copied"): "child gets a copy",
    ("", "set-pte"): "write the child's PTE, old (no A)",
    ("", "set-ptes"): "write the child's PTEs, old (no A)",
}


#: The colour of a box -> what it means; the drawing picks a box's colour with
#: :func:`_role` and the key lists the entries of this table the picture used, so every
#: colour drawn is keyed and no key names a colour that is not drawn.
ROLES = {
    "lit": "bold, orange: the path {slot} took",
    "none": "grey, dashed arrows: decisions other PTEs take",
    "hot": "refused: returns -EAGAIN; copy_pte_range() allocates a page and retries "
           "(notebook 04)",
}


def _role(n: Node, on: bool) -> str:
    """The box colour of node ``n`` (``on``: on the lit path); keyed by :data:`ROLES`."""
    return "lit" if on else ("hot" if n == ("return", "-EAGAIN") else "none")


def _outcome(n: Node, words: Mapping[tuple[str, str], str] = OUTCOMES) -> str:
    func, outcome = n
    kind = ("anon" if "anon_rmap" in func else "file" if "file_rmap" in func
            else func if func == "vm_normal_page" else "")
    return words.get((kind, outcome), outcome)


def _label(n: Node, returns: Mapping[str, str] = RETURNS,
           words: Mapping[tuple[str, str], str] = OUTCOMES) -> tuple[str, str]:
    func, outcome = n
    if func == "entry":
        return f"{outcome}()", "called for the PTE"
    if func == "return":
        return returns.get(outcome, outcome), ""
    return f"{func}()", _outcome(n, words)


#: The outcome that opens question 2's sub-question (may a device have pinned the page?):
#: every path through that branch starts with this refused dup.
PINNED_BRANCH = "anon-dup:busy"


def _pinned_branch(path: Sequence[Node]) -> bool:
    """Whether ``path`` goes through the branch for a page that may be pinned."""
    return any(outcome == PINNED_BRANCH for _, outcome in path)


def decision_flow(layout: Any, kernel: str = DEFAULT_KERNEL, slot: int = 0, *,
                  without: Iterable[str] = (), vma: int = 0, only_lit: bool = False,
                  pinned: bool = True) -> Picture:
    """Every decision ``kernel``'s present-PTE copy can take, the path of PTE ``slot`` lit.

    ``only_lit`` draws just the path PTE ``slot`` took and says in one line what each
    call did (no trace detail): a first look before the full flow, whose other branches
    (pinned pages, special PTEs) need words taught later.
    ``pinned=False`` leaves out the branch for pages that may be pinned (five boxes and
    their arrows a first reading skips) unless PTE ``slot`` took it, and says so under
    the flow.

    >>> pic = decision_flow({"vmas": [{"start": 0, "npages": 4}],
    ...     "folios": {"F": {"order": 2}}, "ptes": [{"addr": 0, "folio": "F"}]}, "v6.9")
    >>> for step in pic.data["lit"][0]: print(step)
    vm_normal_page:page
    folio_pte_batch:stop
    folio_try_dup_anon_rmap_ptes:anon-dup:ok
    __copy_present_ptes:cow-wrprotect
    __copy_present_ptes:set-ptes
    """
    need_kernel(kernel, "decision_flow")
    _, procs, _, r = build_fork(layout, kernel, without)
    assert r is not None
    parent = procs[0]
    if not isinstance(vma, int) or not 0 <= vma < len(parent.vmas):
        raise LayoutError(f"vma={vma!r}: the layout has {len(parent.vmas)} VMA(s)")
    v = parent.vmas[vma]
    addr = v.vm_start + slot * PAGE_SIZE if isinstance(slot, int) else -1
    calls = [c for c in present_calls(r) if c.covers(addr)]
    if not calls:
        present = [c.step.addr for c in present_calls(r) if v.vm_start <= c.step.addr < v.vm_end]
        have = sorted({(a - v.vm_start) // PAGE_SIZE for a in present})
        raise LayoutError(f"slot={slot!r}: fork made no present-PTE copy call for that slot "
                          f"of this VMA; pick one of {have or 'none (nothing was copied)'}")
    entry = get_kernel(kernel).present_func
    lit = [_collapse(call_path(entry, c)) for c in calls]
    if not isinstance(only_lit, bool):
        raise LayoutError(f"only_lit={only_lit!r}: True or False")
    if not isinstance(pinned, bool):
        raise LayoutError(f"pinned={pinned!r}: True (draw the pinned-page branch) or False")
    # the full flow is laid out from the probes alone, so its boxes keep their places
    # whichever PTE is lit; only a node no probe reached is added
    base = lit if only_lit else [_collapse(p) for p in observed_paths(kernel)]
    left_out = not only_lit and not pinned and any(_pinned_branch(p) for p in base)
    if left_out:
        base = [p for p in base if not _pinned_branch(p)]
    where = f"PTE #{slot} of VMA {vma}" if vma else f"PTE #{slot}"
    pic = _draw(kernel, base, lit, calls, where, detail=not only_lit, left_out=left_out)
    return pic


def _draw(kernel: str, base: Sequence[Sequence[Node]], lit: Sequence[Sequence[Node]],
          calls: Sequence[Call], slot: str, detail: bool = True,
          left_out: bool = False) -> Picture:
    returns = RETURNS if get_kernel(kernel).batch_func else RETURNS_UNBATCHED
    if not detail and len(calls) == 1 and get_kernel(kernel).batch_func:
        # the path alone: say the batch's size, where the full flow (drawn for any PTE)
        # can only say nr
        nr = calls[0].step.nr
        returns = {**returns, "share": f"returns {nr}: mapped, no copy"}
        words = {**OUTCOMES, ("", "stop"): f"a batch of {nr} PTE{'s' if nr != 1 else ''}"}
    else:
        words = OUTCOMES
    paths = list(base) + [p for p in lit if p not in base]
    rank = _ranks(paths)
    edges = sorted({(p[i], p[i + 1]) for p in paths for i in range(len(p) - 1)})
    # An edge that skips ranks gets a narrow lane of its own in every rank between its ends
    # (a dummy node): drawn straight down, it would pass beneath the boxes of those ranks,
    # and a lit path would look as if it ran through decisions its PTE never took.
    lanes: dict[tuple[Node, Node], list[Node]] = {}
    for a, b in edges:
        lanes[(a, b)] = [("lane", f"{a[0]}:{a[1]}>{b[0]}:{b[1]}@{r_}")
                         for r_ in range(rank[a] + 1, rank[b])]
    by_rank: dict[int, list[Node]] = {}
    for p in paths:
        for n in p:
            if n not in by_rank.setdefault(rank[n], []):
                by_rank[rank[n]].append(n)
    width = {n: max(len(t) for t in _label(n, returns, words)) * 6.4 + 14 for n in rank}
    preds: dict[Node, list[Node]] = {}
    for (a, b), lane in lanes.items():
        chain = [a, *lane, b]
        for i, d in enumerate(lane, 1):
            rank[d], width[d] = rank[a] + i, LANE_W
            by_rank[rank[d]].append(d)
            preds[d] = [chain[i - 1]]
        if (a, b) in {(p[i], p[i + 1]) for p in base for i in range(len(p) - 1)}:
            preds.setdefault(b, []).append(chain[-2])
    total = max(sum(width[n] + PAD for n in row) for row in by_rank.values()) + PAD
    c = Canvas(max(total, 640))
    k = get_kernel(kernel)
    c.text(8, 14, f"{kernel}: how {k.present_func}() decides "
           f"(in orange: the path of {slot})", "pk-h")
    pos: dict[Node, tuple[float, float]] = {}
    for r_, row in sorted(by_rank.items()):
        # a first order: each rank by where its predecessors sit (barycentre)
        def centre(n: Node) -> float:
            xs = [pos[m][0] + width[m] / 2 for m in preds.get(n, []) if m in pos]
            return sum(xs) / len(xs) if xs else 0.0
        row.sort(key=centre)
        _place(pos, width, row, r_, c.width)
    # then fewer crossings of the dashed arrows (readers lost them where they crossed):
    # the order is improved on the probes' edges only, so the boxes keep their places
    # whichever PTE is lit
    start = tuple((r_, tuple(row)) for r_, row in sorted(by_rank.items()))
    for r_, ordered in _uncross_cached(start, tuple((p_, n) for n, ps in preds.items()
                                                    for p_ in ps)):
        _place(pos, width, ordered, r_, c.width)
    lit_nodes = {n for p in lit for n in p}
    lit_edges = {(p[i], p[i + 1]) for p in lit for i in range(len(p) - 1)}
    loops = {n for c_ in calls for n in _repeats(c_)}
    routes: list[dict[str, Any]] = []
    ports = _ports(pos, width, {(a, b): [a, *lanes[(a, b)], b] for a, b in edges})
    for a, b in edges:
        curves = _route(pos, width, [a, *lanes[(a, b)], b], *ports[(a, b)])
        on = (a, b) in lit_edges
        dpath = "M{:g},{:g} ".format(*curves[0][0]) + " ".join(
            "C{:g},{:g} {:g},{:g} {:g},{:g}".format(*q1, *q2, *q3) if q1 != q0 or q2 != q3
            else "L{:g},{:g}".format(*q3) for q0, q1, q2, q3 in curves)
        c.path(dpath, "lit" if on else "", width=2.6 if on else 0.8, arrow=True, under=True,
               dash="" if on else "3 3")
        routes.append({"edge": (f"{a[0]}:{a[1]}", f"{b[0]}:{b[1]}"), "lit": on,
                       "curves": curves})
    c.group("decisions")
    roles: list[str] = []
    labels: list[str] = []
    boxes: dict[str, tuple[float, float, float, float]] = {}
    for n, (x, y) in pos.items():
        if n[0] == "lane":
            continue
        boxes[f"{n[0]}:{n[1]}"] = (x, y, width[n], NODE_H)
        on = n in lit_nodes
        role = _role(n, on)
        roles.append(role)
        t1, t2 = _label(n, returns, words)
        labels.append(f"{t1} {t2}".strip())
        # an opaque backing: the dashed edges run beneath a box, never through its words
        c.rect(x, y, width[n], NODE_H, "bg", rx=6 if n[0] != "return" else 14)
        c.rect(x, y, width[n], NODE_H, role, rx=6 if n[0] != "return" else 14,
               tip=(f"taken by {slot}" if on else "not taken by this PTE"),
               extra=' stroke-width="2.5"' if on else "")
        c.text(x + width[n] / 2, y + 14, t1, "pk-t", anchor="middle",
               extra=' font-weight="bold"' if on else "")
        if t2:
            c.text(x + width[n] / 2, y + 27, t2 + (" (per page)" if n in loops else ""),
                   "pk-t2", anchor="middle")
    c.end()
    y = 28 + (max(by_rank) + 1) * RANK_H
    if detail:   # the legend a static page needs (there is no hover there)
        y = c.legend(y, [("box", r, ROLES[r].format(slot=slot)) for r in ROLES
                         if r in roles]) + 12     # legend() returns its last row + 6
        if left_out:
            c.text(8, y, "not drawn: the branch for a page a device may have pinned "
                   "(notebook 04 draws it)", "pk-t")
            y += 20
        y = _paths_in_words(c, base, lit, returns, words, y)
    c.group("what the kernel did for this PTE")
    for k_, call in enumerate(calls, 1):
        s = call.step
        head = f"call {k_}" if len(calls) > 1 else "the call"
        why = stop_words(s.stop) if s.stop else s.reason
        # in words, not the trace's short "map 4": a reader did not know what "map" meant
        for line in wrap(f"{head}: {s.func}() at {s.addr:#x} returned {s.nr} "
                         f"({CALL_WORDS.get(s.action, action_word(s.action))}): {why}",
                         int((c.width - 16) / 6.6)):
            c.text(8, y, line, "pk-t")
            y += 14
        for e in call.events if detail else ():
            for line in wrap(f"{e.func}: {e.rule} -- {e.reason}", int((c.width - 30) / CHAR_W)):
                c.text(20, y, line, "pk-t2")
                y += 13
        y += 4
    c.end()
    lit_text = [[f"{a}:{b}" for a, b in p[1:-1]] for p in lit]
    desc = (f"decision flow of {kernel}'s present-PTE copy; {slot} took "
            + "; then ".join(" > ".join(p) for p in lit_text))
    return c.picture("decision-flow", f"{kernel} decision flow", desc,
                     data={"lit": lit_text, "nodes": list(boxes), "boxes": boxes,
                           "edges": routes,
                           "labels": labels, "roles": sorted(set(roles))})


def _paths_in_words(c: Canvas, base: Sequence[Sequence[Node]],
                    lit: Sequence[Sequence[Node]], returns: Mapping[str, str],
                    words: Mapping[tuple[str, str], str], y: float) -> float:
    """Every path of the flow as one line of words, under the picture: where several
    grey dashed arrows share a route, a reader could not trace which box leads to which
    return, so each route the code can take is also spelt out, box by box."""
    c.group("every path, in words")
    c.text(8, y, "every path through the flow, box by box:", "pk-t")
    y += 14
    seen: list[Sequence[Node]] = []
    for p in [*lit, *base]:
        if p in seen:
            continue
        seen.append(p)
        steps = [_label(n, returns, words) for n in p[1:]]
        text = " > ".join(t2 or t1 for t1, t2 in steps)
        mark = "* " if p in lit else "- "
        for k, line in enumerate(wrap(text, int((c.width - 30) / CHAR_W))):
            c.text(14, y, (mark if k == 0 else "  ") + line, "pk-t2",
                   extra=' font-weight="bold"' if p in lit else "")
            y += 13
    c.text(14, y, "(* the path of this PTE)", "pk-t2")
    c.end()
    return y + 18


Point = tuple[float, float]


def _place(pos: dict[Node, tuple[float, float]], width: Mapping[Node, float],
           row: Sequence[Node], rank: int, canvas_w: float) -> None:
    """Lay one rank's boxes out left to right in ``row``'s order, centred."""
    x = (canvas_w - sum(width[n] + PAD for n in row) + PAD) / 2
    for n in row:
        pos[n] = (x, 28 + rank * RANK_H)
        x += width[n] + PAD


def crossings(by_rank: Mapping[int, Sequence[Node]],
              segs: Sequence[tuple[Node, Node]], bands: Iterable[int] | None = None) -> int:
    """How many pairs of edge segments cross: a segment joins a node to one of the next
    rank, and two cross when their ends come in opposite orders on the two ranks.
    ``bands``: count only the segments leaving these ranks.

    >>> crossings({0: ["a", "b"], 1: ["c", "d"]}, [("a", "d"), ("b", "c")])
    1
    """
    idx = {n: i for row in by_rank.values() for i, n in enumerate(row)}
    rank = {n: r for r, row in by_rank.items() for n in row}
    keep = None if bands is None else set(bands)
    per_band: dict[int, list[tuple[int, int]]] = {}
    for u, v in segs:
        if u in idx and v in idx and (keep is None or rank[u] in keep):
            per_band.setdefault(rank[u], []).append((idx[u], idx[v]))
    total = 0
    for ends in per_band.values():
        for i, (a0, a1) in enumerate(ends):
            total += sum(1 for b0, b1 in ends[i + 1:] if (a0 - b0) * (a1 - b1) < 0)
    return total


RESTARTS = 16       # shuffled starting orders tried besides the barycentre one


@lru_cache(maxsize=64)
def _uncross_cached(start: tuple[tuple[int, tuple[Node, ...]], ...],
                    segs: tuple[tuple[Node, Node], ...]
                    ) -> tuple[tuple[int, tuple[Node, ...]], ...]:
    """:func:`_uncross` once per flow: every PTE of a kernel's flow has the same boxes."""
    best = _uncross(dict(start), segs)
    return tuple((r, tuple(row)) for r, row in sorted(best.items()))


def _uncross(by_rank: Mapping[int, Sequence[Node]], segs: Sequence[tuple[Node, Node]]
             ) -> dict[int, list[Node]]:
    """A rank order with fewer crossings: from the given order and RESTARTS shuffles of
    it, barycentre sweeps down and up, then swaps of neighbours while a swap removes a
    crossing (the layered-graph heuristics of Sugiyama et al. and Gansner et al.'s dot).
    The shuffles are fixed (a checksum of each node's name), so the layout is the same
    on every run.  Returns the order with the fewest crossings met (the first on ties)."""
    best = _improve(by_rank, segs)
    best_n = crossings(best, segs)
    for t in range(1, RESTARTS + 1):
        if best_n == 0:
            break
        shuffled = {r: sorted(row, key=lambda n: zlib.crc32(f"{t}:{n}".encode()))
                    for r, row in by_rank.items()}
        order = _improve(shuffled, segs)
        n = crossings(order, segs)
        if n < best_n:
            best, best_n = order, n
    return best


def _improve(by_rank: Mapping[int, Sequence[Node]], segs: Sequence[tuple[Node, Node]]
             ) -> dict[int, list[Node]]:
    """Barycentre sweeps and neighbour swaps from one starting order (see _uncross)."""
    order = {r: list(row) for r, row in by_rank.items()}
    up: dict[Node, list[Node]] = {}
    down: dict[Node, list[Node]] = {}
    for u, v in segs:
        up.setdefault(v, []).append(u)
        down.setdefault(u, []).append(v)
    best, best_n = {r: list(row) for r, row in order.items()}, crossings(order, segs)

    def sweep(ranks: Sequence[int], near: Mapping[Node, list[Node]], step: int) -> None:
        for r in ranks:
            if r - step not in order:
                continue
            at = {n: i for i, n in enumerate(order[r - step])}
            keyed = [(_bary(near.get(n, []), at, i), i, n) for i, n in enumerate(order[r])]
            order[r] = [n for _, _, n in sorted(keyed, key=lambda t: (t[0], t[1]))]
    ranks = sorted(order)
    for _ in range(4):
        sweep(ranks, up, 1)
        sweep(ranks[::-1], down, -1)
        _swaps(order, segs)
        n = crossings(order, segs)
        if n < best_n:
            best, best_n = {r: list(row) for r, row in order.items()}, n
    return best


def _bary(near: Sequence[Node], at: Mapping[Node, int], i: int) -> float:
    """The mean place of a node's neighbours in the next rank (its own ``i`` if none)."""
    xs = [at[m] for m in near if m in at]
    return sum(xs) / len(xs) if xs else float(i)


def _swaps(order: dict[int, list[Node]], segs: Sequence[tuple[Node, Node]]) -> None:
    """Swap neighbours in a rank while that lowers the crossings (a swap in rank r
    changes only the bands above and below it)."""
    better = True
    while better:
        better = False
        for r, row in order.items():
            near = (r - 1, r)
            for i in range(len(row) - 1):
                before = crossings(order, segs, near)
                row[i], row[i + 1] = row[i + 1], row[i]
                if crossings(order, segs, near) < before:
                    better = True
                else:
                    row[i], row[i + 1] = row[i + 1], row[i]


PORT_GAP = 16       # between the ends of two arrows at one edge of a box


def _ports(pos: Mapping[Node, tuple[float, float]], width: Mapping[Node, float],
           chains: Mapping[tuple[Node, Node], Sequence[Node]]
           ) -> dict[tuple[Node, Node], tuple[float, float]]:
    """Where each arrow leaves its box and where it arrives (x of the foot, x of the head).

    Arrows that met at the middle of a box ran together over their last stretch, and a
    reader could not tell which grey arrow came from which box.  So each arrow gets its
    own point on the box's edge, PORT_GAP apart, in the order of the boxes (or lanes) at
    their other ends: leaving arrows by where they go, arriving ones by where they come
    from, so two arrows of one box never cross each other."""
    def centre(n: Node) -> float:
        return pos[n][0] + width[n] / 2

    def spread(n: Node, keyed: list[tuple[float, tuple[Node, Node]]]
               ) -> dict[tuple[Node, Node], float]:
        keyed.sort(key=lambda t: (t[0], t[1]))
        m = len(keyed)
        gap = min(PORT_GAP, max(0.0, width[n] - 20) / max(m - 1, 1))
        return {e: centre(n) + (k - (m - 1) / 2) * gap for k, (_, e) in enumerate(keyed)}

    leaving: dict[Node, list[tuple[float, tuple[Node, Node]]]] = {}
    arriving: dict[Node, list[tuple[float, tuple[Node, Node]]]] = {}
    for e, chain in chains.items():
        leaving.setdefault(chain[0], []).append((centre(chain[1]), e))
        arriving.setdefault(chain[-1], []).append((centre(chain[-2]), e))
    foot = {e: x for n, es in leaving.items() for e, x in spread(n, es).items()}
    head = {e: x for n, es in arriving.items() for e, x in spread(n, es).items()}
    return {e: (foot[e], head[e]) for e in chains}


def _route(pos: Mapping[Node, tuple[float, float]], width: Mapping[Node, float],
           chain: Sequence[Node], foot: float | None = None, head: float | None = None
           ) -> list[tuple[Point, Point, Point, Point]]:
    """The cubic segments of an edge along ``chain`` (its ends and the lanes between).

    From the foot of one box it curves to the top of the next rank's box or lane, and
    through a lane it runs straight down, so it only ever crosses the empty band between
    two ranks and the lane kept free for it.  ``foot`` and ``head``: the x where it
    leaves its first box and reaches its last (default: their centres; see _ports).
    """
    out: list[tuple[Point, Point, Point, Point]] = []
    x0 = pos[chain[0]][0] + width[chain[0]] / 2 if foot is None else foot
    y0 = pos[chain[0]][1] + NODE_H
    for i, n in enumerate(chain[1:], 1):
        x, y = pos[n][0] + width[n] / 2, pos[n][1]
        last = i == len(chain) - 1
        if last and head is not None:
            x = head
        # every curve of a band ends at the same height (the arrow head stops short of
        # a box; a lane starts there too): two edges whose ends keep their order then
        # never cross (a lane that began 2 px lower crossed its neighbour's curve)
        ty = y - 2
        bend = (ty - y0) / 2
        out.append(((x0, y0), (x0, y0 + bend), (x, ty - bend), (x, ty)))
        if not last:                          # straight down through the lane
            out.append(((x, ty), (x, ty), (x, y + NODE_H), (x, y + NODE_H)))
        x0, y0 = x, y + NODE_H
    return out


def _repeats(c: Call) -> set[Node]:
    """Nodes a call visited more than once in a row (per-page loops)."""
    from .calls import node_of
    nodes = [node_of(e) for e in c.events]
    return {a for a, b in zip(nodes, nodes[1:], strict=False) if a == b}
