"""The static sites (`tools/static_site.py`, `./dev site`): every notebook gets a page that shows
its figures and widget fallbacks without any script from the network, plus an index; the
student site shows no key and no hidden or remove-cell cell, the instructor site adds the keys.

Two levels: a hand-built executed notebook pins down the rendering rules (fast, no kernel,
no network allowed), and the project's own notebooks are built and checked output by output
against what the notebooks contain.
"""

from __future__ import annotations

import base64
import re
import socket
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import nbformat
import pytest
import static_site as site
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

REPO = Path(__file__).resolve().parent.parent
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
PNG_1x1 = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0000003010100c9fe92ef"
    "0000000049454e44ae426082")).decode()
TABLE = '<table class="pkmm-fallback-table"><tr><td>0:W</td></tr></table>'


class _Tags(HTMLParser):
    """Collect <img src> and <a href> values from a page."""

    def __init__(self) -> None:
        super().__init__()
        self.img_src: list[str] = []
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "img" and values.get("src"):
            self.img_src.append(re.sub(r"\s+", "", values["src"] or ""))
        if tag == "a" and values.get("href"):
            self.hrefs.append(values["href"] or "")


def _tags(text: str) -> _Tags:
    parser = _Tags()
    parser.feed(text)
    return parser


class _Text(HTMLParser):
    """What a reader sees: text outside <style>/<script>, whitespace squashed."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._hidden += tag in ("style", "script")

    def handle_endtag(self, tag: str) -> None:
        self._hidden -= tag in ("style", "script")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def _visible_text(html: str) -> str:
    """Compare text, not markup: nbconvert normalises HTML (e.g. <br> becomes <br/>)."""
    parser = _Text()
    parser.feed(html)
    return re.sub(r"\s+", " ", " ".join(parser.parts)).strip()


def _widget_output(model_id: str, **extra: str) -> Any:
    data = {WIDGET_VIEW: {"model_id": model_id, "version_major": 2, "version_minor": 0},
            "text/plain": f"Widget({model_id})", **extra}
    return new_output("display_data", data=data)


def _fixture_notebooks(root: Path) -> None:
    """An executed lesson (widget with fallback, widget with state only, figure) + exercises."""
    state = {
        "stepper": {"model_name": "VBoxModel", "state": {
            "_dom_classes": ["pkmm-widget", "pkmm-fork-stepper"],
            "children": ["IPY_MODEL_panel", "IPY_MODEL_next"]}},
        "panel": {"model_name": "HTMLModel", "state": {
            "_dom_classes": ["pkmm-stepper-panel"], "value": "<p>copy_pte_range</p>"}},
        "next": {"model_name": "ButtonModel", "state": {"description": "next"}},
    }
    lesson = new_notebook(cells=[
        new_markdown_cell("Intro text\n\n# 01 · PTEs and `folios`"),
        new_code_cell("builder", execution_count=1,
                      outputs=[_widget_output("builder", **{"text/html": TABLE})]),
        new_code_cell("stepper", execution_count=2, outputs=[_widget_output("stepper")]),
        new_code_cell("plot()", execution_count=3, outputs=[
            new_output("display_data", data={"image/png": PNG_1x1, "text/plain": "<Figure>"})]),
        new_code_cell("draw_the_timeline_here()", execution_count=4,
                      metadata={"tags": ["remove-input"]}, outputs=[
                          new_output("execute_result", execution_count=4,
                                     data={"text/html": '<p>TIMELINE</p><svg viewBox="0 0 9 9" '
                                           'width="9"><rect width="9" height="9"/></svg>'})]),
    ])
    lesson.metadata["widgets"] = {WIDGET_STATE: {"version_major": 2, "version_minor": 0,
                                                 "state": state}}
    (root / "exercises").mkdir(parents=True)
    nbformat.write(lesson, root / "01-ptes.ipynb")
    nbformat.write(new_notebook(cells=[new_markdown_cell("## Exercise: batch sizes")]),
                   root / "exercises" / "ex1-batches.ipynb")
    nbformat.write(new_notebook(cells=[new_code_cell("1", execution_count=1)]),
                   root / "exercises" / "ex2-untitled.ipynb")


def test_site_rules_on_a_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"site build tried to open a network connection: {args}")

    _fixture_notebooks(tmp_path / "nb")
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    pages = site.build_site(tmp_path / "nb", tmp_path / "out", execute_mode="never")

    assert [(p.href, p.title) for p in pages] == [
        ("01-ptes.html", "01 · PTEs and folios"),
        ("exercises/ex1-batches.html", "Exercise: batch sizes"),
        ("exercises/ex2-untitled.html", "ex2-untitled"),
    ]
    index = (tmp_path / "out" / "index.html").read_text()
    assert _tags(index).hrefs == [p.href for p in pages]
    lesson = (tmp_path / "out" / "01-ptes.html").read_text()
    # The widget's own fallback, as live HTML (not inside the widget-state JSON).
    assert 'class="pkmm-fallback-table"' in lesson
    assert _visible_text(TABLE) in _visible_text(lesson)
    assert '<div class="pkmm-stepper-panel"><p>copy_pte_range</p></div>' in lesson  # from state
    assert f"data:image/png;base64,{PNG_1x1}" in _tags(lesson).img_src
    assert WIDGET_VIEW not in lesson and WIDGET_STATE not in lesson
    assert "html-manager" not in lesson  # nothing to fetch to see the widgets
    assert 'href="../index.html"' in (tmp_path / "out/exercises/ex1-batches.html").read_text()
    # a cell tagged remove-input shows its output, not its code
    assert "<p>TIMELINE</p>" in lesson and "draw_the_timeline_here" not in lesson
    assert "Out[4]" not in lesson and "[4]:" not in lesson
    assert 'viewBox="0 0 9 9"' in lesson and "viewbox=" not in lesson   # SVG keeps its case


def test_student_site_hides_keys_and_hidden_cells(tmp_path: Path) -> None:
    nb = new_notebook(cells=[
        new_markdown_cell("# Exercise: `folio_pte_batch` sizes"),
        new_code_cell("print('PROBLEM-TEXT')", execution_count=1, outputs=[
            new_output("stream", name="stdout", text="PROBLEM-TEXT\n")]),
        new_code_cell("assert 'PINNED-CLAIM'", execution_count=2,
                      metadata={"tags": ["remove-cell"],
                                "jupyter": {"source_hidden": True, "outputs_hidden": True}}),
        new_code_cell("### BEGIN HIDDEN TESTS\nassert 'HIDDEN-TEST'\n### END HIDDEN TESTS",
                      execution_count=3),
        new_code_cell("grade('GRADE-CELL')", execution_count=4,
                      metadata={"nbgrader": {"grade": True, "points": 4}}),
    ])
    (tmp_path / "nb").mkdir()
    nbformat.write(nb, tmp_path / "nb" / "ex.ipynb")
    text = {}
    for audience in site.AUDIENCES:
        (page,) = site.build_site(tmp_path / "nb", tmp_path / audience, execute_mode="never",
                                  audience=audience)
        assert page.title == "Exercise: folio_pte_batch sizes"   # underscores kept
        text[audience] = _visible_text((tmp_path / audience / "ex.html").read_text())
    for audience in site.AUDIENCES:
        assert "PROBLEM-TEXT" in text[audience]
        assert "PINNED-CLAIM" not in text[audience]       # remove-cell: neither site
    assert "HIDDEN-TEST" not in text["student"] and "GRADE-CELL" not in text["student"]
    assert "HIDDEN-TEST" in text["instructor"] and "GRADE-CELL" in text["instructor"]
    with pytest.raises(site.SiteError, match="audience='teacher'"):
        site.prepare(nb, "teacher")


def test_site_main_rebuilds_its_own_dir_only(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    _fixture_notebooks(tmp_path / "nb")
    args = ["--notebooks", str(tmp_path / "nb"), "--out", str(tmp_path / "out"),
            "--execute", "never"]
    assert site.main(args) == 0
    assert site.main(args) == 0  # a rebuild replaces the previous site
    out = capsys.readouterr().out
    assert "student index of 3 page(s)" in out and "instructor index of 3 page(s)" in out
    assert (tmp_path / "out-instructor" / "index.html").is_file()
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    assert site.main(args[:2] + ["--out", str(foreign), "--execute", "never",
                                 "--only", "student"]) == 1
    assert "was not built by tools/static_site.py" in capsys.readouterr().err
    assert (foreign / "notes.txt").read_text() == "keep me"


def _expected_outputs(nb: Any) -> tuple[list[str], list[str]]:
    """Every PNG (base64) and every HTML table a notebook's outputs carry."""
    pngs, tables = [], []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if "image/png" in data:
                pngs.append(re.sub(r"\s+", "", data["image/png"]))
            if "<table" in data.get("text/html", ""):
                tables.append(data["text/html"])
    return pngs, tables


