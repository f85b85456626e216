"""Render the lab's notebooks to two static sites: `python tools/static_site.py [--out _site]`.

The student site (``_site/``) shows what a learner may read: no answer keys, no hidden
grading cells.  The instructor site (``_site-instructor/``, a separate tree so publishing
the student site never publishes keys) shows everything, plus each exercise's answer key.
Cells tagged ``remove-cell`` (the asserts that pin a notebook's claims for the test run)
are left out of both.

Why nbconvert (and not Jupyter Book 2): it builds offline; JB2 downloads its theme at
build time and cannot show ipywidgets statically.

Why pages show each widget's *fallback*: a pkmm widget's mimebundle carries a `text/html`
(or `image/png`) snapshot next to its `widget-view+json` entry.  With saved widget state,
nbconvert would pick the widget view, which only appears once a script from unpkg.com has
loaded; offline, on an intranet or in a PDF the reader would see nothing.  So, for every
output that has a fallback, the widget view is dropped and the fallback is rendered as
plain HTML; a widget without one is drawn from the widget state nbclient saved (its HTML
children, labels, images, Output contents).  Only a widget with neither keeps its view and
the saved state, so it still renders where the CDN is reachable; the build warns about it.

Notebooks are read from notebooks/ (every *.ipynb, markdown-only ones too) and
notebooks/exercises/; one that has not been run is executed first with nbclient
(`--execute auto`, the default).  The sources are never modified.  Output: one page per
notebook (same relative path, `.html`) and `index.html`.
"""

from __future__ import annotations

import argparse
import html
import re
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["AUDIENCES", "Page", "build_site", "find_notebooks", "main", "notebook_title",
           "prepare", "relink", "state_html"]

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
FALLBACK_TYPES = ("text/html", "image/svg+xml", "image/png", "image/jpeg")
MARKER = ".pkmm-site"  # marks a directory this tool built, so a rebuild may replace it
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
# Markdown emphasis only: `code`, *em*, **strong**, _em_ (an underscore inside a word,
# as in folio_pte_batch, is part of the name and stays).
_EMPHASIS = re.compile(r"`|\*+|(?<![\w])_+(?=\w)|(?<=\w)_+(?![\w])")
AUDIENCES = ("student", "instructor")
REMOVE_TAG = "remove-cell"
_SVG_ATTRS = {a.lower(): a for a in ("viewBox", "preserveAspectRatio", "textLength",
                                      "lengthAdjust", "markerWidth", "markerHeight", "refX",
                                      "refY", "markerUnits", "gradientUnits")}
_SVG_CASE = re.compile(r"(\s)(" + "|".join(_SVG_ATTRS) + r")=")
INPUT_TAG = "remove-input"
HIDDEN_TESTS = "### BEGIN HIDDEN TESTS"
KEY_CELL = ('# Answer key (instructor site only)\nkey = ex.solve()\nprint("ANSWER =", key)\n'
            "print(ex.check(key))")


class SiteError(Exception):
    """The site cannot be built; the message says which notebook or path and why."""


@dataclass(frozen=True)
class Page:
    """One rendered notebook: where it came from, where it went, what the index calls it."""

    source: Path
    href: str  # relative to the site root, e.g. "exercises/ex1.html"
    title: str
    widgets_without_fallback: int
    notebook: Any = field(default=None, repr=False, compare=False)  # as rendered


def find_notebooks(root: Path) -> list[Path]:
    """The lab's notebooks in reading order: notebooks/*.ipynb, then notebooks/exercises/."""
    return sorted(root.glob("*.ipynb")) + sorted(root.glob("exercises/*.ipynb"))


def notebook_title(nb: Any, default: str) -> str:
    """The first markdown heading, as plain text, else `default`.

    >>> from types import SimpleNamespace as C
    >>> nb = C(cells=[C(cell_type="code", source="# comment"),
    ...               C(cell_type="markdown", source="Intro\\n## 01 · *PTEs* and `folios`")])
    >>> notebook_title(nb, "01-ptes")
    '01 · PTEs and folios'
    >>> notebook_title(C(cells=[C(cell_type="markdown", source="# `folio_pte_batch` (_v6.9_)")]),
    ...                "06")
    'folio_pte_batch (v6.9)'
    >>> notebook_title(C(cells=[]), "00-start")
    '00-start'
    """
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            match = _HEADING.search(cell.source)
            if match:
                return _EMPHASIS.sub("", match.group(1)).strip() or default
    return default


