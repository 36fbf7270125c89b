"""Benchmark selection per change, and validation within a budget on a suite too large to run whole."""

from __future__ import annotations

import json
import time
from pathlib import Path

from formulacode_assets.core.environments.build_scripts import render_template
from formulacode_assets.core.environments.install_analysis import analyze_install
from formulacode_assets.core.environments.local_validator import LocalValidator
from formulacode_assets.core.environments.validation import ValidationRequest
from formulacode_assets.core.measurement.selection import (
    SelectionSettings,
    bench_regexes,
    changed_lines,
    name_matches,
    parse_changed_lines,
    probe_order,
    select_benchmarks,
)
from formulacode_assets_tests.docker_fixtures import TINY_ASV_CONF, available_interpreters, mirror_of
from formulacode_assets_tests.gitbuilder import RepoBuilder

MODULES, FUNCTIONS = 30, 10  # 300 benchmarks
SECONDS = 1.0  # each benchmark call sleeps this long


def _module(k: int, changed: bool = False) -> str:
    lines = ['"""Generated module."""', "import time", ""]
    for f in range(FUNCTIONS):
        lines += ["", f"def f{f}(n=10):", f"    time.sleep({SECONDS})"]
        body = "sum(range(n))" if not (changed and f == 3) else "n * (n - 1) // 2"
        lines += [f"    return {body}", ""]
    return "\n".join(lines)


def _bench(k: int) -> str:
    lines = [f"from big import mod_{k:03d} as mod", ""]
    lines += [f"\ndef time_f{f}():\n    mod.f{f}()\n" for f in range(FUNCTIONS)]
    return "\n".join(lines)


PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "big"
version = "0.1.0"
requires-python = ">=3.8"

