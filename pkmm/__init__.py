"""pkmm: a faithful, traceable model of how Linux copies page tables at fork().

Build a process (VMAs, folios, PTEs with their bits, pins), fork it under one of
:data:`KERNELS`, and read every decision the kernel made from the trace.  Then let either
process read and write, and watch CoW copies and reuse.

>>> import pkmm
>>> p = pkmm.Process()
>>> _ = p.mmap(0x10000, 16)
>>> f = p.alloc_folio(order=4)
>>> p.map(0x10000, f)
>>> r = pkmm.fork(p, kernel="v6.17")
>>> r.batches, f.refcount, f.page(0).mapcount, f.page(0).anon_exclusive
([16], 32, 2, False)
>>> r.child.pte(0x10000)
Pte(pfn=0x1000 P D)

``import pkmm`` needs nothing beyond the standard library; the widgets live in
:mod:`pkmm.views` (ipywidgets, matplotlib) and are imported only on request.
"""

from __future__ import annotations

from .context import ABLATIONS, FaultResult
from .errors import (
                     FaultError,
                     ForkError,
                     InvariantError,
                     KernelBug,
                     LayoutError,
                     PkmmError,
                     ScenarioError,
)
from .folio import GUP_PIN_COUNTING_BIAS, Folio, Page
from .fork import ForkResult, fork
from .invariants import check_invariants
from .kernels import DEFAULT_KERNEL, KERNELS, get_kernel
from .machine import Machine
from .madvise import ADVICES as MADVISE
from .pgtable import Pmd
from .pins import Pipe, UserPin
from .process import Process, dma_write
from .pte import PAGE_SIZE, PMD_SIZE, Pte
from .trace import Event, Step, Trace
from .vma import File, Vma

__version__ = "0.1.0"

__all__ = [
    "ABLATIONS", "DEFAULT_KERNEL", "GUP_PIN_COUNTING_BIAS", "KERNELS", "PAGE_SIZE",
    "MADVISE", "PMD_SIZE", "Event", "FaultError", "FaultResult", "File", "Folio", "ForkError",
    "ForkResult", "InvariantError", "KernelBug", "LayoutError", "Machine", "Page",
    "Pipe", "PkmmError", "Pmd", "Process", "Pte", "ScenarioError", "Step", "Trace",
    "UserPin", "Vma",
    "check_invariants", "dma_write", "fork", "get_kernel",
]