def _is_hidden_test(cell: Any) -> bool:
    """An nbgrader grading cell or hidden-test region: the instructor's, never a student's."""
    nbg = cell.get("metadata", {}).get("nbgrader", {})
    return bool(nbg.get("grade")) or HIDDEN_TESTS in cell.get("source", "")


def is_exercise(nb: Any) -> bool:
    """A pkmm exercise notebook (its problem cell builds ``ex`` with pkmm.exercises)."""
    return any(c.cell_type == "code" and "pkmm.exercises.make(" in c.source for c in nb.cells)


def prepare(nb: Any, audience: str) -> bool:
    """Shape ``nb`` for ``audience`` in place; True if it must be executed again.

    Both sites drop cells tagged ``remove-cell``.  The student site also drops hidden-test
    and grading cells; the instructor site appends each exercise's answer key.
    """
    if audience not in AUDIENCES:
        raise SiteError(f"audience={audience!r}: choose one of {', '.join(AUDIENCES)}")
    keep = [c for c in nb.cells if REMOVE_TAG not in c.get("metadata", {}).get("tags", [])]
    if audience == "student":
        keep = [c for c in keep if not _is_hidden_test(c)]
    nb.cells = keep
    for cell in keep:      # a cell shown without its code shows no "Out[n]:" prompt either
        if INPUT_TAG in cell.get("metadata", {}).get("tags", []):
            for out in cell.get("outputs", []):
                if out.get("output_type") == "execute_result":
                    out["output_type"] = "display_data"
                    out.pop("execution_count", None)
    _renumber(nb)
    if audience == "instructor" and is_exercise(nb):
        import nbformat

        nb.cells.append(nbformat.v4.new_code_cell(KEY_CELL))
        return True
    return False


def _renumber(nb: Any) -> None:
    """Number the executed cells that are left 1, 2, 3, ...: with the removed cells' numbers
    gone, a page would jump from In [4] to In [7] and a reader would look for the cells
    between."""
    n = 0
    for cell in nb.cells:
        if cell.cell_type != "code" or cell.get("execution_count") is None:
            continue
        n += 1
        cell["execution_count"] = n
        for out in cell.get("outputs", []):
            if "execution_count" in out:
                out["execution_count"] = n


def needs_execution(nb: Any) -> bool:
    """True if some non-empty code cell was never run (its outputs would be missing)."""
    return any(c.cell_type == "code" and c.source.strip() and c.get("execution_count") is None
               for c in nb.cells)


def prefer_fallbacks(nb: Any) -> int:
    """Replace widget views by static HTML; return how many views had nothing to show.

    The widget's own fallback (text/html, SVG, PNG) wins; failing that, the view is drawn
    from the widget state nbclient saved (HTML children, labels, images, Output contents).
    Saved state is dropped when no widget view is left, so the page does not carry the
    state JSON or load the widget script for nothing.
    """
    state = nb.metadata.get("widgets", {}).get(
        "application/vnd.jupyter.widget-state+json", {}).get("state", {})
    without = 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if WIDGET_VIEW not in data:
                continue
            if not any(t in data for t in FALLBACK_TYPES):
                drawn = state_html(state, data[WIDGET_VIEW].get("model_id", ""))
                if not drawn:
                    without += 1
                    continue
                data["text/html"] = drawn
            del data[WIDGET_VIEW]
    if without == 0:
        nb.metadata.pop("widgets", None)
    return without


_BOX_ROW = {"HBoxModel", "GridBoxModel"}
_BUTTONS = {"ButtonModel", "ToggleButtonModel"}