@pytest.mark.skipif(not site.find_notebooks(REPO / "notebooks"),
                    reason="no notebooks/*.ipynb yet")
def test_project_exercises_show_keys_on_the_instructor_site_only(tmp_path: Path) -> None:
    import pkmm.exercises as X

    for audience in site.AUDIENCES:
        site.build_site(REPO / "notebooks", tmp_path / audience, audience=audience)
    exercises = sorted((REPO / "notebooks" / "exercises").glob("*.ipynb"))
    assert len(exercises) == len(X.EXERCISES)
    for src in exercises:
        nb = nbformat.read(src, as_version=4)
        # the page's own problem (the worked example before it is another seed's)
        problem = next(c.source for c in nb.cells if "ex = pkmm.exercises.make(" in c.source)
        scope: dict[str, Any] = {}
        exec("import pkmm.exercises\n" + problem.replace("print(ex)", ""), scope)
        key = f"ANSWER = {scope['ex'].solve()!r}"
        page = f"exercises/{src.stem}.html"
        student = _visible_text((tmp_path / "student" / page).read_text())
        instructor = _visible_text((tmp_path / "instructor" / page).read_text())
        assert _visible_text(f"<p>{key}</p>") in instructor, f"{page}: no key for instructors"
        assert _visible_text(f"<p>{key}</p>") not in student, f"{page}: key on the student site"
        assert "score 1.00 / 1.00" not in student and "key = ex.solve()" not in student
        assert "No answer yet" in student   # the check speaks only once an answer is given


