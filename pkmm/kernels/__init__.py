"""The registry of kernel variants: the one list every other kernel list is derived from.

Each variant is one module holding that version's present-PTE copy path and a
``KERNEL = KernelVersion(...)`` declaring what differs (see :mod:`pkmm.context`), so two
modules can be diffed to see the upstream change.  A new version is its module plus one
line in :data:`ALL`; every list elsewhere (exercises, checkers, the cost model, the views'
defaults, the live-kernel mapping) is computed from :data:`ALL` here, and no code outside
this package compares a kernel's name.

Live kernels: :func:`kernel_for_release` picks the variant a running Linux release is
modelled by -- the newest variant whose ``since`` is not after it.  A release newer than
every variant's ``since`` and ``checked`` releases is still modelled by the newest variant,
but the match says it is *beyond* what pkmm was checked against (so a disagreement may be
a kernel change rather than a pkmm bug); likewise a release older than every variant.
Taught in: notebooks/00-start-here.ipynb
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..context import KernelVersion, Release
from ..errors import LayoutError
from . import batch_v3, eager_copy, v6_8, v6_9, v6_17

__all__ = ["ALL", "BATCHING_KERNELS", "COMPARE_PAIR", "COW_KERNELS", "DEFAULT_KERNEL",
           "KERNELS", "RELEASED_KERNELS", "KernelVersion", "ReleaseMatch", "get_kernel",
           "kernel_for_release"]

#: Every variant, oldest idea first (the baseline, then releases and the seed patch in
#: the order the story is told).  THE list: everything below is derived from it.
ALL: tuple[KernelVersion, ...] = (eager_copy.KERNEL, v6_8.KERNEL, batch_v3.KERNEL,
                                  v6_9.KERNEL, v6_17.KERNEL)

KERNELS: tuple[str, ...] = tuple(k.name for k in ALL)
#: The variants that share pages at fork (eager-copy copies every private page).
COW_KERNELS: tuple[str, ...] = tuple(k.name for k in ALL if k.copy_on_write)
#: Copy-on-write variants whose present-PTE copy batches PTEs of a large folio.
BATCHING_KERNELS: tuple[str, ...] = tuple(k.name for k in ALL
                                          if k.copy_on_write and k.batch_func)
#: Variants that model a released Linux version (oldest first).
RELEASED_KERNELS: tuple[str, ...] = tuple(
    k.name for k in sorted((k for k in ALL if k.since), key=lambda k: k.since or (0, 0)))
#: The newest released variant: what ``pkmm.fork`` and the widgets use unless told.
DEFAULT_KERNEL: str = RELEASED_KERNELS[-1]
#: The comparison a learner starts with: the seed patch against the upstream batching
#: that replaced it.
COMPARE_PAIR: tuple[str, str] = (batch_v3.KERNEL.name, v6_9.KERNEL.name)

_BY_NAME = {k.name: k for k in ALL}
if len(_BY_NAME) != len(ALL):  # pragma: no cover - a registry typo
    raise ImportError("pkmm.kernels.ALL: two variants share a name")


def get_kernel(name: str | KernelVersion) -> KernelVersion:
    """The :class:`KernelVersion` called ``name`` (one of :data:`KERNELS`).

    >>> get_kernel("v6.9").batch_func
    'folio_pte_batch'
    >>> get_kernel("v5")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pkmm.errors.LayoutError: kernel='v5' is not a pkmm kernel; choose one of eager-copy, ...
    """
    if isinstance(name, KernelVersion) and _BY_NAME.get(name.name) is name:
        return name
    if not isinstance(name, str) or name not in _BY_NAME:
        raise LayoutError(f"kernel={name!r} is not a pkmm kernel; choose one of "
                          f"{', '.join(KERNELS)}")
    return _BY_NAME[name]


@dataclass(frozen=True)
class ReleaseMatch:
    """Which variant models a Linux release, and whether pkmm was checked that far."""

    release: Release
    kernel: KernelVersion
    beyond: bool        # newer (or older) than every release the variants describe
    note: str


def _release(text: str) -> Release:
    m = re.match(r"\s*(\d+)\.(\d+)", text)
    if m is None:
        raise LayoutError(f"release={text!r}: expected a Linux release such as '6.18.2' "
                          "(what uname -r prints)")
    return int(m.group(1)), int(m.group(2))


def kernel_for_release(release: str) -> ReleaseMatch:
    """The variant that models Linux ``release`` (e.g. ``uname -r``).

    >>> kernel_for_release("6.18.44-fc").kernel.name, kernel_for_release("6.10.2").kernel.name
    ('v6.17', 'v6.9')
    >>> m = kernel_for_release("6.19.0")
    >>> m.kernel.name, m.beyond
    ('v6.17', True)
    """
    rel = _release(release)
    released = [_BY_NAME[n] for n in RELEASED_KERNELS]
    older = [k for k in released if k.since is not None and k.since <= rel]
    if not older:
        first = released[0]
        return ReleaseMatch(rel, first, True, f"Linux {rel[0]}.{rel[1]} is older than every "
                            f"pkmm variant; modelled as {first.name} (the oldest), which may "
                            "differ from it")
    k = older[-1]
    newest = released[-1]
    reach = max(r for r in (newest.since, newest.checked) if r is not None)
    if k is newest and rel > reach:
        return ReleaseMatch(rel, k, True, f"Linux {rel[0]}.{rel[1]} is newer than every "
                            f"pkmm variant (the newest, {k.name}, was checked against "
                            f"{reach[0]}.{reach[1]}); modelled as {k.name}: a disagreement "
                            "may be a newer kernel change, not a pkmm bug")
    return ReleaseMatch(rel, k, False, f"Linux {rel[0]}.{rel[1]} is modelled by {k.name}")
