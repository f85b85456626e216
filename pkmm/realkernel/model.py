"""Run a scenario's script in the pkmm model and observe it like the real probe does.

Simulator concept (no kernel file): the model side of the agreement report.  Observations
are derived the way fs/proc/task_mmu.c (pagemap) and fs/proc/page.c (kpageflags,
kpagecount) derive them on a CONFIG_PAGE_MAPCOUNT kernel: kpagecount is the precise page
mapcount, bit 56 is "that mapcount == 1" (for a PMD mapping: the head page's), AE and the
folio flags are the head page's for a large folio, the 4K zero page has no struct page to
report (no bit 61) while the huge zero PMD does.
Taught in: notebooks/09-real-kernel-lab.ipynb
"""

from __future__ import annotations

import warnings
from typing import Any

import pkmm
from pkmm.kernels import DEFAULT_KERNEL, kernel_for_release

from .layouts_model import BASE, build, mprotect_rw, page
from .observe import PageObs, Step, label_steps
from .scenarios import Scenario, run_script


class UncheckedKernelWarning(UserWarning):
    """The running kernel is newer (or older) than every release a pkmm variant describes."""


def model_kernel(release: str) -> str:
    """The pkmm kernel variant matching a running kernel release (see
    :func:`pkmm.kernels.kernel_for_release`).  A release beyond every variant is still
    modelled by the nearest one, with an :class:`UncheckedKernelWarning` saying so.

    >>> model_kernel("6.18.44-fc"), model_kernel("6.10.2"), model_kernel("6.8.0-41-generic")
    ('v6.17', 'v6.9', 'v6.8')
    """
    match = kernel_for_release(release)
    if match.beyond:
        warnings.warn(match.note, UncheckedKernelWarning, stacklevel=2)
    return match.kernel.name


def page_obs(p: pkmm.Process, addr: int) -> PageObs:
    pte = p.pte(addr)
    if pte is None:
        return PageObs()
    if not pte.present:
        return PageObs(uwp=pte.uffd_wp or (pte.swp is not None and "uffd_wp" in pte.swp.markers),
                       swapped=pte.swp is not None and pte.swp.kind == "swap")
    pfn = pte.pfn
    pmd = p.pmd(addr) if pte.pmd else None
    if pmd is not None:   # pagemap: pmd_pfn + index, for the huge zero PMD too
        pfn = pmd.pfn + (addr % pkmm.PMD_SIZE) // pkmm.PAGE_SIZE
    found = p.machine.pfn_folio(pfn)
    if found is None:   # a raw PFN map: no struct page behind it
        return PageObs(pfn=pfn, uwp=pte.uffd_wp)
    folio, i = found
    zero = folio.kind in ("zero", "huge_zero")
    head = folio.pages[0]
    mapped = head if pte.pmd else folio.pages[i]
    large = folio.order > 0
    return PageObs(pfn=pfn, excl=not zero and mapped.mapcount == 1,
                   count=0 if zero else folio.pages[i].mapcount,
                   ae=(head if large else folio.pages[i]).anon_exclusive,
                   anon=folio.kind == "anon", head=large and i == 0, tail=large and i > 0,
                   thp=large and not folio.hugetlb, zero=zero,
                   file=folio.kind not in ("anon", "zero"), uwp=pte.uffd_wp,
                   hugetlb=folio.hugetlb)


class ModelBackend:
    """:class:`pkmm.realkernel.scenarios.Backend` on the pkmm model."""

    def __init__(self, sc: Scenario, kernel: str) -> None:
        self.sc, self.kernel = sc, kernel
        self.procs: dict[str, pkmm.Process] = {"parent": build(sc, kernel)}
        self.mprotected: set[str] = set()

    def observe(self, name: str, who: str) -> Step:
        p = self.procs[who]
        pages = [page_obs(p, page(i)) for i in range(self.sc.npages)]
        return Step(name, who, pages, _ahp_kb(p, self.sc.npages))

    def access(self, name: str, who: str, i: int, *, write: bool) -> Step:
        p = self.procs[who]
        op: dict[str, Any] = {"kind": "write" if write else "read", "page": i}
        if write and self.sc.writer_mprotect and who not in self.mprotected:
            mprotect_rw(p)
            self.mprotected.add(who)
        try:
            if write:
                p.write(page(i), 1)
            else:
                op["value"] = p.read(page(i))
            fault = p.last_fault
            op["faults"] = int(fault is not None and fault.faulted)
            if not write:   # keep the real probe's key order
                op["value"] = op.pop("value")
        except pkmm.FaultError as e:
            op.pop("value", None)
            op["signal"] = e.signal
        step = self.observe(name, who)
        step.op = op
        return step

    def fork(self) -> None:
        self.result = pkmm.fork(self.procs["parent"], kernel=self.kernel)
        self.procs["child"] = self.result.child

    def child_exit(self) -> None:
        self.procs["child"].exit()


def _ahp_kb(p: pkmm.Process, npages: int) -> int:
    """smaps AnonHugePages: PMD-mapped anonymous THPs (not the huge zero page)."""
    total = 0
    for first in range(0, npages, 512):
        pmd = p.pmd(page(first))
        if pmd is not None and not pmd.huge_zero:
            total += 2048
    return total


def run_model(sc: Scenario, kernel: str = DEFAULT_KERNEL) -> list[Step]:
    """``sc``'s script in the model under ``kernel``; labelled steps."""
    steps = run_script(sc, ModelBackend(sc, kernel))
    label_steps(steps)
    return steps


__all__ = ["BASE", "ModelBackend", "UncheckedKernelWarning", "model_kernel", "page_obs",
           "run_model"]
