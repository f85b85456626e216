"""What notebooks/09-real-kernel-lab.ipynb calls: stored results, a quick live check, and
the opt-in full live run (``PKMM_LAB_LIVE=1``), as text and one figure.

Kernel interfaces: those of :mod:`pkmm.realkernel.run` and :mod:`pkmm.realkernel.timing`,
and only when live probing is allowed and asked for.
Taught in: notebooks/09-real-kernel-lab.ipynb, notebooks/09-real-kernel-report.ipynb

The default path reads only the stored Linux 6.18 data and runs the model, so the notebook
gives the same output on every machine and finishes in seconds.
"""

from __future__ import annotations

import functools
import html
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from ..errors import ScenarioError, StoredDataError
from ..figure import Picture
from ..folio import Folio
from ..vma import userfaultfd_wp
from .calibrate import batched, fit_batch_cost, pooled, records
from .calibrate import load as load_timing
from .calibrate import render as render_timing
from .layouts_model import page
from .model import ModelBackend, model_kernel
from .observe import Step
from .report import COLUMNS, HEAD, Row, load_stored, render, report, stored_kernel, table
from .scenarios import ABOUT, BY_ID, TOPICS, WHY, Scenario, label, run_script
from .support import detect
from .timing import FOLIOS, folio_pages

LIVE_ENV = "PKMM_LAB_LIVE"


def live_requested() -> bool:
    """Whether the learner opted in to probing this machine (``PKMM_LAB_LIVE=1``)."""
    return os.environ.get(LIVE_ENV, "") == "1"


def live_reason() -> str | None:
    """None if this machine can be probed, else why not (not Linux, not root, ...)."""
    return detect().probe_ready()


def stored_rows(ids: tuple[str, ...] | None = None) -> list[Row]:
    """The model against the stored Linux 6.18 results."""
    return list(_stored_rows(ids))


@functools.lru_cache(maxsize=4)
def _stored_rows(ids: tuple[str, ...] | None) -> tuple[Row, ...]:
    data = load_stored()
    res = {k: v for k, v in data["scenarios"].items() if ids is None or k in ids}
    return tuple(report(res, stored_kernel(data)))


def stored_report(ids: tuple[str, ...] | None = None) -> str:
    return render(stored_rows(ids), _stored_header())


def _stored_header() -> str:
    m = load_stored()["machine"]
    return (f"stored: Linux {m['kernel']}, {m['cpus']} CPUs ({m['cpu']}); model kernel "
            f"{stored_kernel(load_stored())}")


def _shade_token(cell: str) -> str:
    """A page token's colour: a new page yellow, a page mapped by both processes (mapcount
    2 or more) blue, any other (a page one process maps, or nothing mapped) white.  The
    colour follows the mapcount, not ``x0``: pagemap's bit can read ``x0`` for a page only
    one process maps (``x0 m1`` under a PMD entry), and the key promises "mapped by both".

    >>> _shade_token("orig x0 m2 ae0 A"), _shade_token("orig x0 m1 ae0 A·T·thp")
    ('#dbe9ff', '')
    """
    if cell[:1] == "n" and cell[1:2].isdigit():
        return "#fff1b8"
    m = re.search(r" m(\d+) ", cell)
    return "#dbe9ff" if m and int(m.group(1)) >= 2 else ""


def _shade_result(cell: str) -> str:
    return {"agree": "#d9f2d9", "DIFFER": "#f8d0d0"}.get(cell, "")


# The two marks a table cell can carry, drawn apart so that neither reads as the other: a
# row table's red outline ("not as the plain row") and a step table's dark dashed box ("the
# page this step read or wrote").
MODEL_BG = "#eeeeee"     # the ground of a column that shows the model's state (Table.model_cols)
MARK_STYLE = {"differs": ";outline:2px solid #c0392b;outline-offset:-2px;font-weight:bold",
              "access": ";outline:2px dashed #222;outline-offset:-3px"}


@dataclass(frozen=True)
class Table:
    """Rows a notebook shows as an HTML table and a terminal prints as text.

    >>> t = Table("t", ("a", "b"), (("1", "x<y"),), "a b\\n1 x<y")
    >>> str(t), ">x&lt;y</td>" in t._repr_html_()
    ('a b\\n1 x<y', True)
    """

    caption: str
    head: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    text: str                       # the same rows as the text report prints them
    notes: tuple[str, ...] = ()
    shade: Callable[[str], str] | None = None
    marks: frozenset[tuple[int, int]] = frozenset()    # (row, column): cells to mark
    sections: tuple[tuple[int, str], ...] = ()          # (first row, heading) of a group
    subrows: tuple[tuple[int, str], ...] = ()           # (row, text): a line under the row
    legend: str = ""                                    # under the caption, above the rows
    about: tuple[tuple[int, str], ...] = ()             # (row, text): a grey line under it
    fold: str = ""          # a prediction's answer: shown folded under this summary line
    preview: tuple[int, ...] = ()   # with fold: these rows stay open above the folded table
    preview_caption: str = ""       # the open rows' caption (else "an example row of the N")
    # what a mark says, so each meaning has its own look: "differs" (a red outline: unlike
    # the plain row's cell) or "access" (a dark dashed box: the page this step read or wrote)
    mark: str = "differs"
    # columns that hold the model's state, not the kernel's record: drawn in italics on a
    # grey ground, so a page about model-vs-kernel never lets the two pass for each other
    model_cols: frozenset[int] = frozenset()

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:      # stable: no function addresses in a notebook's output
        return f"<table {self.caption!r}: {len(self.rows)} rows>"

    def _repr_html_(self) -> str:
        span = len(self.head)

        def td(i: int, j: int, v: str) -> str:
            bg = self.shade(v) if self.shade else ""
            if j in self.model_cols:
                bg, style = bg or MODEL_BG, "text-align:left;font-style:italic"
            else:
                style = "text-align:left"
            style += f";background:{bg}" if bg else ""
            if (i, j) in self.marks:
                style += MARK_STYLE[self.mark]
            return f'<td style="{style}">{html.escape(v)}</td>'

        def line(text: str, style: str) -> str:
            return (f'<tr><td colspan="{span}" style="text-align:left;{style}">'
                    f"{html.escape(text)}</td></tr>")

        heads, subs, about = dict(self.sections), dict(self.subrows), dict(self.about)

        def body_of(which: range | tuple[int, ...], headings: bool) -> str:
            rows = []
            for i in which:
                if headings and i in heads:
                    rows.append(line(heads[i], "font-weight:bold;background:#eef0f3;"
                                               "padding-top:0.5em"))
                rows.append("<tr>" + "".join(td(i, j, v) for j, v in enumerate(self.rows[i]))
                            + "</tr>")
                if i in about:
                    rows.append(line(about[i], "padding-left:2em;color:#555"))
                if i in subs:
                    rows.append(line(subs[i], "padding-left:2em;font-style:italic;"
                                              "color:#7a2418"))
            return "".join(rows)

        body = body_of(range(len(self.rows)), True)
        model_th = f";font-style:italic;background:{MODEL_BG}"
        head = "".join(f'<th style="text-align:left{model_th if j in self.model_cols else ""}">'
                       f"{html.escape(h)}</th>" for j, h in enumerate(self.head))
        key = (f'<br><span style="font-weight:normal">{html.escape(self.legend)}</span>'
               if self.legend else "")
        notes = "".join(f"<p>{html.escape(n)}</p>" for n in self.notes)
        if self.fold:       # closed until the reader opens it, as a markdown answer is
            folded = (f"<details><summary><b>{html.escape(self.fold)}</b></summary>"
                      f"{self._table_html(key, head, body)}{notes}</details>")
            if not self.preview:
                return folded
            # a reference page: the example rows stay open, every row one click away
            n = len(self.preview)
            said = self.preview_caption or (
                f'{"an example row" if n == 1 else f"{n} example rows"}'
                f" of the {len(self.rows)} (all of them below)")
            example = ('<table class="pkmm-table" style="font-size:0.82em;'
                       'border-collapse:collapse"><caption style="caption-side:top;'
                       f'text-align:left">{html.escape(said)}</caption><thead><tr>'
                       f"{head}</tr></thead><tbody>{body_of(self.preview, False)}</tbody></table>")
            return example + folded
        return self._table_html(key, head, body) + notes

    def _table_html(self, key: str, head: str, body: str) -> str:
        return ('<table class="pkmm-table" style="font-size:0.82em;border-collapse:collapse">'
                f"<caption style=\"caption-side:top;text-align:left\">"
                f"{html.escape(self.caption)}{key}</caption><thead><tr>{head}</tr></thead>"
                f"<tbody>{body}</tbody></table>")


def report_table(ids: tuple[str, ...] | None = None) -> Table:
    """:func:`stored_report` as a :class:`Table` (the same rows, for a notebook page)."""
    rows = stored_rows(ids)
    body, notes, total = table(rows)
    return Table(_stored_header(), HEAD, tuple(tuple(r) for r in body),
                 render(rows, _stored_header()), (*notes, total), _shade_result)


