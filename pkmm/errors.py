"""Error types.

Learner mistakes are ``ValueError`` subclasses raised at the API boundary before any state
changes; a broken kernel invariant (what ``VM_BUG_ON`` guards) is :class:`KernelBug`.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .trace import Trace

__all__ = ["FaultError", "ForkError", "InvariantError", "KernelBug", "LayoutError", "PkmmError",
           "ScenarioError", "StoredDataError", "need"]


class PkmmError(Exception):
    """Base of every pkmm error."""


class LayoutError(PkmmError, ValueError):
    """A layout or argument that cannot exist; the message names the argument and the fix."""


class ScenarioError(LayoutError):
    """A malformed scenario file or dict (names the field and what is expected)."""


class StoredDataError(PkmmError, ValueError):
    """A stored-results file that is missing, unreadable or not in the stored format; the
    message names the file and the fix."""


class FaultError(PkmmError, ValueError):
    """An access the kernel would answer with a signal (SIGSEGV/SIGBUS) or a userfault."""

    def __init__(self, message: str, signal: str = "SIGSEGV") -> None:
        super().__init__(message)
        self.signal = signal


class ForkError(PkmmError, OSError):
    """fork() failed (ENOMEM); the partly built child was torn down.

    ``trace`` holds the decisions made up to the failure.
    """

    def __init__(self, message: str, trace: Trace | None = None,
                 err: int = errno.ENOMEM) -> None:
        super().__init__(err, message)
        self.trace = trace


class KernelBug(PkmmError, AssertionError):
    """A kernel invariant (VM_BUG_ON / VM_WARN_ON) broke: a bug in pkmm, not in the input."""


class InvariantError(PkmmError, AssertionError):
    """:func:`pkmm.check_invariants` found violations; ``violations`` lists every one."""

    def __init__(self, violations: list[str]) -> None:
        super().__init__(f"{len(violations)} invariant violation(s):\n  - "
                         + "\n  - ".join(violations))
        self.violations = violations


def need(cond: Any, message: str) -> None:
    """Raise :class:`LayoutError` with ``message`` unless ``cond`` holds."""
    if not cond:
        raise LayoutError(message)
