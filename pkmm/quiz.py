"""``python -m pkmm quiz``: OSTEP-style seeded questions about one fork.

Simulator concept (after OSTEP's homework simulators: *predict, then check*).  The seed
draws a random layout (folios, PTE bits, maybe a pin); the quiz prints it as a PTE table
and asks what fork does under one kernel version.  ``-c`` computes the answers by running
the model and prints them with the trace lines behind them.  The run starts by echoing
its arguments (``ARG seed 7``), so a printed problem can be regenerated exactly.
Taught in: notebooks/exercises/README.md
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Sequence

from .errors import LayoutError
from .exercises.layout import BASE, LETTERS, describe, random_ptes, scenario
from .folio import Folio
from .fork import ForkResult, fork
from .kernels import DEFAULT_KERNEL, get_kernel
from .pte import PAGE_SIZE
from .scenario import Scenario

CHILD_BITS = ("write", "dirty", "young", "soft_dirty", "uffd_wp")


def _kernel(name: str) -> str:
    try:
        return get_kernel(name).name
    except LayoutError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m pkmm quiz",
        description="Print a random page-table layout and ask what fork() does with it. "
                    "Predict, then run again with -c to check.")
    ap.add_argument("-s", "--seed", type=int, default=0, help="random seed (default 0)")
    ap.add_argument("-k", "--kernel", type=_kernel, default=DEFAULT_KERNEL,
                    help=f"kernel version to fork with (default {DEFAULT_KERNEL})")
    ap.add_argument("-n", "--ptes", type=int, default=8,
                    help="about how many PTEs to lay out, 1..64 (default 8)")
    ap.add_argument("-c", "--compute", dest="solve", action="store_true",
                    help="compute and print the answers")
    return ap


def quiz_scenario(seed: int, nptes: int = 8) -> Scenario:
    """The quiz layout for ``seed``: random folios and PTE bits, sometimes a pin, a
    soft-dirty-tracked VMA or a uffd-wp child VMA.  The kernel plays no part in it."""
    rng = random.Random(seed)
    vma: dict[str, object] = {}
    if rng.random() < 0.2:
        vma["soft_dirty_tracking"] = True
    if rng.random() < 0.15:
        vma.update(uffd_wp=True, uffd_fork=True)
    folios, ptes = random_ptes(rng, nptes)
    pins = []
    if rng.random() < 0.3:
        e = rng.choice(ptes)
        pins.append({"folio": e["folio"], "page": e["page"]})
    # The VMA covers every drawn PTE: runs end on folio boundaries and gaps add empty
    # slots, so about n PTEs can reach past a fixed 64-page VMA.
    span = (max(e["addr"] for e in ptes) - BASE) // PAGE_SIZE + 1
    return scenario(f"quiz-{seed}", folios, ptes, pins=pins, npages=max(64, span))


def questions(kernel: str) -> list[str]:
    """The four questions every quiz asks."""
    func = get_kernel(kernel).present_func
    return [f"Q1. What does {func}() return on each call, in order? "
            "(its batch size; E for -EAGAIN)",
            "Q2. Which PTE rows does the child get a private COPY of?",
            "Q3. What are the child's W D A SD UW bits for each row?",
            "Q4. What is each folio's refcount after fork?"]


def answers(s: Scenario, r: ForkResult, folios: dict[str, Folio]) -> list[str]:
    """The answers to :func:`questions`, read from a fork of the quiz layout."""
    rows = {e["addr"]: i for i, e in enumerate(sorted(s.ptes, key=lambda e: e["addr"]))}
    copied = [rows[st.addr] for st in r.steps if st.action == "copy"]
    out = [f"A1. {r.batches}", f"A2. {copied if copied else 'none'}",
           "A3.   #  addr      pfn     " + " ".join(LETTERS[b] for b in CHILD_BITS)]
    for addr, i in rows.items():
        c = r.child.pte(addr)
        assert c is not None
        bits = " ".join(f"{int(getattr(c, b)):>{len(LETTERS[b])}}" for b in CHILD_BITS)
        note = "  (new page)" if i in copied else ""
        out.append(f"    {i:>3}  {addr:#x}  {c.pfn:#x}  {bits}{note}")
    out.append("A4. " + ", ".join(f"{n} {f.refcount}" for n, f in folios.items()))
    return out


def trace_lines(r: ForkResult) -> list[str]:
    """One line per copy call (what it did and why), then the trace events that decide
    the answers: where batches end, refused anon dups, preallocations and copies."""
    k = get_kernel(r.kernel)
    keep = {k.batch_func, "copy_present_page", k.prealloc_func}
    lines = ["  " + str(st) for st in r.steps]
    lines.append("Trace events:")
    for e in r.trace:
        if e.func in keep or e.rule.startswith("anon-dup:busy"):
            lines.append("  " + str(e))
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Run the quiz; returns the exit status (argparse exits 2 on bad arguments)."""
    args = _parser().parse_args(argv)
    if not 1 <= args.ptes <= 64:
        _parser().error(f"argument -n/--ptes: {args.ptes} is out of range; use 1..64")
    for name in ("seed", "kernel", "ptes", "solve"):
        print(f"ARG {name} {getattr(args, name)}")
    print()
    s = quiz_scenario(args.seed, args.ptes)
    print(describe(s))
    print(f"\nfork() this process under {args.kernel}.")
    for q in questions(args.kernel):
        print(q)
    print()
    if not args.solve:
        print("Predict, then run again with -c to see the answers.")
        return 0
    p, folios = s.build()
    r = fork(p, args.kernel)
    print("\n".join(answers(s, r, dict(folios))))
    print("\nCalls (the decisions behind the answers):")
    print("\n".join(trace_lines(r)))
    return 0
