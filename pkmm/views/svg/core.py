"""The SVG canvas every picture draws on, the palette, and the Picture result.

Simulator concept (views layer).  Hand-written SVG (see :mod:`pkmm.views.svg` for why).
Each element carries a plain colour attribute *and* a class: the ``<style>`` inside the
SVG maps the class to JupyterLab's CSS variables (with the same colours as fallbacks),
so the theme applies in a live lab while a static page, a PDF or a page that strips
``<style>`` still shows the light palette.  Meaning is never carried by colour alone:
every kind of box also has a letter or word in it, and patterns mark pins and PMDs.
Taught in: notebooks/00-start-here.ipynb
"""

from __future__ import annotations

import html
import itertools
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: role -> (light fallback fill, stroke).  Tints are drawn at low opacity over the
#: background, so one mid-tone colour reads on a light and on a dark background.
PALETTE: dict[str, tuple[str, str]] = {
    "anon": ("#3b82f6", "#1d4ed8"),
    "file": ("#22a06b", "#17734c"),
    "shmem": ("#a855f7", "#7e22ce"),
    "special": ("#d29922", "#9a6700"),
    "nonpresent": ("#e8590c", "#b4460a"),
    "none": ("#8b949e", "#6e7781"),
    "hot": ("#e5484d", "#b42318"),
    "ok": ("#22a06b", "#17734c"),
    "lit": ("#f59e0b", "#b45309"),
}
FG = "var(--jp-ui-font-color1, #1a1a1a)"
# The secondary text was 9 px in a grey: readers could not read it.  It is now the main
# text's size and colour (contrast 17:1 on white, and the theme's own text colour on a
# dark theme); the class stays, so the pictures still say which words are secondary.
FG2 = FG
BG = "var(--jp-layout-color0, #ffffff)"
BORDER = "var(--jp-border-color1, #8a8a8a)"
FONT = "var(--jp-code-font-family, ui-monospace, Menlo, Consolas, monospace)"
TINT = 0.2
#: the width of one glyph of the 11 px monospace text every label uses (0.6 em): the
#: pictures' layouts reserve room with it
CHAR_W = 6.6
#: the stepper's cursor cell: (fill, opacity) on a light page and on JupyterLab's dark
#: theme (body[data-jp-theme-light=false]).  On a light page the cell's 3 px dark-amber
#: outline carries the 3:1 contrast with the page, so the fill stays light enough that its
#: text reads at 7:1 or more (readers found black text on a 70 % dark orange hard to
#: read, and the old 20 % amber a faint beige); on the dark theme the fill itself stands
#: out 3:1 and keeps its light text at 4.5:1.
CUR_TINT = ("#fb923c", 0.45)
CUR_TINT_DARK = ("#dd6b20", 0.66)
#: a mark drawn in full colour, not tinted (the class's fill-opacity would win over an
#: attribute): the stepper's bars read at a glance
SOLID = ' style="fill-opacity:1"'
UID = "@@pkid@@"   # replaced by the picture's unique id (ids must be unique per page)
_SERIAL = itertools.count(1)


def _style() -> str:
    rules = [f".pk-bg{{fill:{BG}}}",
             f".pk-t{{fill:{FG};font-family:{FONT};font-size:11px}}",
             f".pk-t2{{fill:{FG2};font-family:{FONT};font-size:11px}}",
             f".pk-h{{fill:{FG};font-family:{FONT};font-size:12px;font-weight:bold}}",
             f".pk-line{{stroke:{FG2};fill:none}}",
             f".pk-frame{{stroke:{BORDER};fill:none}}",
             ".pk-dim{opacity:.35}",
             # a label that lines may cross: a background-coloured outline keeps it legible
             f".pk-halo{{paint-order:stroke;stroke:{BG};stroke-width:4px;"
             "stroke-linejoin:round}"]
    rules.append(f".pk-cur{{fill:{CUR_TINT[0]};fill-opacity:{CUR_TINT[1]}}}")
    rules.append(f"[data-jp-theme-light=false] .pk-cur{{fill:{CUR_TINT_DARK[0]};"
                 f"fill-opacity:{CUR_TINT_DARK[1]}}}")
    for role, (fill, stroke) in PALETTE.items():
        rules.append(f".pk-{role}{{fill:{fill};fill-opacity:{TINT};stroke:{stroke}}}")
        rules.append(f".pk-s-{role}{{stroke:{stroke};fill:none}}")
    return "".join(rules)