def _step_rows(sid: str, pages: tuple[int, ...] | None, upto: str = "") -> tuple[
        str, tuple[int, ...], list[tuple[str, ...]], frozenset[tuple[int, int]]]:
    """(title, the pages shown, one row per stored step: name, who, tokens, access, and
    the (row, column) of each shown cell a step read or wrote); with ``upto``, the steps
    end at the first step of that name (a picture that must not show later steps)."""
    from .observe import op_text, unrle
    if sid not in BY_ID:
        raise ScenarioError(f"steps_table(sid): sid={sid!r} is not a scenario id "
                            "(scenarios.BY_ID)")
    sc = BY_ID[sid]
    show = pages or sc.show
    if any(not isinstance(i, int) or not 0 <= i < sc.npages for i in show):
        raise ScenarioError(f"steps_table(sid, pages): pages={pages!r} must be page numbers "
                            f"of {sid} (0 to {sc.npages - 1})")
    steps = load_stored()["scenarios"][sid]["steps"]
    if upto:
        # the name a table shows (pg3) or the probe's stored one (w1) both name a step
        names = [s["name"] for s in steps]
        said = [script_name(sc, n) for n in names]
        if upto not in names + said:
            raise ScenarioError(f"steps_table(sid, upto): upto={upto!r} is not a step of "
                                f"{sid}; use one of: {', '.join(dict.fromkeys(said))}")
        steps = steps[:(names.index(upto) if upto in names else said.index(upto)) + 1]
    names = [script_name(sc, n) for n in _role_names(steps)]
    rows = [(name, s["who"], *(unrle(s["cells"])[i] for i in show), op_text(s["op"]))
            for name, s in zip(names, steps, strict=True)]
    touched = frozenset((i, 2 + show.index(s["op"]["page"])) for i, s in enumerate(steps)
                        if s["op"] and s["op"].get("page") in show)
    return f"{sid}: {sc.title}", show, rows, touched


_ROLE = re.compile(r" \((first|second) writer\)$")
_SCRIPT_PAGE = re.compile(r"\bw([123])\b")


def script_name(sc: Scenario, name: str) -> str:
    """A stored step's name said in scenario ``sc``'s own script: the probe names every
    step after the generic script (w1, w2, w3, "parent view after child wrote w1"), so a
    row whose child writes nothing (c2) or whose w3 is page 16 would read like another
    scenario.  The script pages become the tables' page names (pg16), and the parent's view before
    the child exits names the child's write only when the child made one."""
    if name == "parent view after child wrote w1":
        return ("parent view, child still running" if sc.w1 is None else
                f"parent view after child wrote pg{sc.w1}")
    if name == "parent writes before fork":
        return f"parent writes pg{sc.pre_write} before fork"
    return _SCRIPT_PAGE.sub(lambda m: f"pg{getattr(sc, 'w' + m[1])}", name)


def _role_names(steps: list[dict[str, Any]]) -> list[str]:
    """The steps' names with the probe script's role ("first writer", "second writer") kept
    only where it is true of this run: a first writer writes a page both processes still
    share (the same page in each one's latest view, or a swap entry from before fork); a
    second writer writes the page the other process wrote first.  In t1, for one, the
    child's first write copied the whole hugetlb page, so nobody shares w2 by then."""
    from .observe import unrle
    seen: dict[str, list[str]] = {}          # each process's latest view of the region
    first: dict[int, str] = {}               # page -> the process that wrote it first
    names = []
    for s in steps:
        name, role = s["name"], _ROLE.search(s["name"])
        if role and s["op"]:
            page, who = s["op"]["page"], s["who"]
            other = "parent" if who == "child" else "child"
            mine, theirs = (seen.get(w, [""] * (page + 1))[page] for w in (who, other))
            if role[1] == "first":
                label = mine.split(" ")[0]
                true = label == theirs.split(" ")[0] not in ("", "—") or "swp" in mine + theirs
                if true:
                    first[page] = who
            else:
                true = first.get(page) == other
            if not true:
                name = name[:role.start()]
        seen[s["who"]] = unrle(s["cells"])
        names.append(name)
    return names


_READ_VALUE = "val= the value a read returned (the probe wrote 1 into every page), and "
# short on purpose: it sits above every step table, and a reader skips a long one; the red
# outline of the row tables is the row tables' own key, not repeated here
STEPS_LEGEND = ("each row: the pages as that process sees them · yellow: a new page "
                "(n1, n2, …: see the token key) · blue: an original page both processes "
                "map (m2) · white: an original page one process maps (m1), or nothing · "
                "dashed box: the page this step read or wrote · the access: which page, "
                f"{_READ_VALUE}faults= how many faults it took")


def _steps_legend(rows: list[tuple[str, ...]]) -> str:
    """:data:`STEPS_LEGEND` for these rows: a table whose steps only write says nothing
    about reads (a key must not explain what the table never shows)."""
    if any(r[-1].startswith("read") for r in rows):
        return STEPS_LEGEND
    return (STEPS_LEGEND.replace(_READ_VALUE, "and ").replace("read or wrote", "wrote"))


def scenario_steps(sid: str, pages: tuple[int, ...] | None = None, upto: str = "") -> str:
    """One scenario's steps from the stored kernel results (pages of interest only; with
    ``upto``, up to the first step of that name)."""
    title, show, rows, _ = _step_rows(sid, pages, upto)
    lines = [f"{title}   pages " + ", ".join(f"pg{i}" for i in show)]
    for name, who, *rest in rows:
        *cells, op = rest
        lines.append(f"  {name[:40]:40s} {who:6s} " + " | ".join(cells) + f"  {op}")
    return "\n".join(lines)


def steps_table(sid: str, pages: tuple[int, ...] | None = None, fold: str = "",
                upto: str = "", about: int | None = None) -> Table:
    """:func:`scenario_steps` as a :class:`Table`: a column per page, a row per step;
    with ``fold``, shown folded under that summary line (a prediction's answer); with
    ``upto``, only the steps up to the first of that name; with ``about``, that page's cell
    in the last row shown is boxed too: the cell the text around the table is about."""
    title, show, rows, touched = _step_rows(sid, pages, upto)
    legend = _steps_legend(rows)
    if about is not None:
        if about not in show:
            raise ScenarioError(f"steps_table(sid, about): about={about!r} is not one of the "
                                f"pages shown ({', '.join(map(str, show))})")
        touched |= {(len(rows) - 1, 2 + show.index(about))}
        legend += f" · also boxed: pg{about} in the last row, the cell the text is about"
    return Table(title, ("step", "process", *(f"pg{i}" for i in show), "the access"),
                 tuple(rows), scenario_steps(sid, pages, upto), shade=_shade_token,
                 marks=touched, legend=legend, fold=fold, mark="access")


def _words(token: str) -> tuple[str, ...]:
    """One page token (observe.cell) as its parts: the label, then x/m/ae/uwp, then each
    kpageflags flag on its own (``A·T·thp`` -> ``A``, ``T``, ``thp``)."""
    head, *rest = token.split() or [""]
    if rest and set(rest[-1].split("·")) <= _FLAGS:
        return (head, *rest[:-1], *rest[-1].split("·"))
    return (head, *rest)


_FLAGS = frozenset({"A", "H", "T", "thp", "huge", "Z", "F"})     # observe.PageObs.flags()


def _has(*parts: str) -> Callable[[tuple[str, ...]], bool]:
    return lambda w: all(p in w[1:] for p in parts)


# The key of the lab's page token (observe.cell), one entry per part: what it means, and
# which tokens show it.  token_key() keeps the entries some shown token has, so a page's key
# names only what its tables show.
TOKEN_KEY: tuple[tuple[str, str, Callable[[tuple[str, ...]], bool]], ...] = (
    ("orig, n1, n2, …", "which physical page, as a label (never its pfn). orig: the page "
     "mapped there before fork. n1, n2 …: new pages, numbered in the order the probe first "
     "finds each mapped: step by step, and within a step page by page over the whole region. "
     "Pages a table does not show are numbered too, so a table may skip numbers",
     lambda w: w[0] == "orig" or re.fullmatch(r"n\d+", w[0]) is not None),
    ("zero", "the zero page", lambda w: w[0] == "zero"),
    ("hzero", "the huge zero page", lambda w: w[0] == "hzero"),
    ("—", "nothing mapped", lambda w: w == ("—",) or w == ("—", "uwp")),
    ("— swp", "not present: swapped out (the entry is a swap entry)", _has("swp")),
    ("x1 / x0", "pagemap's \"exclusively mapped\" (bit 56), read through this process's "
     "page table; pagemap computes it from a mapcount: x1 when the page's mapcount is 1 "
     "(for a page mapped by a PMD entry, the head page's mapcount)",
     lambda w: "x1" in w or "x0" in w),
    ("m1, m2", "the page's mapcount (kpagecount): how many page-table entries map it — "
     "despite the file's name, not its refcount", lambda w: any(re.fullmatch(r"m\d+", x)
                                                                for x in w[1:])),
    ("x0 m0", "the zero page: never counted, so never exclusively mapped", _has("x0", "m0")),
    ("x0 m1", "a page of a PMD-mapped THP the other process copied away from: only this "
     "process maps it, but pagemap answers for the PMD entry with the head page's mapcount, "
     "2 while the other process still maps the head", _has("x0", "m1")),
    ("ae1 / ae0", "AnonExclusive (the kernel's flag PG_anon_exclusive, kpageflags bit 34): "
     "set when the kernel gives a process the page as its own, cleared when fork shares it. "
     "kpageflags reads it from the page's folio, so every page of a large folio shows its "
     "head page's mark, not its own", lambda w: "ae1" in w or "ae0" in w),
    ("uwp", "the entry is uffd-wp (pagemap bit 57)", _has("uwp")),
    ("A", "anonymous (from kpageflags; not the PTE's accessed bit A)", _has("A")),
    ("H", "the head page of a large folio", _has("H")),
    ("T", "a tail page of a large folio", _has("T")),
    ("thp", "part of a transparent huge page (kpageflags' THP bit: a 2 MiB THP or an mTHP "
     "folio)", _has("thp")),
    ("huge", "a hugetlb page (kpageflags KPF_HUGE)", _has("huge")),
    ("Z", "the zero page (or huge zero page)", _has("Z")),
    ("F", "a file page (pagemap bit 61, file or shared; shmem too). Always ae0: "
     "AnonExclusive marks anonymous pages only", _has("F")),
)


_SWAP_NUMBERING = ("; a page held only by the swap cache is mapped by no entry, so it gets "
                   "its number when a process first maps it")


