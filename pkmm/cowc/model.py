"""Run one cow.c case on the pkmm model, with cow.c's own setup steps and assertion.

Simulator concept: a line-by-line port of tools/testing/selftests/mm/cow.c onto the pkmm
API.  Each configuration function mirrors cow.c's ``do_run_with_*`` / ``run_with_*`` and
each test function its ``test_*`` / ``do_test_*``; where cow.c forks, pkmm forks with the
variant under test; where cow.c compares memory with memcmp, the port compares the page
contents the processes (or the pipe, or the pin) read.  A case ends as cow.c's would:
``pass``, ``fail``, ``xfail`` (the hugetlb vmsplice cases cow.c expects to fail) or
``skip`` with cow.c's own skip message.
Taught in: notebooks/09-real-kernel-lab.ipynb

Differences to the C, all of them bookkeeping: memory holds one int per 4 KiB page (a
memset writes it into every page, a memcmp compares every page); the child's steps run in
program order between the parent's (the pipes cow.c synchronises with fix that order); the
PROT_NONE placeholder that cow.c mremap()s over is left out (mremap with MREMAP_FIXED
unmaps whatever is at the target anyway).
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from dataclasses import dataclass

import pkmm
from pkmm.vma import Backing

from .matrix import Case

P = pkmm.PAGE_SIZE
MEM = 0x10_0000_0000          # where each case's memory goes (1 GiB aligned)
SMEM = 0x20_0000_0000         # the second mapping of the non-anon cases
FAR = 0x30_0000_0000          # mremap target
OLD, NEW = 1, 0xFF            # cow.c: memset(mem, 1, size), then memset(mem, 0xff, size)
#: PIPE_DEF_BUFFERS: one vmsplice() into a fresh pipe takes at most 16 pages.
PIPE_PAGES = 16


#: The ablations of the case being run (set by :func:`run_case` around one case only).
_WITHOUT: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar(
    "cowc_without", default=frozenset())


def _fork(p: pkmm.Process) -> pkmm.Process:
    """cow.c's fork(): the child, under the parent's kernel (and the case's ablations)."""
    return pkmm.fork(p, kernel=p.kernel, without=_WITHOUT.get(), detail=False).child


class Skip(Exception):
    """cow.c's ksft_test_result_skip(): the message is cow.c's."""


@dataclass(frozen=True)
class Outcome:
    """How the case ended on the model."""

    result: str        # pass | fail | xfail | skip
    message: str = ""


# --- memory, as cow.c's memset / memcmp see it -------------------------------------------

def memset(p: pkmm.Process, addr: int, npages: int, value: int) -> None:
    """``memset(mem, value, size)``: a store into every page, faulting as needed."""
    p.memset(addr, npages, value)


def contents(p: pkmm.Process, addr: int, npages: int) -> list[int]:
    """What a ``memcpy(old, mem, size)`` reads: every page, faulting as needed."""
    return p.read_range(addr, npages)


TestFn = Callable[[pkmm.Process, int, int, bool], Outcome]
NonAnonFn = Callable[[pkmm.Process, int, int, int], Outcome]


# --- configurations (cow.c do_run_with_*) ------------------------------------------------

def thp_settings_for(machine: pkmm.Machine, kb: int, pmd_kb: int) -> None:
    """run_anon_test_case(): the PMD size off, this size on ("always"); cow.c's main()
    first sets the PMD size to "inherit" (the global knob is "madvise" here, as live)."""
    machine.thp.set_order(9, "inherit")
    if kb:
        machine.thp.set_order(9, "never")
        machine.thp.set_order((kb // 4).bit_length() - 1, "always")


def run_with_base_page(p: pkmm.Process, fn: TestFn, swapout: bool) -> Outcome:
    """do_run_with_base_page()."""
    p.mmap(MEM, 1)
    p.madvise(MEM, 1, "MADV_NOHUGEPAGE")
    memset(p, MEM, 1, OLD)
    if swapout:
        p.madvise(MEM, 1, "MADV_PAGEOUT")
        if not p.is_swapped(MEM):
            raise Skip("MADV_PAGEOUT did not work, is swap enabled?")
    return fn(p, MEM, 1, False)


def run_with_thp(p: pkmm.Process, fn: TestFn, kind: str, kb: int) -> Outcome:
    """do_run_with_thp(): a THP-aligned THP, then PTE-mapped / single PTE / partially
    mremap()'d / partially shared, optionally swapped out."""
    n = kb // 4
    # cow.c mmaps twice the THP size to find an aligned THP inside; pkmm maps the aligned
    # THP-sized range directly (cow.c never touches the rest)
    p.mmap(MEM, n)
    p.madvise(MEM, n, "MADV_HUGEPAGE")
    p.write(MEM, OLD)
    if p.pte(MEM + (n - 1) * P) is None:
        raise Skip("Did not get a THP populated")
    memset(p, MEM, n, OLD)
    size = n
    base = kind.removesuffix("-swap")
    if base == "pte-thp":
        p.mprotect(MEM + P, 1, write=False)
        p.mprotect(MEM + P, 1, write=True)
    elif base == "single-pte":
        p.madvise(MEM + P, n - 1, "MADV_DONTNEED")
        size = 1
    elif base == "partial-mremap":
        size = n // 2
        p.mremap(MEM + size * P, size, FAR)
    elif base == "partial-shared":
        p.madvise(MEM + P, n - 1, "MADV_DONTFORK")
        _fork(p).exit()
        p.madvise(MEM + P, n - 1, "MADV_DOFORK")
    if kind.endswith("-swap"):
        p.madvise(MEM, size, "MADV_PAGEOUT")
        if not all(p.is_swapped(MEM + i * P) for i in range(size)):
            raise Skip("MADV_PAGEOUT did not work, is swap enabled?")
    return fn(p, MEM, size, False)


def run_with_hugetlb(p: pkmm.Process, fn: TestFn, kb: int) -> Outcome:
    """run_with_hugetlb(): MAP_PRIVATE|MAP_ANONYMOUS|MAP_HUGETLB of one huge page."""
    n = kb // 4
    p.mmap(MEM, n, hugetlb_kb=kb)
    memset(p, MEM, n, OLD)
    return fn(p, MEM, n, True)




# --- anon tests (cow.c test_* of anon_test_cases[]) ----------------------------------------

def _verdict(same: bool, xfail: bool, ok: str, leak: str) -> Outcome:
    """cow.c: pass, or xfail for the cases it expects to fail, else fail."""
    if same:
        return Outcome("pass", ok)
    return Outcome("xfail" if xfail else "fail", leak)


def do_test_cow_in_parent(p: pkmm.Process, mem: int, n: int, do_mprotect: bool,
                          vmsplice: bool, xfail: bool) -> Outcome:
    """do_test_cow_in_parent() with child_memcmp_fn / child_vmsplice_memcmp_fn."""
    child = _fork(p)
    old = contents(child, mem, n)          # the child backs up the content
    pipe = None
    if vmsplice:                           # R/O GUP (FOLL_GET) into a pipe, then unmap
        pipe = pkmm.Pipe()
        got = pipe.vmsplice(child, mem, n)
        old = old[:got]
        child.munmap(mem, n)
    if do_mprotect:                        # "mprotect() optimizations might try avoiding
        p.mprotect(mem, n, write=False)    # write-faults by directly mapping pages
        p.mprotect(mem, n, write=True)     # writable"
    memset(p, mem, n, NEW)
    seen = pipe.read() if pipe is not None else contents(child, mem, n)
    child.exit()
    return _verdict(seen == old, xfail, "No leak from parent into child",
                    "Leak from parent into child")


def do_test_vmsplice_in_parent(p: pkmm.Process, mem: int, n: int, before_fork: bool,
                               xfail: bool) -> Outcome:
    """do_test_vmsplice_in_parent(): the parent's pipe must keep the old content."""
    old = contents(p, mem, n)
    pipe = pkmm.Pipe()
    if before_fork:
        got = pipe.vmsplice(p, mem, n)
    child = _fork(p)
    if not before_fork:
        got = pipe.vmsplice(p, mem, n)
    p.munmap(mem, n)
    memset(child, mem, n, NEW)             # "Modify page content in the child."
    child.exit()
    return _verdict(pipe.read() == old[:got], xfail, "No leak from child into parent",
                    "Leak from child into parent")


def do_test_iouring(p: pkmm.Process, mem: int, n: int, use_fork: bool) -> Outcome:
    """do_test_iouring(): a FOLL_WRITE|FOLL_PIN|FOLL_LONGTERM fixed buffer."""
    pin = p.pin_user_pages(mem, n, write=True)
    child = None
    if use_fork:                           # the pinned page must not get shared
        child = _fork(p)
    else:                                  # map it R/O: the next write faults
        p.mprotect(mem, n, write=False)
        p.clear_soft_dirty()
        p.mprotect(mem, n, write=True)
    memset(p, mem, n, NEW)
    reliable = pin.read() == contents(p, mem, n)   # io_uring_prep_write_fixed + pread
    if child is not None:
        child.exit()
    pin.unpin()
    return _verdict(reliable, False, "Longterm R/W pin is reliable",
                    "Longterm R/W pin is reliable")


def do_test_ro_pin(p: pkmm.Process, mem: int, n: int, test: str, fast: bool) -> Outcome:
    """do_test_ro_pin(): a R/O FOLL_PIN|FOLL_LONGTERM (gup_test PIN_LONGTERM_TEST_START)."""
    child = None
    if test in ("shared", "previously-shared"):
        child = _fork(p)
        if test == "previously-shared":   # "mapped R/O ... but no longer shared"
            child.exit()
            child = None
    elif test == "ro-exclusive":
        p.mprotect(mem, n, write=False)
        p.clear_soft_dirty()
        p.mprotect(mem, n, write=True)
    pin = p.pin_user_pages(mem, n, write=False, fast=fast)   # "should trigger unsharing"
    memset(p, mem, n, NEW)
    reliable = pin.read() == contents(p, mem, n)             # PIN_LONGTERM_TEST_READ
    pin.unpin()
    if child is not None:
        child.exit()
    return _verdict(reliable, False, "Longterm R/O pin is reliable",
                    "Longterm R/O pin is reliable")


def do_test_anon_thp_collapse(p: pkmm.Process, mem: int, n: int, test: str) -> Outcome:
    """do_test_anon_thp_collapse(): PTE-map the THP, share (part of) it, MADV_COLLAPSE."""
    half = n // 2
    p.mprotect(mem + P, 1, write=False)    # PTE-map the THP
    p.mprotect(mem + P, 1, write=True)
    if test == "unshared" and p.madvise(mem, n, "MADV_COLLAPSE"):
        raise Skip("MADV_COLLAPSE failed")
    if test == "lower":
        p.madvise(mem + half * P, half, "MADV_DONTFORK")
    elif test == "upper":
        p.madvise(mem, half, "MADV_DONTFORK")
    child = _fork(p)
    watch = {"lower": (mem, half), "upper": (mem + half * P, half)}.get(test, (mem, n))
    old = contents(child, *watch)
    if test in ("lower", "upper"):         # merge the VMAs again, so that it can collapse
        p.madvise(mem, n, "MADV_DOFORK")
    if test != "unshared" and p.madvise(mem, n, "MADV_COLLAPSE"):
        child.exit()
        raise Skip("MADV_COLLAPSE failed")
    memset(p, mem, n, NEW)
    same = contents(child, *watch) == old
    child.exit()
    return _verdict(same, False, "No leak from parent into child",
                    "No leak from parent into child")


ANON_TESTS: dict[str, Callable[[pkmm.Process, int, int, bool], Outcome]] = {
    "test_cow_in_parent": lambda p, m, n, h: do_test_cow_in_parent(p, m, n, False, False,
                                                                   False),
    "test_cow_in_parent_mprotect": lambda p, m, n, h: do_test_cow_in_parent(p, m, n, True,
                                                                            False, False),
    "test_vmsplice_in_child": lambda p, m, n, h: do_test_cow_in_parent(p, m, n, False, True,
                                                                       h),
    "test_vmsplice_in_child_mprotect": lambda p, m, n, h: do_test_cow_in_parent(
        p, m, n, True, True, h),
    "test_vmsplice_before_fork": lambda p, m, n, h: do_test_vmsplice_in_parent(p, m, n,
                                                                               True, h),
    "test_vmsplice_after_fork": lambda p, m, n, h: do_test_vmsplice_in_parent(p, m, n,
                                                                              False, h),
    "test_iouring_ro": lambda p, m, n, h: do_test_iouring(p, m, n, False),
    "test_iouring_fork": lambda p, m, n, h: do_test_iouring(p, m, n, True),
    "test_ro_pin_on_shared": lambda p, m, n, h: do_test_ro_pin(p, m, n, "shared", False),
    "test_ro_fast_pin_on_shared": lambda p, m, n, h: do_test_ro_pin(p, m, n, "shared", True),
    "test_ro_pin_on_ro_previously_shared": lambda p, m, n, h: do_test_ro_pin(
        p, m, n, "previously-shared", False),
    "test_ro_fast_pin_on_ro_previously_shared": lambda p, m, n, h: do_test_ro_pin(
        p, m, n, "previously-shared", True),
    "test_ro_pin_on_ro_exclusive": lambda p, m, n, h: do_test_ro_pin(p, m, n,
                                                                     "ro-exclusive", False),
    "test_ro_fast_pin_on_ro_exclusive": lambda p, m, n, h: do_test_ro_pin(
        p, m, n, "ro-exclusive", True),
    "test_anon_thp_collapse_unshared": lambda p, m, n, h: do_test_anon_thp_collapse(
        p, m, n, "unshared"),
    "test_anon_thp_collapse_fully_shared": lambda p, m, n, h: do_test_anon_thp_collapse(
        p, m, n, "fully"),
    "test_anon_thp_collapse_lower_shared": lambda p, m, n, h: do_test_anon_thp_collapse(
        p, m, n, "lower"),
    "test_anon_thp_collapse_upper_shared": lambda p, m, n, h: do_test_anon_thp_collapse(
        p, m, n, "upper"),
}


# --- non-anon tests and their configurations ----------------------------------------------

def test_cow(p: pkmm.Process, mem: int, smem: int, n: int) -> Outcome:
    """test_cow(): writing the private mapping must not change the other mapping."""
    old = contents(p, smem, n)
    memset(p, mem, n, NEW)
    return _verdict(contents(p, smem, n) == old, False, "Other mapping not modified",
                    "Other mapping not modified")


NON_ANON_TESTS: dict[str, NonAnonFn] = {
    "test_cow": test_cow,
    "test_ro_pin": lambda p, m, s, n: do_test_ro_pin(p, m, n, "plain", False),
    "test_ro_fast_pin": lambda p, m, s, n: do_test_ro_pin(p, m, n, "plain", True),
}


def run_non_anon(p: pkmm.Process, fn: NonAnonFn, config: str, kb: int) -> Outcome:
    """run_with_zeropage / _memfd / _tmpfile / _huge_zeropage / _memfd_hugetlb()."""
    n = max(kb // 4, 1)
    if config in ("zeropage", "huge-zeropage"):
        p.mmap(MEM, n)
        p.mmap(SMEM, n, write=False)
        if config == "huge-zeropage":
            p.madvise(MEM, n, "MADV_HUGEPAGE")
            p.madvise(SMEM, n, "MADV_HUGEPAGE")
    else:
        f = p.tmpfile(n) if config == "tmpfile" else p.memfd_create(
            n, hugetlb_kb=kb if config == "memfd-hugetlb" else 0)
        backing: Backing = "shmem" if f.kind == "shmem" else "file"
        p.mmap(MEM, n, backing=backing, file=f, hugetlb_kb=f.hugetlb_kb)
        p.mmap(SMEM, n, backing=backing, file=f, shared=True, write=False,
               hugetlb_kb=f.hugetlb_kb)
    p.read(MEM)                            # "Read from the page to populate ..."
    p.read(SMEM)
    if config == "huge-zeropage" and (p.pmd(MEM) is None or p.pmd(SMEM) is None):
        raise Skip("Did not get THPs populated")
    return fn(p, MEM, SMEM, n)


# --- what a case needs of the model's API ---------------------------------------------------

_ALWAYS = ("Process.memset", "Process.read_range", "Machine.thp")
_CONFIG_NEEDS = {
    "base": ("Process.madvise",),
    "thp": ("Process.madvise",), "pte-thp": ("Process.mprotect",),
    "single-pte": ("Process.madvise:MADV_DONTNEED",), "partial-mremap": ("Process.mremap",),
    "partial-shared": ("Process.madvise:MADV_DOFORK",),
    "hugetlb": ("Process.mmap:hugetlb_kb",), "zeropage": (),
    "memfd": ("Process.memfd_create",), "tmpfile": ("Process.tmpfile",),
    "huge-zeropage": ("Process.madvise:MADV_HUGEPAGE",),
    "memfd-hugetlb": ("Process.memfd_create:hugetlb_kb", "Process.mmap:hugetlb_kb"),
}
_FUNC_NEEDS = {
    "vmsplice": ("Pipe", "Process.munmap"), "iouring": ("Process.pin_user_pages",
                                                        "Process.clear_soft_dirty"),
    "pin": ("Process.pin_user_pages", "Process.clear_soft_dirty"),
    "collapse": ("Process.madvise:MADV_COLLAPSE", "Process.mprotect"),
    "mprotect": ("Process.mprotect",),
}


def needs(case: Case) -> list[str]:
    """The pkmm API ``case`` uses, as ``Object.attr`` or ``Object.method:argument``."""
    out = list(_ALWAYS) + list(_CONFIG_NEEDS[case.config.removesuffix("-swap")])
    if case.config.endswith("-swap"):
        out += ["Process.madvise:MADV_PAGEOUT", "Process.is_swapped"]
    for key, apis in _FUNC_NEEDS.items():
        if key in case.func:
            out += apis
    return list(dict.fromkeys(out))


def _present(api: str) -> bool:
    import inspect
    obj_name, _, rest = api.partition(".")
    obj = getattr(pkmm, obj_name, None)
    if obj is None or not rest:
        return obj is not None
    attr, _, arg = rest.partition(":")
    target = getattr(obj, attr, None)
    if target is None and obj is pkmm.Machine:     # an instance attribute
        target = getattr(pkmm.Machine(), attr, None)
    if target is None or not arg:
        return target is not None
    if arg.startswith("MADV_"):
        return arg in getattr(pkmm, "MADVISE", ())
    return arg in inspect.signature(target).parameters


def missing_api(case: Case) -> list[str]:
    """What ``case`` needs that pkmm does not offer (empty: the model can run it)."""
    return [api for api in needs(case) if not _present(api)]


# --- one case -----------------------------------------------------------------------------

def run_case(case: Case, kernel: str, pmd_kb: int = 2048,
             without: frozenset[str] = frozenset()) -> Outcome:
    """``case`` on a fresh simulated machine under ``kernel``; every fork of the case
    switches off the rules in ``without`` (see :data:`pkmm.ABLATIONS`) -- the negative
    controls that show the assertions can fail."""
    machine = pkmm.Machine()
    # run_anon_test_case() pushes per-size settings; the anon THP tests run with main()'s
    anon_thp = case.config not in ("base", "base-swap", "hugetlb") and \
        case.func in ANON_TESTS and not case.func.startswith("test_anon_thp_collapse")
    thp_settings_for(machine, case.kb if anon_thp else 0, pmd_kb)
    p = pkmm.Process(kernel, machine=machine)
    token = _WITHOUT.set(frozenset(without))
    try:
        if case.func in NON_ANON_TESTS:
            return run_non_anon(p, NON_ANON_TESTS[case.func], case.config, case.kb)
        fn = ANON_TESTS[case.func]
        if case.config in ("base", "base-swap"):
            return run_with_base_page(p, fn, case.config == "base-swap")
        if case.config == "hugetlb":
            return run_with_hugetlb(p, fn, case.kb)
        return run_with_thp(p, fn, case.config, case.kb)
    except Skip as e:
        return Outcome("skip", str(e))
    finally:
        _WITHOUT.reset(token)


__all__ = ["ANON_TESTS", "NON_ANON_TESTS", "Outcome", "Skip", "missing_api", "needs",
           "run_case"]
