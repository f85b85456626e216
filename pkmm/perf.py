"""Keeping big simulations linear: pause Python's cyclic garbage collector around them.

Simulator concept (no kernel file).  A traced fork of 1 GiB allocates a million PTE
values, events and steps -- all acyclic -- while the machine's folios and pages sit in
memory.  Each time the heap grows by a quarter, CPython's collector rescans every
tracked object, which made a 262,144-PTE fork cost 1.6x per PTE what a 4,096-PTE one
did.  The builders, fork and the invariant checks create no garbage cycles, so they run
with the collector paused (reference counting still frees everything) and restore it.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["cyclic_gc_paused"]


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Run the body with the cyclic collector off; leave it as it was afterwards.

    >>> import gc
    >>> with cyclic_gc_paused():
    ...     gc.isenabled()
    False
    >>> gc.isenabled()
    True
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
