"""Bit rules as pictures: the private/shared x parent/child grid and the masked compare.

Simulator concept (views layer).  Neither picture states a rule: each cell is the
outcome of forking a probe layout under the kernel and reading the bit afterwards, and
each greyed bit of the masked compare is one the kernel's batch scan was seen to ignore
(two PTEs differing only there still formed one batch).
Taught in: notebooks/05-shared-vs-private.ipynb, notebooks/06-upstream-batching.ipynb
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from ...errors import LayoutError
from ...exercises.probes import CMP_BITS, ignored_bits
from ...fork import fork
from ...kernels import BATCHING_KERNELS, DEFAULT_KERNEL
from ...process import Process
from ...pte import Pte
from ..render import BIT_LETTERS
from .core import Canvas, Picture
from .scene import build_fork, need_kernel

# the bit table is named once (render.BIT_LETTERS); the grid shows the bits fork's rules
# act on (protnone is a NUMA-hinting state, not a fork rule)
GRID_BITS = tuple((n, ch) for n, ch in BIT_LETTERS if n != "protnone")
MAPPINGS = ("private", "shared")


def _probe(mapping: str, bit: str, uffd_fork: bool) -> tuple[Process, int]:
    """A one-PTE process whose PTE has ``bit`` set (and what it must have besides)."""
    p = Process()
    uffd = bit == "uffd_wp" or mapping == "shared"   # a shared VMA is copied only if uffd-wp
    kw: dict[str, Any] = {"soft_dirty_tracking": True}
    if uffd:
        kw.update(uffd_wp=True, uffd_fork=uffd_fork)
    if mapping == "shared":
        kw.update(backing="shmem", shared=True)
    p.mmap(0x200000, 1, **kw)
    f = p.alloc_folio(0, backing="shmem" if mapping == "shared" else "anon")
    bits = {b: b == bit for b, _ in GRID_BITS}
    p.map(0x200000, f, write=bits.pop("write"), **bits)
    return p, 0x200000


@lru_cache(maxsize=32)
def bit_outcomes(kernel: str, uffd_fork: bool = True) -> tuple[tuple[str, str, str, str,
                                                                     str], ...]:
    """(mapping, bit, side, outcome, why) for every cell of the grid, from forks."""
    out = []
    for mapping in MAPPINGS:
        for bit, _ in GRID_BITS:
            p, addr = _probe(mapping, bit, uffd_fork)
            r = fork(p, kernel=kernel)
            for side, proc in (("parent", p), ("child", r.child)):
                pte = proc.pte(addr)
                why = "; ".join(f"{e.func}: {e.reason}" for e in r.trace
                                if e.addr == addr and e.func != "vma_needs_copy"
                                and (side == "child" or "wrprotect" in e.rule))
                if pte is None:
                    skip = next((e.reason for e in r.trace if e.func == "vma_needs_copy"), "")
                    out.append((mapping, bit, side, "no PTE", skip))
                else:
                    out.append((mapping, bit, side,
                                "kept" if getattr(pte, bit) else "cleared", why))
    return tuple(out)


def grid_headers(uffd_fork: bool) -> tuple[str, str]:
    """The small headers over the private and the shared columns: which VMA each probe
    forks.  The shared probe is registered for uffd-wp in every row (else fork would not
    copy its page table); the private one only in the UW row, so its note sits on that
    row (:func:`uw_row_note`), not over the whole column."""
    return ("private anon",
            "shmem, uffd-wp (EVENT_FORK)" if uffd_fork
            else "shmem, uffd-wp, no EVENT_FORK: not copied")


def uw_row_note(uffd_fork: bool) -> str:
    """The note under the UW row's private cells: only that row's private probe is
    registered for uffd-wp, with or without fork events (EVENT_FORK)."""
    return "UW row: private VMA uffd-wp, " + ("EVENT_FORK" if uffd_fork else "no EVENT_FORK")


#: The grid's key, one line each: as one line it ran past the picture's right edge.
GRID_KEY = ("+ kept: the PTE still has the bit after fork;  x cleared: fork removed it;",
            "no PTE: fork did not copy this page table")


def rule_grid(kernel: str = DEFAULT_KERNEL, *, uffd_fork: bool = True) -> Picture:
    """What fork does to each bit of a PTE that had it: private/shared x parent/child.

    The shared column uses a shmem VMA registered for userfaultfd write-protect (with
    UFFD_FEATURE_EVENT_FORK when ``uffd_fork``), the only way its PTEs are copied at all.

    >>> g = rule_grid("v6.9")
    >>> g.data["private", "write", "child"], g.data["shared", "dirty", "child"]
    ('cleared', 'cleared')
    >>> g.data["private", "dirty", "child"], g.data["private", "young", "child"]
    ('kept', 'cleared')
    """
    need_kernel(kernel, "rule_grid")
    if not isinstance(uffd_fork, bool):
        raise LayoutError(f"uffd_fork={uffd_fork!r}: True or False")
    cells = {(m, b, s): (o, why) for m, b, s, o, why in bit_outcomes(kernel, uffd_fork)}
    c = Canvas(700)
    c.text(8, 14, f"{kernel}: what fork does to a bit the parent's PTE had", "pk-h")
    cols = [(m, s) for m in MAPPINGS for s in ("parent", "child")]
    x0, w, h = 110, 144, 34
    for j, (m, s) in enumerate(cols):
        c.text(x0 + j * w + w / 2, 36, f"{m} {s}", "pk-t", anchor="middle",
               extra=' font-weight="bold"')
    # each header must fit the two columns under it: the long form ran into its neighbour
    # ("...EVENT_FORK)shmem") at 11 px
    for x, words in zip((x0 + w, x0 + 3 * w), grid_headers(uffd_fork), strict=True):
        c.text(x, 50, words, "pk-t2", anchor="middle")
    for i, (bit, letter) in enumerate(GRID_BITS):
        y = 58 + i * (h + 4)
        c.text(8, y + 21, f"{letter} ({bit})", "pk-t")
        for j, (m, s) in enumerate(cols):
            outcome, why = cells[(m, bit, s)]
            role = {"kept": "ok", "cleared": "hot"}.get(outcome, "none")
            x = x0 + j * w
            c.rect(x + 2, y, w - 6, h, role, tip=why or outcome)
            mark = {"kept": "+", "cleared": "x"}.get(outcome, "")
            c.text(x + w / 2, y + 21, f"{mark} {letter} {outcome}".strip(), "pk-t",
                   anchor="middle")
    y = 58 + len(GRID_BITS) * (h + 4)
    # the private probe is registered for uffd-wp in the UW row only (the last row): the
    # note sits right under that row's private cells
    c.text(x0 + w, y + 10, uw_row_note(uffd_fork), "pk-t2", anchor="middle")
    # no "hover" here: a static page or a print has none (the reasons stay as tooltips)
    for k, line in enumerate(GRID_KEY):
        c.text(8, y + 30 + 14 * k, line, "pk-t2")
    desc = "; ".join(f"{m} {s} {b}: {cells[(m, b, s)][0]}" for m, s in cols
                     for b, _ in GRID_BITS)
    return c.picture("rule-grid", f"{kernel} bit rules at fork", desc,
                     data={k: v[0] for k, v in cells.items()})


# --- masked compare ----------------------------------------------------------------------
# (the batch-scan probe, ignored_bits(), lives in pkmm.exercises.probes: exercise (a)
# renders its table from it too)

LETTER = dict(BIT_LETTERS)
#: what ignored_bits() says of a bit the scan did not compare
NOT_COMPARED = ("ignored", "counted", "merged", "no batching", "n/a")
#: The masked compare's key: grey (faded) means "not compared", with three words for what
#: became of the bit instead.
MASK_KEY = ("faded (grey): not compared, so it cannot stop the batch --",
            "counted: decided by counting; merged: the batch gets it if any PTE has it; "
            "ignored: masked")


def masked_compare(layout: Any, kernels: str | Sequence[str] = BATCHING_KERNELS,
                   slot: int = 0) -> Picture:
    """PTE ``slot`` and the next one as bit fields, per kernel: ignored bits greyed,
    each compared bit marked = or differs, and whether the batch went on.

    >>> t = {"vmas": [{"start": 0, "npages": 2}], "folios": {"F": {"order": 1}},
    ...      "ptes": [{"addr": 0, "folio": "F", "nr": 1},
    ...               {"addr": 4096, "folio": "F", "page": 1, "dirty": False}]}
    >>> masked_compare(t, "v6.17").data["v6.17"]
    'batch stops here: next PTE differs in the dirty bit'
    """
    ks = [kernels] if isinstance(kernels, str) else list(kernels)
    for k in ks:
        need_kernel(k, "masked_compare")
    sc, procs, _, _ = build_fork(layout, None)
    p = procs[0]
    if not p.vmas:
        raise LayoutError("masked_compare: the layout has no VMA")
    v = p.vmas[0]
    a = v.vm_start + slot * 4096 if isinstance(slot, int) and slot >= 0 else -1
    if not v.vm_start <= a < v.vm_end - 4096:
        raise LayoutError(f"slot={slot!r}: pick a slot 0..{v.npages - 2} of the first VMA "
                          "(its next slot is compared with it)")
    first, second = p.pte(a), p.pte(a + 4096)
    if first is None or second is None or not first.present or not second.present:
        raise LayoutError(f"slot={slot}: both PTE #{slot} and #{slot + 1} must be present")
    vma_kw = sc.vmas[0]
    kw = tuple(sorted((k, val) for k, val in vma_kw.items() if k not in ("start", "npages")))
    c = Canvas(760)
    c.text(8, 14, f"mask, then compare: PTE #{slot} with PTE #{slot + 1}", "pk-h")
    verdicts: dict[str, str] = {}
    y = 30.0
    for k in ks:
        mask = ignored_bits(k, kw)
        words = _verdict(layout, k, a)
        verdicts[k] = words
        y = _pair(c, k, first, second, mask, words, y, slot)
    # grey stands for three outcomes: the key says which word means what
    for line in MASK_KEY:
        c.text(8, y, line, "pk-t2")
        y += 14
    return c.picture("masked-compare", "masked compare", "; ".join(
        f"{k}: {w}" for k, w in verdicts.items()), data=verdicts)


def _verdict(layout: Any, kernel: str, addr: int) -> str:
    """What the fork's copy call for the PTE at ``addr`` did with the next PTE."""
    from ...kernels.common import stop_words
    _, _, _, r = build_fork(layout, kernel)
    assert r is not None
    for s in r.steps:
        if s.action == "share" and s.addr <= addr < s.addr + s.nr * 4096:
            if addr + 4096 < s.addr + s.nr * 4096:
                return f"same batch ({s.nr} PTEs)"
            return "batch stops here: " + (stop_words(s.stop) if s.stop else s.reason)
    return "not mapped by a batch (copied, or copied by value)"


