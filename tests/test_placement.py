"""Where the live kernel put a region's pages: pagemap read back as struct-page streams
(root only: without CAP_SYS_ADMIN the frames read as 0 and there is nothing to read)."""

from __future__ import annotations

import os
import sys

import pytest

from pkmm.realkernel import timing
from pkmm.realkernel.placement import region_streams

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux") or os.geteuid() != 0,
                                reason="needs Linux and root (pagemap frames)")


def test_a_timed_sample_says_where_its_pages_are() -> None:
    size = 8 << 20
    ns, check, streams = timing._sample(size, "4K", "fresh")
    assert ns > 0 and check is None
    assert streams is not None
    assert sum(int(n) * c for n, c in streams.items()) == size >> 12
    # a PMD-mapped region's fork touches no per-page struct page: nothing to read
    if "2M-pmd" in timing.available_folios():
        from pkmm.realkernel import thp
        with thp.thp_settings(timing._knobs("2M-pmd")):
            assert timing._sample(size, "2M-pmd", "fresh")[2] is None


def test_nothing_mapped_reads_as_no_streams() -> None:
    assert region_streams(os.getpid(), []) == {}
    assert region_streams(2 ** 22 + 7, [(0, 1)]) is None      # no such process
