"""The test matrix of the kernel's CoW selftest, tools/testing/selftests/mm/cow.c.

Simulator concept: the cases cow.c runs, in the order it runs them and named exactly as its
``[RUN]`` lines name them, so a case of the model port and a line of the live TAP output
are matched by name.  Mirrors: cow.c main() -> run_anon_test_cases(),
run_anon_thp_test_cases(), run_non_anon_test_cases() (Linux 6.12 .. 6.18 tree).
Taught in: notebooks/09-real-kernel-lab.ipynb

Which configurations exist depends on the machine: the THP sizes the kernel offers for
anonymous memory, the hugetlb page sizes, whether a PMD THP size exists and whether cow.c
was built with liburing.  :data:`LINUX_6_18_X86_64` is the machine the stored live results
come from.

>>> len(cases()), cases()[0].name
(778, 'Basic COW after fork() ... with base page')
"""

from __future__ import annotations

from dataclasses import dataclass

#: anon_test_cases[] of cow.c: (description, test function), in order.
ANON_FAMILIES = (
    ("Basic COW after fork()", "test_cow_in_parent"),
    ("Basic COW after fork() with mprotect() optimization", "test_cow_in_parent_mprotect"),
    ("vmsplice() + unmap in child", "test_vmsplice_in_child"),
    ("vmsplice() + unmap in child with mprotect() optimization",
     "test_vmsplice_in_child_mprotect"),
    ("vmsplice() before fork(), unmap in parent after fork()", "test_vmsplice_before_fork"),
    ("vmsplice() + unmap in parent after fork()", "test_vmsplice_after_fork"),
    ("R/O-mapping a page registered as iouring fixed buffer", "test_iouring_ro"),
    ("fork() with an iouring fixed buffer", "test_iouring_fork"),
    ("R/O GUP pin on R/O-mapped shared page", "test_ro_pin_on_shared"),
    ("R/O GUP-fast pin on R/O-mapped shared page", "test_ro_fast_pin_on_shared"),
    ("R/O GUP pin on R/O-mapped previously-shared page",
     "test_ro_pin_on_ro_previously_shared"),
    ("R/O GUP-fast pin on R/O-mapped previously-shared page",
     "test_ro_fast_pin_on_ro_previously_shared"),
    ("R/O GUP pin on R/O-mapped exclusive page", "test_ro_pin_on_ro_exclusive"),
    ("R/O GUP-fast pin on R/O-mapped exclusive page", "test_ro_fast_pin_on_ro_exclusive"),
)
#: the two io_uring families exist only when cow.c was built with liburing
IOURING = ("test_iouring_ro", "test_iouring_fork")
#: anon_thp_test_cases[]: each runs once on a PMD-sized THP (do_run_with_thp THP_RUN_PMD).
ANON_THP_FAMILIES = (
    ("Basic COW after fork() when collapsing before fork()",
     "test_anon_thp_collapse_unshared"),
    ("Basic COW after fork() when collapsing after fork() (fully shared)",
     "test_anon_thp_collapse_fully_shared"),
    ("Basic COW after fork() when collapsing after fork() (lower shared)",
     "test_anon_thp_collapse_lower_shared"),
    ("Basic COW after fork() when collapsing after fork() (upper shared)",
     "test_anon_thp_collapse_upper_shared"),
)
#: non_anon_test_cases[]
NON_ANON_FAMILIES = (
    ("Basic COW", "test_cow"),
    ("R/O longterm GUP pin", "test_ro_pin"),
    ("R/O longterm GUP-fast pin", "test_ro_fast_pin"),
)

