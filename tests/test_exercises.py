"""Graded exercises: seeded generation, self-consistent solving, and grading.

Hand-built layouts (the fork spec's scenarios T02-T35, read from the kernel source of
each version: A = v6.8, B = batch-v3, C = v6.9, D = v6.17) assert answers independently of
the solver; the verdicts are checked for what they say and what they must not say.
"""

from __future__ import annotations

from typing import Any

import pytest
from spec_helpers import BASE

import pkmm
from pkmm.exercises import (
    EXERCISES,
    BatchSizes,
    ChildBits,
    CowAfterFork,
    Exercise,
    ForkCost,
    PinCopies,
    Refcounts,
    make,
    seed_for,
)

SEEDS = (0, 1, 2, 7, 42, 1234)
A, B, C, D = "v6.8", "batch-v3", "v6.9", "v6.17"


def layout(order: int, n: int | None = None, *, vma: dict[str, Any] | None = None,
           backing: str = "anon", pins: list[int] = (), **bits: list[int]) -> dict[str, Any]:
    """A one-folio scenario dict: pages 0..n-1 on consecutive PTEs at BASE, per-PTE bits."""
    n = (1 << order) if n is None else n
    fd: dict[str, Any] = {"order": order}
    if backing != "anon":
        fd["backing"] = backing
    ptes = []
    for i in range(n):
        e: dict[str, Any] = {"addr": BASE + i * 4096, "folio": "A", "page": i, "nr": 1}
        e.update({k: bool(v[i]) for k, v in bits.items()})
        ptes.append(e)
    return {"name": "hand", "vmas": [{"start": BASE, "npages": 64, **(vma or {})}],
            "folios": {"A": fd}, "ptes": ptes,
            "pins": [{"folio": "A", "page": p} for p in pins]}


# --- every exercise, several seeds ------------------------------------------------------

@pytest.mark.parametrize("name", list(EXERCISES))
@pytest.mark.parametrize("seed", SEEDS)
def test_same_seed_same_problem_and_solve_scores_full(name: str, seed: int) -> None:
    e1, e2 = make(name, seed), make(name, seed)
    assert e1.scenario.to_dict() == e2.scenario.to_dict()
    assert e1.show() == e2.show() and e1.kernel == e2.kernel
    assert f"ARG seed {seed}" in e1.show()
    r = e1.check(e1.solve())
    assert r.full and r.score == r.max == 1.0, r


@pytest.mark.parametrize("name", list(EXERCISES))
def test_seeds_draw_every_variant_the_exercise_is_about(name: str) -> None:
    """The versions come from the registry, and a class's seeds meet all of them."""
    from pkmm.kernels import COW_KERNELS

    cls = EXERCISES[name]
    assert cls.kernels == COW_KERNELS
    assert set(cls.draw or cls.kernels) <= set(COW_KERNELS)
    drawn = {make(name, s).kernel for s in range(60)}
    assert drawn == set(cls.draw or cls.kernels), (name, drawn)


def test_the_exercises_together_practise_every_cow_variant() -> None:
    from pkmm.kernels import COW_KERNELS

    drawn = {make(name, s).kernel for name in EXERCISES for s in range(30)}
    assert drawn == set(COW_KERNELS)


@pytest.mark.parametrize("name", list(EXERCISES))
def test_different_seeds_give_different_problems(name: str) -> None:
    shown = {make(name, s).show() for s in range(8)}
    assert len(shown) >= 6


@pytest.mark.parametrize("name", ["batches", "pin-copies", "refcounts", "cow-after-fork",
                                  "fork-cost"])
def test_kernel_override_keeps_the_layout(name: str) -> None:
    layouts = {str(make(name, 5, kernel=k).scenario.to_dict()) for k in (A, C, D)}
    assert len(layouts) == 1


@pytest.mark.parametrize("name", list(EXERCISES))
def test_malformed_answers_score_zero_and_say_the_format(name: str) -> None:
    e = make(name, 3)
    for bad in (None, "x", 3.5, [], {}):
        r = e.check(bad)
        assert r.score == 0.0 and not r.full
        assert "expected" in r.explanation


