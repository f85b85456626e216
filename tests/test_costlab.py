"""08's fit summary: the speed-up error is taken over every size the table shows."""

from __future__ import annotations

import re

from pkmm import costlab, costmodel


def test_speed_up_error_covers_every_row_and_names_the_worst() -> None:
    f = costmodel.fit()
    text = costlab.render_fit(f)
    # each bound is printed on the line after the sizes it covers
    lines = [a + b for a, b in zip(text.splitlines(), text.splitlines()[1:], strict=False)
             if "speed-up error" in a]
    gib = [r for r in f.rows if r["kind"] == "folio" and r["size_bytes"] == costmodel.GIB
           and r["label"] != "4K"]
    for trained, word in ((True, "fitted"), (False, "held out")):
        group = [r for r in gib if r["trained"] == trained]
        line = next(ln for ln in lines if f", {word} (" in ln)
        named = re.search(r"\(([^;]*);", line)
        assert named is not None
        # every size of the group is named, none left out
        assert named.group(1).split(", ") == list(dict.fromkeys(r["label"] for r in group))
        worst = max(group, key=lambda r: abs(r["speedup_predicted"] - r["speedup_measured"]))
        bound = abs(worst["speedup_predicted"] - worst["speedup_measured"])
        assert f"at most {bound:.2f} ({worst['label']} {worst['mode']})" in line
        # the bound really bounds every row of the group, as printed
        assert all(abs(r["speedup_predicted"] - r["speedup_measured"]) <= bound for r in group)