def state_html(state: dict[str, Any], model_id: str, depth: int = 0) -> str:
    """Static HTML for one saved widget model and its children ("" if nothing to show).

    Only what is visible without a kernel is drawn; controls that need one (sliders, text
    boxes) are left out.  The widgets' CSS classes are kept, so pkmm styling still applies.

    >>> st = {"a": {"model_name": "VBoxModel", "state": {"_dom_classes": ["pkmm-widget"],
    ...            "children": ["IPY_MODEL_b", "IPY_MODEL_c"]}},
    ...       "b": {"model_name": "HTMLModel", "state": {"value": "<b>PTE</b>"}},
    ...       "c": {"model_name": "ButtonModel", "state": {"description": "next"}}}
    >>> print(state_html(st, "a"))  # doctest: +NORMALIZE_WHITESPACE
    <div class="pkmm-widget" style="display:flex;flex-direction:column;gap:4px"><div
    class=""><b>PTE</b></div><button class="" disabled>next</button></div>
    """
    model = state.get(model_id)
    if model is None or depth > 32:
        return ""
    name, st = model.get("model_name", ""), model.get("state", {})
    cls = html.escape(" ".join(st.get("_dom_classes", [])))
    if "children" in st:
        kids = [str(c).removeprefix("IPY_MODEL_") for c in st["children"]]
        if name == "StackModel" and isinstance(st.get("selected_index"), int):
            kids = kids[st["selected_index"]:st["selected_index"] + 1]
        inner = "".join(state_html(state, k, depth + 1) for k in kids)
        flow = "row" if name in _BOX_ROW else "column"
        return (f'<div class="{cls}" style="display:flex;flex-direction:{flow};gap:4px">'
                f"{inner}</div>") if inner else ""
    if name in ("HTMLModel", "HTMLMathModel"):
        return f'<div class="{cls}">{st.get("value", "")}</div>'
    if name == "LabelModel":
        return f'<span class="{cls}">{html.escape(str(st.get("value", "")))}</span>'
    if name in _BUTTONS:
        return f'<button class="{cls}" disabled>{html.escape(st.get("description", ""))}</button>'
    if name == "ImageModel":
        return _state_image(model, cls)
    if name == "OutputModel":
        return "".join(_output_html(o) for o in st.get("outputs", []))
    return ""


def _state_image(model: dict[str, Any], cls: str) -> str:
    """An Image widget's PNG/JPEG/SVG bytes, which nbclient saves as a base64 buffer."""
    for buf in model.get("buffers", []):
        if buf.get("path") == ["value"] and buf.get("encoding") == "base64":
            fmt = model["state"].get("format", "png")
            mime = "image/svg+xml" if fmt == "svg" else f"image/{fmt}"
            return f'<img class="{cls}" src="data:{mime};base64,{buf["data"]}">'
    return ""


def _output_html(out: dict[str, Any]) -> str:
    """One output captured inside an Output widget, in nbconvert's order of preference."""
    data = out.get("data", {})
    if "text/html" in data:
        return "".join(data["text/html"]) if isinstance(data["text/html"], list) \
            else str(data["text/html"])
    for mime in ("image/png", "image/jpeg"):
        if mime in data:
            return f'<img src="data:{mime};base64,{str(data[mime]).strip()}">'
    text = out.get("text") or data.get("text/plain") or ""
    text = "".join(text) if isinstance(text, list) else str(text)
    return f"<pre>{html.escape(text)}</pre>" if text else ""


