"""Exercise (d): every folio's refcount and per-page mapcounts after fork.

Simulator concept; answers are read from the folios after :func:`pkmm.fork`.
Rules: mm/memory.c copy_present_ptes() (folio_ref_add per shared batch), the rmap dup
(mapcount + 1 per shared page), copy_present_page() (a copied page leaves the original).
Taught in: notebooks/exercises/d-refcount-mapcount.ipynb
"""

from __future__ import annotations

import random
from typing import Any

from ..folio import GUP_PIN_COUNTING_BIAS, Folio
from ..fork import fork
from ..scenario import Scenario
from .base import Exercise, Result, fmt_list
from .layout import random_ptes, scenario


def folio_counts(folios: dict[str, Folio]) -> dict[str, dict[str, Any]]:
    return {n: {"refcount": f.refcount,
                "mapcount": [f.page(i).mapcount for i in range(f.nr_pages)]}
            for n, f in folios.items()}


class Refcounts(Exercise):
    """Predict each folio's refcount and per-page mapcount after fork."""

    name = "refcounts"
    title = "refcount and mapcount after fork"
    answer_format = ('a dict {folio: {"refcount": int, "mapcount": list per page}}, e.g. '
                     '{"A": {"refcount": 8, "mapcount": [2, 2, 2, 2]}}')

    def generate(self, rng: random.Random) -> Scenario:
        for _ in range(50):
            s = self._draw(rng)
            p, folios = s.build()
            fork(p, self.kernel)
            # A problem where fork copies every row leaves every counter as it was: it
            # would teach nothing about sharing, so draw again.
            if any(f.page(i).mapcount > 1 for f in folios.values() for i in range(f.nr_pages)):
                break
        return s

    def _draw(self, rng: random.Random) -> Scenario:
        folios, ptes = random_ptes(rng, rng.randint(4, 8), twists=("none", "partial", "dirty"),
                                   gap=0.1)
        pins, splices = [], []
        if rng.random() < 0.5:
            e = rng.choice(ptes)
            pins.append({"folio": e["folio"], "page": e["page"]})
        if rng.random() < 0.4:
            e = rng.choice(ptes)
            splices.append({"folio": e["folio"], "page": e["page"], "refs": rng.randint(1, 3)})
        return scenario(f"refcounts-{self.seed}", folios, ptes, pins=pins, vmsplice=splices)

    def question(self) -> str:
        return (f"fork() this process under {self.kernel}. Afterwards, what is each folio's "
                "refcount, and the mapcount of each of its pages (page 0 first; pages no "
                "PTE maps count 0)?")

    def solve(self) -> dict[str, dict[str, Any]]:
        p, folios = self.build()
        fork(p, self.kernel)
        return folio_counts(folios)

    def _explain(self, name: str, before: dict[str, Any], after: dict[str, Any],
                 f: Folio, copied: int) -> str:
        """Folio ``name``'s counters after fork: the numbers first, then where each
        reference comes from (only the sources this folio has)."""
        mapped = sum(before["mapcount"])
        shared = after["refcount"] - before["refcount"]
        text = (f"Folio {name} ends with refcount {after['refcount']} and mapcounts "
                f"{fmt_list(after['mapcount'])}. Before fork: refcount {before['refcount']}"
                f" = {mapped} mapped PTE(s), one reference each")
        if f.pins:
            text += (f", plus {f.pins} FOLL_PIN pin(s) adding "
                     f"{1 if f.order else GUP_PIN_COUNTING_BIAS} each")
        if f.gup_refs:
            text += f", plus {f.gup_refs} vmsplice reference(s)"
        text += "."
        if shared:
            text += (f" The child shares {shared} of its pages: one more reference and one "
                     "more mapping per shared page (folio_ref_add and the rmap dup).")
        else:
            text += " The child shares none of its pages."
        if copied:
            text += (f" {copied} page(s) were copied for the child instead (pinned and "
                     "AnonExclusive): the copy is a new folio, this one's counters stay.")
        return text

    def check(self, answer: Any) -> Result:
        want = self.solve()
        if not isinstance(answer, dict) or set(answer) != set(want):
            return self._shape_error(answer)
        p, folios = self.build()
        before = folio_counts(folios)
        r = fork(p, self.kernel)
        copied: dict[str, int] = {}
        for s in r.steps:
            if s.action == "copy":
                found = p.page_at(s.addr)
                assert found is not None
                name = next(n for n, f in folios.items() if f is found[0])
                copied[name] = copied.get(name, 0) + 1
        score, notes = 0.0, []
        for name, w in want.items():
            g = answer[name]
            if not isinstance(g, dict) or set(g) != {"refcount", "mapcount"}:
                notes.append(f"folio {name}: expected {{'refcount': .., 'mapcount': [..]}}")
                continue
            part = 0.5 * (g["refcount"] == w["refcount"])
            gm = g["mapcount"]
            if isinstance(gm, (list, tuple)) and len(gm) == len(w["mapcount"]):
                part += 0.5 * sum(a == b for a, b in zip(gm, w["mapcount"], strict=True)) / len(gm)
            elif not isinstance(gm, (list, tuple)) or len(gm) != len(w["mapcount"]):
                notes.append(f"folio {name}: mapcount needs {len(w['mapcount'])} entries "
                             f"(one per page of the order-{folios[name].order} folio)")
            score += part / len(want)
            if part < 1.0:
                notes.append(self._explain(name, before[name], w, folios[name],
                                           copied.get(name, 0)))
        if not notes:
            return Result(1.0, 1.0, "Correct: every folio's refcount and mapcounts.")
        return Result(score, 1.0, "\n".join("- " + x for x in notes))
