"""The full decision flow can be read as a picture: measured from the arrows' own curves
(the picture's data holds each arrow's cubic segments, the same numbers its SVG path
draws), no two arrows cross, no two arrows end at the same point of a box, and no arrow
runs so flat across the gap between two ranks that it merges with its neighbours (a
reader of notebook 02 could not follow the grey arrows and read the list instead)."""

from __future__ import annotations

import itertools
import re

import pytest

from pkmm.views import pictures as P

Point = tuple[float, float]
# notebook 02's tour: the zero page, a small anon page, a large folio, a file page
TOUR = {"vmas": [{"start": "0x200000", "npages": 4},
                 {"start": "0x400000", "npages": 2, "backing": "file"}],
        "folios": {"S": {"order": 0}, "F": {"order": 1},
                   "C": {"order": 0, "backing": "file"}},
        "zero": ["0x202000"],
        "ptes": [{"addr": "0x200000", "folio": "S"}, {"addr": "0x201000", "folio": "F", "nr": 1},
                 {"addr": "0x400000", "folio": "C"}]}


def _points(curves: list[list[Point]]) -> list[Point]:
    out: list[Point] = []
    for (x0, y0), (x1, y1), (x2, y2), (x3, y3) in curves:
        for i in range(25):
            t = i / 24
            a, b, c, d = (1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t * t, t ** 3
            out.append((a * x0 + b * x1 + c * x2 + d * x3, a * y0 + b * y1 + c * y2 + d * y3))
    return out


def _cross(p: Point, q: Point, r: Point, s: Point) -> Point | None:
    d = (q[0] - p[0]) * (s[1] - r[1]) - (q[1] - p[1]) * (s[0] - r[0])
    if abs(d) < 1e-9:
        return None
    t = ((r[0] - p[0]) * (s[1] - r[1]) - (r[1] - p[1]) * (s[0] - r[0])) / d
    u = ((r[0] - p[0]) * (q[1] - p[1]) - (r[1] - p[1]) * (q[0] - p[0])) / d
    return (p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])) if 0 <= t <= 1 and 0 <= u <= 1 \
        else None


def crossing_pairs(edges: list[dict]) -> list[tuple[object, object]]:
    """Pairs of arrows whose drawn curves cross away from an end they share."""
    out = []
    for a, b in itertools.combinations(edges, 2):
        pa, pb = _points(a["curves"]), _points(b["curves"])
        ends = [pa[0], pa[-1], pb[0], pb[-1]]
        hit = False
        for i in range(len(pa) - 1):
            for j in range(len(pb) - 1):
                x = _cross(pa[i], pa[i + 1], pb[j], pb[j + 1])
                if x and min(abs(x[0] - e[0]) + abs(x[1] - e[1]) for e in ends) > 4:
                    hit = True
                    break
            if hit:
                break
        if hit:
            out.append((a["edge"], b["edge"]))
    return out


def _flow(pinned: bool) -> dict:
    return P.decision_flow(TOUR, "v6.8", 0, pinned=pinned).data


def test_crossing_count_sees_a_crossing() -> None:
    x = {"edge": "x", "curves": [[(0, 0), (0, 0), (10, 10), (10, 10)]]}
    y = {"edge": "y", "curves": [[(10, 0), (10, 0), (0, 10), (0, 10)]]}
    assert crossing_pairs([x, y]) == [("x", "y")]


@pytest.mark.parametrize("pinned", [False, True])
def test_no_two_arrows_cross_or_share_an_end(pinned: bool) -> None:
    pic = P.decision_flow(TOUR, "v6.8", 0, pinned=pinned)
    edges = pic.data["edges"]
    for e in edges:         # the curves measured are the ones the SVG draws
        (x, y) = e["curves"][0][0]
        assert re.search(rf'd="M{x:g},{y:g} ', pic.svg), e["edge"]
    assert crossing_pairs(edges) == []
    # arrows that met at one point ran together: a reader lost which came from where
    for k in (-1, 0):
        ends = [(e["curves"][k][3 if k == -1 else 0], e["edge"]) for e in edges]
        for (p, a), (q, b) in itertools.combinations(ends, 2):
            assert abs(p[0] - q[0]) + abs(p[1] - q[1]) >= 8, (a, b, p, q)


@pytest.mark.parametrize("pinned", [False, True])
def test_arrows_stay_steep_across_a_band(pinned: bool) -> None:
    # a curve that travels sideways more than 4.5x its drop merges with its neighbours
    for e in _flow(pinned)["edges"]:
        for (x0, y0), _, _, (x3, y3) in e["curves"]:
            if y3 > y0:
                assert abs(x3 - x0) <= 4.5 * (y3 - y0), (e["edge"], x0, x3, y3 - y0)
