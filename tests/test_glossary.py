"""The glossary's two indexes: the A-Z list and the topic lists each link every entry once."""

from __future__ import annotations

import json
import re
from pathlib import Path

GLOSSARY = Path(__file__).resolve().parent.parent / "notebooks" / "glossary.ipynb"


def _cells() -> list[str]:
    nb = json.loads(GLOSSARY.read_text(encoding="utf-8"))
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]


def _anchor(heading: str) -> str:
    return re.sub(r"[`*]", "", heading).strip().replace(" ", "-")


def _entries() -> dict[str, list[str]]:
    """topic -> the anchors of its entries, in page order."""
    out = {}
    for text in _cells()[1:]:
        m = re.match(r"## (.*)", text)
        if m:
            out[m.group(1)] = [_anchor(h) for h in re.findall(r"^### (.*)$", text, re.M)]
    return out


def _az_block() -> str:
    intro = _cells()[0]
    start = intro.index("**A–Z index**")
    return intro[start:intro.index("\n\n**", start)]


def test_a_to_z_links_every_entry_once_in_order() -> None:
    block = _az_block()
    entries = [a for anchors in _entries().values() for a in anchors]
    rows = re.findall(r"^- \*\*([A-Z0-9])\*\* · (.*)$", block, re.M)
    linked = [a for _, row in rows for a in re.findall(r"\]\(#([^)]+)\)", row)]
    assert sorted(linked) == sorted(entries), (
        f"add to the A-Z index: {sorted(set(entries) - set(linked))}; "
        f"not an entry: {sorted(set(linked) - set(entries))}")
    def key(anchor: str) -> str:
        return re.sub(r"[^a-z0-9]", "", anchor.lower())
    assert linked == sorted(linked, key=key)
    for letter, row in rows:       # each entry under its own letter
        assert all(key(a)[0].upper() == letter for a in re.findall(r"\]\(#([^)]+)\)", row))


def test_each_topic_list_links_its_own_entries() -> None:
    intro = _cells()[0]
    for topic, anchors in _entries().items():
        para = next(p for p in intro.split("\n\n") if p.startswith(f"**{topic}**"))
        assert sorted(re.findall(r"\]\(#([^)]+)\)", para)) == sorted(anchors), topic
