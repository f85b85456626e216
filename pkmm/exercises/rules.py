"""The words exercise verdicts use: a plain sentence first, then the kernel detail.

Simulator concept.  Nothing here decides a rule or keeps a table of versions: every
sentence is built from what a fork of the problem *did* (its steps, the stop reason of
each batch, the trace events of the copy) and from what the variant declares in the
registry (its copy and batch functions).  So a verdict never states a clause that does not
apply to the layout, and a new variant needs no new words.
Taught in: notebooks/exercises/README.md
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..fork import ForkResult
from ..kernels import get_kernel
from ..kernels.common import STOPS
from ..pte import PTE_BIT
from ..trace import Event


def bit_words(names: Sequence[str]) -> str:
    """PTE bits by letter and meaning, e.g. ``D (dirty: written since ...)``.

    >>> bit_words(["young"]).split(" (")[0]
    'A'
    """
    return ", ".join(f"{PTE_BIT[n].letter} ({PTE_BIT[n].meaning})" for n in names)


def no_batching(kernel: str) -> str:
    """The one sentence for a variant without a batch function (or None if it has one)."""
    k = get_kernel(kernel)
    return (f"{kernel} copies one PTE per call: its {k.present_func}() has no batching, so "
            "every present PTE is a call of its own.")


def starts_batch(kernel: str, stop: str) -> str:
    """Why a PTE starts a new call under ``kernel``, given the model's stop reason."""
    k = get_kernel(kernel)
    if stop.startswith("bit:"):
        bit = stop[4:]
        return (f"its {PTE_BIT[bit].letter} bit differs from the PTE before. {kernel}'s "
                f"{k.batch_func}() compares {bit_words([bit])} here, so the batch before "
                "it stopped.")
    known = STOPS.get(stop)
    plain, detail = (known.starts, known.detail) if known else (
        f"the batch before it stopped ({stop})", "")
    return f"{plain}. {kernel}'s {k.batch_func}(): {detail}." if detail else f"{plain}."


def continues_batch(kernel: str, diff: list[str], subject: str = "it") -> str:
    """Why a PTE continues the batch before it although it differs in the bits ``diff``
    (observed: the model batched it); ``subject`` is "it" or "each"."""
    k = get_kernel(kernel)
    if not diff:
        return (f"{subject} maps the next page of the same folio with the same bits, so "
                "the batch runs on.")
    letters = ", ".join(PTE_BIT[b].letter for b in diff)
    return (f"{subject} maps the next page of the same folio, and its different {letters} "
            f"does not end the batch. Kernel: {kernel}'s {k.batch_func}() does not compare "
            f"it here: {bit_words(diff)}.")


_BIT_KEYS = {"write": ("writ",), "dirty": ("dirty", "clean"), "soft_dirty": ("soft-dirty",),
             "young": ("old", "young"), "uffd_wp": ("uffd-wp",)}


def _about(text: str, bit: str) -> bool:
    low = text.lower()
    if bit == "dirty":
        low = low.replace("soft-dirty", "")
    return any(key in low for key in _BIT_KEYS.get(bit, (bit,)))


def bit_events(r: ForkResult, bit: str, addr: int) -> list[str]:
    """The trace events of the call at ``addr`` (its copy and batch functions) about
    ``bit``, each cut to the clauses about that bit ("func: reason")."""
    k = get_kernel(r.kernel)
    out = []
    for e in r.trace:
        if e.addr == addr and e.func in (k.present_func, k.batch_func):
            text = _clauses_about(e, bit)
            if text:
                out.append(f"{e.func}: {text}")
    return out


def _clauses_about(e: Event, bit: str) -> str:
    head, _, rest = e.reason.partition(": ")
    if not rest:
        return e.reason if _about(e.reason, bit) else ""
    parts = [p for p in re.split(r"[,;] ", rest) if _about(p, bit)]
    if parts:
        return f"{head}: {', '.join(parts)}"
    return e.reason if _about(head, bit) else ""


def child_pattern(parent: list[int], child: list[int], note_first: bool = True) -> str:
    """What one call gave the child, against the parent's bits, in words (observed only:
    the trace events say why; ``note_first``: say so when the batch took its first PTE's
    value, for a call whose events do not explain it).

    >>> child_pattern([1, 0], [1, 0])
    "each child PTE kept its parent PTE's value"
    >>> child_pattern([0, 1], [1, 1])
    'every child PTE has 1 (parent PTEs: [0, 1])'
    >>> child_pattern([0, 1], [0, 0])
    "every child PTE has 0, the first PTE's value (parent PTEs: [0, 1])"
    """
    if child == parent:
        return "each child PTE kept its parent PTE's value"
    if len(set(child)) == 1:
        first = ", the first PTE's value" if note_first and child[0] == parent[0] else ""
        return f"every child PTE has {child[0]}{first} (parent PTEs: {parent})"
    return f"the child PTEs have {child} (parent PTEs: {parent})"