def token_key(ids: tuple[str, ...] | None = None) -> Table:
    """The key of the page token, only the parts that some stored token of the scenarios
    ``ids`` shows (every scenario when None): a page keys what its own tables show."""
    from .observe import unrle
    data = load_stored()["scenarios"]
    bad = [i for i in ids or () if i not in data]
    if bad:
        raise ScenarioError(f"token_key(ids): {', '.join(map(repr, bad))} is not a stored "
                            "scenario id (scenarios.BY_ID)")
    seen = {_words(t) for sid in (ids or tuple(data)) for st in data[sid]["steps"]
            for t in unrle(st["cells"])}
    rows = tuple((part, meaning) for part, meaning, shows in TOKEN_KEY
                 if any(shows(w) for w in seen))
    if any(_has("swp")(w) for w in seen):       # only a key whose tables show swap entries
        rows = tuple((p, m + _SWAP_NUMBERING if p == TOKEN_KEY[0][0] else m) for p, m in rows)
    text = "\n".join(f"{p:16s} {m}" for p, m in rows)
    return Table("the page token, e.g. orig x1 m1 ae1 A·H·thp: its parts", ("part", "meaning"),
                 rows, text)


def _plain_row(sid: str) -> str:
    """The plain row a scenario is compared with: ``f`` for a shared mapping (one copy for
    both processes: fork copies no entry, no write copies), else ``a`` (4K pages) or ``c``
    (large folios), the private rows that notebook 07's copy-on-write rules predict."""
    sc = BY_ID[sid]
    return "f" if sc.shared else "a" if sc.folio == "4K" else "c"


def _kind(cell: str) -> str:
    """A report cell without its counts: "shared 48, copied 16" -> "shared #, copied #".
    ", uwp kept" is dropped too: fork copying an entry with its uffd-wp bit is what plain
    copying does, so only a child that lost the bit ("uwp cleared") differs."""
    return re.sub(r"\d+", "#", cell).replace(" (PMD)", "").replace(", uwp kept", "")


def unexpected(row: Row, plain: Row) -> tuple[str, ...]:
    """The columns in which ``row`` differs from the plain private-memory row ``plain``
    (a write the script does not make, ``-``, is never a difference)."""
    return tuple(c for c in COLUMNS if "-" not in (row.outcome[c], plain.outcome[c])
                 and _kind(row.outcome[c]) != _kind(plain.outcome[c]))


def script_text(sid: str) -> str:
    """The script scenario ``sid`` really ran, read from its stored steps (so a scenario
    that reads first, or has fewer writes, shows it): "fork · child reads 0 (1 fault) ·
    child writes 0 · parent writes 0 · ... · child exits · parent writes 2".  A read and a
    write before fork carry their fault count: no column of the row shows them."""
    words, unprotected = [], set()
    for s in load_stored()["scenarios"][sid]["steps"]:
        if s["name"] == "parent after child exit":
            words.append("child exits")
        elif s["op"]:
            verb = "reads" if s["op"]["kind"] == "read" else "writes"
            if verb == "writes" and BY_ID[sid].writer_mprotect and s["who"] not in unprotected:
                unprotected.add(s["who"])       # j1: mprotect(RW) before its first write
                verb = "mprotect(RW)s, writes"
            when = ""
            if s["name"] == "parent writes before fork":
                # no later column shows this write, so its fault count is said here (mp1/mp2)
                when = f" before fork ({_faults(s['op'])})"
            elif verb == "reads":
                # nor a read's: its count tells whether fork copied the entry (0 faults)
                when = f" ({_faults(s['op'])})"
            words.append(f"{s['who']} {verb} {s['op']['page']}{when}")
        elif s["name"] == "after fork" and s["who"] == "child":
            words.append("fork")
    return " · ".join(words)


def _faults(op: dict[str, Any]) -> str:
    """An access's outcome as the script line says it: "1 fault", "0 faults" or the signal.

    >>> _faults({"faults": 1}), _faults({"faults": 0}), _faults({"signal": "SIGSEGV"})
    ('1 fault', '0 faults', 'SIGSEGV')
    """
    if "signal" in op:
        return str(op["signal"])
    n = op["faults"]
    return f"{n} fault{'' if n == 1 else 's'}"


def script_departures(fold: str = "") -> Table:
    """The stored rows whose script departs from the usual order (fork, the child and the
    parent write w1, the parent and the child write w2, the child exits, the parent writes
    w3), read from their stored steps: the writes they skip (``-`` in their columns) and the
    steps they add.  ``fold``: show the table folded under this summary line.

    >>> dict(script_departures().rows)["j1"]
    'each process mprotect(RW)s before its first write'
    """
    from .report import _WRITE_COLUMN
    out = []
    for sid, sc in load_stored()["scenarios"].items():
        names = {s["name"] for s in sc["steps"]}
        what = [f"no {col}" for step, col in _WRITE_COLUMN.items() if step not in names]
        what += [f"adds: {s['who']} {'reads' if s['op']['kind'] == 'read' else 'writes'} "
                 f"{s['op']['page']}{' before fork' if 'before fork' in s['name'] else ''}"
                 for s in sc["steps"] if s["op"] and s["name"] not in _WRITE_COLUMN]
        if BY_ID[sid].writer_mprotect:
            what.append("each process mprotect(RW)s before its first write")
        if what:
            out.append((sid, "; ".join(what)))
    rows = tuple(out)
    return Table(f"the {len(rows)} of {len(load_stored()['scenarios'])} scripts that depart "
                 "from the usual order", ("row", "how its script departs"), rows,
                 "\n".join(f"{r:4s} {w}" for r, w in rows), fold=fold)


BATCH_HEAD = ("row", "pages", "one copy call", "why the call ended there")


def fork_batches(ids: tuple[str, ...]) -> Table:
    """Where the model's fork split its batches in rows ``ids``: one line per call of fork's
    copy function (``copy_present_ptes()``, v6.17) on a present entry, with the pages it
    copied and why it ended (:data:`pkmm.kernels.common.STOPS`).  The kernel exports no
    batch borders, so this is the model's run of each row, whose tokens agree with the
    kernel's; the rows' cells show the outcome is that of one unsplit batch.

    >>> [r[1] for r in fork_batches(("r1",)).rows]
    ['pg0–pg7', 'pg24–pg31']
    """
    from ..kernels.common import stop_words
    from .layouts_model import BASE, P
    if not isinstance(ids, tuple) or not ids or any(i not in BY_ID for i in ids):
        raise ScenarioError(f"fork_batches(ids): ids={ids!r} must be a non-empty tuple of "
                            "scenario ids (scenarios.BY_ID)")
    kernel = stored_kernel(load_stored())
    rows = []
    for sid in ids:
        backend = ModelBackend(BY_ID[sid], kernel)
        backend.fork()
        for st in backend.result.steps:
            if st.action == "nonpresent":
                continue
            first = (st.addr - BASE) // P
            span = f"pg{first}" if st.nr == 1 else f"pg{first}–pg{first + st.nr - 1}"
            what = f"{st.action}s {st.nr} PTE{'' if st.nr == 1 else 's'}"
            rows.append((label(sid), span, what, stop_words(st.stop) if st.stop else "-"))
    text = "\n".join("  ".join(r) for r in [BATCH_HEAD, *rows])
    return Table(f"the model's fork ({kernel}): one line per copy call", BATCH_HEAD,
                 tuple(rows), text)


def why_text(sid: str) -> str:
    """Why row ``sid`` is not plain copy-on-write (:data:`WHY`), with the scenario's own
    page numbers put in where the reason names a script page ({w1}, {w2}, {w3})."""
    sc = BY_ID[sid]
    return WHY[sid].format(w1=sc.w1, w2=sc.w2, w3=sc.w3)


def _and(words: tuple[str, ...] | list[str]) -> str:
    """``("a", "c", "f")`` -> ``"a, c and f"``."""
    return " and ".join(filter(None, (", ".join(words[:-1]), words[-1])))


TOPIC_HEAD = ("#", "scenario", *COLUMNS, "result")


def _topic_rows(groups: list[tuple[str, str, tuple[str, ...]]], fold: str = "",
                reference: tuple[str, ...] = (), here: str = "this page") -> Table:
    """The rows of ``groups`` under their headings; ``reference``: plain rows shown after
    them under their own heading, for the reader to compare with (not counted); ``here``:
    what a group taught in no earlier notebook is "new in" (the reference page, or the
    notebook that asks for a prediction)."""
    rows = {r.id: r for r in stored_rows()}
    body: list[tuple[str, ...]] = []
    marks: set[tuple[int, int]] = set()
    sections: list[tuple[int, str]] = []
    subrows: list[tuple[int, str]] = []
    about: list[tuple[int, str]] = []
    text = [_stored_header()]
    first = len(TOPIC_HEAD) - len(COLUMNS) - 1          # index of the first outcome column
    for title, taught, ids in groups:
        many = "s" if "," in taught else ""
        heading = f"{title} — " + (f"taught in notebook{many} {taught}" if taught else
                                    f"new in {here}, which defines its terms")
        sections.append((len(body), heading))
        text.append(f"\n== {heading}")
        odd = {i: unexpected(rows[i], rows[_plain_row(i)]) for i in ids}
        for i in sorted(ids, key=lambda i: not odd[i]):
            r = rows[i]
            cells = (label(i), r.title, *(r.outcome[c] for c in COLUMNS),
                     "agree" if r.agrees else "DIFFER")
            cols = {first + COLUMNS.index(c) for c in odd[i]}
            marks.update((len(body), j) for j in cols)
            text.append("  ".join(("*" if j in cols else "") + v for j, v in enumerate(cells)))
            setup = f"set-up: {ABOUT[i]} — script: {script_text(i)}"
            about.append((len(body), setup))
            text.append(f"      {setup}")
            if odd[i]:
                why = f"not as in row {_plain_row(i)}: {why_text(i)}"
                subrows.append((len(body), why))
                text.append(f"      {why}")
            body.append(cells)
    counted = len(body)
    plains = " or ".join(dict.fromkeys(_plain_row(i) for g in groups for i in g[2]))
    if reference:
        heading = (f"the plain row{'s' if len(reference) > 1 else ''} "
                   f"{_and(reference)}, which the "
                   f"{'row above is' if len(body) == 1 else 'rows above are'} judged against")
        sections.append((len(body), heading))
        text.append(f"\n== {heading}")
        for i in reference:
            r = rows[i]
            cells = (label(i), r.title, *(r.outcome[c] for c in COLUMNS),
                     "agree" if r.agrees else "DIFFER")
            text.append("  ".join(cells))
            setup = f"set-up: {ABOUT[i]} — script: {script_text(i)}"
            about.append((len(body), setup))
            text.append(f"      {setup}")
            body.append(cells)
    done = [r for i, r in rows.items() if not r.skipped and any(i in g[2] for g in groups)]
    total = f"agree: {sum(r.agrees for r in done)}/{len(done)}"
    agree = sum(r.agrees for r in done)
    if counted == 1:
        said = ("the model's row agrees with the kernel's" if agree else
                "the model's row DIFFERS from the kernel's")
        said += (f"; it is not as its plain row {plains} predicts (red outlines: the cells "
                 "unlike the plain row's; the reason under the row)" if subrows
                 else f"; it is as its plain row {plains}")
    else:
        said = (f"all {agree} rows agree with the kernel" if agree == counted else
                f"{agree} of {counted} rows agree with the kernel")
        said += (f"; {len(subrows)} of them are not as their plain row ({plains}) "
                 "predicts (red outlines: the cells unlike the plain row's; the reason "
                 "under the row)")
    caption = f"{_stored_header()}: {said}"
    return Table(caption, TOPIC_HEAD, tuple(body), "\n".join([*text, total]), (total,),
                 _shade_result, frozenset(marks), tuple(sections), tuple(subrows),
                 about=tuple(about), fold=fold)


