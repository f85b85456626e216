"""The kernel rules, one sentence each, that exercise explanations cite.

Simulator concept.  No sentence is written per version: each is derived by *running* the
variant on a two-PTE probe (one order-1 folio whose two PTEs differ in one bit) in a VMA
like the exercise's, and reading what happened -- whether the batch broke, what the
child's bit became, which flags the batch function was given and what its trace said.
A new variant is explained correctly without a line here.
Taught in: notebooks/exercises/README.md
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from typing import Any

from ..fork import ForkResult, fork
from ..kernels import get_kernel
from ..kernels.common import stop_words
from ..process import Process
from ..pte import PAGE_SIZE, PTE_BIT, SETTABLE_BITS

__all__ = ["batch_func", "child_bit", "continues_batch", "starts_batch"]

_PROBE = 0x200000
#: The VMA options a probe copies from the exercise's VMA.
_VMA_KEYS = ("shared", "soft_dirty_tracking", "uffd_wp", "uffd_fork")
Vma = tuple[tuple[str, bool], ...]


def batch_func(kernel: str) -> str:
    """The function that decides a batch: the batch function, or the per-PTE copy."""
    k = get_kernel(kernel)
    return k.batch_func or k.present_func


def _vma(vma: Mapping[str, Any]) -> Vma:
    return tuple((key, bool(vma.get(key))) for key in _VMA_KEYS)


@cache
def _probe(kernel: str, vma: Vma, bit: str, first: bool, second: bool) -> ForkResult:
    """Fork two PTEs of one order-1 folio that differ only in ``bit``."""
    opts = dict(vma)
    if opts["shared"] and not opts["uffd_wp"]:
        # pkmm: a shared VMA is copied at fork only when the child is uffd-wp registered
        opts.update(uffd_wp=True, uffd_fork=True)
    p = Process(kernel)
    p.mmap(_PROBE, 2, backing="shmem" if opts["shared"] else "anon", **opts)
    f = p.alloc_folio(1, backing="shmem" if opts["shared"] else "anon")
    for i, on in enumerate((first, second)):
        bits = dict.fromkeys((b.name for b in SETTABLE_BITS), False)
        bits[bit] = on
        p.map(_PROBE + i * PAGE_SIZE, f, i, 1, **bits)
    return fork(p, kernel)


def _breaks(kernel: str, vma: Vma, bit: str) -> bool:
    """Whether two PTEs differing only in ``bit`` end up in different batches."""
    return len(_probe(kernel, vma, bit, True, False).batches) > 1


def _child(kernel: str, vma: Vma, bit: str, first: bool, second: bool) -> tuple[int, int]:
    child = _probe(kernel, vma, bit, first, second).child
    return tuple(int(getattr(child.pte(_PROBE + i * PAGE_SIZE), bit)) for i in (0, 1))  # type: ignore[return-value]


def _flags(r: ForkResult) -> str:
    """The flags the batch function was called with, as its trace recorded them."""
    for e in r.trace:
        if e.rule.startswith("stop:") and e.get("flags"):
            return str(e.get("flags"))
    return ""


def _with(vma: Vma, **changes: bool) -> Vma:
    return tuple((k, changes.get(k, v)) for k, v in vma)


def _because(kernel: str, vma: Vma, bit: str) -> list[str]:
    """The options of ``vma`` without which ``bit`` would not break a batch."""
    d = dict(vma)
    out = []
    if not d["shared"] and not _breaks(kernel, _with(vma, shared=True), bit):
        out.append("in private mappings")
    if d["soft_dirty_tracking"] and \
            not _breaks(kernel, _with(vma, soft_dirty_tracking=False), bit):
        out.append("because soft-dirty tracking is on for this VMA")
    if d["uffd_wp"] and d["uffd_fork"] and \
            not _breaks(kernel, _with(vma, uffd_wp=False, uffd_fork=False), bit):
        out.append("because the child VMA is uffd-wp")
    return out


def starts_batch(kernel: str, stop: str, vma: Mapping[str, Any] | None = None) -> str:
    """Why a PTE starts a new batch, given the stop reason of the batch before it
    (or ``small-folio`` / ``no-page`` / ``prev-single`` for single-PTE steps), in an
    exercise whose VMA has the options ``vma``."""
    k = get_kernel(kernel)
    f = batch_func(kernel)
    if not k.batch_func:
        return (f"{kernel} copies one PTE per call ({f} has no batching): every PTE is its "
                "own call")
    head = f"{kernel} {f}"
    if stop.startswith("bit:"):
        bit = stop[4:]
        v = _vma(vma or {})
        if not _breaks(kernel, v, bit):
            return f"{head} stopped the previous batch where the {bit} bit changes"
        why = _because(kernel, v, bit)
        flags = _flags(_probe(kernel, v, bit, True, False))
        always = ("always, even when the child VMA is not uffd-wp" if bit == "uffd_wp"
                  else "always")
        text = f"{head} compares the {bit} bit " + (" and ".join(why) or always)
        return text + (f" ({f} gets {flags})" if flags and flags != "none" else
                       f" ({f} gets no flags)" if flags else "")
    if stop == "prev-single":
        return "the PTE before it maps an order-0 folio and was a call of its own"
    if stop in ("small-folio", "no-page", "prealloc-held", "max_nr-1"):
        return f"it is a call of its own ({head}): {stop_words(stop)}"
    return f"the previous batch ended ({head}): {stop_words(stop)}"


def continues_batch(kernel: str, diff: list[str], vma: Mapping[str, Any] | None = None) -> str:
    """Why a PTE does *not* start a new batch although it differs in the bits ``diff``
    (bit names) from the PTE before it."""
    v = _vma(vma or {})
    head = f"{kernel} {batch_func(kernel)}"
    if not get_kernel(kernel).batch_func:
        return f"{head} has no batching: every PTE is its own call"
    ignored = [b.name for b in SETTABLE_BITS if not _breaks(kernel, v, b.name)]
    seen = [b for b in diff if b in ignored]
    others = [b for b in ignored if b not in seen]
    text = (f"{head} ignores {', '.join(seen)} in this VMA" if seen else
            f"{head} finds no bit it compares changed")
    if others:
        text += f" (it also ignores {', '.join(others)})"
    return text + ", so the next page of the same folio continues the batch"


#: Trace rules that decide a child PTE's bits, and the words that name each bit there.
_CHILD_RULES = ("set-pte", "set-ptes", "cow-wrprotect", "private-dirty-merge",
                "shared-mixed-write", "copied")
_WORDS = {"write": r"writ|read-only", "dirty": r"(?<!soft-)dirty|clean", "young": r"\bold\b",
          "soft_dirty": r"soft-dirty", "uffd_wp": r"uffd-wp", "protnone": r"protnone"}


def _trace_says(r: ForkResult, bit: str) -> str:
    """The child-PTE decision the probe's trace recorded for ``bit``, if one names it."""
    for e in r.trace:
        if e.rule in _CHILD_RULES and re.search(_WORDS.get(bit, bit), e.reason):
            return f"{e.func}: {e.reason}"
    return ""


