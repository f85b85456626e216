"""The registry (pkmm.kernels.ALL) and what each variant declares about itself.

Declarations (``folio_end``, ``anon_dup``, ``copy_on_write``, ``present_func``,
``batch_func``) are read by code that must not run the variant per PTE; each is checked
here against what the variant's own code does.  Every test is parametrised over
``pkmm.kernels.ALL``, so a newly registered variant is checked without a line here.
"""

from __future__ import annotations

import importlib
import warnings

import pytest

import pkmm
from pkmm import kernels
from pkmm.context import KernelVersion
from pkmm.realkernel.model import UncheckedKernelWarning, model_kernel
from pkmm.scenario import Scenario

BASE = 0x200000
IDS = [k.name for k in kernels.ALL]


def _fork(kernel: KernelVersion, layout: dict[str, object]) -> pkmm.ForkResult:
    p, _ = Scenario.from_dict(layout).build()
    return pkmm.fork(p, kernel.name)


@pytest.mark.parametrize("k", kernels.ALL, ids=IDS)
def test_folio_end_declaration_matches_the_batch_function(k: KernelVersion) -> None:
    # two physically adjacent order-2 folios; the PTE after the first folio is clean
    r = _fork(k, {"vmas": [{"start": BASE, "npages": 8}],
                  "folios": {"A": {"order": 2}, "B": {"order": 2}},
                  "ptes": [{"addr": BASE, "folio": "A"},
                           {"addr": BASE + 4 * 4096, "folio": "B", "dirty": False}]})
    stops = [e.rule for e in r.trace if e.rule.startswith("stop:") and e.addr == BASE]
    if not stops:
        seen = "none"
    elif stops[0] == "stop:folio-end":
        seen = "clamp"            # the folio end limits the scan before any compare
    else:
        seen = "after-compare"    # the clean PTE was compared before the folio end counted
    assert (seen, r.batches[0]) == (k.folio_end, 1 if seen == "none" else 4)


@pytest.mark.parametrize("k", kernels.ALL, ids=IDS)
def test_anon_dup_declaration_matches_the_copy_path(k: KernelVersion) -> None:
    # pages 0-1 already shared by an earlier fork (not AnonExclusive), page 2 pinned: the
    # pinned folio's exclusive pages 2-3 must be copied, pages 0-1 may be shared
    r = _fork(k, {"vmas": [{"start": BASE, "npages": 4}], "folios": {"F": {"order": 2}},
                  "ptes": [{"addr": BASE, "folio": "F", "nr": 2, "anon_exclusive": False},
                           {"addr": BASE + 2 * 4096, "folio": "F", "page": 2}],
                  "pins": [{"folio": "F", "page": 2}]})
    first = r.steps[0]
    seen = ("all-or-nothing" if first.action == "eagain" else
            "per-pte" if first.nr == 1 else "truncate")
    assert seen == k.anon_dup, [str(s) for s in r.steps]


@pytest.mark.parametrize("k", kernels.ALL, ids=IDS)
def test_copy_on_write_declaration_matches_what_the_child_maps(k: KernelVersion) -> None:
    r = _fork(k, {"vmas": [{"start": BASE, "npages": 1}], "folios": {"F": {"order": 0}},
                  "ptes": [{"addr": BASE, "folio": "F"}]})
    shared = r.child.pte(BASE).pfn == r.parent.pte(BASE).pfn
    assert shared == k.copy_on_write
    assert (k.name in kernels.COW_KERNELS) == k.copy_on_write


@pytest.mark.parametrize("k", kernels.ALL, ids=IDS)
def test_declared_function_names_are_the_functions_that_run(k: KernelVersion) -> None:
    module = importlib.import_module(k.copy_present.__module__)
    assert k.copy_present.__name__ == k.present_func
    assert k.batch_func == "" or callable(getattr(module, k.batch_func))
    r = _fork(k, {"vmas": [{"start": BASE, "npages": 4}], "folios": {"F": {"order": 2}},
                  "ptes": [{"addr": BASE, "folio": "F"}]})
    funcs = {e.func for e in r.trace}
    assert (k.batch_func in funcs) == bool(k.batch_func) and k.present_func in funcs | {
        s.func for s in r.steps}
    assert (k.name in kernels.BATCHING_KERNELS) == (bool(k.batch_func) and k.copy_on_write)


def test_derived_lists_follow_the_registry() -> None:
    assert kernels.KERNELS == tuple(k.name for k in kernels.ALL)
    assert kernels.DEFAULT_KERNEL == max((k for k in kernels.ALL if k.since),
                                         key=lambda k: k.since or (0, 0)).name
    assert set(kernels.RELEASED_KERNELS) == {k.name for k in kernels.ALL if k.since}
    assert all(kernels.get_kernel(n).name == n for n in kernels.KERNELS)
    with pytest.raises(pkmm.LayoutError, match="choose one of"):
        kernels.get_kernel(["v6.9"])  # type: ignore[arg-type]


def test_live_release_mapping_and_beyond() -> None:
    released = [kernels.get_kernel(n) for n in kernels.RELEASED_KERNELS]
    for k in released:
        assert k.since is not None
        match = kernels.kernel_for_release(f"{k.since[0]}.{k.since[1]}.3-distro")
        assert match.kernel is k and not match.beyond
    newest = released[-1]
    reach = max(r for r in (newest.since, newest.checked) if r is not None)
    assert not kernels.kernel_for_release(f"{reach[0]}.{reach[1]}").beyond
    later = kernels.kernel_for_release(f"{reach[0]}.{reach[1] + 1}.0")
    assert later.kernel is newest and later.beyond and "newer than every" in later.note
    older = kernels.kernel_for_release("4.19.0")
    assert older.kernel is released[0] and older.beyond and "older" in older.note
    with pytest.warns(UncheckedKernelWarning, match="newer than every"):
        assert model_kernel(f"{reach[0]}.{reach[1] + 1}.0") == newest.name
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert model_kernel(f"{reach[0]}.{reach[1]}.9") == newest.name
    with pytest.raises(pkmm.LayoutError, match="uname -r"):
        kernels.kernel_for_release("linux")