def report_by_topic() -> Table:
    """The stored report grouped by what the rows test (:data:`TOPICS`).  In each group the
    rows the plain copy-on-write rules do not predict come first: their unexpected cells
    have a red outline and a line under the row says why (:data:`WHY`); every row has a grey
    line with its set-up (:data:`ABOUT`) and the script it ran."""
    return _topic_rows(list(TOPICS))


def report_group(n: int, without: tuple[str, ...] = (), example: str = "",
                 cited: bool = False) -> Table:
    """Group ``n`` of :data:`TOPICS` (1 = the first), as :func:`report_by_topic` shows it,
    less the rows ``without`` (the ones a page asks the reader to predict first and shows
    with :func:`report_answer`).  With ``example`` (a row id of the group), the row
    ``example`` stays open and the whole table is folded under a line that counts its
    rows: a reference page keeps its evidence one click away.  With ``cited``, the plain
    rows (a, c or f) the group's rows are judged against come too: those of another group
    after the rows, under their own heading, and, with ``example``, open beside it, so a
    red "not as in row a" line has row a in sight."""
    if not isinstance(n, int) or not 1 <= n <= len(TOPICS):
        raise ScenarioError(f"report_group(n): n={n!r} is not a group number; use 1 to "
                         f"{len(TOPICS)} (the groups of scenarios.TOPICS)")
    title, taught, ids = TOPICS[n - 1]
    if not isinstance(without, tuple) or any(i not in ids for i in without):
        raise ScenarioError(f"report_group(n, without): without={without!r} must be a tuple "
                            f"of ids of group {n}: {', '.join(ids)}")
    shown = tuple(i for i in ids if i not in without)
    if not isinstance(example, str) or (example and example not in shown):
        raise ScenarioError(f"report_group(n, example): example={example!r} is not a row "
                            f"shown in group {n}; use one of {', '.join(shown)}")
    if not isinstance(cited, bool):
        raise ScenarioError(f"report_group(n, cited): cited={cited!r} must be True or False "
                            "(show the plain rows the group is judged against, or not)")
    cite = tuple(sorted({_plain_row(i) for i in shown})) if cited else ()
    table = _topic_rows([(title, taught, shown)],
                        reference=tuple(p for p in cite if p not in shown))
    if example:
        labels = [r[0] for r in table.rows]
        at = labels.index(label(example))
        odd = sum(i < len(shown) for i, _ in table.subrows)
        which = (f"{odd} of them not as their plain row (red outlines)" if odd else
                 "each as its plain row (a, c or f)")
        keep = tuple(sorted({at, *(labels.index(label(p)) for p in cite)}))
        plains = [p for p in cite if p != example]
        said = "" if not plains else (
            f"row {label(example)}, and the plain row{'s' if len(plains) > 1 else ''} "
            f"{_and(plains)} the group's rows are judged against "
            f"(all {len(shown)} rows of group {n} below)")
        return replace(table, preview=keep, preview_caption=said, fold=(
            f"all {len(shown)} rows of group {n}, {which} — open for the full table"))
    rows = {r.id: r for r in stored_rows(shown)}
    if table.subrows or any(_plain_row(i) == i for i in shown) or not all(
            rows[i].agrees for i in shown):
        return table
    # every row behaves as its plain row, which is not itself in the group: the rows are
    # reference, shown folded under the one line that sums them up
    return replace(table, fold=f"{len(shown)} rows, all agree with the kernel and all are as "
                               "their plain row (a, c or f) — open for the rows")


def plain_rows() -> Table:
    """The plain rows ``a``, ``c`` and ``f`` (private 4K pages, private large folios, a shared
    mapping), open in one table: every other row is judged against one of them."""
    ids = ("a", "c", "f")
    table = _topic_rows([("the plain rows: copy-on-write of private 4K pages (a) and large "
                          "folios (c), and a shared mapping (f)", "02, 06, 07 (f: 05)", ids)])
    agree = sum(r.agrees for r in stored_rows(ids))
    # the caption _topic_rows writes ("0 of them are not as their plain row") reads oddly
    # for the plain rows themselves
    said = (f"all {agree} agree with the kernel" if agree == len(ids) else
            f"{agree} of {len(ids)} agree with the kernel")
    return replace(table, caption=f"{_stored_header()}: the {len(ids)} plain rows; {said}")


def report_answer(ids: tuple[str, ...]) -> Table:
    """The report rows ``ids`` (one group's or several), folded: a notebook shows the
    answer to its prediction closed, under "Answer", until the reader opens it."""
    if not isinstance(ids, tuple) or not ids or any(i not in BY_ID for i in ids):
        raise ScenarioError(f"report_answer(ids): ids={ids!r} must be a non-empty tuple of "
                            "scenario ids (scenarios.BY_ID)")
    # the answers are asked in notebook 09: a group it teaches itself is "new in this notebook"
    # there (hugetlb), not "taught in notebook 09"
    groups = [(t, "" if k == "09" else k, tuple(i for i in g if i in ids)) for t, k, g in TOPICS]
    # the plain rows the answer is judged against, shown with it: a page that asks for
    # one prediction need not show the whole private-memory group for its baseline
    plain = tuple(dict.fromkeys(p for i in ids if (p := _plain_row(i)) not in ids))
    return _topic_rows([g for g in groups if g[2]], reference=plain, here="this notebook",
                       fold=f"Answer: the kernel's row{'s' if len(ids) > 1 else ''} "
                            f"{', '.join(label(i) for i in ids)} (open it after you predicted)")


def headline() -> str:
    """The stored run in one sentence, counted from the stored rows: how many scenarios
    agree with the model, in how many groups, and how many behave differently from their
    plain row (a, c or f)."""
    rows = {r.id: r for r in stored_rows()}
    agree = sum(r.agrees for r in rows.values())
    odd = sum(bool(unexpected(r, rows[_plain_row(i)])) for i, r in rows.items())
    # the header's build name (e.g. "6.18.44-fc-v857") names one kernel build, nothing more:
    # said here, where the reader first meets it, not only under the timing table
    build = _stored_header().split("Linux ", 1)[-1].split(",", 1)[0]
    return (f"{_stored_header()}\n(\"{build}\" only names the kernel build the run used.)\n"
            f"{agree} of {len(rows)} scenarios agree with the model, in "
            f"{len(TOPICS)} groups: every page's token, every access's fault count and value "
            "read, and the region's AnonHugePages, at every step (section 1 says what each "
            "is).\n"
            f"{odd} of the {len(rows)} are not as their plain row "
            "(a, c or f) predicts: the rows with red outlines, each with its reason.")


OVERVIEW_HEAD = ("group", "taught in", "rows", "agree with the kernel",
                 "not as their plain row (a, c or f)")


def report_overview() -> Table:
    """One line per group of :data:`TOPICS`: its rows, how many agree with the kernel, and
    how many behave differently from plain private memory (rows ``a`` / ``c``)."""
    rows = {r.id: r for r in stored_rows()}
    body = []
    for n, (title, taught, ids) in enumerate(TOPICS, 1):
        odd = sum(bool(unexpected(rows[i], rows[_plain_row(i)])) for i in ids)
        body.append((f"{n}. {title}", f"notebook {taught}" if taught else "this page",
                     str(len(ids)), f"{sum(rows[i].agrees for i in ids)}/{len(ids)}",
                     str(odd)))
    w = [max(len(r[k]) for r in [OVERVIEW_HEAD, *body]) for k in range(len(OVERVIEW_HEAD))]
    text = "\n".join("  ".join(v.ljust(x) for v, x in zip(r, w, strict=True)).rstrip()
                     for r in [OVERVIEW_HEAD, *body])
    return Table(_stored_header(), OVERVIEW_HEAD, tuple(body), text)