@pytest.mark.skipif(not site.find_notebooks(REPO / "notebooks"),
                    reason="no notebooks/*.ipynb yet")
def test_site_for_project_notebooks(tmp_path: Path) -> None:
    pages = site.build_site(REPO / "notebooks", tmp_path)
    sources = site.find_notebooks(REPO / "notebooks")
    assert [p.source for p in pages] == sources
    index = (tmp_path / "index.html").read_text()
    # every page is linked, and nothing else is (an exercise's line also links the lessons
    # it follows, which are pages too)
    assert sorted(set(_tags(index).hrefs)) == sorted(p.href for p in pages)
    for page in pages:
        text = (tmp_path / page.href).read_text()
        assert page.title in index, f"index lacks the title of {page.source.name}"
        stored = nbformat.read(page.source, as_version=4)
        # Check against the committed outputs when there are any (independent of
        # tools/static_site.py), else against the outputs the build produced.
        nb = page.notebook if site.needs_execution(stored) else stored
        pngs, tables = _expected_outputs(nb)
        shown = set(_tags(text).img_src)
        for png in pngs:
            assert f"data:image/png;base64,{png}" in shown, f"{page.href}: a figure is missing"
        for table in tables:
            assert _visible_text(table) in _visible_text(text), f"{page.href}: a table is missing"
        for href in _tags(text).hrefs:     # every link between pages lands somewhere real
            if re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*:|#|$", href):
                continue
            path, _, anchor = href.partition("#")
            target = (tmp_path / page.href).parent / path
            assert target.is_file(), f"{page.href}: link {href} opens no page"
            if anchor:
                assert f'id="{anchor}"' in target.read_text(), \
                    f"{page.href}: link {href} names no place on its page"
        folded = _hidden_answers(text)
        assert all(folded), f"{page.href}: a <details> block is empty (its answer shows openly)"
        assert page.widgets_without_fallback == 0, (
            f"{page.source.name}: {page.widgets_without_fallback} widget(s) show nothing "
            f"without a live kernel; give them a text/html fallback")