def test_bad_arguments_are_learner_errors() -> None:
    with pytest.raises(pkmm.LayoutError, match="choose one of"):
        make("nope", 1)
    with pytest.raises(pkmm.LayoutError, match="kernel='v9'"):
        make("batches", 1, kernel="v9")
    with pytest.raises(pkmm.LayoutError, match="seed"):
        make("batches", "alice")  # type: ignore[arg-type]
    assert seed_for("alice", "lab3") == seed_for("alice", "lab3")
    assert seed_for("alice", "lab3") != seed_for("bob", "lab3")


# --- (a) batch sizes ------------------------------------------------------------------

T06 = layout(2, write=[1] * 4, dirty=[1, 1, 0, 0])


@pytest.mark.parametrize("kernel,want", [(A, [1, 1, 1, 1]), (B, [4]), (C, [2, 2]),
                                         (D, [2, 2])])
def test_batches_T06_dirty_split(kernel: str, want: list[int]) -> None:
    e = BatchSizes.from_scenario(T06, kernel)
    assert e.solve() == want
    assert e.check(want).full


def test_batches_wrong_answers_name_the_rule() -> None:
    r = BatchSizes.from_scenario(T06, C).check([4])
    assert 0 < r.score < 1
    assert "Row 2 starts a new call: its D bit differs" in r.explanation
    assert "folio_pte_batch() compares D" in r.explanation
    r = BatchSizes.from_scenario(T06, B).check([2, 2])
    assert 0 < r.score < 1
    assert "its different D does not end the batch" in r.explanation
    assert "folio_nr_pages_cont_mapped() does not compare it here: D" in r.explanation
    r = BatchSizes.from_scenario(T06, D).check([4])
    assert "folio_pte_batch_flags() compares D" in r.explanation
    r = BatchSizes.from_scenario(T06, C).check([1, 1, 1, 1])
    assert r.score == 0.5 and "Rows 1, 3 do not start a new call" in r.explanation


def test_batches_backwards_folio_names_its_last_page() -> None:
    """Pages mapped backwards (A.1 then A.0): the call holding A.1 ends at the folio's
    end, and the checker says so with one reason, by row, not by slot."""
    sc = layout(1)
    sc["ptes"][0]["page"], sc["ptes"][1]["page"] = 1, 0
    e = BatchSizes.from_scenario(sc, B)   # batch-v3 stops at the folio's end
    assert e.solve() == [1, 1]
    r = e.check([2])
    assert "Row 1 starts a new call: row 0 maps A.1, the folio's last page" in r.explanation
    assert "PTE 1" not in r.explanation


def test_batches_T12_adjacent_folios_and_T09b_uffd_wp() -> None:
    t12 = {"name": "T12", "vmas": [{"start": BASE, "npages": 64}],
           "folios": {"F1": {"order": 4}, "F2": {"order": 2}},
           "ptes": [{"addr": BASE, "folio": "F1", "page": 12, "nr": 4},
                    {"addr": BASE + 4 * 4096, "folio": "F2", "page": 0, "nr": 4}]}
    for k in (B, C, D):
        e = BatchSizes.from_scenario(t12, k)
        assert e.solve() == [4, 4]
        r = e.check([8])
        assert r.score == 0.5 and "end of its folio" in r.explanation
    t09b = layout(2, write=[0, 0, 1, 1], uffd_wp=[1, 1, 0, 0])
    assert BatchSizes.from_scenario(t09b, B).solve() == [4]
    e = BatchSizes.from_scenario(t09b, C)
    assert e.solve() == [2, 2]
    assert "folio_pte_batch() compares UW" in e.check([4]).explanation


# --- (b) child bits ---------------------------------------------------------------------

def test_child_bits_T06_dirty_B_vs_C() -> None:
    e = ChildBits.from_scenario(T06, B, other=C, variant="dirty")
    want = {B: [1, 1, 1, 1], C: [1, 1, 0, 0]}
    assert e.solve() == want and e.check(want).full
    r = e.check({B: [1, 1, 0, 0], C: [1, 1, 0, 0]})
    assert r.score == 0.75 and "rows [2, 3] are wrong" in r.explanation
    assert "every child PTE has 1 (parent PTEs: [1, 1, 0, 0])" in r.explanation
    assert "the whole child batch is marked dirty" in r.explanation   # the copy's own event


