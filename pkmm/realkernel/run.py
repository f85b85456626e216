"""Probe every scenario the machine supports, with the THP knobs each one needs.

Kernel interfaces: see :mod:`pkmm.realkernel.probe` and :mod:`pkmm.realkernel.thp`.
Taught in: notebooks/09-real-kernel-lab.ipynb

Knobs are changed per scenario inside :func:`pkmm.realkernel.thp.thp_settings`, so they
are back to their original values after each scenario, whatever happens.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from . import thp
from .layouts_real import LayoutNotObtained
from .probe import probe
from .scenarios import SCENARIOS, Scenario
from .support import detect


def knob_changes(sc: Scenario) -> dict[str, str]:
    """THP knobs for ``sc``: exactly the folio size its layout asks for."""
    if sc.folio == "64K":
        return thp.only_size(64)
    if sc.folio == "2M":
        return thp.only_size(None, pmd=True)
    return {}


def probe_scenario(sc: Scenario) -> dict[str, Any]:
    """``{"steps": [...]}`` from the running kernel, or ``{"skipped": reason}``."""
    reason = detect().skip_reason(sc)
    if reason:
        return {"skipped": reason}
    try:
        with thp.thp_settings(knob_changes(sc)):
            return probe(sc)
    except LayoutNotObtained as e:
        return {"skipped": f"layout not obtained: {e}"}


def probe_all(ids: Iterable[str] | None = None, *,
              progress: bool | None = None) -> dict[str, dict[str, Any]]:
    """Probe the scenarios ``ids`` (default: all of them) in order; a progress bar follows
    them when standard error is a terminal (``progress=True`` forces it)."""
    from ..progress import progress as bar
    wanted = set(ids) if ids is not None else None
    todo = [sc for sc in SCENARIOS if wanted is None or sc.id in wanted]
    return {sc.id: probe_scenario(sc)
            for sc in bar(todo, desc="real-kernel probes", enabled=progress)}