def _pair(c: Canvas, kernel: str, a: Pte, b: Pte, mask: dict[str, str], words: str,
          y: float, slot: int) -> float:
    c.text(8, y + 12, kernel, "pk-h")
    w = 62
    x0 = 96
    fields = [("pfn", f"{a.pfn:#x}", f"{b.pfn:#x}", "+1" if b.pfn == a.pfn + 1 else "gap")]
    for bit in CMP_BITS:
        va, vb = int(getattr(a, bit)), int(getattr(b, bit))
        m = mask.get(bit, "n/a")
        rel = m if m in NOT_COMPARED else \
            ("=" if va == vb else "differs")
        fields.append((LETTER[bit], str(va), str(vb), rel))
    for j, (name, text_a, text_b, rel) in enumerate(fields):
        x = x0 + j * w
        dim = rel in NOT_COMPARED
        role = "none" if dim else ("hot" if rel in ("differs", "gap") else "ok")
        extra = ' class="pk-dim" opacity=".35"' if dim else ""
        c.text(x + w / 2, y + 12, name, "pk-t", anchor="middle")
        c.raw(f"<g{extra}>")
        c.rect(x + 2, y + 16, w - 6, 18, role,
               tip=f"{name}: PTE #{slot} {text_a}, PTE #{slot + 1} {text_b}: {rel}")
        c.text(x + w / 2, y + 29, text_a, "pk-t", anchor="middle")
        c.rect(x + 2, y + 36, w - 6, 18, role, tip=f"{name}: {rel}")
        c.text(x + w / 2, y + 49, text_b, "pk-t", anchor="middle")
        c.raw("</g>")
        c.text(x + w / 2, y + 66, rel, "pk-t2", anchor="middle")
    # rows by PTE number: "A"/"B" clashed with the accessed bit's column "A"
    c.text(x0 - 8, y + 29, f"PTE #{slot}", "pk-t", anchor="end")
    c.text(x0 - 8, y + 49, f"PTE #{slot + 1}", "pk-t", anchor="end")
    c.text(x0, y + 82, words, "pk-t", extra=' font-weight="bold"')
    return y + 96
