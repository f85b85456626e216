"""Predict, then check: no answer before a prediction, plain words first, only clauses
that applied, and every explanation follows the rule the model ran."""

from __future__ import annotations

import re

import pytest

from pkmm import check

T06 = {"vmas": [{"start": "0x200000", "npages": 4}], "folios": {"F": {"order": 2}},
       "ptes": [{"addr": "0x200000", "folio": "F", "nr": 2},
                {"addr": "0x202000", "folio": "F", "page": 2, "nr": 2, "dirty": False}]}
PIN = {"vmas": [{"start": 0, "npages": 1}], "folios": {"P": {"order": 0}},
       "ptes": [{"addr": 0, "folio": "P"}], "pins": [{"folio": "P"}]}
PIN4 = {"vmas": [{"start": 0, "npages": 4}], "folios": {"F": {"order": 2}},
        "ptes": [{"addr": 0, "folio": "F"}], "pins": [{"folio": "F", "page": 2}]}
T15 = {"vmas": [{"start": 0, "npages": 4}], "folios": {"F": {"order": 2}},
       "ptes": [{"addr": 0, "folio": "F", "nr": 2, "write": False, "anon_exclusive": False},
                {"addr": 0x2000, "folio": "F", "page": 2, "nr": 2}],
       "pins": [{"folio": "F", "page": 2}]}
SHARED = {"vmas": [{"start": 0, "npages": 4, "backing": "shmem", "shared": True}],
          "folios": {"S": {"order": 2, "backing": "shmem"}},
          "ptes": [{"addr": 0, "folio": "S"}]}
UFFD = {"vmas": [{"start": 0, "npages": 4}], "folios": {"F": {"order": 2}},
        "ptes": [{"addr": 0, "folio": "F", "nr": 2, "write": False, "uffd_wp": True},
                 {"addr": 0x2000, "folio": "F", "page": 2, "nr": 2}]}
ONE = {"vmas": [{"start": 0, "npages": 1}], "folios": {"A": {"order": 0}},
       "ptes": [{"addr": 0, "folio": "A"}]}
DMA = [("parent", "write=5", 0), ("device", "dma=9", 0)]

# Each checker once with an answer, once without: (call without answer, the answer).
CASES = [
    (lambda a: check.batches(T06, "v6.9", a), [2, 2]),
    (lambda a: check.child_bits(T06, "batch-v3", "dirty", a), [1, 1, 1, 1]),
    (lambda a: check.parent_bits(T06, "v6.9", "write", a), [0, 0, 0, 0]),
    (lambda a: check.copies(PIN4, "v6.9", a), 4),
    (lambda a: check.eagain(T15, "v6.9", a), 4),
    (lambda a: check.vma_copied(SHARED, "v6.9", a), False),
    (lambda a: check.refcount(T06, "v6.8", "F", a), 8),
    (lambda a: check.mapcount(T06, "v6.8", "F", a), [2, 2, 2, 2]),
    (lambda a: check.fault_kind(ONE, "v6.8", [("parent", "write=1", 0)], a), "cow-copy"),
    (lambda a: check.read_after(PIN, "v6.9", DMA, "parent", 0, a), 9),
]


@pytest.mark.parametrize("call, answer", CASES)
def test_no_answer_before_a_prediction(call, answer) -> None:
    for missing in (..., None):
        v = call(missing)
        assert v.asked and not v and not v.correct
        shown = str(v) + v._repr_html_()
        assert "the model" not in shown and "In plain words" not in shown
        # the static page's way leads, then the replace-and-run line (text and HTML)
        text, page = str(v), v._repr_html_()
        assert text.index(check.STATIC_LINE) < text.index("replace the ... in this cell")
        assert page.index(check.STATIC_LINE) < page.index("replace the <code>...</code>")
        assert "run again" in text and "run again" in page
    right = call(answer)
    assert right.correct and not right.asked and right.expected == answer
    assert "correct" in str(right) and "&#10004;" in right._repr_html_()


@pytest.mark.parametrize("call, answer", CASES)
def test_plain_words_come_first(call, answer) -> None:
    wrong = call(["x"] if isinstance(answer, list) else "x")
    text = str(wrong)
    assert text.index("In plain words:") < text.index("Kernel detail:")
    first_sentence = re.split(r"(?<=[.:;])\s", wrong.summary)[0]
    # a learner's first sentence names no kernel function
    assert "()" not in first_sentence and "_" not in first_sentence.replace("no_", "")
    assert wrong.detail and "not quite" in text


def test_batches_say_why_each_batch_ended() -> None:
    bad = check.batches(T06, "v6.9", [4])
    assert bad.expected == [2, 2]
    assert "PTEs 0-1: one batch, shared (next PTE differs in the dirty bit)" in bad.summary
    assert "folio_pte_batch()" in bad.detail
    seed = check.batches(T06, "batch-v3", [2, 2])
    assert seed.expected == [4] and "dirty" not in seed.summary
    assert "reached the end of the folio" in seed.summary
    per_pte = check.batches(T06, "v6.8", [4])
    assert per_pte.expected == [1, 1, 1, 1] and "no batching" in per_pte.summary


