"""Build the zero-install lab: a JupyterLite site of notebooks/ in `_lite/` (`./dev lite`).

Usage: python tools/lite.py [--out _lite]        build the site
       python tools/lite.py --pyodide-version     the Pyodide the kernel was built for

What goes in, and why:
- jupyterlite-core and jupyterlite-pyodide-kernel, pinned as a matching pair (0.8.6 each).
- Pyodide's core (pyodide.mjs, the wasm, the stdlib, pyodide-lock.json) from the npm package
  `pyodide` that ./dev installs into node_modules/, at the version the kernel expects.
  The npm package has no wheels.  Every pure-Python wheel the kernel loads at start-up
  (micropip, ipython, jedi and their dependencies) comes from PyPI at the version the lock
  names; PyPI's files are built separately from Pyodide's, so their sha256 is rewritten in
  the lock.  Packages with compiled code (numpy, matplotlib) cannot come from PyPI: their
  lock entries point at Pyodide's CDN, so they load when the browser is online.
- pkmm as a wheel built from this checkout, plus the pure-Python wheels its widgets need
  (ipywidgets, comm, and anywidget with psygnal when installed here), added to the lock
  and loaded when the kernel starts, so `from pkmm.views import ...` works offline.
- Only two lab extensions (the widget manager and the Pyodide kernel, and anywidget's when
  installed), never the whole environment's: nbgrader's extension breaks a JupyterLite lab.
The result is a static folder: serve it with any web server (`python -m http.server -d
_lite`) or publish it (README: "Publishing the browser lab").
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
NPM_PYODIDE = ROOT / "node_modules" / "pyodide"
MARKER = ".pkmm-lite"
#: Kernel start-up loads these (jupyterlite-pyodide-kernel's worker: micropip, then
#: piplite installs ipykernel, comm, pyodide-kernel, jedi and ipython).
KERNEL_START = ("micropip", "ipython", "jedi")
#: Pure-Python wheels the notebooks need beyond pkmm: (distribution, lock name, imports,
#: depends).  Added only when the distribution is installed in this environment.
EXTRA = (
    ("comm", "comm", ["comm"], ["traitlets"]),
    ("ipywidgets", "ipywidgets", ["ipywidgets"], ["comm", "ipython", "traitlets"]),
    ("psygnal", "psygnal", ["psygnal"], ["typing-extensions"]),
    ("anywidget", "anywidget", ["anywidget"], ["ipywidgets", "psygnal", "typing-extensions"]),
)
LABEXTENSIONS = ("@jupyter-widgets/jupyterlab-manager",
                 "@jupyterlite/pyodide-kernel-extension", "anywidget")


class LiteError(Exception):
    """The lite site cannot be built; the message says what is missing and how to get it."""


def pyodide_version() -> str:
    """The Pyodide release jupyterlite-pyodide-kernel was built against."""
    from jupyterlite_pyodide_kernel.constants import PYODIDE_VERSION

    return str(PYODIDE_VERSION)


def cdn_url() -> str:
    from jupyterlite_pyodide_kernel.constants import PYODIDE_CDN_URL

    return str(PYODIDE_CDN_URL)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _pip_download(spec: str, dest: Path) -> Path:
    """One pure-Python wheel from the package index (the ordinary pip client)."""
    before = set(dest.glob("*.whl"))
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
           "--python-version", "3.14", "--platform", "any", "--implementation", "py",
           "--disable-pip-version-check", "-d", str(dest), spec]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise LiteError(f"pip download {spec} failed:\n{proc.stderr[-1500:]}")
    new = set(dest.glob("*.whl")) - before
    name = spec.split("==")[0].replace("-", "_").lower()
    found = [p for p in (new or set(dest.glob("*.whl")))
             if p.name.lower().startswith(name + "-")]
    if len(found) != 1:
        raise LiteError(f"pip download {spec}: expected one wheel, got {sorted(found)}")
    return found[0]


def canonical(name: str) -> str:
    """PEP 503 name: the lock's keys are canonical, its ``depends`` entries are not.

    >>> canonical("prompt_toolkit"), canonical("Typing.Extensions")
    ('prompt-toolkit', 'typing-extensions')
    """
    return re.sub(r"[-_.]+", "-", name).lower()


def _closure(packages: dict[str, Any], roots: list[str]) -> set[str]:
    """Lock keys reachable from ``roots`` through the lock's ``depends``."""
    seen: set[str] = set()
    todo = [canonical(r) for r in roots]
    while todo:
        name = todo.pop()
        if name in packages and name not in seen:
            seen.add(name)
            todo += [canonical(d) for d in packages[name].get("depends", [])]
    return seen


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def prepare_pyodide(dest: Path, wheels: Path, pkmm_wheel: Path) -> list[str]:
    """Pyodide's core in ``dest`` with a lock that serves the kernel offline; returns the
    lock names to load when the kernel starts."""
    want = pyodide_version()
    pkg = json.loads((NPM_PYODIDE / "package.json").read_text()) if NPM_PYODIDE.is_dir() \
        else {}
    if pkg.get("version") != want:
        raise LiteError(f"node_modules/pyodide is {pkg.get('version', 'missing')}, the kernel "
                        f"needs {want}: run `npm install --no-save pyodide@{want}` (./dev "
                        "lite does it)")
    dest.mkdir(parents=True)
    for f in NPM_PYODIDE.iterdir():
        if f.is_file() and not f.name.endswith(".map") and f.name != "package.json":
            shutil.copy2(f, dest / f.name)
    lock = json.loads((dest / "pyodide-lock.json").read_text())
    packages: dict[str, Any] = lock["packages"]
    preload = ["pkmm"]
    extra_depends: list[str] = []
    for dist, name, imports, depends in EXTRA:
        ver = _version(dist)
        if ver is None or name in packages:
            continue
        wheel = _pip_download(f"{dist}=={ver}", wheels)
        shutil.copy2(wheel, dest / wheel.name)
        packages[name] = _entry(name, ver, wheel.name, _sha256(wheel), imports, depends)
        extra_depends += depends
        if name in ("ipywidgets", "anywidget"):
            preload.append(name)
    packages["pkmm"] = _entry("pkmm", _version("pkmm") or "0", pkmm_wheel.name,
                              _sha256(pkmm_wheel), ["pkmm"], [])
    shutil.copy2(pkmm_wheel, dest / pkmm_wheel.name)
    offline = _closure(packages, [*KERNEL_START, *extra_depends, *preload])
    for name, entry in packages.items():
        if (dest / entry["file_name"]).exists():
            continue
        if name in offline and entry["file_name"].endswith("-none-any.whl"):
            wheel = _pip_download(f"{name}=={entry['version']}", wheels)
            shutil.copy2(wheel, dest / entry["file_name"])
            entry["sha256"] = _sha256(wheel)
        else:  # compiled, or not needed offline: Pyodide's CDN serves it when online
            entry["file_name"] = f"{cdn_url()}/{entry['file_name']}"
    missing = sorted(n for n in offline if not (dest / packages[n]["file_name"]).exists())
    if missing:
        raise LiteError(f"the kernel needs {missing} at start-up and they are not pure Python")
    (dest / "pyodide-lock.json").write_text(json.dumps(lock))
    return preload


