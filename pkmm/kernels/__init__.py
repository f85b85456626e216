"""The kernel variants pkmm can fork with, selectable by name.

Each variant is one module holding that version's present-PTE copy path, so two modules
can be diffed to see the upstream change.  :data:`KERNELS` lists them oldest-idea first.
Taught in: notebooks/00-start-here.ipynb
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import LayoutError

if TYPE_CHECKING:  # pragma: no cover
    from ..memory import ForkContext, Prealloc
    from ..pte import Pte
    from ..vma import Vma

CopyPresent = Callable[["ForkContext", "Vma", "Vma", "Pte", int, int, dict[str, int],
                        "Prealloc"], int]
CopyHuge = Callable[["ForkContext", "Vma", "Vma", int], int]


@dataclass(frozen=True)
class KernelVersion:
    """What differs between the variants, as data the shared code can consult."""

    name: str
    spec: str               # label in shared/spec/kernel-fork-spec.md (A/B/C/D, or "-")
    title: str
    present_func: str       # the kernel function copy_pte_range calls for present PTEs
    batch_func: str         # the batch-size function ("" when there is none)
    copy_present: CopyPresent
    guard_markers: bool     # copy_pte_marker() copies PTE_MARKER_GUARD (v6.13+)
    large_folio_reuse: bool  # do_wp_page reuses exclusively mapped large folios (~v6.15+)
    huge_zero_wp_thp: bool  # write to the huge zero PMD allocates a whole THP (v6.17)
    hwpoison_copy: bool     # copy_present_page() returns -EHWPOISON on a memory error
    copy_huge: CopyHuge | None = None   # PMD leaves: None = huge_memory.copy_huge_pmd


KERNELS: tuple[str, ...] = ("eager-copy", "v6.8", "batch-v3", "v6.9", "v6.17")
DEFAULT_KERNEL = "v6.17"


def get_kernel(name: str) -> KernelVersion:
    """The :class:`KernelVersion` called ``name`` (one of :data:`KERNELS`).

    >>> get_kernel("v6.9").batch_func
    'folio_pte_batch'
    """
    from . import batch_v3, eager_copy, v6_8, v6_9, v6_17
    table = {"eager-copy": eager_copy.KERNEL, "v6.8": v6_8.KERNEL,
             "batch-v3": batch_v3.KERNEL, "v6.9": v6_9.KERNEL, "v6.17": v6_17.KERNEL}
    if name not in table:
        raise LayoutError(f"kernel={name!r} is not a pkmm kernel; choose one of "
                          f"{', '.join(KERNELS)}")
    return table[name]