def fork_tokens(ids: tuple[str, ...], page: int = 0) -> Table:
    """One page's token before fork (parent) and right after it (parent, child), from the
    stored steps: what a row's "child after fork" summary is made of (e.g. the uffd-wp
    ``uwp`` part, which the summary does not show)."""
    from .observe import unrle
    data = load_stored()["scenarios"]
    body = []
    for sid in ids:
        got = {(s["name"], s["who"]): unrle(s["cells"])[page] for s in data[sid]["steps"]
               if s["name"] in ("before fork", "after fork")}
        body.append((label(sid), BY_ID[sid].title, got["before fork", "parent"],
                     got["after fork", "parent"], got["after fork", "child"]))
    head = ("#", "scenario", f"pg{page} before fork", "parent after fork", "child after fork")
    text = "\n".join("  ".join(r) for r in [head, *body])
    return Table(f"{_stored_header()}: page {page}", head, tuple(body), text)


def quick_check(ids: tuple[str, ...] = ("a", "c")) -> str:
    """Probe a few scenarios on this machine (well under a second) or say why not."""
    reason = live_reason()
    if reason:
        return f"live check skipped: {reason}"
    from .run import probe_all
    rows = report(probe_all(ids), model_kernel(detect().kernel))
    # short lines: a static page shows this text unwrapped only up to its width
    head = (f"live, on the machine that ran this cell (on a static page: the site "
            f"builder's)\n(Linux {detect().kernel}):\n")
    return head + "\n".join(
        f"{r.id}: " + (f"skipped: {r.skipped}" if r.skipped else
                       "kernel and model agree" if r.agrees else
                       differ_text(r)) for r in rows)


def differ_text(r: Row) -> str:
    """A differing row's line, naming what differs: each observable is one step's token
    of one page, its access (value read, fault count) or AnonHugePages, so a reader sees
    which three when it says 3: "DIFFER in 2 observables: pg3 at 'after fork' [child],
    the access at 'parent writes w1 (second writer)' [parent]"."""
    what = {"op": "the access (value, faults)", "steps": "the number of steps"}
    parts = [f"{what.get(d.what, d.what)} at {d.step!r} [{d.who}]" for d in r.diffs]
    n = len(parts)
    return f"DIFFER in {n} observable{'' if n == 1 else 's'}: " + "; ".join(parts)


def live_report() -> str:
    """Every scenario on this machine, if opted in and possible; else why not."""
    if not live_requested():
        return f"full live run not requested (set {LIVE_ENV}=1 and re-run this cell)"
    reason = live_reason()
    if reason:
        return f"full live run skipped: {reason}"
    from .run import probe_all
    rows = report(probe_all(), model_kernel(detect().kernel))
    return render(rows, f"live: Linux {detect().kernel}")


def stored_timing() -> str:
    d = load_timing()
    runs = pooled(d)
    rows = records(runs)
    fits = {m: fit_batch_cost(rows, m) for m in ("fresh", "repeat")}
    sessions = max(r["sessions"] for r in runs)
    return (f"fork() of a private anon region, Linux {d['machine']['kernel']}, "
            f"{d['machine']['cpus']} CPUs:\nminimum of up to "
            f"{max(r['rounds'] for r in runs)} interleaved rounds in {sessions} "
            f"session{'' if sessions == 1 else 's'} (a 4K sample before every other "
            "layout),\nminus the minimum of the same Python worker forked without the "
            "region\n" + render_timing(rows) +
            "\nbatched copy path, 1 GiB:" + "".join(
                f"\n  {m}: {f['per_batch_ns']:.0f} ns per folio + {f['per_pte_ns']:.1f} ns per "
                f"PTE (max error {f['max_rel_err']:.0%})" for m, f in fits.items()))


def live_timing(size: str = "256M") -> str:
    """REPEAT fork timing on this machine, if opted in and possible."""
    if not live_requested():
        return f"live timing not requested (set {LIVE_ENV}=1)"
    reason = live_reason()
    if reason:
        return f"live timing skipped: {reason}"
    from .timing import available_folios, measure_interleaved, parse_size
    run = measure_interleaved(parse_size(size), [f for f in available_folios() if f != "4K"],
                              mode="repeat", rounds=5)
    return render_timing(records([run])) if run else "live timing skipped: not possible here"


def plot_timing(size_bytes: int = 1 << 30) -> Any:
    """ns per 4K page against folio size (stored data), FRESH and REPEAT."""
    import matplotlib.pyplot as plt
    d = load_timing()
    rows = records(pooled(d))
    fig, ax = plt.subplots(figsize=(9.6, 3.4))
    for mode, style in (("fresh", "o-"), ("repeat", "s--")):
        rs = {r["folio"]: r for r in rows
              if r["size_bytes"] == size_bytes and r["mode"] == mode}
        xs = [f for f in FOLIOS if f in rs]
        # the batched PTE-mapped layouts joined; 4K pages take fork's unbatched path and a
        # PMD mapping is another regime (no PTEs at all), so neither point is joined to them
        pte = [k for k, f in enumerate(xs) if batched(f)]
        line, = ax.plot(pte, [rs[xs[k]]["ns_per_page"] for k in pte], style,
                        label=f"{mode} (batched, PTE-mapped)")
        for k in (k for k, f in enumerate(xs) if f == "4K"):
            v = rs["4K"]["ns_per_page"]
            ax.plot([k], [v], style[0], color=line.get_color(),
                    label=f"{mode}, 4K (unbatched: not joined)")
            # labelled too: the 4K points are the baseline every speed-up is measured against
            # to the right of the point, not above it: the FRESH 4K point is the plot's
            # highest, and a label above it would touch the top edge
            ax.annotate(f"{v:.1f} ns", (k, v), xytext=(10, 0), va="center",
                        textcoords="offset points", ha="left", fontsize=8,
                        color=line.get_color())
        pmd = [k for k, f in enumerate(xs) if f == "2M-pmd"]
        # the two PMD points sit near zero on this scale: set apart sideways (so one does
        # not hide the other) and labelled with their value, which the eye cannot read
        dx = -0.15 if mode == "fresh" else 0.15
        for k in pmd:
            v = rs[xs[k]]["ns_per_page"]
            ax.plot([k + dx], [v], style[0], color=line.get_color(), mfc="none", ms=9,
                    label=f"{mode}, PMD-mapped (another regime)")
            up = mode == "fresh"
            ax.annotate(f"{v:.1f} ns", (k + dx, v), xytext=(8 if up else 0, 26 if up else 12),
                        textcoords="offset points", ha="center", fontsize=8,
                        color=line.get_color())
        # two lines for the 2M layouts (side by side, "2M-pte" and "2M-pmd" touch), the
        # hyphen kept so the ticks read as the table's names
        ax.set_xticks(range(len(xs)), [f.replace("-", "-\n") for f in xs])
        if mode == "fresh" and pmd:
            ax.axvline(pmd[0] - 0.5, color="grey", lw=0.8, ls="-.")
        # the fitted batch cost of each state, per 4K page: per_pte + per_batch / n, drawn
        # over the layouts fit_batch_cost() fits, so the reader sees which points it does not
        fit = fit_batch_cost(rows, mode)
        on = [(k, folio_pages(f)) for k, f in enumerate(xs) if batched(f)]
        ax.plot([k for k, _ in on], [fit["per_pte_ns"] + fit["per_batch_ns"] / n
                                     for _, n in on], ":", lw=1.4,
                color="black" if mode == "fresh" else "dimgray",
                label=f"{mode} fit: {fit['per_batch_ns']:.0f} ns per folio + "
                      f"{fit['per_pte_ns']:.1f} ns per PTE")
    # A linear axis: the levelling-off from 4K to 2M-pte is the point, and the
    # PMD-mapped point near zero still reads as "a different regime".
    # a little room below zero, so the PMD markers at ~1 ns are not cut by the axis
    ax.set_ylim(bottom=-0.04 * ax.get_ylim()[1])
    ax.set_ylabel("ns per 4K page")
    ax.set_xlabel("folio layout")
    ax.set_title(f"fork() cost per page, {size_bytes >> 30} GiB region, "
                 f"Linux {d['machine']['kernel'].split('-')[0]}")
    # beside the plot, not over it: the top right holds the 4K points
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    fig.tight_layout()
    return fig


def timing_picture(size_bytes: int = 1 << 30) -> Any:
    """:func:`plot_timing` as a PNG with an alternative text made from the same numbers."""
    every = records(pooled(load_timing()))
    rows = [r for r in every if r["size_bytes"] == size_bytes]
    parts = []
    for mode in ("fresh", "repeat"):
        rs = {r["folio"]: r for r in rows if r["mode"] == mode}
        fit = fit_batch_cost(every, mode)
        pts = ", ".join(f"{f} {rs[f]['ns_per_page']:.1f}" for f in FOLIOS if f in rs)
        parts.append(f"{mode.upper()}: {pts}; its dotted fit line, {fit['per_batch_ns']:.0f} ns "
                     f"per folio + {fit['per_pte_ns']:.1f} ns per PTE, runs over the batched "
                     "layouts")
    return Picture(plot_timing(size_bytes),
                         "Line chart: fork() cost in ns per 4K page against folio layout, "
                         f"{size_bytes >> 30} GiB region. The cost per page falls as the "
                         "folio grows, then levels off; the 4K points stand apart (unbatched) "
                         "and the 2M-pmd points, near zero, are another regime. "
                         + ". ".join(parts) + ".")


SWAP_HEAD = ("step", "parent's PTE (kernel)", "swap slot and swap cache (model)",
             "child's PTE (kernel)", "the access")