[tool.setuptools]
packages = ["big"]
"""


def big_repo(path: Path) -> tuple[RepoBuilder, str, str]:
    """300 benchmarks of >= 1 s each; the change rewrites one line of ``big.mod_007.f3``."""
    repo = RepoBuilder(path)
    files = {
        "asv.conf.json": TINY_ASV_CONF.replace('"tiny"', '"big"'),
        "pyproject.toml": PYPROJECT,
        "big/__init__.py": "",
        "benchmarks/__init__.py": "",
    }
    for k in range(MODULES):
        files[f"big/mod_{k:03d}.py"] = _module(k)
        files[f"benchmarks/bench_mod_{k:03d}.py"] = _bench(k)
    base = repo.commit("Initial commit", files, date="2024-01-10T12:00:00Z")
    merge = repo.commit("perf: closed form in f3", {"big/mod_007.py": _module(7, True)}, date="2024-01-11T12:00:00Z")
    return repo, base, merge


# --- the pure pieces ------------------------------------------------------------------------


def test_changed_lines_are_the_base_lines_a_diff_rewrites():
    diff = (
        "diff --git a/pkg/m.py b/pkg/m.py\n--- a/pkg/m.py\n+++ b/pkg/m.py\n"
        "@@ -4,2 +4,3 @@ def f():\n-x\n-y\n+a\n+b\n+c\n@@ -10,0 +12 @@\n+inserted\n"
        "diff --git a/README.md b/README.md\n--- a/README.md\n+++ b/README.md\n@@ -1 +1 @@\n-a\n+b\n"
        "diff --git a/pkg/new.py b/pkg/new.py\n--- /dev/null\n+++ b/pkg/new.py\n@@ -0,0 +1 @@\n+x\n"
    )
    assert parse_changed_lines(diff) == {"pkg/m.py": [4, 5, 10, 11]}


def test_name_matching_and_the_fallback_rules():
    assert name_matches("bench_io.ReadSuite.time_read", ["src/pkg/io.py"])
    assert name_matches("benchmarks.io.time_read", ["pkg/io/__init__.py"])
    assert not name_matches("bench_strings.time_upper", ["pkg/io.py"])
    discovered = [f"bench_m{k}.time_{j}" for k in range(10) for j in range(5)]
    assert probe_order(discovered, ["pkg/m3.py"])[:5] == [f"bench_m3.time_{j}" for j in range(5)]
    settings = SelectionSettings(run_all_below=5, smoke=2, sample_size=4)
    covered = select_benchmarks(discovered, {"pkg/m3.py": [1]}, {"bench_m7.time_1": {"hit": True}}, settings)
    assert covered.rule == "coverage" and covered.primary == ["bench_m7.time_1"]
    assert sorted(covered.rules.values()) == ["coverage", "smoke", "smoke"]
    named = select_benchmarks(discovered, {"pkg/m3.py": [1]}, {"bench_m3.time_0": {"hit": False}}, settings)
    assert named.rule == "name" and named.primary == [f"bench_m3.time_{j}" for j in range(5)]
    sampled = select_benchmarks(discovered, {"pkg/other.py": [1]}, {}, settings)
    assert sampled.rule == "sample" and len(sampled.primary) == 4
    assert sampled.selected == select_benchmarks(discovered, {"pkg/other.py": [1]}, {}, settings).selected
    small = select_benchmarks(discovered[:5], {}, None, settings)
    assert small.rule == "all" and small.selected == sorted(discovered[:5])
    assert bench_regexes(["a.B.time_x"]) == ["^a\\.B\\.time_x(\\(|$)"]


# --- a suite too large to run whole -----------------------------------------------------------


def test_a_300_benchmark_suite_validates_a_one_function_change_within_the_budget(tmp_path):
    repo, base, merge = big_repo(tmp_path / "big")
    mirror = mirror_of(repo)
    changed = changed_lines(mirror, base, [merge])
    assert list(changed) == ["big/mod_007.py"] and len(changed["big/mod_007.py"]) == 1
    analysis = analyze_install(mirror, "test/big", base, interpreters=available_interpreters())
    request = ValidationRequest(
        repo_name="test/big",
        sha=base,
        mirror=mirror,
        script=render_template(analysis),
        python_version=analysis.python_version,
        python_path=analysis.python_path,
        asv=analysis.settings,
        exclude_newer=analysis.resolution_cutoff,
        changed_lines=changed,
    )
    budget = 420  # running all 300 benchmarks once would take >= 300 s of sleeping alone, twice per validation
    validator = LocalValidator(
        work_root=tmp_path / "work",
        validation_budget=budget,
        benchmark_timeout=30,
        selection=SelectionSettings(budget_s=25, benchmark_timeout_s=5, smoke=2),
    )
    started = time.monotonic()
    result = validator.validate(request, repeats=2)
    elapsed = time.monotonic() - started
    assert result.ok, (result.stage_failed, result.reason, result.stdout_tail[-1500:], result.stderr_tail[-1500:])
    assert elapsed < budget
    assert len(result.benchmarks) == MODULES * FUNCTIONS
    assert result.selection["rule"] == "coverage"
    assert result.selection["covering"] == ["bench_mod_007.time_f3"]
    assert result.selection["rules"]["bench_mod_007.time_f3"] == "coverage"
    assert "bench_mod_007.time_f3" in result.benchmarks_with_results
    assert len(result.benchmarks_selected) == 3  # the change's benchmark + 2 smoke
    assert set(result.benchmarks_with_results) <= set(result.benchmarks_selected)
    steps = {s["name"]: s["duration_s"] for s in result.steps}
    assert steps["select"] < 25 + 10 and steps["run-1"] < 120
    json.dumps(result.selection)  # it goes on the row as JSON


def test_a_failed_validation_row_keeps_its_discovered_benchmarks_and_step_times(tmp_path):
    from datetime import UTC, datetime

    from formulacode_assets.core.environments.registry import ContextRegistry
    from formulacode_assets.core.environments.synthesis import ContextSynthesizer, ContextTarget, SynthesisSettings
    from formulacode_assets_tests.docker_fixtures import tiny_asv_repo

    bench = (
        "def time_broken():\n    raise RuntimeError('benchmark exploded')\n\n\ndef time_also():\n    raise ValueError\n"
    )
    repo, sha = tiny_asv_repo(tmp_path / "tiny", bench=bench)
    merge = repo.commit(
        "perf: x", {"tiny/__init__.py": "def add(a, b):\n    return b + a\n"}, date="2024-01-11T00:00:00Z"
    )
    synthesizer = ContextSynthesizer(
        registry=ContextRegistry(tmp_path / "registry.sqlite"),
        validator=LocalValidator(work_root=tmp_path / "work"),
        mirror_path=lambda name: mirror_of(repo),
        interpreters=available_interpreters(),
        settings=SynthesisSettings(repeats=1),
    )
    target = ContextTarget("test/tiny", sha, (merge,), (1,), datetime(2024, 1, 11, tzinfo=UTC))
    row = synthesizer.context_row("2024-01-01", target)
    assert (row["status"], row["stage_failed"]) == ("failed", "run")
    assert row["n_benchmarks"] == 2 and row["benchmarks"] == ["bench_tiny.time_also", "bench_tiny.time_broken"]
    steps = json.loads(row["step_times"])
    assert {"build", "machine", "discovery-1", "run-1"} <= set(steps) and steps["build"] > 0
    assert row["selection_rule"] == "all"
