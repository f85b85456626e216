"""Small builders for the scenario conventions of the spec tests (tests/test_spec_*.py).

P-ANON: private anonymous VMA, read/write, with an anon_vma, VM_SOFTDIRTY set (soft-dirty
tracking off), child not uffd-wp, parent without MMF_HAS_PINNED.
"""

from __future__ import annotations

from typing import TypeVar

import pkmm
from pkmm.kernels import COW_KERNELS, DEFAULT_KERNEL, get_kernel

T = TypeVar("T")

#: The spec's version labels.  Expectation tables are keyed by label, and every
#: registered copy-on-write variant is checked against the row of its own label
#: (``KernelVersion.spec``), so a new variant is covered by the tables it declares.
A, B, C, D = "A", "B", "C", "D"
COW_VARIANTS = COW_KERNELS
NEWEST = DEFAULT_KERNEL
BASE = 0x200000        # start of a PMD slice, so listed PTEs lie in one slice


def spec(kernel: str) -> str:
    """The spec label of a registered variant (``"A"`` for v6.8 ...)."""
    return get_kernel(kernel).spec


def by_spec(table: dict[str, T]) -> list[tuple[str, T]]:
    """``(kernel, expectation)`` for every copy-on-write variant, from a table keyed by
    spec label; a variant whose label has no row is an error, not a skip."""
    missing = sorted({spec(k) for k in COW_KERNELS} - set(table))
    if missing:
        raise KeyError(f"no expectation for spec label(s) {missing}")
    return [(k, table[spec(k)]) for k in COW_KERNELS]


def bitlist(value: int | list[int] | list[bool], n: int) -> list[bool]:
    """Expand a scalar or a per-PTE list of 0/1 to ``n`` booleans."""
    if isinstance(value, list):
        assert len(value) == n
        return [bool(v) for v in value]
    return [bool(value)] * n


def p_anon_folio(order: int, n: int | None = None, *, kernel: str = NEWEST, npages: int = 64,
                 W=1, D_=1, A_=1, SD=0, UW=0, PN=0, AE=1, uffd_wp: bool = False,
                 uffd_fork: bool = False, soft_dirty_tracking: bool = False,
                 start: int = BASE) -> tuple[pkmm.Process, pkmm.Folio]:
    """One anon folio of ``order`` whose first ``n`` pages sit on consecutive PTEs at BASE,
    with per-PTE bits given as scalars or lists."""
    p = pkmm.Process(kernel)
    p.mmap(start, npages, uffd_wp=uffd_wp, uffd_fork=uffd_fork,
           soft_dirty_tracking=soft_dirty_tracking)
    f = p.alloc_folio(order)
    n = f.nr_pages if n is None else n
    bits = {k: bitlist(v, n) for k, v in dict(W=W, D=D_, A=A_, SD=SD, UW=UW, PN=PN,
                                               AE=AE).items()}
    for i in range(n):
        p.map(start + i * 4096, f, i, 1, write=bits["W"][i], dirty=bits["D"][i],
              young=bits["A"][i], soft_dirty=bits["SD"][i], uffd_wp=bits["UW"][i],
              protnone=bits["PN"][i], anon_exclusive=bits["AE"][i])
    return p, f


def child_bits(r: pkmm.ForkResult, bit: str, n: int, start: int = BASE) -> list[int]:
    """One bit of the child's first ``n`` PTEs, as 0/1."""
    return [int(getattr(r.child.pte(start + i * 4096), bit)) for i in range(n)]


def parent_bits(r: pkmm.ForkResult, bit: str, n: int, start: int = BASE) -> list[int]:
    """One bit of the parent's first ``n`` PTEs, as 0/1."""
    return [int(getattr(r.parent.pte(start + i * 4096), bit)) for i in range(n)]