class _SwapWatch(ModelBackend):
    """The model run of a swapped-out scenario, noting after each step who still holds a
    swap entry for one page's slot and what the swap cache keeps for it."""

    def __init__(self, sc: Scenario, page_no: int) -> None:
        super().__init__(sc, stored_kernel(load_stored()))
        pte = self.procs["parent"].pte(page(page_no))
        if pte is None or pte.swp is None or pte.swp.kind != "swap":
            raise ScenarioError(f"swap_steps(sid, page): page {page_no} of {sc.id} is not "
                                "swapped out before fork; use a swapped-out row (s1, s2)")
        self.page_no, self.slot = page_no, pte.swp.offset
        self.seen: list[tuple[int, tuple[str, ...], int | None]] = []

    def _note(self) -> None:
        slot = self.procs["parent"].machine.swap.get(self.slot)
        holders = tuple(w for w, p in self.procs.items() if not getattr(p, "exited", False) and
                        (e := p.pte(page(self.page_no))) is not None and e.swp is not None
                        and e.swp.offset == self.slot)
        cached = slot.cache.pages[0].pfn if slot is not None and slot.cache else None
        self.seen.append((slot.count if slot is not None else -1, holders, cached))

    def observe(self, name: str, who: str) -> Step:
        step = super().observe(name, who)
        self._note()
        return step

    def access(self, name: str, who: str, i: int, *, write: bool) -> Step:
        step = super().access(name, who, i, write=write)
        self.seen[-1:] = []          # access() observes once inside: keep one note per step
        self._note()
        return step


def _slot_text(count: int, holders: tuple[str, ...], cached: str | None) -> str:
    if count < 0:
        return "slot freed · swap cache: nothing"
    who = " and ".join(holders) if holders else "no entry"
    cache = f"holds {cached}" if cached else "nothing"
    return f"slot named by: {who} · swap cache: {cache}"


def swap_steps(sid: str = "s1", page_no: int | None = None, upto: str = "",
               fold: str = "") -> Table:
    """A swapped-out page through scenario ``sid``: the parent's and the child's PTE (the
    kernel's tokens, each process's latest record) with the swap slot between them (who
    still holds an entry for it, and the page the swap cache keeps: the model's state,
    which the kernel does not export, from a run that agrees with it token for token).
    The swap cache's page is named only once a PTE has mapped it (before that it is "the
    page written out": a label is never used before its page appears).  With ``upto``, the
    rows end at the first step of that name (the set-up, without the answer); with
    ``fold``, the table is folded under that line."""
    if sid not in BY_ID:
        raise ScenarioError(f"swap_steps(sid): sid={sid!r} is not a scenario id; use a "
                            "swapped-out row such as 's1' or 's2'")
    from .observe import label_steps, op_text, unrle
    sc = BY_ID[sid]
    i = sc.w1 if page_no is None else page_no
    if i is None or not 0 <= i < sc.npages:
        raise ScenarioError(f"swap_steps(sid, page_no): page_no={page_no!r} is not a page "
                            f"of {sid} (0 to {sc.npages - 1})")
    watch = _SwapWatch(sc, i)
    steps = run_script(sc, watch)
    label_steps(steps)
    names = {p.pfn: c.split()[0] for s in steps for p, c in zip(s.pages, s.cells, strict=True)
             if p.pfn is not None}
    stored = load_stored()["scenarios"][sid]["steps"]
    if [s["name"] for s in stored] != [s.name for s in steps]:
        raise ScenarioError(f"swap_steps(sid): the stored steps of {sid} do not match the "
                            "model's script; re-run the stored probe")
    if upto and upto not in [s["name"] for s in stored]:
        raise ScenarioError(f"swap_steps(sid, upto): upto={upto!r} is not a step of {sid}; "
                            f"use one of: {', '.join(dict.fromkeys(s['name'] for s in stored))}")
    last = {"parent": "", "child": "(no child yet)"}
    rows: list[tuple[str, ...]] = []
    marks: set[tuple[int, int]] = set()
    shown: set[str] = set()         # the page names a token has shown so far
    stored_names: list[str] = []    # each row's stored step name (upto names one)
    for s, (count, holders, pfn) in zip(stored, watch.seen, strict=True):
        last[s["who"]] = unrle(s["cells"])[i]
        shown.update(c.split()[0] for c in unrle(s["cells"]))
        if rows and stored_names[-1] == s["name"]:  # "after fork": child, then parent
            rows[-1] = (s["name"], last["parent"], *rows[-1][2:])
            continue
        k = len(rows)
        if s["name"] == "parent after child exit":
            last["child"] = "(exited)"
        cached = None if pfn is None else names.get(pfn, "a page read back, mapped by nobody")
        if cached in names.values() and cached not in shown:
            cached = "the page written out, mapped by nobody"
        if upto and rows and stored_names[-1] == upto:
            break
        stored_names.append(s["name"])
        rows.append((script_name(sc, s["name"]), last["parent"],
                     _slot_text(count, holders, cached),
                     last["child"], op_text(s["op"])))
        if s["op"] and s["op"].get("page") == i:
            marks.add((k, 1 if s["who"] == "parent" else 3))
    text = "\n".join("  ".join(r) for r in [SWAP_HEAD, *rows])
    which = next((f" ({w})" for w in ("w1", "w2", "w3") if getattr(sc, w, None) == i), "")
    return Table(f"{sid}: {sc.title}: page {i}{which} at each step", SWAP_HEAD,
                 tuple(rows), text, shade=_shade_token, marks=frozenset(marks),
                 model_cols=frozenset({2}),
                 legend="italic on grey: the model's column, the other columns are the "
                        "kernel's · each step records the process it names; the other "
                        "process's column "
                        "repeats its last record · rows for steps on other pages repeat this "
                        "page's state: those steps do not touch it · yellow: a page that was "
                        "not mapped before fork (n1, n2 … numbered as the token key says; every "
                        "page read back from swap is one) · dashed box: this page, read or "
                        "written by the step", fold=fold, mark="access")


UFFD_HEAD = ("memory", "no fork events", "fork events")


def _child_marks(sid: str) -> str:
    """What the child's entries hold right after fork, from the stored tokens."""
    from .observe import unrle
    child = [unrle(s["cells"]) for s in load_stored()["scenarios"][sid]["steps"]
             if s["name"] == "after fork" and s["who"] == "child"][0]
    present = [c for c in child if not c.startswith("—")]
    if not present:
        return f"{sid}: no entries (fork copied none)"
    kept = all("uwp" in c.split() for c in present)
    return f"{sid}: entries copied, uwp {'kept' if kept else 'cleared'}"


NOT_ASKED = "not asked"
# the kernel's order: folio_needs_cow_for_dma() tests the process's mark, then
# folio_maybe_dma_pinned(); __folio_try_dup_anon_rmap() then tests each page's AnonExclusive
PIN_HEAD = ("process marked MMF_HAS_PINNED (fact 1)?", "maybe pinned (fact 2)?",
            "page AnonExclusive (fact 3)?", "fork")


def pin_decisions() -> Table:
    """fork's decision for one private anonymous 4K page, from the three facts of the
    pin rule: each row runs the model's ``folio_try_dup_anon_rmap_pte()`` (include/linux/
    rmap.h, v6.17) on a page set up as the row says, so the table is the model's rule, not a
    copy of it.  "not asked": an input the decision does not look at, as an earlier one
    already decided."""
    from ..folio import GUP_PIN_COUNTING_BIAS
    from ..machine import Machine
    from ..mm import MmStruct
    from ..rmap import folio_try_dup_anon_rmap_pte
    from ..vma import Vma

    def fork_does(marked: bool, exclusive: bool, pinned: bool) -> str:
        m = Machine()
        parent, child = MmStruct(m, "parent"), MmStruct(m, "child")
        parent.has_pinned = marked
        src = Vma(parent, 0x200000, 0x201000, 0, "anon")
        dst = Vma(child, 0x200000, 0x201000, 0, "anon")
        folio = m.alloc_folio(0, "anon")
        folio.refcount = 1 + (GUP_PIN_COUNTING_BIAS if pinned else 0)
        folio.pages[0].anon_exclusive = exclusive
        ret = folio_try_dup_anon_rmap_pte(folio, folio.pages[0], dst, src)
        return "copies it for the child" if ret else "shares"

    cases = ((False, True, True), (True, False, True), (True, True, False), (True, True, True))
    rows = []
    for marked, pinned, exclusive in cases:
        shown = ["yes" if marked else "no",
                 ("yes" if pinned else "no") if marked else NOT_ASKED,
                 ("yes" if exclusive else "no") if marked and pinned else NOT_ASKED]
        rows.append((*shown, fork_does(marked, exclusive, pinned)))
    text = "\n".join("  ".join(r) for r in [PIN_HEAD, *rows])
    return Table("fork's decision for each page (the model's v6.17 rule)", PIN_HEAD,
                 tuple(rows), text)


def uffd_grid() -> Table:
    """The uffd-wp rows as a 2x2 grid: private or shmem memory against whether the monitor
    asked for fork events, each cell what the child's entries hold after fork.  The axes
    are the set-ups' own declarations (the model VMA's ``uffd_fork``, the scenario's
    ``shared``); the cells are the stored kernel tokens."""
    from .layouts_model import build
    cells: dict[tuple[bool, bool], str] = {}
    for sid, sc in BY_ID.items():
        vma = build(sc, stored_kernel(load_stored())).vmas[0]
        if userfaultfd_wp(vma):
            cells[sc.shared, vma.uffd_fork] = _child_marks(sid)
    if len(cells) != 4:
        raise ScenarioError(f"uffd_grid(): the stored run has {len(cells)} of the 4 uffd-wp "
                            "set-ups (private/shmem x fork events); re-run the stored probe")
    rows = tuple((kind, cells[shared, False], cells[shared, True])
                 for kind, shared in (("private anonymous", False), ("shmem", True)))
    text = "\n".join("  ".join(r) for r in [UFFD_HEAD, *rows])
    return Table(f"{_stored_header()}: the child's entries right after fork", UFFD_HEAD,
                 rows, text)


def batch_fit(mode: str = "fresh") -> dict[str, float]:
    """The stored fit of ns per folio = per_batch + per_pte * n (1 GiB region)."""
    return fit_batch_cost(records(pooled(load_timing())), mode)


