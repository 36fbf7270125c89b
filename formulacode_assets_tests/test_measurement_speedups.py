"""The human speed-up: interleaved base/merged timings in real environments, statistics and verdicts."""

from __future__ import annotations

import csv
import random
import subprocess
from pathlib import Path

import pytest

from formulacode_assets.core.environments.build_scripts import render_template
from formulacode_assets.core.environments.install_analysis import analyze_install
from formulacode_assets.core.measurement.harness import HarnessSettings, build_environments
from formulacode_assets.core.measurement.selection import changed_lines, select_benchmarks
from formulacode_assets.core.measurement.speedups import TaskKey, TimingStore, env_digest, measure
from formulacode_assets.core.measurement.statistics import judge_benchmark, summarize
from formulacode_assets.sample import ensure_sample_store
from formulacode_assets_tests.docker_fixtures import TINY_ASV_CONF, TINY_PYPROJECT, available_interpreters
from formulacode_assets_tests.gitbuilder import RepoBuilder

PRIMES = ["bench_primes.PrimesSuite.time_is_prime", "bench_primes.PrimesSuite.time_primes_below"]


def _sha_of(mirror: Path, subject: str) -> tuple[str, str]:
    """``(parent, sha)`` of the first-parent commit with this subject."""
    log = subprocess.run(
        ["git", f"--git-dir={mirror}", "log", "--first-parent", "--format=%H %P%x09%s", "main"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for line in log.splitlines():
        shas, found = line.split("\t", 1)
        if found == subject:
            sha, parent = shas.split()[:2]
            return parent, sha
    raise LookupError(subject)


@pytest.fixture(scope="module")
def fastmath(tmp_path_factory):
    listing = ensure_sample_store(tmp_path_factory.mktemp("store"))
    with open(listing) as fh:
        url = next(r["url"] for r in csv.DictReader(fh) if r["repo_name"] == "sample-org/fastmath")
    return Path(url)


def _environments(mirror, repo_name, base, merge, settings, tmp_path):
    analysis = analyze_install(mirror, repo_name, base, interpreters=available_interpreters())
    script = render_template(analysis)

    def build():
        return build_environments(
            mirror=mirror,
            repo_name=repo_name,
            base_sha=base,
            merge_sha=merge,
            script=script,
            python_path=analysis.python_path,
            asv=analysis.settings,
            exclude_newer=analysis.resolution_cutoff,
            settings=settings,
            work_root=tmp_path / "work",
        )

    return build, TaskKey(repo_name, base, merge, env_digest(script, settings))


# --- statistics alone -------------------------------------------------------------------------


def test_verdicts_from_synthetic_samples():
    rng = random.Random(7)
    base = [[rng.gauss(1.0, 0.01) for _ in range(5)] for _ in range(3)]
    assert judge_benchmark("b", base, [[x / 2 for x in r] for r in base]).verdict == "improved"
    assert judge_benchmark("b", base, [[x * 2 for x in r] for r in base]).verdict == "regressed"
    same = [[rng.gauss(1.0, 0.01) for _ in range(5)] for _ in range(3)]
    assert judge_benchmark("b", base, same).verdict == "unchanged"
    wild = [[rng.choice([0.01, 0.04]) for _ in range(5)] for _ in range(3)]
    wild2 = [[rng.choice([0.009, 0.039]) for _ in range(5)] for _ in range(3)]
    assert judge_benchmark("b", wild, wild2).verdict == "noisy"
    summary = summarize([judge_benchmark("a", base, [[x / 4 for x in r] for r in base])])
    assert summary.oracle_ok and summary.improved == ["a"] and summary.human_speedup == pytest.approx(4, rel=0.01)


# --- the sample store -------------------------------------------------------------------------


def test_the_genuine_speedup_is_improved_and_oracle_ok_and_a_rerun_reuses_the_timings(tmp_path, fastmath):
    base, merge = _sha_of(fastmath, "Speed up primes_below with a sieve of Eratosthenes (#2)")
    settings = HarnessSettings(rounds=3, samples=3)
    build, key = _environments(fastmath, "sample-org/fastmath", base, merge, settings, tmp_path)
    store = TimingStore(tmp_path / "timings.sqlite")
    first = measure(key, PRIMES, store, build, settings=settings)
    verdicts = {v.benchmark: v for v in first.verdicts}
    below = verdicts["bench_primes.PrimesSuite.time_primes_below"]
    assert below.verdict == "improved", below
    assert below.ratio > 20 and below.p_value < 0.01 and below.n_base == below.n_merged == 9
    assert verdicts["bench_primes.PrimesSuite.time_is_prime"].verdict in ("unchanged", "noisy")
    summary = summarize(first.verdicts)
    assert summary.oracle_ok and summary.improved == ["bench_primes.PrimesSuite.time_primes_below"]
    assert summary.human_speedup == pytest.approx(below.ratio)
    assert first.benchmark_runs == 2 * 3 * 2 and not first.reused

    def must_not_build():
        raise AssertionError("a re-run must not build or time anything")

    again = measure(key, PRIMES, store, must_not_build, settings=settings)
    assert again.benchmark_runs == 0 and again.reused
    assert [v.as_dict() for v in again.verdicts] == [v.as_dict() for v in first.verdicts]
    assert not list((tmp_path / "work").iterdir()), "the environments are deleted"


def test_a_change_that_does_not_touch_benchmarked_code_is_not_oracle_ok(tmp_path, fastmath):
    base, merge = _sha_of(fastmath, "Fix typo in README (#3)")
    assert changed_lines(fastmath, base, [merge]) == {}
    chosen = select_benchmarks(PRIMES, {}, None)
    settings = HarnessSettings(rounds=3, samples=5)
    build, key = _environments(fastmath, "sample-org/fastmath", base, merge, settings, tmp_path)
    result = measure(key, chosen.selected, TimingStore(tmp_path / "t.sqlite"), build, settings=settings)
    assert {v.verdict for v in result.verdicts} <= {"unchanged", "noisy"}, [v.as_dict() for v in result.verdicts]
    assert not summarize(result.verdicts).oracle_ok


# --- noisy benchmarks and A/A runs --------------------------------------------------------------

_NOISY_BENCH = """\
from tiny import noisy, stable


def time_stable():
    stable()


def time_noisy():
    noisy()
"""


def _tiny(noisy_ms: int) -> str:
    return (
        "import random\nimport time\n\n\ndef stable():\n    return sum(range(20000))\n\n\n"
        f"def noisy():\n    time.sleep({noisy_ms / 1000} + random.choice([0.0, 0.03]))\n"
    )


def test_a_noisy_benchmark_is_noisy_and_twenty_aa_runs_give_no_improved_verdict(tmp_path):
    repo = RepoBuilder(tmp_path / "noisy")
    files = {
        "asv.conf.json": TINY_ASV_CONF,
        "pyproject.toml": TINY_PYPROJECT,
        "tiny/__init__.py": _tiny(10),
        "benchmarks/__init__.py": "",
        "benchmarks/bench_tiny.py": _NOISY_BENCH,
    }
    base = repo.commit("Initial commit", files, date="2024-01-10T12:00:00Z")
    merge = repo.commit("perf: shorter sleep", {"tiny/__init__.py": _tiny(9)}, date="2024-01-11T12:00:00Z")
    mirror = repo.path / ".git"
    names = ["bench_tiny.time_noisy", "bench_tiny.time_stable"]
    settings = HarnessSettings(rounds=3, samples=5)
    store = TimingStore(tmp_path / "t.sqlite")

    build, key = _environments(mirror, "test/tiny", base, merge, settings, tmp_path)
    changed = {v.benchmark: v for v in measure(key, names, store, build, settings=settings).verdicts}
    assert changed["bench_tiny.time_noisy"].verdict == "noisy", changed["bench_tiny.time_noisy"]

    build_aa, key_aa = _environments(mirror, "test/tiny", base, base, settings, tmp_path)
    envs = build_aa()
    envs.owned = False  # built once, timed 20 times
    try:
        verdicts = []
        for _ in range(20):
            run = measure(key_aa, names, store, lambda: envs, settings=settings, force=True)
            assert run.benchmark_runs == 2 * 3 * 2
            verdicts += run.verdicts
    finally:
        envs.close(force=True)
    counts = {name: sum(v.verdict == name for v in verdicts) for name in ("improved", "unchanged", "noisy")}
    assert counts["improved"] == 0, counts
    assert sum(v.verdict == "noisy" for v in verdicts if v.benchmark == "bench_tiny.time_noisy") >= 18, counts