def test_child_bits_T08_shared_write_all_versions() -> None:
    t08 = layout(2, write=[1, 0, 1, 0], dirty=[1, 0, 1, 0], backing="shmem",
                 vma={"shared": True, "uffd_wp": True, "uffd_fork": True})
    e = ChildBits.from_scenario(t08, A, other=B, variant="shared-write")
    assert e.solve() == {A: [1, 0, 1, 0], B: [0, 0, 0, 0]}
    e = ChildBits.from_scenario(t08, C, other=D, variant="shared-write")
    assert e.solve() == {C: [1, 1, 1, 1], D: [1, 1, 1, 1]}
    r = e.check({C: [1, 0, 1, 0], D: [1, 1, 1, 1]})
    assert r.score == 0.75 and "every child PTE has 1 (parent PTEs: [1, 0, 1, 0])" in \
        r.explanation


def test_child_bits_T30b_soft_dirty_untracked() -> None:
    t30 = layout(2, soft_dirty=[1, 1, 0, 0])
    e = ChildBits.from_scenario(t30, A, other=C, variant="soft-dirty-off")
    assert e.solve() == {A: [1, 1, 0, 0], C: [1, 1, 1, 1]}
    assert "every child PTE has 1, the first PTE's value" in e.check(
        {A: [1, 1, 0, 0], C: [1, 1, 0, 0]}).explanation
    e = ChildBits.from_scenario(t30, B, other=D, variant="soft-dirty-off")
    assert e.solve()[B] == [0, 0, 0, 0]


# --- (c) pin copies ----------------------------------------------------------------------

def test_pin_copies_T14_every_exclusive_page_is_copied() -> None:
    t14 = layout(2, pins=[2])
    for k in (A, B, C, D):
        e = PinCopies.from_scenario(t14, k)
        assert e.solve() == {"copied": [0, 1, 2, 3], "eagain": 4}
    r = e.check({"copied": [2], "eagain": 1})
    assert r.score == pytest.approx(0.75 * 0.25)
    assert "not only the pinned one" in r.explanation
    # the -EAGAIN sentence follows D's declared anon-dup granularity
    assert "v6.17 folio_try_dup_anon_rmap_ptes is all-or-nothing" in r.explanation
    assert "-EAGAIN" in r.explanation


# T15 as printed has D = [0,0,1,1], which splits C/D's batch on dirty before the pinned
# pages (see test_spec_present.py); T15u (uniform dirty) shows the all-or-nothing rounds.
@pytest.mark.parametrize("dirty,rounds", [([0, 0, 1, 1], {A: 2, B: 2, C: 2, D: 2}),
                                          ([1, 1, 1, 1], {A: 2, B: 2, C: 4, D: 4})],
                         ids=["T15", "T15u"])
@pytest.mark.parametrize("kernel", [A, B, C, D])
def test_pin_copies_T15_shared_prefix(kernel: str, dirty: list[int],
                                      rounds: dict[str, int]) -> None:
    t15 = layout(2, pins=[2], write=[0, 0, 1, 1], dirty=dirty, anon_exclusive=[0, 0, 1, 1])
    e = PinCopies.from_scenario(t15, kernel)
    assert e.solve() == {"copied": [2, 3], "eagain": rounds[kernel]}
    r = e.check({"copied": [0, 1, 2, 3], "eagain": 1})
    assert r.score == pytest.approx(0.75 * 0.5)
    assert "not AnonExclusive" in r.explanation
    if kernel in (C, D):
        assert "-EAGAIN" in r.explanation and "whole batch" in r.explanation


# --- (d) refcount / mapcount -------------------------------------------------------------

def test_refcounts_T05_T14_T02() -> None:
    e = Refcounts.from_scenario(layout(4), C)
    want = {"A": {"refcount": 32, "mapcount": [2] * 16}}
    assert e.solve() == want and e.check(want).full
    r = e.check({"A": {"refcount": 17, "mapcount": [2] * 16}})
    assert r.score == 0.5 and "Before fork: refcount 16 = 16 mapped PTE(s)" in r.explanation
    e = Refcounts.from_scenario(layout(2, pins=[2]), D)
    assert e.solve() == {"A": {"refcount": 5, "mapcount": [1] * 4}}
    r = e.check({"A": {"refcount": 9, "mapcount": [2] * 4}})
    assert r.score == 0 and "copied for the child" in r.explanation
    e = Refcounts.from_scenario(layout(0, pins=[0]), A)
    assert e.solve() == {"A": {"refcount": 1025, "mapcount": [1]}}


