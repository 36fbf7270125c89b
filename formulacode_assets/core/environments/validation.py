"""Validating a ``build_env.sh`` for real: the interface every sandbox implements, and how results are read.

A validator builds the environment a candidate script describes, then lets asv discover and run
benchmarks. Two sandboxes implement :class:`Validator`: :mod:`.docker_validator` (production) and
:mod:`.local_validator` (trusted sources and machines without Docker). Both run the same asv commands
(:func:`asv_commands`) and read the same result files, and a validation passes only when discovery
lists at least one benchmark and the quick run recorded a result for at least one of them (asv
exits 0 on most failures, so exit codes are not trusted). Every step has a timeout; a timeout is a
failure with its reason. Discovery and the quick run are repeated ``repeats`` times on the one
built environment, and the result says whether the set of benchmarks was the same every time.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from formulacode_assets.core.environments.install_analysis import AsvSettings
from formulacode_assets.core.mining.git import run_git

MACHINE = "fc-validator"
TAIL = 4000
# Values of ``stage_failed``: where a context failed ("internal" is a bug caught per row).
STAGES = ("analysis", "checkout", "build", "machine", "discovery", "run", "timeout", "agent", "sandbox", "internal")
CA_VARIABLES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "PIP_CERT")


@dataclass(frozen=True)
class ValidationRequest:
    repo_name: str
    sha: str
    mirror: Path
    script: str
    python_version: str  # X.Y.Z chosen by the install analysis
    python_path: str  # that interpreter on the host (the local validator builds from it)
    asv: AsvSettings
    exclude_newer: str  # ISO date: nothing newer gets installed
    asv_requirement: str = "asv>=0.6"
    # Base lines the context's changes rewrite ({path: [lines]}): they decide which benchmarks run.
    changed_lines: Mapping[str, Sequence[int]] = field(default_factory=dict)
    # Debian packages the build needs (system_packages.py): the Docker validator installs them with apt.
    system_packages: Sequence[str] = ()


@dataclass
class ValidationResult:
    ok: bool
    validator: str
    stage_failed: str | None = None
    reason: str | None = None
    returncode: int | None = None
    stdout_tail: str = ""
    stderr_tail: str = ""
    duration_s: float = 0.0
    python_version: str | None = None  # what the built environment actually runs
    benchmarks: list[str] = field(default_factory=list)  # discovered in every repeat
    benchmarks_with_results: list[str] = field(default_factory=list)  # timed in every repeat
    benchmarks_failed: list[str] = field(default_factory=list)  # discovered but without a result
    repeats: int = 0
    stable: bool | None = None  # same discovered and timed sets in every repeat
    steps: list[dict] = field(default_factory=list)  # name, returncode, duration_s per step
    benchmarks_selected: list[str] = field(default_factory=list)  # what the quick run timed
    selection: dict | None = None  # Selection.as_dict(): the rule per benchmark, probe counts
    system_packages: list[str] | None = None  # Debian packages installed in the image (None: none by apt)
    benchmarks_excluded: list[str] = field(default_factory=list)  # "module path: reason" of modules failing import


class Validator(ABC):
    """Builds a candidate script's environment and checks that asv discovers and runs benchmarks."""

    name: str

    @abstractmethod
    def validate(self, request: ValidationRequest, *, repeats: int = 2) -> ValidationResult: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release clients; default: nothing to release."""


# ---------------------------------------------------------------------------------------------
# Shared pieces
# ---------------------------------------------------------------------------------------------


def asv_commands(
    asv_bin: str,
    conf_path: str,
    sha: str,
    *,
    bench_patterns: Sequence[str] = (),
    benchmark_timeout: float | None = None,
) -> dict[str, list[str]]:
    """The asv steps every validator runs, as argument lists (cwd: the repository root).

    ``bench_patterns`` limits the quick run to the selected benchmarks; ``benchmark_timeout``
    overrides every benchmark's own ``timeout`` attribute (asv kills a benchmark past it).
    """
    common = ["--machine", MACHINE, "--config", conf_path]
    run = [asv_bin, "run", "--python=same", "--quick", "--show-stderr", "--set-commit-hash", sha]
    for pattern in bench_patterns:
        run += ["--bench", pattern]
    if benchmark_timeout:
        run += ["--attribute", f"timeout={benchmark_timeout:g}"]
    return {
        "machine": [asv_bin, "machine", "--yes", *common],
        "discovery": [asv_bin, "run", "--python=same", "--bench", "just-discover", *common],
        "run": [*run, *common],
    }


PYTHON_PROBE = "import platform; print(platform.python_version())"


def checkout_commit(mirror: Path, sha: str, dest: Path, branch: str, *, timeout: float = 600) -> None:
    """A git checkout of ``sha`` at ``dest`` on ``branch`` (asv records results against a branch).

    A depth-1 fetch from the bare mirror: the mirror is read, never changed, and the checkout
    is a real repository, as asv's ``--set-commit-hash`` needs.
    """
    run_git(None, ["init", "--quiet", str(dest)], timeout=60)
    git_dir = dest / ".git"
    run_git(git_dir, ["fetch", "--quiet", "--depth=1", "--no-tags", str(mirror), sha], timeout=timeout)
    run_git(git_dir, [f"--work-tree={dest}", "checkout", "--quiet", "-B", branch, "FETCH_HEAD"], timeout=timeout)


def read_discovery(results_dir: Path) -> list[str] | None:
    """Benchmark names from asv's ``benchmarks.json`` (None when discovery wrote nothing)."""
    path = results_dir / "benchmarks.json"
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return sorted(name for name in data if name != "version")


