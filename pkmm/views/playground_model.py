"""PlaygroundModel: a forked pair of processes and what the learner made them do.

Simulator concept (views layer, plain Python).  Forks a fresh build of a layout under a
chosen kernel (optionally with rules switched off); then the learner acts as the parent,
the child or a device, and every access runs the model's fault path.  Arguments are
checked before anything changes (LayoutError naming the fix).
Taught in: notebooks/07-after-fork.ipynb
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..errors import LayoutError
from ..fork import fork
from ..kernels import DEFAULT_KERNEL
from ..process import Process, dma_write
from ..pte import PAGE_SIZE
from ..scenario import as_scenario
from .stepper_model import check_without
from .svg.scene import need_kernel

MAX_VALUE = 2**53 - 1     # what a browser's number field holds exactly

ACTIONS = ("read", "write", "exit", "DMA write (device)")


def _kind(fr: Any) -> str:
    """The fault path an access took, or "no fault" when the PTE allowed it."""
    return "no fault" if fr is None or not fr.faulted else str(fr.kind)


class PlaygroundModel:
    """A forked pair of processes and a log of what the learner did.

    >>> m = PlaygroundModel({"vmas": [{"start": 0, "npages": 2}],
    ...     "folios": {"F": {"order": 0}}, "ptes": [{"addr": 0, "folio": "F"}]}, "v6.17")
    >>> m.act("child", "write", 0, 7)
    'child write PTE 0 = 7: cow-copy'
    >>> m.act("parent", "read", 0)
    'parent read PTE 0 -> 0: no fault'
    """

    def __init__(self, layout: Any, kernel: str = DEFAULT_KERNEL,
                 without: Iterable[str] = frozenset()) -> None:
        self.scenario = as_scenario(layout)
        self.kernel = need_kernel(kernel, "AfterForkPlayground")
        self.without = check_without(without)
        self.parent, self.folios = self.scenario.build()
        self.result = fork(self.parent, kernel=kernel, without=self.without)
        self.child = self.result.child
        self.names = {f.pfn: n for n, f in self.folios.items()}
        self.start = self.parent.vmas[0].vm_start if self.parent.vmas else 0
        self.log: list[str] = []

    def proc(self, who: str) -> Process:
        """The parent or the child."""
        if who not in ("parent", "child"):
            raise LayoutError(f"who={who!r}: 'parent' or 'child'")
        return self.parent if who == "parent" else self.child

    def act(self, who: str, action: str, slot: int, value: int = 0) -> str:
        """Do one thing; returns (and logs) a one-line account of it."""
        if action not in ACTIONS:
            raise LayoutError(f"action={action!r}: one of {', '.join(ACTIONS)}")
        if isinstance(slot, bool) or not isinstance(slot, int) or slot < 0:
            raise LayoutError(f"slot={slot!r}: a slot number 0, 1, 2, ...")
        if isinstance(value, bool) or not isinstance(value, int) or \
                not 0 <= value <= MAX_VALUE:
            raise LayoutError(f"value={value!r}: a whole number 0..{MAX_VALUE}")
        if not action.startswith("DMA"):
            self.proc(who)
        addr = self.start + slot * PAGE_SIZE
        if action == "read":
            v = self.proc(who).read(addr)
            fr = self.proc(who).last_fault
            line = f"{who} read PTE {slot} -> {v}: {_kind(fr)}"
        elif action == "write":
            self.proc(who).write(addr, value)
            fr = self.proc(who).last_fault
            line = f"{who} write PTE {slot} = {value}: {_kind(fr)}"
        elif action == "exit":
            self.proc(who).exit()
            line = f"{who} exited: its mappings and pins are gone"
        elif action.startswith("DMA"):
            f, page = self._pinned()
            dma_write(f, page, value)
            line = (f"device wrote {value} into pinned page {self.names.get(f.pfn, '?')}:"
                    f"{page}")
        else:
            raise LayoutError(f"action={action!r}: one of {', '.join(ACTIONS)}")
        self.log.append(line)
        return line

    def _pinned(self) -> tuple[Any, int]:
        for pin in self.scenario.pins:
            f = self.folios[pin["folio"]]
            if f.freed or not f.pins:
                raise LayoutError("DMA write: the pinned page is gone (its pin was dropped "
                                  "when the pinning process exited); fork again")
            return f, pin.get("page", 0)
        raise LayoutError("DMA write: the layout pins no page; pin one in the layout")

    def fault_detail(self, who: str) -> list[str]:
        """The last access of ``who``: the fault path, then every decision it took."""
        fr = self.proc(who).last_fault
        if fr is None:
            return []
        op = "write" if fr.write else "read"
        if not fr.faulted:
            return [f"{op} at {fr.addr:#x}: no page fault (the PTE allowed the access)"]
        return [f"{op} at {fr.addr:#x}: page fault, path {fr.kind}"] + [
            f"{f}: {rule} -- {why}" for f, rule, why in fr.events]