class _Details(HTMLParser):
    """The text inside each <details> element, apart from its <summary>."""

    def __init__(self) -> None:
        super().__init__()
        self.depth, self.in_summary, self.inside = 0, False, [""]

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag == "details":
            self.depth += 1
            if self.depth == 1:
                self.inside.append("")
        elif tag == "summary":
            self.in_summary = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "details":
            self.depth -= 1
        elif tag == "summary":
            self.in_summary = False

    def handle_data(self, data: str) -> None:
        if self.depth and not self.in_summary:
            self.inside[-1] += data


def _hidden_answers(page_html: str) -> list[str]:
    parser = _Details()
    parser.feed(page_html)
    return [t.strip() for t in parser.inside[1:]]


def test_answers_stay_inside_their_details(tmp_path: Path) -> None:
    """An "Answer (open it after you predicted)" block is folded on the site: the markdown
    inside <details> renders inside it, not as open text after an empty <details>."""
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    nbformat.write(new_notebook(cells=[new_markdown_cell(
        "# L\n<details><summary><b>Answer</b></summary>\n\nThe **child** copies no page; "
        "see [the glossary](glossary.ipynb).\n\nSecond paragraph.\n\n</details>\n\nAfter.")]),
        nbs / "01-l.ipynb")
    out = tmp_path / "site"
    site.build_site(nbs, out, execute_mode="never")
    answers = _hidden_answers((out / "01-l.html").read_text())
    assert len(answers) == 1
    assert "child copies no page" in answers[0] and "Second paragraph." in answers[0]
    assert "After." not in answers[0]


def test_links_between_notebooks_open_pages(tmp_path: Path) -> None:
    """A learner clicking a glossary link on the static site lands on the entry itself: a
    relative ``X.ipynb#id`` link becomes ``X.html#id``, the page exists and has the id."""
    nbs = tmp_path / "nbs"
    (nbs / "exercises").mkdir(parents=True)
    gloss = new_notebook(cells=[new_markdown_cell('# Glossary\n<a id="folio"></a>**folio**')])
    lesson = new_notebook(cells=[new_markdown_cell(
        "# Lesson\nA [folio](glossary.ipynb#folio), the [lab](https://example.org/x.ipynb).")])
    ex = new_notebook(cells=[new_markdown_cell("# Ex\nSee [the glossary](../glossary.ipynb).")])
    for name, nb in (("glossary", gloss), ("01-lesson", lesson), ("exercises/e", ex)):
        nbformat.write(nb, nbs / f"{name}.ipynb")
    out = tmp_path / "site"
    site.build_site(nbs, out, execute_mode="never")
    hrefs = _tags((out / "01-lesson.html").read_text()).hrefs
    assert "glossary.html#folio" in hrefs and "https://example.org/x.ipynb" in hrefs
    assert "../glossary.html" in _tags((out / "exercises/e.html").read_text()).hrefs
    assert 'id="folio"' in (out / "glossary.html").read_text()


def test_cells_left_are_numbered_in_a_row() -> None:
    """Removed cells leave no gap in the In [n] numbers a reader sees."""
    nb = new_notebook(cells=[new_code_cell("a", execution_count=1),
                             new_code_cell("assert x", execution_count=2,
                                           metadata={"tags": ["remove-cell"]}),
                             new_markdown_cell("text"),
                             new_code_cell("b", execution_count=3, outputs=[new_output(
                                 "execute_result", {"text/plain": "1"}, execution_count=3)])])
    site.prepare(nb, "student")
    codes = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in codes] == [1, 2]
    assert codes[1].outputs[0]["execution_count"] == 2