def _entry(name: str, version: str, file_name: str, sha256: str, imports: list[str],
           depends: list[str]) -> dict[str, Any]:
    """A pyodide-lock.json package entry for a pure-Python wheel."""
    return {"name": name, "version": version, "file_name": file_name, "install_dir": "site",
            "sha256": sha256, "package_type": "package", "imports": imports,
            "depends": depends, "unvendored_tests": False, "shared_library": False}


def labextensions() -> list[str]:
    """The lab extensions of :data:`LABEXTENSIONS` installed in this environment."""
    base = Path(sysconfig.get_path("data")) / "share" / "jupyter" / "labextensions"
    found = [str(base / name) for name in LABEXTENSIONS if (base / name).is_dir()]
    if len(found) < 2:
        raise LiteError(f"lab extensions missing under {base}: install the lab and lite "
                        "extras (pip install -e '.[lab,lite]')")
    return found


def build_wheel(dest: Path) -> Path:
    """pkmm's wheel from this checkout (the same `python -m build` as a release)."""
    proc = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation",
                           "--outdir", str(dest), str(ROOT)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise LiteError(f"building pkmm's wheel failed:\n{proc.stderr[-1500:]}")
    (wheel,) = dest.glob("pkmm-*.whl")
    return wheel


def build(out: Path, notebooks: Path, work: Path) -> None:
    """Build the site into ``out`` (replaced only if this tool built it)."""
    for mod in ("jupyterlite_core", "jupyterlite_pyodide_kernel", "build"):
        if importlib.util.find_spec(mod) is None:
            raise LiteError(f"{mod} is not installed: pip install -e '.[lite,release]'")
    if out.exists() and not (out / MARKER).exists() and any(out.iterdir()):
        raise LiteError(f"--out {out} exists and was not built by tools/lite.py; choose "
                        "another directory or remove it")
    shutil.rmtree(work, ignore_errors=True)
    lite_dir, wheels = work / "src", work / "wheels"
    wheels.mkdir(parents=True)
    pkmm_wheel = build_wheel(wheels)
    preload = prepare_pyodide(lite_dir / "static" / "pyodide", wheels, pkmm_wheel)
    contents = work / "files"
    shutil.copytree(notebooks, contents,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "_pkmm_*"))
    config = {"LiteBuildConfig": {
        "apps": ["lab"], "no_sourcemaps": True, "no_unused_shared_packages": True,
        "ignore_sys_prefix": ["federated_extensions"],
        "federated_extensions": labextensions(), "contents": [str(contents)],
        "settings_overrides": [str(ROOT / "binder" / "overrides.json")],
        "output_dir": str(out.resolve())}}
    (lite_dir / "jupyter_lite_config.json").write_text(json.dumps(config, indent=1))
    # exposeAppInBrowser: window.jupyterapp, which the browser test drives (as in the lab).
    plugin = "@jupyterlite/pyodide-kernel-extension:kernel"
    kernel = {"exposeAppInBrowser": True, "litePluginSettings": {plugin: {
        "loadPyodideOptions": {"packages": preload}, "disablePyPIFallback": False}}}
    (lite_dir / "jupyter-lite.json").write_text(json.dumps(
        {"jupyter-lite-schema-version": 0, "jupyter-config-data": kernel}, indent=1))
    if out.exists():
        shutil.rmtree(out)
    proc = subprocess.run([sys.executable, "-m", "jupyterlite_core", "build"], cwd=lite_dir,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise LiteError(f"jupyter lite build failed:\n{proc.stdout[-2000:]}"
                        f"\n{proc.stderr[-2000:]}")
    (out / MARKER).write_text("built by tools/lite.py; safe to delete\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="tools/lite.py", description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "_lite", help="output (default _lite)")
    ap.add_argument("--notebooks", type=Path, default=ROOT / "notebooks")
    ap.add_argument("--work", type=Path, default=ROOT / "build" / "lite",
                    help="scratch folder for the build (default build/lite)")
    ap.add_argument("--pyodide-version", action="store_true",
                    help="print the Pyodide version the kernel needs, and exit")
    args = ap.parse_args(argv)
    if args.pyodide_version:
        print(pyodide_version())
        return 0
    start = time.monotonic()
    try:
        build(args.out, args.notebooks, args.work)
    except LiteError as e:
        print(f"lite: {e}", file=sys.stderr)
        return 1
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"{args.out}: JupyterLite lab, {size / 2**20:.0f} MiB, built in "
          f"{time.monotonic() - start:.0f} s; serve it: python -m http.server -d {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
