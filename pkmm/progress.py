"""Progress bars for long work (bench at 4G+, live probes, snapshots, forksim).

Simulator concept (no kernel file).  Uses PyPI ``tqdm`` when it is installed (the ``lab``
and ``test`` extras bring it; ``tqdm.auto`` draws a widget in Jupyter), and nothing
otherwise: ``import pkmm`` needs only the standard library.

``enabled=None`` (the default everywhere) shows a bar only when standard error is a
terminal, so test logs and committed notebook outputs stay free of elapsed-time text;
pass ``progress=True`` to a command or function to draw one anyway (e.g. in a notebook).

>>> list(progress(range(3), desc="demo", enabled=False))
[0, 1, 2]
>>> with bar(total=2, desc="demo", enabled=False) as b:
...     b.update(2)
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["bar", "progress", "wanted"]


def wanted(enabled: bool | None) -> bool:
    """Whether to draw: ``enabled`` if given, else "standard error is a terminal"."""
    if enabled is not None:
        return enabled
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def _tqdm(enabled: bool | None) -> Any:
    if not wanted(enabled):
        return None
    try:
        if enabled and "ipykernel" in sys.modules:
            from tqdm.auto import tqdm  # type: ignore[import-untyped]
        else:
            from tqdm import tqdm  # type: ignore[import-untyped]
    except ImportError:
        return None
    return tqdm


def progress(items: Iterable[T], *, desc: str, total: int | None = None,
             enabled: bool | None = None, unit: str = "it") -> Iterator[T]:
    """``items``, with a bar labelled ``desc`` when one is wanted and tqdm is present."""
    tqdm = _tqdm(enabled)
    if tqdm is None:
        yield from items
        return
    with tqdm(items, desc=desc, total=total, unit=unit, leave=False) as it:
        yield from it


class _NoBar:
    """What :func:`bar` yields without tqdm: the same three methods, doing nothing."""

    def update(self, n: int = 1) -> None:
        """Advance by ``n``."""

    def set_description(self, desc: str) -> None:
        """Relabel the bar."""

    def set_postfix_str(self, text: str) -> None:
        """Show ``text`` after the counts."""


@contextmanager
def bar(*, total: int, desc: str, enabled: bool | None = None,
        unit: str = "it") -> Iterator[Any]:
    """A bar advanced by hand (``b.update(n)``), for work that is not one loop."""
    tqdm = _tqdm(enabled)
    if tqdm is None:
        yield _NoBar()
        return
    with tqdm(total=total, desc=desc, unit=unit, leave=False) as b:
        yield b
