"""The notebooks are lessons: every term linked to the glossary at first use, answers never
shown before the question, the claims' asserts hidden, pictures in every lesson, no
pointers to material a learner does not have."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pkmm import pte

NB = Path(__file__).resolve().parent.parent / "notebooks"
LESSONS = sorted(NB.glob("0[0-9]-*.ipynb"))
MAIN = [p for p in LESSONS if p.name[:2] <= "08"]
PAGES = LESSONS + [NB / "glossary.ipynb", NB / "history.ipynb"]

#: The issue's vocabulary plus the words every lesson leans on: term -> glossary anchor.
TERMS = {
    "THP": "THP", "mTHP": "mTHP", "PMD": "PMD", "PMD slice": "PMD-slice", "rmap": "rmap",
    "struct page": "struct-page", "folio": "folio", "refcount": "refcount",
    "mapcount": "mapcount", "AnonExclusive": "AnonExclusive", "userfaultfd": "userfaultfd",
    "uffd-wp": "uffd-wp", "soft-dirty": "soft-dirty", "protnone": "protnone",
    "NUMA hinting": "NUMA-hinting", "GUP": "GUP", "FOLL_PIN": "FOLL_PIN",
    "FOLL_LONGTERM": "FOLL_LONGTERM", "DMA": "DMA", "memcg": "memcg", "PFNMAP": "PFNMAP",
    "MIXEDMAP": "MIXEDMAP", "anon_vma": "anon_vma", "entire_mapcount": "entire_mapcount",
    "zero page": "zero-page", "swap entry": "swap-entry", "migration entry": "migration-entry",
    "contpte": "contpte", "pagemap": "pagemap", "PTE": "PTE", "VMA": "VMA", "pfn": "pfn",
    "rss": "rss", "copy-on-write": "copy-on-write", "XEN PV": "XEN-PV",
    "large folio": "large-folio", "page table": "page-table", "mm": "mm",
}
# Words whose plain-English use is not the term (e.g. "mm" in "mm/memory.c").
NOT_TERM = {"mm": r"mm[/_.:]"}


def _nb(path: Path) -> dict:
    return json.loads(path.read_text())


def _markdown(path: Path) -> str:
    return "\n".join("".join(c["source"]) for c in _nb(path)["cells"]
                     if c["cell_type"] == "markdown")


def _anchors() -> set[str]:
    """Heading ids of the glossary, as JupyterLab and nbconvert make them."""
    ids = set()
    for line in _markdown(NB / "glossary.ipynb").splitlines():
        m = re.match(r"#{1,6}\s+(.*)", line)
        if m:
            ids.add(re.sub(r"[`*]", "", m.group(1)).strip().replace(" ", "-"))
    return ids


def test_glossary_defines_the_vocabulary_and_every_pte_letter() -> None:
    anchors = _anchors()
    missing = sorted(a for a in TERMS.values() if a not in anchors)
    assert not missing, f"glossary lacks {missing}"
    table = pte.PTE_BITS   # the one PTE bit table: PteBit rows, or names beside a letter map
    letters = sorted({getattr(b, "letter", None) or pte._BIT_LETTERS[b] for b in table} | {"P"})
    assert not [x for x in letters if x not in anchors], letters
    text = _markdown(NB / "glossary.ipynb")
    for x in letters:   # and the legend table lists each letter
        assert f"| [{x}](#{x}) |" in text


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.stem)
def test_links_resolve(path: Path) -> None:
    anchors = _anchors()
    text = _markdown(path)
    for target in re.findall(r"\]\(glossary\.ipynb#([^)]+)\)", text):
        assert target in anchors, f"{path.name}: glossary has no #{target}"
    if path.name == "glossary.ipynb":
        for target in re.findall(r"\]\(#([^)]+)\)", text):
            assert target in anchors, f"glossary: no #{target}"
    for target in re.findall(r"\]\(([\w./-]+\.ipynb)", text):
        assert (path.parent / target).is_file(), f"{path.name}: {target} does not exist"


def _prose(text: str) -> str:
    """Markdown without headings, code spans, link targets and HTML tags."""
    text = re.sub(r"^#{1,6} .*$", "", text, flags=re.M)
    text = re.sub(r"`[^`]*`", " ", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)
    return re.sub(r"<[^>]+>", " ", text)


def _linked_text(md: str) -> tuple[str, list[tuple[int, int, str]]]:
    """Markdown without headings, code spans and link targets; and the spans of link texts
    with their targets."""
    md = re.sub(r"^#{1,6} .*$", "", md, flags=re.M)
    md = re.sub(r"`[^`]*`", " ", md)
    md = re.sub(r"<[^>]+>", " ", md)
    out, spans, pos = [], [], 0
    for m in re.finditer(r"\[([^\]]+)\]\(([^)\s]+)\)", md):
        out.append(md[pos:m.start()])
        start = sum(len(x) for x in out)
        out.append(m.group(1))
        spans.append((start, start + len(m.group(1)), m.group(2)))
        pos = m.end()
    out.append(md[pos:])
    return "".join(out), spans


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.stem)
def test_terms_are_linked_to_the_glossary_at_first_use(path: Path) -> None:
    text, spans = _linked_text(_markdown(path))
    bad = []
    for term, anchor in TERMS.items():
        words = r"\s+".join(re.escape(w) for w in term.split())
        pat = re.compile(rf"(?<![\w-]){words}s?(?![\w/-])")
        for m in pat.finditer(text):
            if term in NOT_TERM and re.match(NOT_TERM[term], text[m.start():m.end() + 3]):
                continue
            # linked here, or inside the link of a longer glossary term ("PMD" in "PMD
            # slice"), or already linked under other words ("page-table entry (PTE)")
            ok = any(a <= m.start() and m.end() <= b and t.startswith("glossary.ipynb#")
                     for a, b, t in spans) or \
                any(b <= m.start() and t == f"glossary.ipynb#{anchor}" for a, b, t in spans)
            if not ok:
                bad.append(f"{term!r} in ...{text[max(0, m.start() - 30):m.end() + 10]!r}")
            break
    assert not bad, f"{path.name}: first use not linked to the glossary: {bad}"


ALL_PAGES = sorted(NB.glob("*.ipynb")) + sorted(NB.glob("exercises/*.ipynb"))


@pytest.mark.parametrize("path", ALL_PAGES, ids=lambda p: p.stem)
def test_no_unfilled_placeholder_in_prose(path: Path) -> None:
    """Markdown cannot compute: a ``{name}`` left in prose (a format string that was never
    formatted) reaches the reader as it is; numbers in prose come from a code cell."""
    for cell in _nb(path)["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        text = re.sub(r"`[^`]*`", "", re.sub(r"```.*?```", "", "".join(cell["source"]), flags=re.S))
        # ^{...}, _{...}, \frac{...} and $...$ are LaTeX, not placeholders
        hits = re.findall(r"(?<![\^_\\$])\{[A-Za-z_][A-Za-z0-9_.]*\}", text)
        assert not hits, f"{path.name}: unfilled placeholder(s) {hits} in {text[:60]!r}"


@pytest.mark.parametrize("path", ALL_PAGES, ids=lambda p: p.stem)
def test_assert_cells_are_removed_from_the_site(path: Path) -> None:
    """The site drops only ``remove-cell`` cells: an assert cell tagged otherwise would show
    the notebook's pinned answers to a student."""
    for cell in _nb(path)["cells"]:
        src = "".join(cell["source"])
        if cell["cell_type"] == "code" and re.search(r"^assert ", src, re.M):
            assert "remove-cell" in cell["metadata"].get("tags", []), \
                f"{path.name}: assert cell not tagged remove-cell: {src[:60]!r}"


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.stem)
def test_self_contained(path: Path) -> None:
    text = "\n".join("".join(c["source"]) for c in _nb(path)["cells"])
    for bad in ("../shared", "shared/spec", "history.md", "real-kernel-6.18", "kernel-fork-spec",
                "§"):
        assert bad not in text, f"{path.name} points at {bad!r}"
    assert not re.search(r"\bT\d{2}b?\b", text), f"{path.name} uses spec scenario numbers"


