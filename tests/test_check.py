"""Predict-then-check: right answers pass, wrong ones are explained by the rule that fired."""

from __future__ import annotations

from pkmm import check

T06 = {"vmas": [{"start": "0x200000", "npages": 4}], "folios": {"F": {"order": 2}},
       "ptes": [{"addr": "0x200000", "folio": "F", "nr": 2},
                {"addr": "0x202000", "folio": "F", "page": 2, "nr": 2, "dirty": False}]}
PIN = {"vmas": [{"start": 0, "npages": 1}], "folios": {"P": {"order": 0}},
       "ptes": [{"addr": 0, "folio": "P"}], "pins": [{"folio": "P"}]}
SHARED = {"vmas": [{"start": 0, "npages": 4, "backing": "shmem", "shared": True}],
          "folios": {"S": {"order": 2, "backing": "shmem"}},
          "ptes": [{"addr": 0, "folio": "S"}]}


def test_batches_right_and_wrong() -> None:
    ok = check.batches(T06, "v6.9", [2, 2])
    assert ok and ok.correct and ok.expected == [2, 2]
    bad = check.batches(T06, "v6.9", [4])
    assert not bad and bad.expected == [2, 2]
    assert "folio_pte_batch()" in bad.explanation and "dirty bit" in bad.explanation
    assert "not quite" in str(bad) and "&#10008;" in bad._repr_html_()
    assert check.batches(T06, "batch-v3", [4])


def test_child_and_parent_bits_name_the_rule() -> None:
    bad = check.child_bits(T06, "batch-v3", "dirty", [1, 1, 0, 0])
    assert bad.expected == [1, 1, 1, 1] and "private-dirty-merge" in bad.explanation
    assert check.child_bits(T06, "v6.8", "dirty", [1, 1, 0, 0])
    wp = check.parent_bits(T06, "v6.9", "write", [1, 1, 1, 1])
    assert wp.expected == [0, 0, 0, 0] and "cow-wrprotect" in wp.explanation


def test_copies_eagain_and_refcount() -> None:
    bad = check.copies(PIN, "v6.9", 0)
    assert bad.expected == 1 and "anon-dup" not in bad.explanation
    assert "MMF_HAS_PINNED" in bad.explanation and "copy_present_page()" in bad.explanation
    assert check.eagain(PIN, "v6.8", 1)
    assert check.copies(PIN, "eager-copy", 1) and "uvmcopy()" in check.copies(
        PIN, "eager-copy", 0).explanation
    r = check.refcount(T06, "v6.8", "F", 4)
    assert r.expected == 8 and "folio_try_dup_anon_rmap_pte" in r.explanation


def test_vma_copied() -> None:
    bad = check.vma_copied(SHARED, "v6.9", True)
    assert bad.expected is False and "vma_needs_copy() skip" in bad.explanation
    assert check.vma_copied(T06, "v6.9", True)


def test_after_fork_checks() -> None:
    one = {"vmas": [{"start": 0, "npages": 1}], "folios": {"A": {"order": 0}},
           "ptes": [{"addr": 0, "folio": "A"}]}
    bad = check.fault_kind(one, "v6.8", [("parent", "write=1", 0)], "reuse")
    assert bad.expected == "cow-copy" and "wp_page_copy()" in bad.explanation
    assert check.fault_kind(one, "v6.8", [("child", "exit", 0), ("parent", "write", 0)], "reuse")
    story = [("parent", "write=5", 0), ("device", "dma=9", 0)]
    assert check.read_after(PIN, "v6.9", story, "parent", 0, 9)
    lost = check.read_after(PIN, "v6.9", story, "parent", 0, 9, without={"pinned-copy"})
    assert lost.expected == 5 and "pinned-copy switched off" in lost.explanation