#: config kind -> cow.c's "... with <words>" (``{kb}`` is the size in kB)
CONFIG_WORDS = {
    "base": "base page",
    "base-swap": "swapped out base page",
    "thp": "THP ({kb} kB)",
    "thp-swap": "swapped-out THP ({kb} kB)",
    "pte-thp": "PTE-mapped THP ({kb} kB)",
    "pte-thp-swap": "swapped-out, PTE-mapped THP ({kb} kB)",
    "single-pte": "single PTE of THP ({kb} kB)",
    "single-pte-swap": "single PTE of swapped-out THP ({kb} kB)",
    "partial-mremap": "partially mremap()'ed THP ({kb} kB)",
    "partial-shared": "partially shared THP ({kb} kB)",
    "hugetlb": "hugetlb ({kb} kB)",
    "zeropage": "shared zeropage",
    "memfd": "memfd",
    "tmpfile": "tmpfile",
    "huge-zeropage": "huge zeropage",
    "memfd-hugetlb": "memfd hugetlb ({kb} kB)",
}


@dataclass(frozen=True)
class Machine:
    """What decides cow.c's matrix: THP sizes (kB, ascending, the PMD size included),
    hugetlb sizes (kB, in the order the kernel lists them), the PMD size, liburing."""

    thp_kb: tuple[int, ...]
    hugetlb_kb: tuple[int, ...]
    pmd_kb: int = 2048
    liburing: bool = True


LINUX_6_18_X86_64 = Machine(thp_kb=(16, 32, 64, 128, 256, 512, 1024, 2048),
                            hugetlb_kb=(2048, 1048576))


@dataclass(frozen=True)
class Case:
    """One cow.c test case: a test function run in one memory configuration."""

    n: int           # its number in the TAP output (1-based)
    family: str      # cow.c's description of the test
    func: str        # cow.c's test function
    config: str      # a key of CONFIG_WORDS
    kb: int = 0      # folio / huge page size of the configuration (0: none)

    @property
    def name(self) -> str:
        """The ``[RUN]`` text cow.c prints before the case."""
        if self.func.startswith("test_anon_thp_collapse"):
            return self.family
        return f"{self.family} ... with {CONFIG_WORDS[self.config].format(kb=self.kb)}"


def anon_configs(m: Machine) -> list[tuple[str, int]]:
    """run_anon_test_case(): the configurations of every anon family, in cow.c's order."""
    out = [("base", 0), ("base-swap", 0)]
    for kb in m.thp_kb:
        if kb == m.pmd_kb:
            out += [("thp", kb), ("thp-swap", kb)]
        out += [(kind, kb) for kind in ("pte-thp", "pte-thp-swap", "single-pte",
                                        "single-pte-swap", "partial-mremap", "partial-shared")]
    return out + [("hugetlb", kb) for kb in m.hugetlb_kb]


def non_anon_configs(m: Machine) -> list[tuple[str, int]]:
    """run_non_anon_test_case(): zero page, memfd, tmpfile, huge zero page, memfd hugetlb."""
    out = [("zeropage", 0), ("memfd", 0), ("tmpfile", 0)]
    if m.pmd_kb:
        out.append(("huge-zeropage", m.pmd_kb))
    return out + [("memfd-hugetlb", kb) for kb in m.hugetlb_kb]


def cases(m: Machine = LINUX_6_18_X86_64) -> list[Case]:
    """Every case cow.c runs on machine ``m``, numbered as its TAP output numbers them."""
    out: list[Case] = []

    def add(family: str, func: str, config: str, kb: int) -> None:
        out.append(Case(len(out) + 1, family, func, config, kb))

    for family, func in ANON_FAMILIES:
        if func in IOURING and not m.liburing:
            continue
        for config, kb in anon_configs(m):
            add(family, func, config, kb)
    if m.pmd_kb:
        for family, func in ANON_THP_FAMILIES:
            add(family, func, "thp", m.pmd_kb)
    for family, func in NON_ANON_FAMILIES:
        for config, kb in non_anon_configs(m):
            add(family, func, config, kb)
    return out


__all__ = ["ANON_FAMILIES", "ANON_THP_FAMILIES", "CONFIG_WORDS", "LINUX_6_18_X86_64",
           "NON_ANON_FAMILIES", "Case", "Machine", "anon_configs", "cases",
           "non_anon_configs"]
