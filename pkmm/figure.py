"""A finished matplotlib figure as a PNG with alternative text.

Simulator concept (no kernel file): how the lab's plots reach a page.  Jupyter shows the
HTML form and the static pages keep it as ``<img alt=...>``, so a screen reader, or a
reader whose image did not load, gets the figure's description rather than nbconvert's
placeholder.  One class for every lab that plots (notebooks 08 and 09), at the bottom of
the layers so that each may use it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Picture"]


class Picture:
    """A finished matplotlib figure as a PNG with alternative text: shown by Jupyter and
    on the static pages as ``<img alt=...>``, so a screen reader (or a reader whose image
    did not load) gets the figure's description rather than nbconvert's placeholder."""

    def __init__(self, fig: Any, alt: str) -> None:
        import io

        import matplotlib.pyplot as plt
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=fig.dpi, bbox_inches="tight")   # as inline does
        plt.close(fig)      # else the inline backend shows it a second time, without alt
        self.alt, self.png = alt, buf.getvalue()

    def _repr_html_(self) -> str:
        import base64
        import html
        data = base64.b64encode(self.png).decode("ascii")
        return f'<img alt="{html.escape(self.alt, quote=True)}" src="data:image/png;base64,{data}">'

    def _repr_png_(self) -> bytes:
        # the same figure for front ends that take no HTML; a page renders the HTML first
        return self.png

    def __repr__(self) -> str:
        return self.alt