def batch_fit_text(mode: str = "fresh", size_bytes: int = 1 << 30) -> str:
    """:func:`batch_fit` in two lines: the fitted rule and its largest error, then a batch of
    one beside a measured 4K page (which takes the unbatched path) at ``size_bytes``.

    >>> batch_fit_text().splitlines()[1].startswith("a batch of one: ")
    True
    """
    fit = batch_fit(mode)
    one_4k = [r["ns_per_page"] for r in records(pooled(load_timing()))
              if r["folio"] == "4K" and r["mode"] == mode and r["size_bytes"] == size_bytes]
    if not one_4k:
        raise StoredDataError(f"batch_fit_text: no stored 4K run for mode={mode!r} at "
                         f"size_bytes={size_bytes}; use 1 << 30 (1 GiB)")
    size = f"{size_bytes >> 30} GiB" if size_bytes % (1 << 30) == 0 else f"{size_bytes >> 20} MiB"
    return (f"{fit['per_batch_ns']:.0f} ns per folio + {fit['per_pte_ns']:.1f} ns per PTE; "
            f"largest error {fit['max_rel_err']:.0%}\n"
            f"a batch of one: {fit['per_batch_ns'] + fit['per_pte_ns']:.0f} ns; a 4K page, "
            f"unbatched ({size}, {mode.upper()}): {one_4k[0]:.1f} ns")


__all__ = ["BATCH_HEAD", "LIVE_ENV", "MARK_STYLE", "MODEL_BG", "OVERVIEW_HEAD", "STEPS_LEGEND",
           "TOPIC_HEAD", "FolioMoment",
           "FolioMoments", "FolioStrip", "PinFlow", "Table", "batch_fit", "batch_fit_text",
           "folio_moments", "fork_batches",
           "folio_pages", "folio_strip", "fork_tokens", "live_report",
           "live_requested", "live_timing", "pin_decisions", "pin_flow", "plot_timing",
           "timing_picture",
           "quick_check", "report_answer", "report_by_topic", "report_group", "report_overview",
           "report_table", "scenario_steps", "script_departures", "script_text", "steps_table",
           "stored_report", "stored_rows", "stored_timing", "swap_steps", "uffd_grid", "unexpected",
           "why_text"]


# A picture is a card with its own text and background colour, so it reads the same in a light
# or a dark theme (JupyterLab's, a static page's); inside it, arrows and frames use currentColor.
_CARD = ("background:#fafafa;color:#222;border:1px solid #ccc;border-radius:8px;"
         "padding:0.5em 0.7em;margin:0.5em 0;display:inline-block;max-width:100%;")
_BOX = "border:1px solid currentColor;border-radius:6px;padding:0.35em 0.6em;"
_END = {"shares": "background:#dbeafe;color:#1e3a5f",
        "copies it for the child": "background:#fde2cf;color:#6b2a0a"}


def _arrow(label: str) -> str:
    """A short right arrow labelled ``label`` (inline SVG, no external asset)."""
    return ('<span style="display:inline-flex;flex-direction:column;align-items:center;'
            f'font-size:0.8em;padding:0 0.3em">{html.escape(label)}'
            '<svg width="44" height="10" viewBox="0 0 44 10" aria-hidden="true">'
            '<line x1="0" y1="5" x2="36" y2="5" stroke="currentColor" stroke-width="1.5"/>'
            '<polygon points="36,1 44,5 36,9" fill="currentColor"/></svg></span>')


@dataclass(frozen=True)
class PinFlow:
    """:func:`pin_decisions` drawn as its decision path: ``questions`` in the kernel's order,
    each with what fork does when the answer is "no" (``on_no``), and ``on_yes``, what fork
    does when the last answer is "yes".  Read from the table's rows, so it cannot disagree."""

    questions: tuple[str, ...]
    on_no: tuple[str, ...]
    on_yes: str
    table: Table

    def __str__(self) -> str:
        lines = [f"{i}. {q} no -> fork {o}" for i, (q, o) in
                 enumerate(zip(self.questions, self.on_no, strict=True), 1)]
        return "\n".join([*lines, f"   yes to all three -> fork {self.on_yes}"])

    def __repr__(self) -> str:
        return f"<pin decision picture: {len(self.questions)} questions>"

    def _repr_html_(self) -> str:
        # one question per line, top to bottom in the kernel's order: its "no" points right to
        # what fork does, its "yes" down to the next question; a grid keeps that shape at any
        # width (a wrapping row of boxes would break an arrow from its target)
        def end(outcome: str) -> str:
            return (f'<div style="{_BOX}{_END[outcome]};font-weight:bold;justify-self:start">'
                    f"fork {html.escape(outcome)}</div>")

        down = ('<div style="display:flex;align-items:center;gap:0.3em;padding-left:1.5em">'
                '<svg width="10" height="22" viewBox="0 0 10 22" aria-hidden="true">'
                '<line x1="5" y1="0" x2="5" y2="15" stroke="currentColor" stroke-width="1.5"/>'
                '<polygon points="1,15 5,22 9,15" fill="currentColor"/></svg>'
                '<span style="font-size:0.8em">yes</span></div><div></div><div></div>')
        cells = []
        for q, no in zip(self.questions, self.on_no, strict=True):
            cells.append(f'<div style="{_BOX}">{html.escape(q)}</div>{_arrow("no")}{end(no)}')
        grid = down.join(cells) + down + end(self.on_yes) + "<div></div><div></div>"
        return ('<div class="pkmm-flow" role="figure" aria-label="fork\'s pin decision" '
                f'style="{_CARD}font-size:0.85em"><div style="display:grid;'
                'grid-template-columns:auto auto auto;align-items:center;row-gap:0.1em">'
                f"{grid}</div></div>")


def pin_flow() -> PinFlow:
    """fork's pin decision for one page as a picture: the questions of
    :func:`pin_decisions`'s columns in the kernel's order, each "no" ending where the table's
    row with that "no" ends, the last "yes" where the all-"yes" row ends.  Raises
    ScenarioError if the rows do not form such a path (one "no" per question, the later
    questions "not asked")."""
    t = pin_decisions()
    questions = t.head[:-1]
    on_no = []
    for k in range(len(questions)):
        ends = [r[-1] for r in t.rows
                if r[:k] == ("yes",) * k and r[k] == "no"
                and all(c == NOT_ASKED for c in r[k + 1:-1])]
        if len(ends) != 1:
            raise ScenarioError(f"pin_decisions(): question {k + 1} needs exactly one 'no' "
                                f"row, found {len(ends)}; fix the table's cases")
        on_no.append(ends[0])
    yes = [r[-1] for r in t.rows if r[:-1] == ("yes",) * len(questions)]
    if len(yes) != 1:
        raise ScenarioError("pin_decisions(): needs exactly one all-'yes' row; fix its cases")
    return PinFlow(questions, tuple(on_no), yes[0], t)


@dataclass(frozen=True)
class FolioStrip:
    """One folio's pages just before fork, read from the model's state after a scenario's
    set-up: ``exclusive[i]`` is page i's AnonExclusive mark, ``pinned`` the pages a pin of
    this process holds, ``pincount`` the folio's pin count."""

    caption: str
    exclusive: tuple[bool, ...]
    pinned: frozenset[int]
    pincount: int
    first: int = 0                  # the region's page number of the folio's first page

    def cells(self) -> tuple[str, ...]:
        return tuple(("ae1" if ae else "ae0") + (" pin" if i in self.pinned else "")
                     for i, ae in enumerate(self.exclusive))

    def __str__(self) -> str:
        cells = " ".join(f"pg{self.first + i}:{c}" for i, c in enumerate(self.cells()))
        return f"{self.caption}\n{cells}\nfolio pin count {self.pincount}"

    def __repr__(self) -> str:
        return f"<folio strip {self.caption!r}: {len(self.exclusive)} pages>"

    def _repr_html_(self) -> str:
        def cell(i: int, c: str) -> str:
            ae = self.exclusive[i]
            style = (_BOX + "min-width:2.6em;text-align:center;padding:0.2em 0.1em;"
                     + ("background:#fde2cf;color:#6b2a0a;font-weight:bold" if ae else ""))
            if i in self.pinned:
                style += ";outline:3px solid #c0392b;outline-offset:1px"
            return (f'<div style="{style}"><div style="font-size:0.75em">pg{self.first + i}</div>'
                    f"{html.escape(c)}</div>")

        cells = "".join(cell(i, c) for i, c in enumerate(self.cells()))
        return (f'<div class="pkmm-strip" role="figure" aria-label="{html.escape(self.caption)}"'
                f' style="{_CARD}font-size:0.82em"><div>{html.escape(self.caption)}'
                f'</div><div style="display:flex;flex-wrap:wrap;gap:3px;margin-top:0.3em">'
                f"{cells}</div><div>folio pin count {self.pincount}</div></div>")


def folio_strip(sid: str = "h7", folio: int = 0) -> FolioStrip:
    """Folio ``folio`` of scenario ``sid``'s region just before fork: the model builds the
    set-up the real probe builds (:data:`~pkmm.realkernel.layouts_model.SETUPS`) on the
    stored run's model kernel, and each page's AnonExclusive mark and the folio's pins are
    read from its state, not typed in."""
    from .layouts_model import build
    if sid not in BY_ID:
        raise ScenarioError(f"folio_strip(sid={sid!r}): no such scenario; use one of "
                            f"{', '.join(sorted(BY_ID))}")
    p = build(BY_ID[sid], stored_kernel(load_stored()))
    heads: list[tuple[int, Folio]] = []
    addr = 0
    while (found := p.page_at(page(addr))) is not None:
        f, _ = found
        heads.append((addr, f))
        addr += f.nr_pages
    if not 0 <= folio < len(heads):
        raise ScenarioError(f"folio_strip(folio={folio}): {sid}'s region has "
                            f"{len(heads)} folios from its first page; use 0..{len(heads) - 1}")
    first, f = heads[folio]
    pinned = frozenset(i for pf, i in p.pins if pf is f)
    return FolioStrip(f"{sid}: folio {folio} (pages {first}-{first + f.nr_pages - 1}) "
                      "just before fork, from the model's set-up",
                      tuple(pg.anon_exclusive for pg in f.pages), pinned, f.pincount, first)


