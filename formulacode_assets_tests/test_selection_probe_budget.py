"""The probe's budget goes where it can find something: slow classes are skipped, samples prefer quick benchmarks."""

from __future__ import annotations

import subprocess
import sys

from formulacode_assets.core.measurement.selection import (
    PROBE_DRIVER,
    SelectionSettings,
    probe_spec,
    read_probe,
    select_benchmarks,
)

SLOW_CLASS = """\
import time


class SlowGraphs:
    def setup(self):
        time.sleep(30)  # a large graph built for every benchmark of the class

    def time_a(self):
        pass

    def time_b(self):
        pass

    def time_c(self):
        pass


def time_quick():
    pass
"""


def test_the_other_benchmarks_of_a_class_whose_setup_timed_out_are_skipped(tmp_path):
    venv = tmp_path / "env"
    subprocess.run(["uv", "venv", "--quiet", "--python", sys.executable, str(venv)], check=True, timeout=120)
    subprocess.run(
        ["uv", "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), "asv_runner"],
        check=True,
        timeout=300,
    )
    bench = tmp_path / "benchmarks"
    bench.mkdir()
    (bench / "__init__.py").write_text("")
    (bench / "bench_graphs.py").write_text(SLOW_CLASS)
    names = [f"bench_graphs.SlowGraphs.time_{x}" for x in "abc"] + ["bench_graphs.time_quick"]
    out = tmp_path / "probe.jsonl"
    spec = probe_spec(str(bench), names, {"pkg/m.py": [1]}, 1.0, str(out))
    proc = subprocess.run([str(venv / "bin" / "python"), "-c", PROBE_DRIVER, spec], capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    probe = read_probe(out.read_text())
    assert probe["bench_graphs.SlowGraphs.time_a"]["error"] == "timeout"
    for sibling in ("time_b", "time_c"):
        row = probe[f"bench_graphs.SlowGraphs.{sibling}"]
        assert row["error"].startswith("skipped: a benchmark of bench_graphs.SlowGraphs timed out")
        assert row["seconds"] == 0.0
    assert probe["bench_graphs.time_quick"]["error"] is None


def test_the_sample_and_the_smoke_benchmarks_prefer_those_the_probe_ran_quickly():
    discovered = [f"bench_{k}.time_{j}" for k in range(10) for j in range(5)]
    quick = {name: {"hit": False, "seconds": 0.01, "error": None} for name in discovered[:4]}
    slow = {name: {"hit": False, "seconds": 9.0, "error": None} for name in discovered[4:8]}
    failed = {name: {"hit": False, "seconds": 20.0, "error": "timeout"} for name in discovered[8:]}
    settings = SelectionSettings(sample_size=3, smoke=2, run_all_below=5)
    chosen = select_benchmarks(discovered, {"pkg/other.py": [1]}, {**quick, **slow, **failed}, settings)
    assert chosen.rule == "sample"
    assert set(chosen.primary) <= set(quick)
    smoke = [n for n, rule in chosen.rules.items() if rule == "smoke"]
    assert len(smoke) == 2 and set(smoke) <= set(quick) | set(slow) and not set(smoke) & set(failed)
    assert len(set(smoke) & set(quick)) == 1  # the one quick benchmark the sample left over comes first
    # Without a probe the sample is the deterministic one it always was.
    assert select_benchmarks(discovered, {"pkg/other.py": [1]}, {}, settings).selected == (
        select_benchmarks(discovered, {"pkg/other.py": [1]}, {}, settings).selected
    )


def test_a_context_whose_benchmarks_outlast_the_budget_is_not_retried_with_another_script(tmp_path):
    from datetime import UTC, datetime

    from formulacode_assets.core.environments.registry import ContextRegistry
    from formulacode_assets.core.environments.synthesis import ContextSynthesizer, ContextTarget, SynthesisSettings
    from formulacode_assets.core.environments.validation import ValidationResult, Validator
    from formulacode_assets_tests.docker_fixtures import available_interpreters, mirror_of, tiny_asv_repo

    repo, sha = tiny_asv_repo(tmp_path / "tiny")
    registry = ContextRegistry(tmp_path / "registry.sqlite")

    class OutOfBudget(Validator):  # built and discovered, then the quick run outlasted the budget
        name = "stub"
        calls = 0

        def validate(self, request, *, repeats=2):
            OutOfBudget.calls += 1
            return ValidationResult(
                ok=False, validator=self.name, stage_failed="timeout", benchmarks=["bench_tiny.time_add"],
                reason="the validation budget of 600 s ran out during the quick run",
            )  # fmt: skip

    class Agent:  # would be asked to revise a script that is not the problem
        model = "never-called"

        def revise(self, *args):
            raise AssertionError("the agent must not be asked")

    synthesizer = ContextSynthesizer(
        registry=registry,
        validator=OutOfBudget(),
        mirror_path=lambda name: mirror_of(repo),
        interpreters=available_interpreters(),
        settings=SynthesisSettings(repeats=1, max_agent_attempts=3),
        agent=Agent(),
    )
    row = synthesizer.context_row(
        "2024-01-01", ContextTarget("test/tiny", sha, (), (), datetime(2024, 1, 11, tzinfo=UTC))
    )
    assert (row["status"], row["stage_failed"], row["attempts"]) == ("failed", "timeout", 1)
    assert OutOfBudget.calls == 1 and row["n_benchmarks"] == 1


def test_the_name_rule_keeps_few_quick_benchmarks_and_none_the_probe_saw_time_out():
    io = [f"dataset_io.Read{k}.time_load" for k in range(20)]
    discovered = io + [f"dataset.Ops.time_op{k}" for k in range(3)] + [f"strings.S.time_{k}" for k in range(10)]
    probe = {name: {"hit": False, "seconds": 20.0, "error": "timeout"} for name in io[:5]}
    probe.update({f"dataset.Ops.time_op{k}": {"hit": False, "seconds": 0.1 * (3 - k), "error": None} for k in range(3)})
    chosen = select_benchmarks(discovered, {"pkg/core/dataset.py": [10]}, probe, SelectionSettings(name_selected=6))
    assert chosen.rule == "name" and len(chosen.primary) == 6
    assert not set(chosen.primary) & set(io[:5])  # timed out in the probe
    assert {"dataset.Ops.time_op0", "dataset.Ops.time_op1", "dataset.Ops.time_op2"} <= set(chosen.primary)