def child_bit(kernel: str, bit: str, vma: Mapping[str, Any] | None = None) -> str:
    """How ``kernel`` sets ``bit`` in child PTEs that share the parent's pages, in a VMA
    with the options ``vma``: found by forking (1, 0), (0, 1) and (1, 1) probes."""
    v = _vma(vma or {})
    letter = PTE_BIT[bit].letter
    f = batch_func(kernel)
    c10, c01, c11 = (_child(kernel, v, bit, a, b) for a, b in
                     ((True, False), (False, True), (True, True)))
    split = _breaks(kernel, v, bit)
    if c10 == c01 == c11 == (0, 0):
        text = f"{kernel}: {bit} ({letter}) is cleared in every child PTE"
    elif (c10, c01) == ((1, 0), (0, 1)):
        text = (f"{kernel} {f} splits the batch where {letter} changes, so each child PTE "
                f"keeps its own {bit}" if split and get_kernel(kernel).batch_func else
                f"{kernel} {f} copies each PTE's own {bit} bit")
    elif (c10, c01) == ((1, 1), (0, 0)):
        text = (f"{kernel} {f} ignores {letter} here, and the whole child batch gets the "
                f"FIRST PTE's {letter}")
    elif (c10, c01) == ((1, 1), (1, 1)):
        text = (f"{kernel} {f}: the whole child batch gets {letter} if ANY of its PTEs "
                "has it")
    elif (c10, c01, c11) == ((0, 0), (0, 0), (1, 1)):
        text = (f"{kernel} {f}: the child batch gets {letter} only if ALL its PTEs "
                "have it")
    else:
        text = f"{kernel}: parent {letter} (1,0) gives child {c10}, (0,1) gives {c01}"
    said = _trace_says(_probe(kernel, v, bit, True, False), bit)
    return text + (f" (trace: {said})" if said else "")