# --- (e) CoW copy or reuse ---------------------------------------------------------------

def test_cow_T34_small_page_copy_then_reuse() -> None:
    e = CowAfterFork.from_scenario(layout(0), C, ops=[["parent", "write", 0],
                                                     ["child", "write", 0],
                                                     ["parent", "write", 0]])
    assert e.solve() == ["cow-copy", "reuse", "no fault"]
    assert e.check(["copy", "reuse", "none"]).full   # the earlier spellings still count
    r = e.check(["cow-copy", "cow-copy", "no fault"])
    assert r.score == pytest.approx(2 / 3) and "refcount == 1" in r.explanation


@pytest.mark.parametrize("kernel,want", [(A, "cow-copy"), (B, "cow-copy"), (C, "cow-copy"),
                                         (D, "reuse")])
def test_cow_T35_large_folio_after_child_exit(kernel: str, want: str) -> None:
    e = CowAfterFork.from_scenario(layout(4), kernel, ops=[["child", "exit"],
                                                          ["parent", "write", 5]])
    assert e.solve() == [want]
    r = e.check(["reuse" if want == "cow-copy" else "cow-copy"])
    assert r.score == 0
    # v6.8 and the seed patch give a large folio the small-folio refcount test (ref 15 > 3);
    # v6.9 never reuses one (mm/memory.c wp_can_reuse_anon_folio()); v6.17 asks whether
    # this mm alone maps it
    words = {A: "refcount", B: "refcount", C: "never reuses", D: "exclusive"}[kernel]
    assert words in r.explanation


# --- (f) fork cost -----------------------------------------------------------------------