def _has_value(value: Any) -> bool:
    if isinstance(value, list):
        return any(_has_value(v) for v in value)
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def read_run_results(results_dir: Path, sha: str) -> dict[str, bool] | None:
    """``{benchmark: has a result}`` from the quick run's result file for ``sha`` (None: no file)."""
    machine_dir = results_dir / MACHINE
    files = sorted(machine_dir.glob(f"{sha[:8]}-*.json")) if machine_dir.is_dir() else []
    if not files:
        return None
    outcome: dict[str, bool] = {}
    for path in files:
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        for name, row in (data.get("results") or {}).items():
            value = row[0] if isinstance(row, list) and row else row
            outcome[name] = outcome.get(name, False) or _has_value(value)
    return outcome


def tail(text: str | bytes, limit: int = TAIL) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return text[-limit:]


@dataclass
class Repeat:
    discovered: list[str]
    timed: list[str]
    failed: list[str]


def judge_repeat(
    discovered: list[str] | None, results: dict[str, bool] | None, required: Sequence[str] | None = None
) -> tuple[Repeat | None, str | None, str | None]:
    """``(repeat, failed stage, reason)`` for one discovery + quick run.

    ``required`` (the benchmarks selected for the change): at least one of them must time; the
    others that fail are recorded, not fatal.
    """
    if not discovered:
        reason = "asv discovered no benchmarks" if discovered == [] else "asv benchmark discovery wrote no benchmarks"
        return None, "discovery", reason
    if results is None:
        return None, "run", "the quick run recorded no result file"
    timed = sorted(name for name, ok in results.items() if ok)
    ran = sorted(results) if required is not None else discovered
    if not timed:
        return None, "run", f"the quick run produced no timing for any of {len(ran)} benchmarks"
    if required and not set(required) & set(timed):
        return None, "run", f"none of the {len(required)} benchmarks selected for the change produced a timing"
    return Repeat(discovered, timed, sorted(set(ran) - set(timed))), None, None


def combine_repeats(result: ValidationResult, repeats: list[Repeat]) -> ValidationResult:
    result.ok = True
    result.repeats = len(repeats)
    result.benchmarks = sorted(set.intersection(*(set(r.discovered) for r in repeats)))
    result.benchmarks_with_results = sorted(set.intersection(*(set(r.timed) for r in repeats)))
    ran = set.union(*(set(r.timed) | set(r.failed) for r in repeats))
    result.benchmarks_failed = sorted(ran - set(result.benchmarks_with_results))
    result.stable = all(r.discovered == repeats[0].discovered and r.timed == repeats[0].timed for r in repeats)
    return result
