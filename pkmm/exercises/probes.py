"""Which PTE bits a version's batch scan compares, found by forking probes.

Simulator concept.  The one place that asks the model "does a change of this bit end a
batch?": exercise (a)'s table and the views' masked-compare picture both read it, so the
rule is stated by the variant modules (pkmm/kernels/) and observed here, never restated.
It sits in the exercises layer because the views layer above may import it and the
exercises may not import the views.
Taught in: notebooks/06-upstream-batching.ipynb, notebooks/exercises/README.md
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from ..errors import LayoutError
from ..fork import fork
from ..kernels import get_kernel
from ..process import Process
from ..pte import SETTABLE_BITS
from ..vma import Backing

__all__ = ["CMP_BITS", "ignored_bits"]

#: The PTE bits a probe varies, in the legend's order (pkmm.pte.SETTABLE_BITS).
CMP_BITS = tuple(b.name for b in SETTABLE_BITS)


@lru_cache(maxsize=64)
def ignored_bits(kernel: str, vma_kw: tuple[tuple[str, Any], ...] = ()) -> dict[str, str]:
    """For each bit: "ignored" if a batch went on over a PTE differing only there,
    "counted" if it went on and the variant declares it decides that bit by counting
    (``KernelVersion.counted_bits``), "merged" if it went on and the variant declares the
    batch takes the bit when any of its PTEs has it (``KernelVersion.merged_bits``),
    "compared" if the batch stopped there, "n/a" if such
    a PTE cannot exist in this VMA.
    Found by forking two-PTE probes (one order-1 folio) under ``kernel``.

    >>> ignored_bits("v6.9")["dirty"], ignored_bits("v6.9")["young"]
    ('compared', 'ignored')
    """
    kw = dict(vma_kw)
    backing: Backing = "shmem" if kw.get("shared") else kw.get("backing", "anon")
    if backing == "file":
        kw["anon_vma"] = True        # else vma_needs_copy() skips the VMA: nothing to see

    def first_call(bit: str | None) -> int | None:
        """nr of the first copy call for two PTEs differing only in ``bit``."""
        p = Process()
        p.mmap(0x200000, 2, **kw)
        f = p.alloc_folio(1, backing=backing)
        base = {b: False for b in CMP_BITS}
        try:
            p.map(0x200000, f, 0, 1, **base)
            other = dict(base, **({bit: True} if bit else {}))
            p.map(0x201000, f, 1, 1, **other)
        except LayoutError:
            return None
        steps = [s for s in fork(p, kernel=kernel).steps if s.addr == 0x200000]
        return steps[0].nr if steps and steps[0].action == "share" else None
    if first_call(None) != 2:          # two equal PTEs of one folio: no batch at all
        return dict.fromkeys(CMP_BITS, "no batching")
    k = get_kernel(kernel)
    out = {}
    for bit in CMP_BITS:
        nr = first_call(bit)
        # the scan went on: the variant's declaration says what became of the bit
        went_on = ("counted" if bit in k.counted_bits else
                   "merged" if bit in k.merged_bits else "ignored")
        out[bit] = "n/a" if nr is None else went_on if nr == 2 else "compared"
    return out
