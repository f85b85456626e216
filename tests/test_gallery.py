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
