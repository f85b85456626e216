"""The stop-reason gallery reports what each variant did, in the vocabulary's words."""

from __future__ import annotations

from pkmm import gallery
from pkmm.kernels.common import STOP_WORDS, stop_words
from pkmm.pte import PTE_BITS


def test_words_come_from_the_one_vocabulary() -> None:
    names = [getattr(b, "name", b) for b in PTE_BITS]     # the one PTE bit table
    vocabulary = set(STOP_WORDS.values()) | {stop_words(f"bit:{n}") for n in names}
    for kernel in ("batch-v3", "v6.9", "v6.17"):
        reasons = gallery.stop_reasons(kernel)
        assert reasons and set(reasons) <= vocabulary


def test_the_table_follows_each_variants_rules() -> None:
    t = gallery.stop_table(("v6.8", "batch-v3", "v6.9", "v6.17"))
    # the seed patch counts dirty and ignores uffd-wp unless the child VMA is uffd-wp
    assert t.cell("dirty differs (private)", "batch-v3")[0] == [4]
    assert t.cell("uffd-wp differs, child VMA not uffd-wp", "batch-v3")[0] == [4]
    assert t.cell("uffd-wp differs, child VMA uffd-wp", "batch-v3")[0] == [2, 2]
    # upstream compares them (dirty in private mappings; uffd-wp always)
    for k in ("v6.9", "v6.17"):
        assert t.cell("dirty differs (private)", k) == ([2, 2], stop_words("bit:dirty"))
        assert t.cell("uffd-wp differs, child VMA not uffd-wp", k)[0] == [2, 2]
        assert t.cell("soft-dirty differs, tracking on", k)[0] == [2, 2]
        assert t.cell("soft-dirty differs, tracking off", k)[0] == [4]
    # v6.9 checks the folio end after the equality test: a folio that fills the range
    # ends the scan at max_nr; v6.17 clamps max_nr to the folio first
    assert t.cell("nothing differs", "v6.9")[1] == stop_words("range-end")
    assert t.cell("nothing differs", "v6.17")[1] == stop_words("folio-end")
    assert t.cell("an empty slot", "v6.8")[0] == [1, 1]
    html = t._repr_html_()
    assert "<table" in html and "<tr style=\"font-weight:bold\"><td>dirty differs" in html
    assert "<td style=\"text-align:left\"><code>" in html     # batch lists left-aligned
    assert "dirty differs (private)" in str(t)


def test_uffd_wp_rows_have_a_registered_parent() -> None:
    # a UW bit exists only in a registered VMA (unregistering clears the marks); what the
    # two uffd-wp rows differ in is whether the handler follows forks
    from pkmm.scenario import as_scenario
    from pkmm.vma import userfaultfd_wp
    for row, fork_events in (("uffd-wp differs, child VMA not uffd-wp", False),
                             ("uffd-wp differs, child VMA uffd-wp", True)):
        proc, _ = as_scenario(gallery.GALLERY[row]).build()
        vma = proc.vmas[0]
        assert userfaultfd_wp(vma) and bool(vma.uffd_fork) is fork_events


def test_layout_table_reads_the_built_process() -> None:
    rows = gallery.layout_table().rows
    assert rows["the VMA ends"] == (("F:0", "F:1"), "")
    assert rows["write differs (private)"][0][2:] == ("F:2 read-only", "F:3 read-only")
    assert rows["soft-dirty differs, tracking on"] == (
        ("F:0 SD", "F:1 SD", "F:2 read-only", "F:3 read-only"), "soft-dirty tracking on")
    assert rows["a swap entry"][0][2] == "swap entry"
    assert rows["uffd-wp differs, child VMA uffd-wp"][1].endswith("EVENT_FORK: child uffd-wp")
    assert "no EVENT_FORK" in rows["uffd-wp differs, child VMA not uffd-wp"][1]
    html = gallery.layout_table()._repr_html_()
    assert html.count("<tr>") == len(gallery.GALLERY) + 1 and "<code>F:3 old</code>" in html


def test_differing_rows_come_first_then_all_folded() -> None:
    t = gallery.stop_table(("batch-v3", "v6.9"))
    assert "dirty differs (private)" in t.differing()
    assert "nothing differs" not in t.differing()
    markup = t.differing_first()._repr_html_()
    top, folded = markup.split("<details>")
    assert top.count("<tr>") == len(t.differing()) + 1
    assert folded.count("<tr>") == len(gallery.GALLERY) + 1
    assert f"The {len(t.differing())} layouts" in top


def test_differing_title_names_who_differs() -> None:
    """v6.9 and v6.17 agree in every row, so the title says the seed patch is the odd one;
    with two kernels, or when the later ones disagree among themselves, it stays generic."""
    three = gallery.stop_table(("batch-v3", "v6.9", "v6.17"))
    assert three.differing_title() == (f"The {len(three.differing())} layouts where batch-v3 "
                                       "batches differently from v6.9 and v6.17 (which agree "
                                       "in every row)")
    assert three.differing_title() in three.differing_first()._repr_html_()
    # with v6.17 first, the other two (v6.9, batch-v3) disagree in some row
    mixed = gallery.stop_table(("v6.17", "v6.9", "batch-v3"))
    assert mixed.differing_title().endswith("where the versions make different batches")
    two = gallery.stop_table(("batch-v3", "v6.9"))
    assert "where the versions make different batches" in two.differing_title()


def test_same_batches_in_other_words_are_marked() -> None:
    """A row is marked exactly when the batches agree and the reasons' words do not: the
    marked rows read as a disagreement to a reader who did not yet know why."""
    t = gallery.stop_table(("batch-v3", "v6.9", "v6.17"))
    marked = t.same_batches_other_words()
    for s in gallery.GALLERY:
        cells = [t.cell(s, k) for k in t.kernels]
        agree = len({str(c[0]) for c in cells}) == 1
        same_words = len({c[1] for c in cells}) == 1
        assert (s in marked) == (agree and not same_words), s
    assert "nothing differs" in marked and not set(marked) & set(t.differing())
    top, folded = t.differing_first()._repr_html_().split("<details>")
    assert "†" not in top
    assert folded.count(" †</td>") == len(marked) and "†: every version" in folded
    # one kernel: nothing to compare, nothing marked, no key
    one = gallery.stop_table(("v6.9",))
    assert one.same_batches_other_words() == [] and "†" not in one.differing_first()._repr_html_()


def test_tracked_layouts_are_states_a_clear_can_leave() -> None:
    """In a VMA that tracks soft-dirty, a PTE without SD has not been written since the
    last clear (clear_refs 4 write-protects as it clears SD: clear_soft_dirty() in
    fs/proc/task_mmu.c), so it is read-only: no gallery layout shows a state the kernel
    cannot reach."""
    from pkmm.gallery import GALLERY
    from pkmm.scenario import Scenario
    from pkmm.vma import vma_soft_dirty_enabled
    for name, layout in GALLERY.items():
        parent = Scenario.from_dict(layout).build()[0]
        for vma in parent.vmas:
            if not vma_soft_dirty_enabled(vma):
                continue
            for _, pte in parent.ptes(vma.vm_start, vma.vm_end):
                if pte is not None and pte.present and not pte.soft_dirty:
                    assert not pte.write, f"{name}: a writable PTE without SD"