def _asks(shown: str) -> bool:
    """An output that only asks for a prediction: pkmm.check's unanswered verdict (its HTML
    class), or pkmm.processlab's question (10)."""
    return "pkmm-verdict asked" in shown or "Your prediction first" in shown


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.stem)
def test_claims_are_pinned_in_hidden_cells_and_no_answer_shows_first(path: Path) -> None:
    for cell in _nb(path)["cells"]:
        if cell["cell_type"] != "code":
            continue
        src = "".join(cell["source"])
        assert not re.search(r"^\s*(def|class) ", src, re.M), f"{path.name}: {src[:40]!r}"
        tags = cell["metadata"].get("tags", [])
        if re.search(r"^assert ", src, re.M):
            assert "remove-cell" in tags, f"{path.name}: visible assert cell {src[:60]!r}"
            assert cell["metadata"].get("jupyter") == {"source_hidden": True,
                                                      "outputs_hidden": True}
            continue
        shown = json.dumps(cell.get("outputs", []))
        # a verdict in a visible cell is only ever a question
        assert "the model:" not in shown and "In plain words" not in shown, \
            f"{path.name}: an answer is shown under {src[:60]!r}"
        if "check." in src and "..." in src:
            assert _asks(shown), f"{path.name}: {src[:60]!r} not executed"


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.stem)
def test_every_question_has_a_folded_answer_next(path: Path) -> None:
    """A prediction cell tells a reader of the static page to open the answer below
    (pkmm.check): the next text cell after it must be that fold."""
    cells = _nb(path)["cells"]
    for i, cell in enumerate(cells):
        if cell["cell_type"] == "code" and _asks(json.dumps(cell.get("outputs", []))):
            text = next(("".join(c["source"]) for c in cells[i + 1:]
                         if c["cell_type"] == "markdown"), "")
            assert "<details" in text, \
                f"{path.name}: no folded answer after {''.join(cell['source'])[:60]!r}"


