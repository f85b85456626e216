"""Command line: ``python -m pkmm {realkernel,bench,quiz,course,snapshot,forksim} ...``.

Each subcommand lives in its own module and is imported only when asked for, so the
model never pulls in what a subcommand needs.
"""

from __future__ import annotations

import importlib
import sys

SUBCOMMANDS = {
    "realkernel": ("pkmm.realkernel.cli", "check the model against the running Linux kernel"),
    "bench": ("pkmm.bench", "simulate fork of real-sized processes; cost model"),
    "quiz": ("pkmm.quiz", "OSTEP-style seeded fork questions (-c shows answers)"),
    "course": ("pkmm.course", "write a ready-to-grade nbgrader (or --otter) course"),
    "snapshot": ("pkmm.realkernel.snapshot", "snapshot a running process into a scenario"),
    "forksim": ("pkmm.forksim", "fork a scenario or a live process under every variant"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in SUBCOMMANDS:
        print("usage: python -m pkmm {" + ",".join(SUBCOMMANDS) + "} [options]")
        for name, (_, what) in SUBCOMMANDS.items():
            print(f"  {name:11s} {what}")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    module = importlib.import_module(SUBCOMMANDS[argv[0]][0])
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