STYLE = _style()
# Plain presentation attributes for renderers that strip <style> (only where they differ
# from the root group's defaults).
_FALLBACK = {"pk-h": ' font-size="12" font-weight="bold"'}


def esc(s: object) -> str:
    """XML-escape ``str(s)`` (quotes too: the result may go into an attribute).

    >>> esc('a<b & "c"')
    'a&lt;b &amp; &quot;c&quot;'
    """
    return html.escape(str(s), quote=True)


@dataclass(frozen=True)
class Picture:
    """An SVG picture of model state.

    ``svg`` is the whole ``<svg>`` element; ``text`` a plain-language summary (the
    ``text/plain`` form and the screen reader's description).  A notebook cell that
    evaluates a Picture shows it live, on GitHub, in nbconvert HTML and in a PDF.
    """

    kind: str
    svg: str
    text: str
    data: Mapping[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    def _repr_svg_(self) -> str:
        return self.svg

    def _repr_html_(self) -> str:
        return f'<div class="pkmm-picture pkmm-{self.kind}">{self.svg}</div>'

    def __repr__(self) -> str:
        return f"<{self.kind}: {self.text}>"


class Canvas:
    """Accumulates SVG elements; :meth:`picture` wraps them with title, desc and size."""

    def __init__(self, width: float) -> None:
        self.width = width
        self.bottom = 0.0
        self.parts: list[str] = []
        self.under: list[str] = []   # drawn first: lines that run beneath the boxes

    def _grow(self, y: float) -> None:
        self.bottom = max(self.bottom, y)

    def rect(self, x: float, y: float, w: float, h: float, role: str = "", *,
             rx: float = 2, tip: str = "", extra: str = "") -> None:
        """A box; ``role`` is a PALETTE key ("" = an empty frame, "bg" = an opaque box in
        the background colour, drawn under a tinted one to hide the lines beneath it)."""
        if role == "bg":
            attrs = 'class="pk-bg" fill="#ffffff" stroke="none"'
        elif role:
            fill, stroke = PALETTE[role]
            attrs = (f'class="pk-{role}" fill="{fill}" fill-opacity="{TINT}" '
                     f'stroke="{stroke}"')
        else:
            attrs = 'class="pk-frame" fill="none" stroke="#8a8a8a"'
        body = f"<title>{esc(tip)}</title>" if tip else ""
        tag = f'<rect x="{x:g}" y="{y:g}" width="{w:g}" height="{h:g}" rx="{rx:g}" {attrs}{extra}'
        self.parts.append(f"{tag}>{body}</rect>" if body else f"{tag}/>")
        self._grow(y + h)

    def hatch(self, x: float, y: float, w: float, h: float, tip: str = "") -> None:
        """Diagonal hatching over a box: the pattern that marks a pinned page."""
        body = f"<title>{esc(tip)}</title>" if tip else ""
        self.parts.append(f'<rect x="{x:g}" y="{y:g}" width="{w:g}" height="{h:g}" '
                          f'fill="url(#{UID}-hatch)" stroke="none">{body}</rect>')

    def text(self, x: float, y: float, s: object, cls: str = "pk-t", *,
             anchor: str = "start", tip: str = "", extra: str = "",
             halo: bool = False) -> None:
        """Real text (greppable, read by screen readers); ``halo``: it floats where
        connecting lines pass, so it gets an outline in the background colour."""
        anchor_attr = "" if anchor == "start" else f' text-anchor="{anchor}"'
        body = esc(s) + (f"<title>{esc(tip)}</title>" if tip else "")
        klass = " ".join(k for k in (cls, "pk-halo" if halo else "") if k)
        if halo and anchor == "start":
            # the outline alone leaves a line visible between the glyphs and across the
            # spaces: a background-coloured box under the label (above the lines) hides it
            size = 12.0 if cls == "pk-h" else 11.0
            self.parts.append(f'<rect x="{x - 2:g}" y="{y - size * 0.95:g}" '
                              f'width="{len(str(s)) * size * 0.6 + 4:g}" '
                              f'height="{size * 1.25:g}" class="pk-bg" fill="#ffffff"/>')
        head = f' class="{klass}"{_FALLBACK.get(cls, "")}' if klass else ""
        self.parts.append(f'<text x="{x:g}" y="{y:g}"{head}{anchor_attr}'
                          f"{extra}>{body}</text>")
        self._grow(y + 4)

    def line(self, x1: float, y1: float, x2: float, y2: float, role: str = "", *,
             width: float = 1, dash: str = "", arrow: bool = False) -> None:
        """A straight line (``role``: PALETTE key for its colour, "" = secondary text)."""
        self.path(f"M{x1:g},{y1:g} L{x2:g},{y2:g}", role, width=width, dash=dash,
                  arrow=arrow)

    def path(self, d: str, role: str = "", *, width: float = 1, dash: str = "",
             arrow: bool = False, tip: str = "", under: bool = False) -> None:
        """An open path (lines, curves); ``under`` draws it beneath everything else."""
        cls, stroke = (f"pk-s-{role}", PALETTE[role][1]) if role else ("pk-line", "#4d4d4d")
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        extra += f' marker-end="url(#{UID}-arrow)"' if arrow else ""
        body = f"<title>{esc(tip)}</title>" if tip else ""
        tag = (f'<path d="{d}" class="{cls}" stroke="{stroke}" fill="none" '
               f'stroke-width="{width:g}"{extra}')
        (self.under if under else self.parts).append(
            f"{tag}>{body}</path>" if body else f"{tag}/>")

    def legend(self, y: float, items: Iterable[tuple[str, str, str]], x0: float = 8
               ) -> float:
        """A key to the marks: one (shape, role, words) per mark, ``shape`` "box" (a
        tinted swatch), "bar" (a thin bar, as the filmstrips draw), "hatch" (the pinned
        pattern), "dashbar" (a thin dashed bar) or "word" (``role`` is then the word, e.g.
        "AE"); wraps at the width.
        Returns the height below it."""
        self.group("legend")
        x = x0
        for shape, role, words in items:
            w = 22 + len(words) * CHAR_W + 14
            if x > x0 and x + w > self.width - x0:
                x, y = x0, y + 15
            if shape == "bar":       # solid, as the filmstrips draw their bars
                self.rect(x, y - 7, 16, 5, role, rx=0, extra=SOLID)
            elif shape == "hatch":
                self.rect(x, y - 9, 16, 11, role)
                self.hatch(x, y - 9, 16, 11)
            elif shape == "dashbar":        # a thin dashed bar, as a filmstrip draws
                self.path(f"M{x:g},{y - 4.5:g} h16", role, width=2, dash="4 3")
            elif shape == "word":           # a word the picture writes in its boxes
                self.text(x + 8, y, role, "pk-t2", anchor="middle",
                          extra=' font-weight="bold"')
                w += len(role) * CHAR_W - 10
                x += len(role) * CHAR_W - 10
            else:
                self.rect(x, y - 9, 16, 11, role)
            self.text(x + 20, y, words, "pk-t2")
            x += w
        self.end()
        return y + 6

    def raw(self, svg: str, bottom: float = 0) -> None:
        """Insert pre-built markup (used for <g> wrappers)."""
        self.parts.append(svg)
        self._grow(bottom)

    def text_group(self, cls: str = "pk-t2") -> None:
        """Open a group whose texts share ``cls`` (close with :meth:`end`); draw them with
        ``cls=""``.  A 512-PTE map holds hundreds of small labels: saying their style once
        keeps a live redraw's message small."""
        self.parts.append(f'<g class="{cls}"{_FALLBACK.get(cls, "")}>')

    def group(self, label: str, items: Iterable[str] = (), css: str = "") -> None:
        """Open a labelled group (close with :meth:`end`); screen readers announce it.
        ``css`` names it for the front end and the browser tests (e.g. ``pkmm-physmem``)."""
        cls = f' class="{esc(css)}"' if css else ""
        self.parts.append(f'<g role="group"{cls} aria-label="{esc(label)}">')
        self.parts.extend(items)

    def end(self) -> None:
        """Close the last :meth:`group`."""
        self.parts.append("</g>")

    def picture(self, kind: str, title: str, desc: str, *, pad: float = 8,
                data: Mapping[Any, Any] | None = None, interactive: bool = False) -> Picture:
        """The finished picture: role=img, <title>/<desc>, a background, a viewBox.

        ``interactive``: it holds clickable elements, so it is a labelled group (an
        image's children are hidden from assistive technology)."""
        h = self.bottom + pad
        body = "".join(self.under) + "".join(self.parts)
        # deterministic (same cells, same ids) yet unique when one page shows two pictures
        uid = f"pk-{kind}-{zlib.crc32(body.encode()):08x}-{next(_SERIAL)}"
        role = "group" if interactive else "img"
        head = (f'<svg xmlns="http://www.w3.org/2000/svg" role="{role}" '
                f'viewBox="0 0 {self.width:g} {h:g}" width="{self.width:g}" '
                f'style="max-width:100%;height:auto" '
                f'aria-labelledby="{uid}-t {uid}-d" class="pkmm-svg pkmm-svg-{kind}">'
                f'<title id="{uid}-t">{esc(title)}</title><desc id="{uid}-d">{esc(desc)}'
                f"</desc><style>{STYLE}</style>"
                f'<defs><marker id="{uid}-arrow" viewBox="0 0 8 8" refX="7" refY="4" '
                'markerWidth="8" markerHeight="8" markerUnits="userSpaceOnUse" '
                'orient="auto-start-reverse">'
                '<path d="M0,0 L8,4 L0,8 z" class="pk-t" fill="#1a1a1a"/></marker>'
                f'<pattern id="{uid}-hatch" width="5" height="5" patternUnits="userSpaceOnUse" '
                'patternTransform="rotate(45)"><path d="M0,0 L0,5" class="pk-s-hot" '
                'stroke="#b42318" stroke-width="1.6"/></pattern></defs>'
                f'<rect width="{self.width:g}" height="{h:g}" class="pk-bg" fill="#ffffff"/>'
                # defaults every text inherits where <style> is stripped
                '<g fill="#1a1a1a" font-family="monospace" font-size="11">')
        return Picture(kind, head + body.replace(UID, uid) + "</g></svg>", desc, data or {})


#: A copy call's action (:data:`pkmm.trace.ACTIONS`) in a picture's words.  The model's
#: "share" means the child's PTEs map the parent's own pages; a picture says "map", since
#: "shared" is kept for a shared mapping (MAP_SHARED), and in a private mapping those pages
#: are CoW-shared with the child, in a shared one simply shared.
ACTION_WORDS = {"share": "map", "copy": "copy", "raw": "raw", "eagain": "-EAGAIN",
                "nonpresent": "non-present"}


def action_word(action: str) -> str:
    """The picture's word for a copy call's ``action`` (see :data:`ACTION_WORDS`)."""
    return ACTION_WORDS.get(action, action)


def wrap(s: str, n: int) -> list[str]:
    """Split ``s`` into lines of at most ``n`` characters at spaces.

    >>> wrap("aa bb cc", 5)
    ['aa bb', 'cc']
    """
    out, line = [], ""
    for word in s.split():
        if line and len(line) + 1 + len(word) > n:
            out.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return out + ([line] if line else [])
