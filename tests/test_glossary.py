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


def _bodies() -> dict[str, str]:
    """heading -> the entry's text."""
    out = {}
    for text in _cells()[1:]:
        for m in re.finditer(r"^### (.*)\n((?:(?!^### ).*\n?)*)", text, re.M):
            out[m.group(1)] = m.group(2)
    return out


WHERE = re.compile(r"\*(?:Taught in|Used in|In the \[agreement report\])")


def test_every_entry_says_where_the_lab_teaches_or_uses_it() -> None:
    # the intro promises it; a term no notebook teaches names the pages that use it
    missing = [h for h, body in _bodies().items() if not WHERE.search(body)]
    assert not missing, f"add a 'Taught in' / 'Used in' line to: {missing}"


def _notebook_text(number: str) -> str:
    nb = next(GLOSSARY.parent.glob(f"{number}-*.ipynb"))
    cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
    # what the reader sees: the cells and their outputs (a term may live in a printed trace)
    outs = ["".join(o.get("text", "")) + "".join("".join(v) for k, v in o.get("data", {}).items()
                                                 if k.startswith(("text/", "image/svg")))
            for c in cells for o in c.get("outputs", [])]
    return re.sub(r"\s+", " ", "\n".join(["".join(c["source"]) for c in cells] + outs)).lower()


def test_each_notebook_an_entry_names_mentions_the_term() -> None:
    # "Taught in 09" on a term 09 never says is a dead end for the reader who goes there
    wrong = []
    for heading, body in _bodies().items():
        m = re.search(r"\*(?:Taught|Used) in ([0-9, and;]+)", body)
        term = re.sub(r"[`*]|\(.*\)", "", heading).strip().lower()
        for number in re.findall(r"\b\d\d\b", m.group(1) if m else ""):
            text = _notebook_text(number)
            # the term as the notebook may say it: plural or not, CoW spelt out
            said = {term, term.removesuffix("s"), term.replace("cow", "copy-on-write")}
            if not any(t in text for t in said) and \
                    f"glossary.ipynb#{_anchor(heading).lower()})" not in text:
                wrong.append((heading, number))
    assert not wrong


def test_the_terms_a_fresh_reader_looked_up_have_entries() -> None:
    anchors = {_anchor(h) for h in _bodies()}
    assert {"pkmm", "pin", "tail-page", "kpagecount", "minor-fault", "break-COW",
            "GUP-fast", "probe", "row", "shrinker", "exclusively-mapped"} <= anchors


def test_related_terms_share_one_topic() -> None:
    # a reader browsing by topic finds all the swap words together, and every file or tool
    # notebook 09 reads a real kernel through under one heading
    where = {a: topic for topic, anchors in _entries().items() for a in anchors}
    assert len({where[a] for a in anchors_of("swap")}) == 1
    observe = {"pagemap", "kpageflags", "kpagecount", "page-token", "smaps", "PAGEMAP_SCAN",
               "minor-fault", "probe", "row", "exclusively-mapped", "agreement-report"}
    assert {where[a] for a in observe} == {"Observing a real kernel"}


def anchors_of(word: str) -> list[str]:
    return [a for anchors in _entries().values() for a in anchors if a.startswith(word)]


def test_the_list_for_notebook_09_names_only_terms_09_uses() -> None:
    # the short list a newcomer to 09 starts from: entries that exist, each one 09 says or links
    intro = _cells()[0]
    para = next(p for p in intro.split("\n\n") if p.startswith("**Reading notebook 09?**"))
    linked = re.findall(r"\]\(#([^)]+)\)", para)
    anchors = {_anchor(h): h for h in _bodies()}
    assert linked and len(linked) == len(set(linked)) and set(linked) <= set(anchors)
    text = _notebook_text("09")
    unused = [a for a in linked if f"glossary.ipynb#{a.lower()})" not in text
              and anchors[a].lower() not in text]
    assert not unused, f"notebook 09 never says or links: {unused}"
