"""Notebooks 03, 04 and 07 on a static page: what follows a folded answer up to the next heading
(a strip, a picture, a table of results, a paragraph about them) is folded too, since it
shows the answer on the same screen as the question."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

NB = Path(__file__).resolve().parent.parent / "notebooks"
PAGES = [NB / "03-seed-patch-batching.ipynb", NB / "04-pinned-pages.ipynb",
         NB / "07-after-fork.ipynb"]


def _shown(cell: dict) -> list[str]:
    """What a code cell shows: each output's HTML (or, without it, its text)."""
    out = []
    for o in cell.get("outputs", []):
        data = o.get("data", {})
        shown = data.get("text/html") or data.get("image/svg+xml") or data.get("text/plain") \
            or o.get("text")
        if shown:
            out.append("".join(shown) if isinstance(shown, list) else shown)
    return out


def _heading(text: str) -> bool:
    """A heading starts the text, maybe after an ``<a id=...></a>`` anchor line."""
    if text.startswith("<a id="):
        text = text.split("\n", 1)[-1].lstrip()
    return text.startswith("#")


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.stem)
def test_what_follows_an_answer_is_folded(path: Path) -> None:
    cells = json.loads(path.read_text())["cells"]
    checked = 0
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "markdown" or "<details><summary><b>Answer" not in \
                "".join(cell["source"]):
            continue
        # text after the fold in the answer's own cell, up to a heading, counts as unfolded
        own = "".join(cell["source"])
        rest = own[own.rindex("</details>") + len("</details>"):].strip()
        if rest:
            checked += 1
            assert _heading(rest) or rest.startswith("<details"), \
                f"{path.name}: {rest[:60]!r} follows an answer unfolded"
            if _heading(rest):
                continue
        for nxt in cells[i + 1:]:
            if nxt["cell_type"] == "markdown":
                text = "".join(nxt["source"]).lstrip()
                if _heading(text):
                    break
                # a paragraph between the answer and the next heading: inside a fold too
                checked += 1
                assert text.startswith("<details"), \
                    f"{path.name}: {text[:60]!r} follows an answer unfolded"
                continue
            if "remove-cell" in nxt.get("metadata", {}).get("tags", []):
                continue
            for shown in _shown(nxt):
                checked += 1
                assert shown.lstrip().startswith("<details"), \
                    f"{path.name}: {''.join(nxt['source'])[:60]!r} shows its output unfolded"
    assert checked, f"{path.name}: no output under an answer was checked"


def test_the_folded_strip_keeps_its_answer_inside() -> None:
    # the fold holds the picture itself, not a reference to it: the holes strip says [5, 2]
    cells = json.loads(PAGES[0].read_text())["cells"]
    fold = next(c for c in cells if c["cell_type"] == "code"
                and "batch_strip(holes" in "".join(c["source"]))
    html = _shown(fold)[0]
    assert html.startswith("<details") and "map 5" in html and "map 2" in html