def test_student_index_guides_the_reading_order() -> None:
    sources = site.find_notebooks(REPO / "notebooks")
    pages = [site.Page(src, src.relative_to(REPO / "notebooks").with_suffix(".html").as_posix(),
                       src.stem, 0) for src in sources]
    student = site.render_index(pages, "student")
    guide = re.search(r'<p class="pkmm-guide">(.*?)</p>', student)
    assert guide and student.index(guide.group(0)) < student.index("<h2>")   # it leads
    text = guide.group(1)
    # every notebook number the order names is a lesson the lab has
    lessons = {src.name[:2] for src in sources if src.name[:2].isdigit()}
    named = set(re.findall(r"\b\d\d\b", text))
    assert named and named <= lessons and {min(lessons), max(lessons)} <= named
    assert text.index("00") < text.index("08") < text.index("09") < text.index("10")
    assert "exercise" in text
    # nothing runs on the site: it says how to get a runnable copy (the README's command)
    assert "./dev lab" in text and "JupyterLite" in text
    # a student has the pages only: no file or folder names besides that command
    assert not re.search(r"\.(ipynb|py|md)\b|/", text.replace("./dev lab", ""))
    assert "pkmm-guide" not in site.render_index(pages, "instructor")
    assert text.startswith("pkmm is ")         # says what pkmm is, in its first line
    # each exercise's line says which lessons it follows, linked to their pages
    from pkmm.exercises.notebooks import INTROS, LEARN
    for name, (stem, _) in INTROS.items():
        line = re.search(rf'<li><a href="exercises/{stem}.html">.*?</li>', student)
        assert line, stem
        follows = re.findall(r'<a href="([^"]+)\.html">(\d\d)</a>', line.group(0))
        assert [h for h, _ in follows] == LEARN[name], (stem, follows)
    # nor after the links: the file names are for the instructor, who has the files
    assert ".ipynb" not in student and ".ipynb" in site.render_index(pages, "instructor")


def test_index_marks_the_reference_page_optional_and_exercise_a_leads_back_to_it() -> None:
    sources = site.find_notebooks(REPO / "notebooks")
    pages = [site.Page(src, src.relative_to(REPO / "notebooks").with_suffix(".html").as_posix(),
                       src.stem, 0) for src in sources]
    student = site.render_index(pages, "student")
    for stem, note in site.OPTIONAL.items():
        line = re.search(rf'<li><a href="{stem}.html">.*?</li>', student)
        assert line and f"({note})" in line.group(0), stem
    # every other lesson is required reading: only the listed pages carry the note
    assert student.count("optional reading") == len(site.OPTIONAL)
    # the first exercise's back arrow opens the index, not the last lesson before it
    first = next(i for i, p in enumerate(pages) if p.href.startswith("exercises/"))
    back = re.findall(r'<a href="([^"]+)">←', site._nav(pages, first))
    assert back == ["../index.html"], back
    # the next exercise goes back to the one before it
    back = re.findall(r'<a href="([^"]+)">←', site._nav(pages, first + 1))
    assert back == [f"../{pages[first].href}"], back


def test_inline_code_never_wraps_on_a_page(tmp_path: Path) -> None:
    """'-EAGAIN' split after its dash reads as a minus and a word: inline code keeps to one
    line on every page and on the index (a code block keeps its own line breaks)."""
    nbdir = tmp_path / "nb"
    nbdir.mkdir()
    nb = new_notebook(cells=[new_markdown_cell("# T\n\nthe call returns `-EAGAIN` here\n\n"
                                               "```\nline one\nline two\n```")])
    nbformat.write(nb, nbdir / "00-t.ipynb")
    pages = site.build_site(nbdir, tmp_path / "out", execute_mode="never")
    page = (tmp_path / "out" / pages[0].href).read_text()
    index = (tmp_path / "out" / "index.html").read_text()
    for text in (page, index):
        assert ":not(pre)>code{white-space:nowrap}" in text
    assert "<code>-EAGAIN</code>" in page
