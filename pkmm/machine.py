"""The simulated machine: physical page allocator, swap space and the zero pages.

Simulator concept (no single kernel file): stands for mm/page_alloc.c (buddy allocator,
``folio_alloc``), mm/swapfile.c (swap counts) and the shared zero pages.
Taught in: notebooks/01-ptes-folios-vmas.ipynb

Every mm (and so every :class:`pkmm.Process`) belongs to one machine; ``fork`` puts the
child on the parent's machine, which lists the live mms (what the task list is to the
kernel).  pfns come from a bump allocator with natural alignment, so two folios
allocated one after the other are physically adjacent (as in spec scenario T12), and a
freed pfn is never reused (labels in traces stay unambiguous).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import LayoutError
from .folio import Folio, FolioKind
from .pte import MAX_PAGE_ORDER

if TYPE_CHECKING:  # pragma: no cover
    from .mm import MmStruct

__all__ = ["FIRST_PFN", "HUGETLB_ORDERS", "HUGE_ZERO_PFN", "THP_ORDERS", "Machine", "SwapSlot",
           "ThpSettings", "ZERO_PFN", "struct_page_streams"]

#: hugetlb page sizes of x86-64: 2 MiB and 1 GiB
HUGETLB_ORDERS = (9, 18)
ZERO_PFN = 0x10          # my_zero_pfn()
HUGE_ZERO_PFN = 0x200    # the huge zero folio (order 9, naturally aligned)
FIRST_PFN = 0x1000


#: Orders with an anon ``hugepages-<N>kB/enabled`` knob on x86-64: 16 KiB .. 2 MiB.
THP_ORDERS = tuple(range(2, MAX_PAGE_ORDER + 1))
_THP_GLOBAL = ("always", "madvise", "never")
_THP_ORDER = ("always", "madvise", "inherit", "never")


class ThpSettings:
    """The THP sysfs knobs of the simulated machine.

    Mirrors: /sys/kernel/mm/transparent_hugepage/{enabled, use_zero_page} and
    hugepages-<N>kB/enabled (mm/huge_memory.c, Documentation/admin-guide/mm/transhuge.rst).
    The default is the live 6.18 machine's: ``enabled`` = madvise, only the 2 MiB size
    "inherit", every smaller size "never"; the huge zero page on.
    Taught in: notebooks/09-real-kernel-lab.ipynb

    >>> t = ThpSettings(); t.set_order(4, "always"); t.order_enabled(4, vm_hugepage=False)
    True
    >>> t.order_enabled(9, vm_hugepage=False), t.order_enabled(9, vm_hugepage=True)
    (False, True)
    """

    def __init__(self) -> None:
        self.enabled = "madvise"
        self.orders: dict[int, str] = {o: "never" for o in THP_ORDERS}
        self.orders[MAX_PAGE_ORDER] = "inherit"
        self.use_zero_page = True

    def set_enabled(self, value: str) -> None:
        """The global knob: always, madvise or never."""
        if value not in _THP_GLOBAL:
            raise LayoutError(f"enabled={value!r}: use one of {', '.join(_THP_GLOBAL)}")
        self.enabled = value

    def set_order(self, order: int, value: str) -> None:
        """The per-size knob of ``2**order`` pages: always, madvise, inherit or never."""
        if not isinstance(order, int) or isinstance(order, bool) or order not in THP_ORDERS:
            raise LayoutError(f"order={order!r}: anon THP sizes are orders "
                              f"{THP_ORDERS[0]}..{THP_ORDERS[-1]} (16 KiB .. 2 MiB)")
        if value not in _THP_ORDER:
            raise LayoutError(f"value={value!r}: use one of {', '.join(_THP_ORDER)}")
        self.orders[order] = value

    def order_enabled(self, order: int, vm_hugepage: bool) -> bool:
        """Whether a fault in a VMA (with or without MADV_HUGEPAGE) may use ``order``.

        Mirrors: mm/huge_memory.c __thp_vma_allowable_orders()'s sysfs part (v6.8+:
        huge_anon_orders_always / _madvise / _inherit with the global setting).
        """
        v = self.orders.get(order, "never")
        if v == "inherit":
            v = self.enabled
        return v == "always" or (v == "madvise" and vm_hugepage)


@dataclass
class SwapSlot:
    """One swap slot: its swap count (``swap_map``: swap PTEs referring to it), the page
    data written to it, and the folio in the swap cache for it (SWAP_HAS_CACHE)."""

    count: int
    data: int
    anon: bool = True
    cache: Folio | None = None


class Machine:
    """Physical memory and swap shared by a process tree."""

    def __init__(self) -> None:
        self._next_pfn = FIRST_PFN
        self._next_uid = 0
        self.folios: dict[int, Folio] = {}        # head pfn -> folio
        self._pfn_to_head: dict[int, int] = {}
        self.swap: dict[int, SwapSlot] = {}
        self._next_swap = 1
        self.mms: list[MmStruct] = []             # live mms, in creation order
        self._next_mm_id = 1
        # pkmm: head pfns of folios whose counters changed since a recorder last looked
        # (pkmm.replay); None while nobody records.  Every counter change marks it.
        self.watch: set[int] | None = None
        self.zero_folio = self._new_folio(0, "zero", ZERO_PFN)
        self.huge_zero_folio = self._new_folio(MAX_PAGE_ORDER, "huge_zero", HUGE_ZERO_PFN)
        self.fail_alloc = 0   # pkmm: fail the next N allocations (fault injection)
        self.thp = ThpSettings()

    def _new_folio(self, order: int, kind: FolioKind, pfn: int) -> Folio:
        f = Folio(self, order, pfn, kind, self._next_uid)
        self._next_uid += 1
        self.folios[pfn] = f
        if order:
            self._pfn_to_head.update(dict.fromkeys(range(pfn, pfn + (1 << order)), pfn))
        else:
            self._pfn_to_head[pfn] = pfn
        if self.watch is not None:
            self.watch.add(pfn)
        return f

    @property
    def next_pfn(self) -> int:
        """The pfn the bump allocator looks at next (before alignment)."""
        return self._next_pfn

    @next_pfn.setter
    def next_pfn(self, pfn: int) -> None:
        # pkmm: the bulk path (pkmm.fast) moves the allocator past the pages it allocated
        # itself, so that the model's next allocation lands where a traced fork puts it
        self._next_pfn = pfn

    @property
    def next_swap(self) -> int:
        """The swap offset swap_alloc() hands out next."""
        return self._next_swap

    @next_swap.setter
    def next_swap(self, offset: int) -> None:
        self._next_swap = offset      # pkmm: rebuilding a recorded layout (pkmm.fast)

    def alloc_folio_at(self, order: int, kind: FolioKind, pfn: int) -> Folio:
        """pkmm: allocate at a given free, aligned ``pfn`` (rebuilding a recorded layout)."""
        nr = 1 << order
        if pfn % nr or any(pfn + i in self._pfn_to_head for i in range(nr)):
            raise LayoutError(f"pfn={pfn:#x}: not a free, {nr}-page aligned range")
        self._next_pfn = max(self._next_pfn, pfn + nr)
        return self._new_folio(order, kind, pfn)

    def alloc_folio(self, order: int, kind: FolioKind) -> Folio:
        """``folio_alloc``: a fresh folio of ``2**order`` contiguous, aligned pages."""
        if not isinstance(order, int) or not 0 <= order <= MAX_PAGE_ORDER:
            raise LayoutError(f"order={order!r}: pkmm models folio orders 0..{MAX_PAGE_ORDER}"
                              " (4 KiB .. 2 MiB); pick one in that range")
        nr = 1 << order
        pfn = (self._next_pfn + nr - 1) & ~(nr - 1)
        self._next_pfn = pfn + nr
        return self._new_folio(order, kind, pfn)

    def alloc_hugetlb_folio(self, order: int, kind: FolioKind) -> Folio:
        """A folio from the hugetlb pool: 2 MiB (order 9) or 1 GiB (order 18), zeroed.

        Mirrors: mm/hugetlb.c alloc_hugetlb_folio().  pkmm: the pool never runs dry.
        """
        if order not in HUGETLB_ORDERS:
            raise LayoutError(f"order={order!r}: hugetlb pages are 2 MiB (order 9) or 1 GiB "
                              "(order 18)")
        nr = 1 << order
        pfn = (self._next_pfn + nr - 1) & ~(nr - 1)
        self._next_pfn = pfn + nr
        folio = self._new_folio(order, kind, pfn)
        folio.hugetlb = True
        return folio

    def try_alloc_folio(self, order: int, kind: FolioKind) -> Folio | None:
        """An allocation that may fail (fault injection through ``fail_alloc``)."""
        if self.fail_alloc:
            self.fail_alloc -= 1
            return None
        return self.alloc_folio(order, kind)

    def free_folio(self, folio: Folio) -> None:
        """Return a folio whose last reference was dropped."""
        folio.freed = True
        self.folios.pop(folio.pfn, None)
        if self.watch is not None:
            self.watch.add(folio.pfn)
        for i in range(folio.nr_pages):
            self._pfn_to_head.pop(folio.pfn + i, None)

    def split_folio_pages(self, folio: Folio) -> list[Folio]:
        """pkmm: the allocator side of a folio split -- ``folio``'s pages become order-0
        folios at the same pfns (each keeps its ``Page``); the caller moves the counters."""
        news = []
        for page in list(folio.pages):
            new = Folio(self, 0, page.pfn, folio.kind, self._next_uid)
            self._next_uid += 1
            page.folio, page.index = new, 0
            new.pages = [page]
            new.fresh = False
            self.folios[page.pfn] = new
            self._pfn_to_head[page.pfn] = page.pfn
            if self.watch is not None:
                self.watch.add(page.pfn)
            news.append(new)
        folio.freed = True
        return news

    def pfn_folio(self, pfn: int) -> tuple[Folio, int] | None:
        """``pfn_to_page`` + ``page_folio``: the folio and page index at ``pfn``."""
        head = self._pfn_to_head.get(pfn)
        if head is None:
            return None
        return self.folios[head], pfn - head

    def new_mm_id(self) -> int:
        """A fresh mm id (CONFIG_MM_ID)."""
        i = self._next_mm_id
        self._next_mm_id += 1
        return i

    @property
    def next_mm_id(self) -> int:
        """The id the next mm gets (pkmm.fast rebuilds a machine with it)."""
        return self._next_mm_id

    @next_mm_id.setter
    def next_mm_id(self, i: int) -> None:
        self._next_mm_id = i

    # -- swap (mm/swapfile.c) ------------------------------------------------------------
    def swap_alloc(self, data: int, count: int = 1) -> int:
        """Allocate a swap slot holding ``data``, referred to by ``count`` PTEs; returns
        its offset (``folio_alloc_swap`` allocates with count 0 and the cache flag)."""
        off = self._next_swap
        self._next_swap += 1
        self.swap[off] = SwapSlot(count, data)
        return off

    def swap_duplicate(self, offset: int) -> None:
        """``swap_duplicate``: one more PTE refers to the slot."""
        self.swap[offset].count += 1

    def swap_free(self, offset: int) -> None:
        """``swap_free``: one PTE fewer refers to the slot; a slot nobody refers to and
        no swap-cache folio holds is free again."""
        slot = self.swap[offset]
        slot.count -= 1
        if slot.count == 0 and slot.cache is None:
            del self.swap[offset]


def struct_page_streams(vpage: Any, pfn: Any) -> dict[int, int]:
    """How many streams of each length the struct pages of these pages form, in the order
    fork walks them: ``vpage`` (the virtual page numbers, ascending) and ``pfn`` (their
    frames) list the pages whose struct page fork touches (sequences, or numpy arrays).

    Fork reads and updates every mapped page's struct page (refcount, _mapcount,
    PageAnonExclusive: CONFIG_PAGE_MAPCOUNT keeps a per-page mapcount), in PTE order.  A
    struct page is one 64-byte cache line of the memmap, at the place of its frame number,
    so the next PTE's struct page is the next line when its frame is the next frame (or
    the one before: the allocator often hands out a block's pages downwards, and the
    prefetcher follows a falling stream as well as a rising one).  A stream ends where the
    next page's frame is neither, or turns the other way, at a gap in the virtual pages,
    and at the end of a page table (fork copies a table at a time).

    >>> struct_page_streams([0, 1, 2, 3, 4, 5, 600], [10, 11, 12, 40, 39, 40, 42])
    {3: 1, 2: 1, 1: 2}
    """
    v = vpage.tolist() if hasattr(vpage, "tolist") else list(vpage)
    f = pfn.tolist() if hasattr(pfn, "tolist") else list(pfn)
    if len(v) != len(f):
        raise ValueError(f"vpage and pfn: {len(v)} and {len(f)} pages; give one frame per page")
    out: dict[int, int] = {}
    run = step = 0
    for i in range(len(v)):
        d = f[i] - f[i - 1] if i else 0
        if run and v[i] == v[i - 1] + 1 and v[i] >> 9 == v[i - 1] >> 9 and \
                d in (1, -1) and (run == 1 or d == step):
            run, step = run + 1, d
            continue
        if run:
            out[run] = out.get(run, 0) + 1
        run = 1
    if run:
        out[run] = out.get(run, 0) + 1
    return dict(sorted(out.items(), reverse=True))