def test_pinned_copies_explain_rounds_refusals_and_waste() -> None:
    v = check.copies(PIN4, "v6.9", 1)
    assert v.expected == 4
    # every page: a refused batch (all-or-nothing), then a refused single PTE: 4 + 4
    assert "refused as a whole" in v.summary and "8 refusals" in v.summary
    assert "4 -EAGAIN rounds" in v.summary and "not needed" not in v.summary
    seed = check.copies(PIN4, "batch-v3", 4)
    assert seed.correct and "refused as a whole" not in seed.summary
    waste = check.eagain(T15, "v6.9", 2)
    assert waste.expected == 4 and "2 allocated pages were not needed" in waste.summary
    assert check.eagain(T15, "v6.8", 2).correct


def test_no_clause_that_did_not_apply() -> None:
    plain = check.copies(T06, "v6.9", 1)
    assert plain.expected == 0
    for word in ("-EAGAIN", "preallocat", "refused"):
        assert word not in plain.summary
    # no uffd-wp anywhere: nothing is said about it
    wp = check.child_bits(T06, "v6.8", "write", [1, 1, 1, 1])
    assert "uffd" not in wp.explanation
    none = check.child_bits(T06, "v6.8", "uffd_wp", [0, 0, 0, 0])
    assert none.correct and "nothing to keep or drop" in none.summary
    # uffd-wp set in the parent, child VMA not registered: now it is said
    dropped = check.child_bits(UFFD, "v6.9", "uffd_wp", [1, 1, 0, 0])
    assert dropped.expected == [0, 0, 0, 0]
    assert "PTEs 0-1: the child's VMA is not registered" in dropped.summary
    # a copy-on-write question tells the write fault, not fork's pinned-copy story
    cow = check.fault_kind(ONE, "v6.8", [("parent", "write=1", 0)], "reuse")
    assert "copy_present_page" not in cow.explanation and "-EAGAIN" not in cow.explanation
    assert "copy-on-write" in cow.summary and "wp_page_copy()" in cow.detail


def test_bits_follow_the_rule_that_fired() -> None:
    merged = check.child_bits(T06, "batch-v3", "dirty", [1, 1, 0, 0])
    assert merged.expected == [1, 1, 1, 1]
    assert "PTEs 2-3: the whole child batch is marked dirty" in merged.summary
    exact = check.child_bits(T06, "v6.9", "dirty", [1, 1, 0, 0])
    assert exact.correct and "marked dirty" not in exact.summary
    assert "next PTE differs in the dirty bit" in exact.detail
    old = check.child_bits(T06, "v6.9", "young", [1, 1, 1, 1])
    assert old.expected == [0, 0, 0, 0] and "child PTE old (A = 0)" in old.summary
    assert "written old" in old.detail
    wp = check.parent_bits(T06, "v6.9", "write", [1, 1, 1, 1])
    assert wp.expected == [0, 0, 0, 0] and "copy-on-write" in wp.summary
    kept = check.parent_bits(SHARED, "v6.9", "write", [1, 1, 1, 1])
    assert kept.correct and "leaves the parent's write bit" in kept.summary


def test_copied_pages_explain_their_fresh_pte() -> None:
    v = check.child_bits(PIN, "v6.9", "young", [0])
    assert v.expected == [1] and "brand-new PTE" in v.summary


def test_vma_refcount_mapcount_words() -> None:
    skip = check.vma_copied(SHARED, "v6.9", True)
    assert skip.expected is False and "page fault" in skip.summary
    assert "vma_needs_copy()" in skip.detail
    assert "anon_vma" in check.vma_copied(T06, "v6.9", True).summary
    ref = check.refcount(T06, "v6.8", "F", 4)
    assert ref.expected == 8 and "4 + 4 = 8" in ref.summary
    pinned = check.refcount(PIN, "v6.9", "P", 1025)
    assert pinned.correct and "pins" in pinned.summary and "copied" in pinned.summary
    mc = check.mapcount(PIN4, "v6.9", "F", [2, 2, 2, 2])
    assert mc.expected == [1, 1, 1, 1] and "maps none" in mc.summary


def test_after_fork_reads_tell_the_dma_story() -> None:
    kept = check.read_after(PIN, "v6.9", DMA, "parent", 0, 9)
    assert kept.correct and "still maps the pinned page" in kept.summary
    lost = check.read_after(PIN, "v6.9", DMA, "parent", 0, 9, without={"pinned-copy"})
    assert lost.expected == 5 and "pinned-copy switched off" in lost.question
    assert "copy-on-write" in lost.summary and "a different page" in lost.summary
    reuse = check.fault_kind(ONE, "v6.8", [("child", "exit", 0), ("parent", "write", 0)],
                             "reuse")
    assert reuse.correct and "only user left" in reuse.summary