_EXIT_STEP = "parent after child exit"      # the probe's name (observe.py reads it too)
# blue as in the steps table (mapped by both processes); grey: both have a copy instead
_MAPS_SHADE = {"P C": "#dbe9ff", "—": "#e4e4e4"}


def _folio_views(sid: str, folio: int, who_asks: str) -> tuple[
        range, list[tuple[str, dict[str, Any], dict[str, list[str]]]]]:
    """Folio ``folio`` of scenario ``sid``'s region in the stored run: its pages, and after
    each step since fork (name, the step, each live process's latest view of the region).  A
    stored step shows one process's page table, and a process's table changes only at its own
    steps, so each step pairs its view with the other process's latest one."""
    from .observe import unrle
    if sid not in BY_ID:
        raise ScenarioError(f"{who_asks}(sid={sid!r}): no such scenario; use one of "
                            f"{', '.join(sorted(BY_ID))}")
    data = load_stored()["scenarios"][sid]
    if "steps" not in data:
        raise ScenarioError(f"{who_asks}(sid={sid!r}): the stored run skipped it "
                            f"({data['skipped']}); pick a scenario that ran")
    steps = data["steps"]
    first = [unrle(s["cells"]) for s in steps][0]
    heads = [i for i, t in enumerate(first) if "H" in t.split()[-1].split("·")]
    if not heads:
        raise ScenarioError(f"{who_asks}(sid={sid!r}): its region has no large folio "
                            "(no head page H); pick one that has, such as c or h7")
    if not 0 <= folio < len(heads):
        raise ScenarioError(f"{who_asks}(folio={folio}): {sid}'s region has {len(heads)} "
                            f"large folios; use 0..{len(heads) - 1}")
    lo = heads[folio]
    hi = heads[folio + 1] if folio + 1 < len(heads) else len(first)
    view: dict[str, list[str]] = {}
    out = []
    names = [script_name(BY_ID[sid], n) for n in _role_names(steps)]
    for name, s in zip(names, steps, strict=True):
        view[s["who"]] = unrle(s["cells"])
        if s["name"] == _EXIT_STEP:
            view.pop("child", None)
        if s["name"] == "before fork":
            continue                    # no child yet
        out.append((name, s, dict(view)))
    return range(lo, hi), out


def _mappers(view: dict[str, list[str]], i: int) -> str:
    """Who maps page ``i`` from the original folio: "P C", "P", "C" or "—"."""
    who = [w[0].upper() for w in ("parent", "child")
           if w in view and view[w][i].split()[0] == "orig"]
    return " ".join(who) or "—"


def folio_mappers(sid: str = "c", folio: int = 0) -> Table:
    """Who maps each page of one folio from the original (pre-fork) folio, after each step
    of scenario ``sid``: ``P C`` both processes, ``P`` the parent only, ``C`` the child only
    (the other one has a copy, or has exited).  Read from the stored run's tokens (see
    :func:`_folio_views`): a page whose token is ``orig`` maps the original folio, ``n…`` is
    a copy."""
    pages, views = _folio_views(sid, folio, "folio_mappers")
    lo, hi = pages.start, pages.stop
    rows: list[tuple[str, ...]] = []
    marks: set[tuple[int, int]] = set()
    for name, s, view in views:
        cells = [_mappers(view, i) for i in pages]
        if not s["op"] and rows and tuple(cells) == rows[-1][2:]:
            continue                    # the other process's view of the same state
        n_child = sum("C" in c for c in cells)
        op = s["op"]
        if op and op.get("page") in pages:
            marks.add((len(rows), 2 + op["page"] - lo))
        rows.append((name, f"{n_child} of {len(cells)}", *cells))
    head = ("after step", "child maps", *(f"pg{i}" for i in pages))
    text = "\n".join(" | ".join(r) for r in (head, *rows))
    return Table(f"{sid}: who maps each page of folio {folio} (pages {lo}-{hi - 1}) from the "
                 "original folio", head, tuple(rows), text,
                 shade=lambda v: _MAPS_SHADE.get(v, ""), marks=frozenset(marks),
                 legend="P C (blue): both processes · P: the parent only · C: the child "
                        "only · — (grey): neither maps the original page · dashed box: the page "
                        "the step wrote", mark="access")


@dataclass(frozen=True)
class FolioMoment:
    """One moment of :class:`FolioMoments`: each process's PTE for every page of the folio
    (``"orig"``: it maps the original page; ``"n2"``: its own copy; ``None`` for a process
    that has exited), and who maps each original page (as :func:`folio_mappers`)."""

    step: str
    parent: tuple[str, ...]
    child: tuple[str, ...] | None
    folio: tuple[str, ...]


def _moment_title(step: str) -> str:
    return step if "after" in step.split()[:2] else f"after \u201c{step}\u201d"


@dataclass(frozen=True)
class FolioMoments:
    """Parent's and child's PTE rows over one folio's pages at a few moments of a stored
    scenario: the picture of :func:`folio_mappers`' table at the steps a story needs."""

    caption: str
    first: int                      # the region's page number of the folio's first page
    moments: tuple[FolioMoment, ...]

    def __str__(self) -> str:
        lines = [self.caption]
        for m in self.moments:
            lines.append(f"{_moment_title(m.step)}:")
            lines.append("  parent PTEs " + " ".join(f"{c:>4s}" for c in m.parent))
            lines.append("  child PTEs  " + (" ".join(f"{c:>4s}" for c in m.child)
                                             if m.child is not None else "(exited)"))
            lines.append("  folio page  " + " ".join(f"{c:>4s}" for c in m.folio))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<folio picture {self.caption!r}: {len(self.moments)} moments>"

    def _repr_html_(self) -> str:
        def pte(c: str) -> str:
            if c == "orig":             # an arrow down to the original page under it
                return (f'<div style="{_BOX}text-align:center;padding:0.1em 0">'
                        '<svg width="10" height="16" viewBox="0 0 10 16" aria-hidden="true">'
                        '<line x1="5" y1="0" x2="5" y2="10" stroke="currentColor" '
                        'stroke-width="1.5"/><polygon points="1,10 5,16 9,10" '
                        'fill="currentColor"/></svg></div>')
            return (f'<div style="{_BOX}text-align:center;padding:0.1em 0;'
                    f'background:#fff3b0" title="its own copy">{html.escape(c)}</div>')

        def page_box(i: int, who: str) -> str:
            bg = {"P C": "background:#dbe9ff", "—": "background:#e4e4e4;color:#555"}.get(
                who, "")
            return (f'<div style="{_BOX}{bg};text-align:center;padding:0.1em 0">'
                    f'<div style="font-size:0.75em">pg{self.first + i}</div>'
                    f"{html.escape(who)}</div>")

        def label(t: str) -> str:
            return f'<div style="padding-right:0.4em;white-space:nowrap">{t}</div>'

        n = len(self.moments[0].folio)
        parts = []
        for m in self.moments:
            child = ("".join(pte(c) for c in m.child) if m.child is not None else
                     f'<div style="grid-column:span {n};color:#555;font-style:italic">'
                     "exited: its page table is gone</div>")
            title = html.escape(_moment_title(m.step))
            parts.append(
                f'<div style="font-weight:bold;margin-top:0.5em">{title}'
                f'</div><div style="display:grid;grid-template-columns:auto repeat({n},'
                ' minmax(2.3em,1fr));gap:2px;align-items:center">'
                + label("parent PTEs") + "".join(pte(c) for c in m.parent)
                + label("child PTEs") + child
                + label("folio page") + "".join(page_box(i, w) for i, w in enumerate(m.folio))
                + "</div>")
        key = ('<div style="margin-top:0.5em;font-size:0.9em">arrow: the PTE maps the '
               "original page below it · yellow n1, n2 …: the process's own 4K copy · a folio "
               "page says who maps it: P C (blue) both, P or C one, — (grey) nobody, yet "
               "still part of the folio</div>")
        return (f'<div class="pkmm-moments" role="figure" aria-label="{html.escape(self.caption)}"'
                f' style="{_CARD}font-size:0.8em"><div>{html.escape(self.caption)}</div>'
                f"{''.join(parts)}{key}</div>")


def folio_moments(sid: str = "c", steps: tuple[str, ...] = (
        "after fork", "child writes pg5 (second writer)", _EXIT_STEP), folio: int = 0
        ) -> FolioMoments:
    """The parent's and the child's PTEs over folio ``folio``'s pages after each of
    ``steps`` (names as :func:`folio_mappers` and :func:`steps_table` show them), read
    from the stored run's tokens: a PTE maps the original page (``orig``) or the process's
    own copy (``n…``)."""
    pages, views = _folio_views(sid, folio, "folio_moments")
    by_name = {name: view for name, _, view in views}     # a name's last view: both sides
    bad = [s for s in steps if s not in by_name]
    if bad or not steps:
        raise ScenarioError(f"folio_moments(steps): {', '.join(map(repr, bad)) or '()'} "
                            f"names no step of {sid}; use some of: "
                            f"{', '.join(dict.fromkeys(by_name))}")

    def row(view: dict[str, list[str]], who: str) -> tuple[str, ...] | None:
        return tuple(view[who][i].split()[0] for i in pages) if who in view else None

    moments = []
    for s in steps:
        view = by_name[s]
        parent = row(view, "parent")
        assert parent is not None       # the parent outlives every step
        moments.append(FolioMoment(s, parent, row(view, "child"),
                                   tuple(_mappers(view, i) for i in pages)))
    return FolioMoments(f"{sid}: the two page tables over folio {folio} (pages "
                        f"{pages.start}-{pages.stop - 1}), from the stored run's tokens",
                        pages.start, tuple(moments))