@pytest.mark.parametrize("path", MAIN, ids=lambda p: p.stem)
def test_each_lesson_has_prose_and_pictures(path: Path) -> None:
    text = _prose(_markdown(path))
    words = re.findall(r"[A-Za-z0-9][A-Za-z0-9'_.-]*", re.sub(r"https?://\S+", "", text))
    assert 1500 <= len(words) <= 3200, f"{path.name}: {len(words)} words of prose"
    pictures = sum(1 for c in _nb(path)["cells"] for o in c.get("outputs", [])
                   if "<svg" in json.dumps(o.get("data", {})) or "image/png" in o.get("data", {}))
    assert pictures >= 2, f"{path.name}: {pictures} pictures"
    cells = [c for c in _nb(path)["cells"] if c["cell_type"] == "markdown"]
    assert "The crux" in "".join(cells[0]["source"]), "the crux comes first"
    assert "## Summary" in "".join(cells[-1]["source"]) or \
        "## Summary" in "".join(c["source"][0] if c["source"] else "" for c in cells[-2:])


def test_start_here_lists_every_notebook() -> None:
    text = _markdown(NB / "00-start-here.ipynb")
    for p in sorted(NB.glob("*.ipynb")):
        assert f"]({p.name})" in text, f"00 does not list {p.name}"


def _names(src: str) -> tuple[set[str], set[str]]:
    """The top-level names a code cell binds, and the names it reads (IPython magics and
    shell lines dropped, since they are not Python)."""
    import ast
    code = "\n".join(ln for ln in src.splitlines() if not ln.lstrip().startswith(("%", "!")))
    tree = ast.parse(code)
    bound: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound |= {(a.asname or a.name).split(".")[0] for a in node.names}
        else:
            bound |= {n.id for n in ast.walk(node)
                      if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    read = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return bound, read


@pytest.mark.parametrize("path", ALL_PAGES, ids=lambda p: p.name)
def test_no_visible_cell_reads_a_name_only_a_hidden_cell_defines(path: Path) -> None:
    # a reader of the static page (and nbgrader's student copy) never sees a remove-cell
    # cell: a visible cell that reads a name bound only there looks like a broken notebook
    visible: set[str] = set()
    hidden_only: dict[str, int] = {}
    for i, cell in enumerate(_nb(path)["cells"]):
        if cell["cell_type"] != "code":
            continue
        bound, read = _names("".join(cell["source"]))
        if "remove-cell" in cell.get("metadata", {}).get("tags", []):
            hidden_only.update({n: i for n in bound - visible})
            continue
        leaked = {n: hidden_only[n] for n in read - bound if n in hidden_only}
        assert not leaked, (f"{path.name} cell {i} reads {sorted(leaked)}, bound only in "
                            f"the hidden cell(s) {sorted(set(leaked.values()))}")
        visible |= bound
        for n in bound:
            hidden_only.pop(n, None)
