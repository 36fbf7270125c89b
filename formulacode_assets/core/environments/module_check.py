"""Discovery that survives one bad benchmark module: import each module on its own, set the failing ones aside.

asv's discovery imports every module of the benchmark directory and gives up on the first one
that raises, so a single module that downloads a data set at import (no network in the sandbox)
hides a whole suite. When discovery finds nothing, each module is imported on its own, in its own
process of the built environment with its own timeout (a hanging download, a crash or a
``sys.exit`` cannot take the others with it). The failing ones are *moved out* of the throw-away
checkout's benchmark directory and discovery runs again on the rest.

Moving files, rather than asv's ``--bench`` regex: ``--bench`` filters benchmarks *after* asv has
imported every module, so the failing import would still abort discovery; a module that is not
there is never imported, by discovery, the quick run or the selection probe alike.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# Imports one module the way asv does: the benchmark directory is a package named after itself,
# importable from its parent. Prints nothing on success; the error's last line otherwise.
IMPORT_DRIVER = r"""
import importlib, os, sys, traceback
root, module = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.dirname(os.path.abspath(root)))
try:
    importlib.import_module(module)
except BaseException as exc:
    sys.stdout.write((type(exc).__name__ + ": " + str(exc)).replace("\n", " ")[:300])
    sys.exit(3)
"""


@dataclass(frozen=True)
class BenchmarkModule:
    name: str  # dotted, as asv imports it: ``benchmarks.io``
    path: Path  # the file, or the sub-package's directory


def benchmark_modules(benchmark_dir: Path) -> list[BenchmarkModule]:
    """The modules asv's discovery would import below ``benchmark_dir`` (sub-packages with their ``__init__``)."""
    root = Path(benchmark_dir)
    found: list[BenchmarkModule] = []

    def walk(folder: Path, prefix: str) -> None:
        for entry in sorted(folder.iterdir()):
            if entry.is_dir() and (entry / "__init__.py").is_file():
                found.append(BenchmarkModule(f"{prefix}.{entry.name}", entry))
                walk(entry, f"{prefix}.{entry.name}")
            elif entry.suffix == ".py" and entry.name != "__init__.py" and entry.stem.isidentifier():
                found.append(BenchmarkModule(f"{prefix}.{entry.stem}", entry))

    if root.is_dir():
        walk(root, root.name)
    return found


def failing_modules(
    benchmark_dir: Path, import_one: Callable[[str], tuple[bool, str]], *, time_left: Callable[[], float]
) -> tuple[dict[str, str], list[str]]:
    """``({module: one-line reason}, unchecked)``: imports every module with ``import_one(name) -> (ok, reason)``.

    A sub-package that fails takes its modules with it (they are not tried). Modules left when
    ``time_left()`` reaches zero are returned as unchecked.
    """
    failing: dict[str, str] = {}
    unchecked: list[str] = []
    for module in benchmark_modules(benchmark_dir):
        if any(module.name.startswith(bad + ".") for bad in failing):
            continue
        if time_left() <= 0:
            unchecked.append(module.name)
            continue
        ok, reason = import_one(module.name)
        if not ok:
            failing[module.name] = reason or "import failed"
    return failing, unchecked


def set_aside(benchmark_dir: Path, modules: dict[str, str], dest: Path) -> list[str]:
    """Move the failing modules out of ``benchmark_dir`` (into ``dest``); ``["path: reason", ...]`` for the row."""
    root = Path(benchmark_dir)
    by_name = {m.name: m for m in benchmark_modules(root)}
    excluded = []
    for name, reason in sorted(modules.items()):
        module = by_name.get(name)
        if module is None or not module.path.exists():
            continue
        relative = module.path.relative_to(root.parent)
        target = Path(dest) / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(module.path), str(target))
        excluded.append(f"{relative.as_posix()}: {reason}")
    return excluded
