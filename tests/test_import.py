"""`import pkmm` needs nothing beyond the standard library (no widgets, plots or numpy)."""

from __future__ import annotations

import subprocess
import sys

BLOCK = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"ipywidgets", "matplotlib", "numpy", "IPython"}:
            raise ImportError(f"blocked for this test: {name}")
        return None
sys.meta_path.insert(0, Block())
import pkmm
p = pkmm.Process(); p.mmap(0, 16); f = p.alloc_folio(4); p.map(0, f)
for k in pkmm.KERNELS:
    q = pkmm.Process(k); q.mmap(0, 16); q.map(0, q.alloc_folio(2)); pkmm.fork(q, k)
print(pkmm.fork(p).batches)
"""


def test_import_pkmm_without_optional_packages() -> None:
    out = subprocess.run([sys.executable, "-c", BLOCK], capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[16]"


def test_public_api_names() -> None:
    import pkmm
    assert pkmm.KERNELS == ("eager-copy", "v6.8", "batch-v3", "v6.9", "v6.17")
    for name in ("Process", "Pte", "fork", "dma_write", "check_invariants", "InvariantError",
                 "LayoutError", "ForkResult"):
        assert name in pkmm.__all__ and hasattr(pkmm, name)
    assert issubclass(pkmm.LayoutError, ValueError)
