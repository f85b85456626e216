"""Seeded random layouts and operation scripts for the property tests.

A layout is a :class:`pkmm.scenario.Scenario` (plain data) plus page contents, so the very
same layout can be built fresh for every kernel variant.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import pkmm
from pkmm.scenario import Scenario

ANON = 0x1FF000 - 8 * 4096       # crosses the PMD boundary at 0x200000
UFFD = 0x1000000
SHMEM = 0x10000000
FILE = 0x20000000
THP = 0x40000000
DONTFORK = 0x50000000
WIPE = 0x60000000


@dataclass
class Layout:
    """A scenario, the data each folio page holds, and which VMAs are writable by the script."""

    scenario: Scenario
    data: dict[tuple[str, int], int] = field(default_factory=dict)
    swap_values: dict[int, int] = field(default_factory=dict)
    write_vmas: list[tuple[int, int]] = field(default_factory=list)
    read_vmas: list[tuple[int, int]] = field(default_factory=list)
    shared_vmas: list[tuple[int, int]] = field(default_factory=list)
    dontfork: list[tuple[int, int]] = field(default_factory=list)
    wipe: list[tuple[int, int]] = field(default_factory=list)

    def build(self) -> tuple[pkmm.Process, dict[str, pkmm.Folio]]:
        p, folios = self.scenario.build()
        for (name, i), v in self.data.items():
            folios[name].pages[i].data = v
        return p, folios


def _place(rng: random.Random, d: dict[str, Any], layout: Layout, start: int, npages: int,
           prefix: str, backing: str, orders: list[int], max_folios: int,
           allow_write: bool = True) -> list[int]:
    """Put up to ``max_folios`` folios into free slots of [start, start+npages)."""
    free = list(range(npages))
    used: list[int] = []
    for k in range(rng.randint(1, max_folios)):
        order = rng.choice(orders)
        n = 1 << order
        name = f"{prefix}{k}"
        mode = rng.choice(["full", "partial", "shuffled", "full"])
        pages = list(range(n))
        if mode == "partial" and n > 1:
            a = rng.randrange(n)
            b = rng.randrange(a, n)
            pages = pages[a:b + 1]
        elif mode == "shuffled":
            rng.shuffle(pages)
        # find a free run of len(pages) slots
        runs = [s for s in range(npages - len(pages) + 1)
                if all(s + j in free for j in range(len(pages)))]
        if not runs:
            continue
        slot = rng.choice(runs)
        d["folios"][name] = {"order": order, "backing": backing}
        for j, pg in enumerate(pages):
            ae = backing != "anon" or rng.random() < 0.8
            write = allow_write and (backing != "anon" or ae) and rng.random() < 0.7
            pn = write is False and rng.random() < 0.1
            d["ptes"].append({"addr": start + (slot + j) * 4096, "folio": name, "page": pg,
                              "nr": 1, "write": write, "dirty": rng.random() < 0.6,
                              "young": rng.random() < 0.5,
                              "soft_dirty": rng.random() < 0.3,
                              "uffd_wp": False, "protnone": pn,
                              "anon_exclusive": ae if backing == "anon" else True})
            free.remove(slot + j)
            used.append(slot + j)
        for i in range(n):
            layout.data[(name, i)] = rng.randrange(1, 1000)
        if backing == "anon" and rng.random() < 0.25:
            aes = [e for e in d["ptes"] if e["folio"] == name and e["anon_exclusive"]]
            if aes:
                d["pins"].append({"folio": name, "page": rng.choice(aes)["page"]})
    return free


def random_layout(seed: int, *, pins: bool = True) -> Layout:
    """A random process: anon VMAs (one crossing a PMD boundary), maybe uffd-wp, shmem,
    a private file mapping with a COWed page, a PMD-mapped THP, DONTFORK/WIPEONFORK VMAs,
    zero pages and swap entries; random bits, AE, pins."""
    rng = random.Random(seed)
    d: dict[str, Any] = {"name": f"random-{seed}", "vmas": [], "folios": {}, "ptes": [],
                         "pmds": [], "zero": [], "swap": [], "pins": []}
    lay = Layout(Scenario(name="tmp"))
    n = rng.choice([16, 24, 40])
    d["vmas"].append({"start": ANON, "npages": n})
    free = _place(rng, d, lay, ANON, n, "A", "anon", [0, 0, 1, 2, 3, 4], 4)
    for s in rng.sample(free, min(len(free), rng.randint(0, 3))):
        if rng.random() < 0.5:
            d["zero"].append(ANON + s * 4096)
        else:
            v = rng.randrange(1, 1000)
            d["swap"].append({"addr": ANON + s * 4096, "value": v,
                              "exclusive": rng.random() < 0.7})
    lay.write_vmas.append((ANON, ANON + n * 4096))
    if rng.random() < 0.4:
        fork_keeps = rng.random() < 0.5
        d["vmas"].append({"start": UFFD, "npages": 8, "uffd_wp": True,
                          "uffd_fork": fork_keeps})
        _place(rng, d, lay, UFFD, 8, "U", "anon", [0, 2], 2)
        for e in d["ptes"]:
            if e["addr"] >= UFFD and e["addr"] < UFFD + 8 * 4096 and rng.random() < 0.5:
                e["uffd_wp"], e["write"] = True, False
        lay.read_vmas.append((UFFD, UFFD + 8 * 4096))
    if rng.random() < 0.4:
        d["vmas"].append({"start": SHMEM, "npages": 8, "backing": "shmem", "shared": True})
        _place(rng, d, lay, SHMEM, 8, "S", "shmem", [0, 1, 2], 2)
        lay.write_vmas.append((SHMEM, SHMEM + 8 * 4096))
        lay.shared_vmas.append((SHMEM, SHMEM + 8 * 4096))
    if rng.random() < 0.4:
        d["vmas"].append({"start": FILE, "npages": 8, "backing": "file"})
        free_f = _place(rng, d, lay, FILE, 8, "F", "file", [0, 2], 2, allow_write=False)
        if free_f and rng.random() < 0.7:       # a COWed page: the VMA gets an anon_vma
            d["folios"]["FC"] = {"order": 0}
            d["ptes"].append({"addr": FILE + free_f[0] * 4096, "folio": "FC"})
            lay.data[("FC", 0)] = rng.randrange(1, 1000)
        lay.write_vmas.append((FILE, FILE + 8 * 4096))
    if rng.random() < 0.25:
        d["vmas"].append({"start": THP, "npages": 512})
        d["folios"]["H"] = {"order": 9}
        d["pmds"].append({"addr": THP, "folio": "H"})
        for i in range(0, 512, 97):
            lay.data[("H", i)] = rng.randrange(1, 1000)
        if pins and rng.random() < 0.3:
            d["pins"].append({"folio": "H", "page": rng.randrange(512)})
        lay.write_vmas.append((THP, THP + 512 * 4096))
    if rng.random() < 0.3:
        d["vmas"].append({"start": DONTFORK, "npages": 2, "dontfork": True})
        d["folios"]["DF"] = {"order": 0}
        d["ptes"].append({"addr": DONTFORK, "folio": "DF"})
        lay.data[("DF", 0)] = 7
        lay.dontfork.append((DONTFORK, DONTFORK + 2 * 4096))
    if rng.random() < 0.3:
        d["vmas"].append({"start": WIPE, "npages": 2, "wipeonfork": True})
        d["folios"]["WF"] = {"order": 0}
        d["ptes"].append({"addr": WIPE, "folio": "WF"})
        lay.data[("WF", 0)] = 9
        lay.wipe.append((WIPE, WIPE + 2 * 4096))
        lay.write_vmas.append((WIPE, WIPE + 2 * 4096))
    if not pins:
        d["pins"] = []
    lay.scenario = Scenario.from_dict(d)
    return lay


def all_addrs(lay: Layout) -> list[int]:
    """Every page address of every VMA."""
    out = []
    for v in lay.scenario.vmas:
        out += [v["start"] + i * 4096 for i in range(v["npages"])]
    return out


def random_script(seed: int, lay: Layout, n: int = 12) -> list[tuple[str, str, int, int]]:
    """(who, op, addr, value) steps; writes only where no userfault can block."""
    rng = random.Random(seed ^ 0x5EED)
    addrs = all_addrs(lay)
    writable = [a for a in addrs if any(s <= a < e for s, e in lay.write_vmas)]
    script = []
    for _ in range(n):
        who = rng.choice(["parent", "child"])
        op = rng.choices(["read", "write", "exit", "dma"], [5, 5, 1, 1])[0]
        if op == "write" and writable:
            script.append((who, "write", rng.choice(writable), rng.randrange(1000, 2000)))
        elif op == "exit":
            script.append((who, "exit", 0, 0))
        elif op == "dma":
            script.append(("parent", "dma", 0, rng.randrange(2000, 3000)))
        else:
            script.append((who, "read", rng.choice(addrs), 0))
    return script