@pytest.mark.parametrize("kernel", [A, B, C, D])
@pytest.mark.parametrize("order", [0, 2, 4])
def test_fork_cost_formulas(kernel: str, order: int) -> None:
    n, per = 16, 1 << order
    ptes = [{"addr": BASE + i * 4096, "folio": f"F{i // per}", "page": i % per, "nr": 1}
            for i in range(n)]
    s = {"name": "cost", "vmas": [{"start": BASE, "npages": n}],
         "folios": {f"F{j}": {"order": order} for j in range(n // per)}, "ptes": ptes}
    e = ForkCost.from_scenario(s, kernel, order=order)
    batched = n if kernel == A else n // per
    want = {"calls": batched, "set_ptes_calls": batched, "pte_writes": n,
            "anon_dup_checks": n if kernel in (A, B) else batched}
    assert e.solve() == want
    if order:
        r = e.check({**want, "calls": n + 1})
        assert r.score == 0.75 and "calls" in r.explanation


def test_fork_cost_explanation_names_batch_v3_per_page_dup() -> None:
    e = make("fork-cost", 0, kernel=B)
    while e.order == 0:
        e = make("fork-cost", e.seed + 1, kernel=B)
    want = e.solve()
    r = e.check({**want, "anon_dup_checks": want["calls"]})
    assert r.score == 0.75 and "page by page" in r.explanation


# --- verdicts speak plainly -------------------------------------------------------------

def _kernel_words() -> set[str]:
    from pkmm.kernels import ALL

    return {w for k in ALL for w in (k.present_func, k.batch_func) if w} | {
        "copy_present_page", "folio_maybe_dma_pinned", "wp_page_reuse", "folio_ref_add"}


@pytest.mark.parametrize("name", list(EXERCISES))
def test_each_verdict_starts_with_a_plain_sentence(name: str) -> None:
    """A plain-English sentence first (no kernel function in it), the kernel detail after."""
    from pkmm.exercises.notebooks import misconception

    words = _kernel_words()
    seen = 0
    for seed in range(12):
        e = make(name, seed)
        r = e.check(misconception(e))
        for note in r.explanation.splitlines():
            first = note.removeprefix("- ").split(". ")[0]
            assert "()" not in first and not [w for w in words if w in first], (seed, note)
            seen += 1
    assert seen


@pytest.mark.parametrize("name", ["batches", "child-bits", "refcounts"])
def test_no_uffd_wp_words_without_uffd_wp(name: str) -> None:
    """A clause about uffd-wp appears only for a layout that has uffd-wp."""
    from pkmm.exercises.notebooks import misconception

    for seed in range(30):
        e = make(name, seed)
        if any(v.get("uffd_wp") for v in e.scenario.vmas) or any(
                p.get("uffd_wp") for p in e.scenario.ptes):
            continue
        text = e.check(misconception(e)).explanation.lower()
        assert "uffd" not in text, (seed, text)


def test_cow_verdicts_tell_no_fork_copy_story() -> None:
    from pkmm.exercises.notebooks import misconception

    for seed in range(20):
        e = make("cow-after-fork", seed)
        text = e.check(misconception(e)).explanation
        assert "copy_present" not in text and "-EAGAIN" not in text and "batch" not in text


# --- the self-study notebooks (notebooks/exercises/) ------------------------------------
def test_lab_notebooks_are_the_generator_output_and_vary_the_version() -> None:
    """The committed notebooks are what lab_notebook() writes today (so the worked
    example's folded answer is the model's, not a stale copy), the six problems do not all
    run one version, and no worked example shares its page's seed or version."""
    import json
    from pathlib import Path

    from pkmm.exercises.notebooks import (
        INTROS,
        LAB_SEEDS,
        _example,
        lab_notebook,
        worked_example,
    )
    here = Path(__file__).resolve().parent.parent / "notebooks" / "exercises"
    kernels = set()
    for name, (seed, ex_seed) in LAB_SEEDS.items():
        stored = json.loads((here / f"{INTROS[name][0]}.ipynb").read_text())
        want = lab_notebook(name)
        assert [c["source"] if isinstance(c["source"], str) else "".join(c["source"])
                for c in stored["cells"]] == [c["source"] for c in want["cells"]], name
        problem, example = make(name, seed), _example(name)
        assert example.seed == ex_seed
        assert problem.kernel != example.kernel, name
        kernels.add(problem.kernel)
        md = worked_example(name)
        assert md.startswith("<details>") and md.endswith("</details>")
        assert json.dumps(example.solve()) in md and json.dumps(problem.solve()) not in md
    assert len(kernels) >= 3


def test_no_answer_shows_no_score_line() -> None:
    r = make("batches", 7).check(None)
    assert r.score == 0 and not r.answered and not str(r).startswith("score")
    assert str(make("batches", 7).check([1])).startswith("score")


def test_shared_write_layouts_have_no_read_only_dirty_pte() -> None:
    """In a write-notifying shared VMA a PTE without UW turns writable and dirty in the
    same fault, so the generator never shows one read-only but dirty."""
    from pkmm.exercises import make
    seen = 0
    for seed in range(60):
        ex = make("child-bits", seed)
        if ex.variant != "shared-write":  # type: ignore[attr-defined]
            continue
        seen += 1
        for e in ex.scenario.ptes:
            if not e["uffd_wp"]:
                assert e["dirty"] == e["write"], (seed, e)
    assert seen


def test_table_has_no_per_row_pins_column() -> None:
    """fork sees a pin only as the folio's count, so the table shows it on the folio line
    alone, never on the row of the page the driver pinned."""
    from pkmm.exercises import make
    ex = make("pin-copies", 2)
    text = ex.show()
    assert "FOLL_PIN)" in text
    header = next(line for line in text.splitlines() if line.lstrip().startswith("#  addr"))
    assert header.split()[-1] == "AE"


def test_second_worked_examples_use_seeds_no_student_draws() -> None:
    """Every page's second example comes from a seed outside the 32-bit student range and
    runs the version it names."""
    from pkmm.exercises import make
    from pkmm.exercises.base import seed_for
    from pkmm.exercises.notebooks import EXTRA, OUTSIDE_STUDENT_SEEDS
    assert seed_for("alice", "x") < OUTSIDE_STUDENT_SEEDS
    for name, (seed, kernel, _) in EXTRA.items():
        assert seed >= OUTSIDE_STUDENT_SEEDS
        assert make(name, seed, kernel=kernel).kernel == kernel


def test_refcount_problems_always_share_a_row() -> None:
    """Every refcount problem has a row fork shares (some page's mapcount reaches 2), so no
    problem's answer is just its before-values."""
    from pkmm.exercises import make
    for seed in range(40):
        key = make("refcounts", seed).solve()
        assert any(m >= 2 for v in key.values() for m in v["mapcount"]), seed


def _problem_kind(e: Exercise) -> tuple[object, ...]:
    """(problem type, versions, layout family) of a problem: what a worked example must not
    share with any student's problem."""
    kind = getattr(e, "variant", e.name)
    versions = frozenset(getattr(e, "versions", (e.kernel,)))
    return (kind, versions, e.family())


@pytest.mark.parametrize("name", ["child-bits", "fork-cost"])
def test_no_student_problem_is_a_worked_example_again(name: str) -> None:
    """The worked examples of (b) and (f) come from a layout family no student's seed
    draws, so over many student seeds (small ones and 32-bit ones as seed_for gives) no
    problem shares a worked example's (type, versions, family); and the families differ in
    the layout itself, not only in their label."""
    import random

    from pkmm.exercises.notebooks import _example, _extra
    worked = [_example(name), _extra(name)]
    kinds = {_problem_kind(w) for w in worked}
    rng = random.Random(12)
    seeds = list(range(300)) + [rng.randrange(2 ** 32) for _ in range(300)]
    for seed in seeds:
        e = make(name, seed)
        assert _problem_kind(e) not in kinds, (seed, _problem_kind(e))
    for e in [make(name, s) for s in range(60)] + worked:
        rows = sorted(e.scenario.ptes, key=lambda x: x["addr"])
        orders = {e.scenario.folios[r["folio"]]["order"] for r in rows}
        gap = any(b["addr"] - a["addr"] > 4096 for a, b in zip(rows, rows[1:], strict=False))
        if name == "child-bits":
            # a student's layout: contiguous large folios; a worked one: a small folio
            # and an empty slot among them
            assert (0 in orders and gap) == e.example, (e.seed, orders, gap)
        else:
            # a student's layout: one order, uniform bits but A; a worked one: several
            # orders and one clean PTE
            mixed = len(orders) > 1 and len({r.get("dirty", True) for r in rows}) == 2
            assert mixed == e.example, (e.seed, orders)


def test_worked_example_flag_is_checked() -> None:
    with pytest.raises(pkmm.LayoutError, match="example="):
        make("fork-cost", 1, example="yes")  # type: ignore[arg-type]
    assert make("fork-cost", 1, example=True).show() != make("fork-cost", 1).show()
    assert "ARG example True" in make("fork-cost", 1, example=True).show()


@pytest.mark.parametrize("name", list(EXERCISES))
def test_worked_wrong_answers_are_wrong(name: str) -> None:
    """The typical wrong answer each page's worked examples discuss is wrong for both (a
    misconception that happens to give the key would teach nothing)."""
    from pkmm.exercises.notebooks import _example, _extra, misconception
    for e in (_example(name), _extra(name)):
        assert not e.check(misconception(e)).full, (name, e.seed)


def test_pin_distractor_names_no_pinned_row() -> None:
    """(c)'s wrong answer copies whole folios (AE or not) in one round each: it needs no
    knowledge of which page is pinned, which the table does not show."""
    from pkmm.exercises.notebooks import _example, misconception
    e = _example("pin-copies")
    key, wrong = e.solve(), misconception(e)
    rows = sorted(e.scenario.ptes, key=lambda x: x["addr"])
    folios = {rows[i]["folio"] for i in key["copied"]}
    assert set(key["copied"]) <= set(wrong["copied"])
    assert {rows[i]["folio"] for i in wrong["copied"]} == folios
    assert wrong["eagain"] == len(folios)


def _intro_of(stem: str) -> str:
    import json
    from pathlib import Path
    path = Path(__file__).resolve().parent.parent / "notebooks" / "exercises" / f"{stem}.ipynb"
    return "".join(json.loads(path.read_text())["cells"][0]["source"])


def test_exercise_a_table_of_batch_stops_is_what_the_batch_scan_does() -> None:
    """Exercise (a)'s table of which bit changes end a v6.9/v6.17 batch, as the notebook
    prints it, against the model's batch scan forked under each VMA kind it names."""
    import re

    from pkmm.exercises.probes import CMP_BITS, ignored_bits
    from pkmm.pte import PTE_BIT
    from pkmm.views.svg import rules as view_rules
    assert view_rules.ignored_bits is ignored_bits     # the picture reads the same probe
    rows = re.findall(r"^\| ([A-Z, ]+) \| (.+) \|$", _intro_of("a-batch-sizes"), re.M)
    assert rows
    letter = {PTE_BIT[b].letter: b for b in CMP_BITS}
    listed = [letter[x] for bits, _ in rows for x in bits.split(", ")]
    assert sorted(listed) == sorted(CMP_BITS)          # every bit once
    vmas = {"private": (), "tracked": (("soft_dirty_tracking", True),),
            "shared": (("backing", "shmem"), ("shared", True), ("uffd_fork", True),
                       ("uffd_wp", True))}
    for bits, when in rows:
        want = {"never": set(), "always": set(vmas)}.get(when.split(" (")[0])
        if want is None:
            want = {"private", "tracked"} if "private mapping only" in when else \
                {"tracked"} if "tracking on" in when else None
        assert want is not None, when
        for x in bits.split(", "):
            for kernel in ("v6.9", "v6.17"):
                seen = {v for v, kw in vmas.items()
                        if ignored_bits(kernel, kw)[letter[x]] == "compared"}
                assert seen == want, (kernel, x, when, seen)


def test_pin_prose_quotes_the_models_bias() -> None:
    """(c) and (d) quote the pin bias as numbers: each is the model's
    GUP_PIN_COUNTING_BIAS (or that plus one mapping's reference)."""
    import re

    from pkmm.folio import GUP_PIN_COUNTING_BIAS
    for stem in ("c-pin-copies", "d-refcount-mapcount"):
        big = {int(n) for n in re.findall(r"\b\d{3,}\b", _intro_of(stem))}
        assert GUP_PIN_COUNTING_BIAS in big, stem
        assert big <= {GUP_PIN_COUNTING_BIAS, GUP_PIN_COUNTING_BIAS + 1}, (stem, big)


def test_exercise_a_batch_v3_bullets_are_what_its_batch_scan_does() -> None:
    """(a)'s batch-v3 bullets: it compares PN always and UW only for a uffd-wp child VMA,
    counts D and W, and never stops at SD or A; each claim against the probe."""
    from pkmm.exercises.probes import ignored_bits
    text = _intro_of("a-batch-sizes")
    assert "compares only two" in text and "SD and A never end one either" in text
    plain = ignored_bits("batch-v3")
    uffd = ignored_bits("batch-v3", (("uffd_fork", True), ("uffd_wp", True)))
    for mask in (plain, uffd):
        assert mask["protnone"] == "compared"
        assert mask["dirty"] == mask["write"] == "counted"
        assert mask["soft_dirty"] == mask["young"] == "ignored"
    assert (plain["uffd_wp"], uffd["uffd_wp"]) == ("ignored", "compared")
    assert [b for b, v in uffd.items() if v == "compared"] == ["uffd_wp", "protnone"]


def test_fork_cost_prices_are_the_stored_fits() -> None:
    """(f)'s "What it costs" quotes the stored fit's prices and sums, none typed in."""
    from pkmm import costmodel
    from pkmm.exercises.notebooks import _example, _extra, priced
    for ex in (_example("fork-cost"), _extra("fork-cost")):
        text = priced(ex)
        for kernel in ("v6.8", ex.kernel):
            counts = costmodel.scenario_counts(ex.scenario, kernel)
            for _, n, each, _, _ in costmodel.price_terms(counts):
                if each:
                    assert f"{n} × {each:.2f}" in text, (kernel, n, each)
            us = costmodel.predict_seconds(counts, baseline=False) * 1e6
            assert f"= {us:.2f} µs" in text, kernel


def test_calls_lines_name_no_bit_stop_at_a_folio_end() -> None:
    """A worked example's calls line names a bit as a batch's stop only where the next
    row maps the next page of the same folio (reader: a folio end read as a D stop)."""
    import re

    from pkmm.exercises.base import ptes_of
    from pkmm.exercises.notebooks import _example, _extra, calls_behind
    for name in ("batches", "pin-copies", "refcounts", "fork-cost"):
        for ex in (_example(name), _extra(name)):
            rows = ptes_of(ex.scenario)
            for last in re.findall(r"rows? (?:\d+-)?(\d+)(?: = strip #[\d#-]+)?(?: copied)? "
                                   r"\(ends: next PTE",
                                   calls_behind(ex)):
                a, b = rows[int(last)], rows[int(last) + 1]
                assert b["folio"] == a["folio"], (name, ex.seed, last)
    # and the converse: every bit stop inside a folio (the next row maps the folio's next
    # page) is named, read from the layout, not from the trace the page uses
    from pkmm.exercises.base import index_of
    from pkmm.fork import fork
    for name in ("batches", "pin-copies", "refcounts", "fork-cost", "child-bits"):
        for ex in (_example(name), _extra(name)):
            rows = ptes_of(ex.scenario)
            kernels = ex.versions if name == "child-bits" else (ex.kernel,)
            inside = 0
            for k in kernels:
                for st in fork(ex.build()[0], k).steps:
                    last = index_of(ex.scenario, st.addr) + st.nr - 1 if st.nr else -1
                    if st.stop.startswith("bit:") and last + 1 < len(rows):
                        a, b = rows[last], rows[last + 1]
                        inside += (b["folio"] == a["folio"]
                                   and b.get("page", 0) == a.get("page", 0) + 1)
            assert calls_behind(ex).count("(ends: ") == inside, (name, ex.seed)


def test_strip_key_says_which_end_each_version_names() -> None:
    """(a)'s strip key: where a folio's last page meets an empty slot, the strip names the
    end the version's scan meets first (reader 93: "next slot is empty" under v6.9,
    "reached the end of the folio" under batch-v3, for the same situation)."""
    from pkmm.exercises.base import ptes_of
    from pkmm.exercises.notebooks import _example, _extra, calls_behind, strip_key
    from pkmm.kernels import get_kernel
    from pkmm.views.pictures import batch_strip
    ex, ex2 = _example("batches"), _extra("batches")
    key = strip_key(ex)
    for k in ("batch-v3", "v6.9", "v6.17"):
        first = get_kernel(k).folio_end == "after-compare"
        said = key.split("reads the next PTE")[0] if first else key.split("stop the scan")[0]
        assert k in said.split(":")[-1], k
    for e in (ex, ex2):
        notes = batch_strip(e.scenario, e.kernel).data["groups"]
        folio_end = any("end of the folio" in n for n in notes)
        assert folio_end == (get_kernel(e.kernel).folio_end == "clamp"), (e.kernel, notes)
    # the calls line gives the strip's slot numbers where an empty slot moved them
    rows = ptes_of(ex.scenario)
    moved = [i for i, r in enumerate(rows)
             if (r["addr"] - ex.scenario.vmas[0]["start"]) // 4096 != i]
    assert moved and "= strip #" in calls_behind(ex)
    assert "= strip #" not in calls_behind(_example("pin-copies"))


def test_cow_reuse_case_is_the_models() -> None:
    """(e)'s v6.8 / batch-v3 case (three copies, then a reuse at refcount 1) is what the
    model does under both versions."""
    from pkmm.exercises.notebooks import INTROS, _refcount_one_example
    text = _refcount_one_example("v6.8")
    assert text == _refcount_one_example("batch-v3")
    assert text in INTROS["cow-after-fork"][1]
    assert text.count('"cow-copy"') == 3 and text.endswith('(refcount 1): "reuse".')


def test_pin_example_shows_a_partly_exclusive_folio_under_v6_9() -> None:
    """(c)'s prose says its v6.9 worked example shows a large folio that is partly AE."""
    from pkmm.exercises.notebooks import INTROS, _example
    ex = _example("pin-copies")
    prose = " ".join(INTROS["pin-copies"][1].split())
    assert ex.kernel == "v6.9" and "(the v6.9 example below does)" in prose
    ae: dict[str, set[bool]] = {}
    for e in ex.scenario.ptes:
        ae.setdefault(e["folio"], set()).add(bool(e.get("anon_exclusive", True)))
    assert any(len(v) == 2 and ex.scenario.folios[f].get("order", 0) > 0
               for f, v in ae.items()), ae