def execute(nb: Any, cwd: Path, timeout_s: int) -> None:
    """Run `nb` in place with nbclient (storing widget state); errors name the cell."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    client = NotebookClient(nb, timeout=timeout_s, kernel_name="python3",
                            resources={"metadata": {"path": str(cwd)}})
    try:
        client.execute()
    except CellExecutionError as exc:  # IPython colours its traceback; a log is plain text
        raise SiteError(f"execution failed:\n{_ANSI.sub('', str(exc))}") from exc


#: Style every page gets: inline code (not a code block) never breaks: "-EAGAIN" split
#: after its dash reads as a minus and a word.
SITE_CSS = "<style>:not(pre)>code{white-space:nowrap}</style>"

#: Pages the index lists as optional reading (by notebook stem): the reference report
#: restates the real-kernel lab's findings case by case, for a reader who wants them all.
OPTIONAL = {"09-real-kernel-report": "optional reading"}


def _nav(pages: Sequence[Page], i: int) -> str:
    up = "../" * pages[i].href.count("/")
    links = [f'<a href="{up}index.html">pkmm lab: all notebooks</a>']
    # the first exercise's way back is the index, where every lesson is listed: the page
    # before it in file order is the last notebook, which an exercise does not follow
    first_exercise = pages[i].href.startswith("exercises/") and (
        i == 0 or not pages[i - 1].href.startswith("exercises/"))
    if first_exercise:
        links.append(f'<a href="{up}index.html">← all pages</a>')
    elif i > 0:
        links.append(f'<a href="{up}{pages[i - 1].href}">← {html.escape(pages[i - 1].title)}</a>')
    if i + 1 < len(pages):
        links.append(f'<a href="{up}{pages[i + 1].href}">{html.escape(pages[i + 1].title)} →</a>')
    style = "padding:0.5em 1em;border-bottom:1px solid #ddd;font-family:sans-serif"
    return f'<nav class="pkmm-site-nav" style="{style}">{" · ".join(links)}</nav>'


def render_page(nb: Any, title: str, source: Path) -> str:
    """HTML for one notebook (JupyterLab look)."""
    from nbconvert import HTMLExporter

    # embed_images=True would send every raw-HTML block of a markdown cell through an HTML
    # parser that closes what the block opens: "<details><summary>..</summary>" then became
    # an empty <details> with the answer printed openly below it.  The notebooks' figures
    # are outputs (already inline); their markdown links no image files.
    from traitlets.config import Config

    # a cell tagged remove-input (code that only draws the picture under it) shows its
    # output alone; JupyterLab collapses the same cell's source (source_hidden)
    config = Config()
    config.TagRemovePreprocessor.enabled = True
    config.TagRemovePreprocessor.remove_input_tags = {INPUT_TAG}
    exporter = HTMLExporter(config=config, template_name="lab", embed_images=False)
    resources = {"metadata": {"name": title, "path": str(source.parent)}}
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    # nbconvert's HTML cleaning lower-cases attribute names; a browser fixes SVG's camelCase
    # ones inline, but an SVG copied out of the page as a file would lose its viewBox
    return _SVG_CASE.sub(lambda m: m.group(1) + _SVG_ATTRS[m.group(2)] + "=", str(body))


#: The student index's guidance: what the lab is and the order to read it in.  A student has
#: the pages, not the repository, so it names no file.
GUIDE = ("pkmm is a small Python model of the Linux kernel code that copies a process's page "
         "tables at fork(), which these notebooks run. This lab shows with it how Linux "
         "copies them: which pages the child shares, which it gets its own copy of, "
         "and what each kernel version does differently. Read the notebooks in order, 00 to "
         "08; then 09 and 10 compare the model with a real kernel and a real process. Each "
         "exercise names the notebook it practises: do it after that one. The glossary "
         "explains every term the pages use. Nothing runs on these pages: to run a "
         "notebook or check an exercise, get a copy of the pkmm repository and run "
         "`./dev lab` (its README), or use your course's Binder or JupyterLite link.")


def follows(page: Page) -> str:
    """For an exercise page, the lesson notebooks it follows, linked (" (after 03, 06)");
    empty for any other page."""
    from pkmm.exercises.notebooks import INTROS, LEARN
    for name, (stem, _) in INTROS.items():
        if page.href == f"exercises/{stem}.html":
            links = ", ".join(f'<a href="{html.escape(n)}.html">{html.escape(n[:2])}</a>'
                              for n in LEARN[name])
            return f" (after {links})"
    return ""


def optional(page: Page) -> str:
    """" (optional reading)" for a page in :data:`OPTIONAL`, else ""."""
    note = OPTIONAL.get(page.source.stem)
    return f" <em>({html.escape(note)})</em>" if note else ""


def render_index(pages: Sequence[Page], audience: str = "student") -> str:
    """The landing page: every notebook by title, lessons first, then exercises."""
    title = "pkmm lab: how Linux copies page tables at fork()" + (
        " (instructor edition: with answer keys)" if audience == "instructor" else "")
    sections: dict[str, list[str]] = {"Notebooks": [], "Exercises": []}
    for page in pages:
        key = "Exercises" if page.href.startswith("exercises/") else "Notebooks"
        # the notebook's file name helps an instructor find it; a student on the site has
        # only the pages, where a file name is noise
        name = "" if audience == "student" else \
            f' <small>({html.escape(page.source.name)})</small>'
        sections[key].append(f'<li><a href="{html.escape(page.href)}">'
                             f'{html.escape(page.title)}</a>{name}{follows(page)}{optional(page)}</li>')
    body = "".join(f"<h2>{name}</h2><ul>{''.join(items)}</ul>"
                   for name, items in sections.items() if items)
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title>"
            "<style>body{font-family:sans-serif;max-width:50em;margin:2em auto;"
            "line-height:1.5}:not(pre)>code{white-space:nowrap}</style></head><body>"
            f"<h1>{html.escape(title)}</h1>"
            + (f'<p class="pkmm-guide">{html.escape(GUIDE)}</p>' if audience == "student" else "")
            + f"{body}</body></html>\n")


# A relative link to another notebook (`glossary.ipynb#folio`, `../04-pinned-pages.ipynb`);
# links with a scheme (https://...) or to other file types are left alone.
_NOTEBOOK_LINK = re.compile(r'(href=")(?![a-zA-Z][a-zA-Z0-9+.-]*:)([^"#?]*)\.ipynb([#?][^"]*)?"')


def relink(page_html: str) -> str:
    """Point links between notebooks at their pages: ``X.ipynb#a`` becomes ``X.html#a``.

    In the lab a link opens the notebook; on the site it must open the rendered page.

    >>> relink('<a href="glossary.ipynb#folio">folio</a> <a href="https://x.org/a.ipynb">')
    '<a href="glossary.html#folio">folio</a> <a href="https://x.org/a.ipynb">'
    """
    return _NOTEBOOK_LINK.sub(lambda m: f'{m.group(1)}{m.group(2)}.html{m.group(3) or ""}"',
                              page_html)


def _prepare_out(out: Path) -> None:
    """Create `out`, replacing it only if this tool built it (never a user's directory)."""
    if out.exists():
        if (out / MARKER).exists():
            shutil.rmtree(out)
        elif any(out.iterdir()):
            raise SiteError(f"--out {out} exists, is not empty and was not built by "
                            f"tools/static_site.py; choose another directory or remove it")
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("built by tools/static_site.py; safe to delete\n")


def build_site(notebooks: Path, out: Path, *, execute_mode: str = "auto",
               timeout_s: int = 600, audience: str = "student") -> list[Page]:
    """Render every notebook under `notebooks` into `out` for `audience` (see
    :func:`prepare`); return the pages in order."""
    import nbformat

    sources = find_notebooks(notebooks)
    if not sources:
        raise SiteError(f"no notebooks found in {notebooks} (looked for *.ipynb and "
                        f"exercises/*.ipynb)")
    _prepare_out(out)
    pages: list[Page] = []
    for src in sources:
        nb = nbformat.read(src, as_version=4)
        stale = prepare(nb, audience)
        if execute_mode == "always" or (execute_mode == "auto" and (stale or
                                                                    needs_execution(nb))):
            try:
                execute(nb, src.parent, timeout_s)
            except SiteError as exc:
                raise SiteError(f"{src}: {exc}") from exc
        href = src.relative_to(notebooks).with_suffix(".html").as_posix()
        pages.append(Page(src, href, notebook_title(nb, src.stem), prefer_fallbacks(nb), nb))
    for i, page in enumerate(pages):
        nav = _nav(pages, i)
        text = relink(render_page(page.notebook, page.title, page.source))
        body = re.search(r"<body[^>]*>", text)
        if body:
            text = text[:body.end()] + SITE_CSS + nav + text[body.end():]
        target = out / page.href
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    (out / "index.html").write_text(render_index(pages, audience), encoding="utf-8")
    return pages


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: build both sites, print one line per page, return an exit code."""
    parser = argparse.ArgumentParser(prog="tools/static_site.py", description=__doc__.split(
        "\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("_site"),
                        help="student site (default: _site); the instructor site goes to "
                             "OUT-instructor")
    parser.add_argument("--only", choices=AUDIENCES, help="build one of the two sites")
    parser.add_argument("--notebooks", type=Path, default=Path("notebooks"),
                        help="where the notebooks are (default: notebooks)")
    parser.add_argument("--execute", choices=("auto", "always", "never"), default="auto",
                        help="run notebooks first: auto = only those never run, and the "
                             "instructor's exercises (default)")
    parser.add_argument("--timeout", type=int, default=600,
                        help="seconds allowed per cell when executing (default: 600)")
    args = parser.parse_args(argv)
    for audience in [args.only] if args.only else AUDIENCES:
        out = args.out if audience == "student" else args.out.with_name(
            args.out.name + "-instructor")
        try:
            pages = build_site(args.notebooks, out, execute_mode=args.execute,
                               timeout_s=args.timeout, audience=audience)
        except SiteError as exc:
            print(f"site: {exc}", file=sys.stderr)
            return 1
        for page in pages:
            warn = (f"  (warning: {page.widgets_without_fallback} widget(s) without a static "
                    f"fallback)" if page.widgets_without_fallback else "")
            print(f"{out / page.href}: {page.title}{warn}")
        print(f"{out / 'index.html'}: {audience} index of {len(pages)} page(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