def test_bad_bit_is_a_pkmm_error() -> None:
    import pkmm
    with pytest.raises(pkmm.LayoutError, match="bit='dirt'"):
        check.child_bits(T06, "v6.9", "dirt", [1])


def test_rss_counts_what_was_copied_and_not_by_value() -> None:
    zero = {"vmas": [{"start": 0, "npages": 3}], "folios": {"A": {"order": 1}},
            "ptes": [{"addr": 0, "folio": "A"}], "zero": [0x2000]}
    v = check.rss(zero, "v6.8", "MM_ANONPAGES", 3)
    assert v.expected == 2 and "1 PTE copied by value" in v.summary
    assert check.rss(SHARED, "v6.9", "MM_SHMEMPAGES", 0)
    assert "not copied at all" in check.rss(SHARED, "v6.9", "MM_SHMEMPAGES", 4).summary
    assert "by value" not in check.rss(zero, "v6.8", "MM_FILEPAGES", 0).summary


def test_ops_counts_follow_the_variant() -> None:
    four = {"vmas": [{"start": 0, "npages": 16}],
            "folios": {f"F{i}": {"order": 2} for i in range(4)},
            "ptes": [{"addr": i * 0x4000, "folio": f"F{i}"} for i in range(4)]}
    # v6.9 tests the folio end after comparing the next PTE: one extra read at each of the
    # three inner folio boundaries; v6.17 clamps max_nr to the folio first
    assert check.ops(four, "v6.9", "pte_reads", 19) and check.ops(four, "v6.17", "pte_reads", 16)
    assert check.ops(four, "v6.8", "set_ptes_calls", 16)
    assert check.ops(four, "v6.9", "set_ptes_calls", 4).summary.startswith("v6.9 counted 4")
    import pkmm
    with pytest.raises(pkmm.LayoutError, match="op='reads'"):
        check.ops(four, "v6.9", "reads", 1)


def test_cost_checkers_read_the_bulk_fork_and_the_stored_timings() -> None:
    from pkmm import costmodel
    calls = check.fork_ops("1G", "64K", "v6.17", "set_ptes_calls", 16384)
    assert calls.correct and "one call per folio" in calls.summary
    assert check.fork_ops("16M", "4K", "v6.9", "batch_scans", 0)
    assert check.fork_ops("16M", "4K", "v6.8", "set_ptes_calls", 4096)
    want = costmodel.stored_fork_seconds(1 << 30, "4K") / costmodel.stored_fork_seconds(
        1 << 30, "2M-pmd")
    pmd = check.speedup("2M-pmd", round(want))
    assert pmd.correct and abs(pmd.expected - want) < 0.01
    assert not check.speedup("2M-pmd", want * 2) and check.speedup("2M-pmd", want * 1.2)
    assert check.speedup("2M-pmd").asked and "ms" not in str(check.speedup("2M-pmd"))
    import pkmm
    with pytest.raises(pkmm.LayoutError, match="size='2G'"):
        check.fork_ops("2G", "4K", "v6.9", "batch_scans", 0)


def test_copy_is_the_same_answer_as_cow_copy_and_names_no_other_fault() -> None:
    # notebook 09's kernel tables say "copy"; the checker takes it for a cow-copy only
    write = [("parent", "write=1", 0)]
    assert check.fault_kind(ONE, "v6.17", write, "copy").correct
    assert check.fault_kind(ONE, "v6.17", write, "cow-copy").correct
    reuse = [("child", "exit", 0), ("parent", "write", 0)]
    assert not check.fault_kind(ONE, "v6.17", reuse, "copy").correct
    assert check.fault_kind(ONE, "v6.17", reuse, "reuse").correct


def test_a_write_to_the_zero_page_accepts_the_name_the_lab_teaches() -> None:
    # explain.FAULT_WORDS calls it "cow-zero"; the kernel runs wp_page_copy() for it, which
    # the model reports as "cow-copy": either name is right, a wrong one is still wrong.
    zero = {"vmas": [{"start": 0, "npages": 2}], "zero": [0x0]}
    ops = [("parent", "write=5", 0)]
    assert check.fault_kind(zero, "v6.17", ops, "cow-zero").correct
    assert check.fault_kind(zero, "v6.17", ops, "cow-copy").correct
    assert not check.fault_kind(zero, "v6.17", ops, "reuse").correct
    assert not check.fault_kind(ONE, "v6.17", [("parent", "write=1", 0)], "cow-zero").correct


def test_fault_kind_prompt_lists_the_kinds_the_notebooks_ask() -> None:
    # every kind the prompt names is one the model can answer (explain.FAULT_WORDS), and
    # thp-reuse (07's PMD-mapped THP) is among them
    from pkmm.explain import FAULT_WORDS
    hint = check.fault_kind(ONE, "v6.8", [("parent", "write=1", 0)]).hint
    assert "'thp-reuse'" in hint
    for kind in check.FAULT_KINDS_ASKED:
        assert kind in FAULT_WORDS and repr(kind) in hint
