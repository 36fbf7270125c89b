"""Stage tests for ``contexts``: materialize() on the sample store with real validation (local and Docker).

By default the real ``perf_commits`` runs (the keyword heuristic: no LM configured). Tests that need
other changes marked swap in a stand-in with the same partitions that marks the sample store's
changes of the given ``SAMPLE_CHANGES`` kinds, and any change whose title starts with ``perf:``.
"""

import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from dagster import AssetExecutionContext, AssetKey, BackfillPolicy, DagsterInstance, asset, materialize

from formulacode_assets.assets._monthly import MonthlyInput, tables_by_month
from formulacode_assets.assets.contexts import contexts
from formulacode_assets.assets.perf_commits import perf_commits as real_perf_commits
from formulacode_assets.core.contracts import CONTEXTS
from formulacode_assets.core.environments.registry import ContextRegistry
from formulacode_assets.core.environments.synthesis import attempts_of, repo_problems
from formulacode_assets.partitions import monthly_partitions
from formulacode_assets.resources import GitSourceResource
from formulacode_assets.resources.contexts import ContextSynthesisResource
from formulacode_assets.resources.docker_engine import DockerEngineResource
from formulacode_assets.resources.github import GitHubResource
from formulacode_assets.resources.llm import LLMResource
from formulacode_assets.sample import SAMPLE_CHANGES, ensure_sample_store
from formulacode_assets.storage import ParquetIOManager
from formulacode_assets_tests.docker_fixtures import (  # noqa: F401 - docker_host is a fixture
    BASE_IMAGE,
    docker_host,
    host_ca_bundle,
    tiny_asv_repo,
)

ROOT = Path(__file__).resolve().parents[1]
SPEEDUP_REPOS = {c.repo_name for c in SAMPLE_CHANGES if c.kind == "speedup" and c.month == "2024-02"}


def perf_commits_standin(kinds: Iterable[str] = ("speedup",)):
    marked = {(c.repo_name, c.committed_at) for c in SAMPLE_CHANGES if c.kind in set(kinds)}

    @asset(name="perf_commits", partitions_def=monthly_partitions, backfill_policy=BackfillPolicy.single_run())
    def perf_commits(context: AssetExecutionContext, patches: MonthlyInput):
        tables = {}
        for month, table in tables_by_month(context, patches).items():
            rows = table.to_pylist()
            for row in rows:
                key = (row["repo_name"], row["merged_at"].strftime("%Y-%m-%dT%H:%M:%SZ"))
                row["is_performance"] = key in marked or (row["title"] or "").startswith("perf:")
            schema = table.schema.append(pa.field("is_performance", pa.bool_()))
            tables[month] = pa.Table.from_pylist(rows, schema=schema)
        return tables if len(tables) > 1 else next(iter(tables.values()))

    return perf_commits


def mining_assets() -> list:
    """The definitions' assets that ``patches`` and ``repos_valid`` need (whatever the mining graph becomes)."""
    from formulacode_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    needed, todo = set(), [AssetKey("patches"), AssetKey("repos_valid")]
    while todo:
        key = todo.pop()
        if key not in needed:
            needed.add(key)
            todo.extend(graph.get(key).parent_keys)
    return [a for a in defs.assets if set(a.keys) <= needed]


def _resources(tmp_path: Path, *, source: dict | None = None, docker: dict | None = None, **synthesis) -> dict:
    cache = str(tmp_path / "cache")
    synthesis = {"validator": "local", "allow_local": True, **synthesis}
    return {
        "io_manager": ParquetIOManager(base_path=str(tmp_path / "data"), catalog_path=str(tmp_path / "catalog.duckdb")),
        "git_source": GitSourceResource(cache_dir=cache, **(source or {})),
        "github_api": GitHubResource(cache_dir=cache),
        "context_synthesis": ContextSynthesisResource(cache_dir=cache, **synthesis),
        "docker_engine": DockerEngineResource(**(docker or {"base_url": f"unix://{tmp_path}/no-engine.sock"})),
        "llm": LLMResource(cache_dir=cache),
    }


def _materialize(tmp_path: Path, month: str = "2024-02-01", kinds=None, **resources):
    """The graph up to contexts; ``kinds`` swaps the real (heuristic) perf_commits for a stand-in."""
    judged = real_perf_commits if kinds is None else perf_commits_standin(kinds)
    result = materialize(
        [*mining_assets(), judged, contexts],
        partition_key=month,
        resources=_resources(tmp_path, **resources),
        instance=DagsterInstance.ephemeral(),
    )
    assert result.success
    return result


def materialize_month(tmp: str, month: str, kinds: str) -> None:
    """Entry point for the concurrent-runs test (each call is its own process)."""
    _materialize(Path(tmp), month, kinds=kinds.split(","))


def _contexts(tmp_path: Path, month: str = "2024-02") -> list[dict]:
    table = pq.read_table(tmp_path / "data" / "contexts" / f"{month}.parquet")
    assert table.schema.equals(CONTEXTS.schema, check_metadata=False)
    return sorted(table.to_pylist(), key=lambda r: r["repo_name"])


def _metadata(result) -> dict:
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == "contexts"]
    return event.materialization.metadata


def test_sample_speedups_get_validated_contexts_locally_and_a_rerun_reuses_them(tmp_path):
    result = _materialize(tmp_path)
    rows = _contexts(tmp_path)
    assert {r["repo_name"] for r in rows} == SPEEDUP_REPOS and len(rows) == 3
    changes = {
        r["merge_commit_sha"]: r for r in pq.read_table(tmp_path / "data" / "patches" / "2024-02.parquet").to_pylist()
    }
    for row in rows:
        assert row["status"] == "ok", (row["repo_name"], row["stage_failed"], row["reason"], row["stderr_tail"])
        (merge_sha,) = row["merge_commit_shas"]
        assert changes[merge_sha]["base_sha"] == row["base_sha"]
        assert (row["validator"], row["script_source"], row["reused"], row["attempts"]) == (
            "local",
            "template",
            False,
            1,
        )
        assert row["n_benchmarks"] >= 1 and row["benchmarks_stable"] and row["validations"] == 2
        assert row["python_version"].startswith("3.") and row["can_install"]
        assert "uv pip install" in row["build_env_sh"] and row["validated_at"] is not None
    by_repo = {r["repo_name"]: r for r in rows}
    assert by_repo["sample-org/fastmath"]["benchmarks"] == [
        "bench_primes.PrimesSuite.time_is_prime",
        "bench_primes.PrimesSuite.time_primes_below",
    ]
    assert by_repo["sample-org/gridlib"]["asv_conf_path"] == "benchmarks/asv.conf.json"
    metadata = _metadata(result)
    assert metadata["status_counts"].value == {"ok": 3} and "local validator" in metadata["validator"].value
    assert metadata["registry_contexts"].value == 3 and metadata["reused"].value == 0
    assert all(c.passed for c in result.get_asset_check_evaluations() if c.asset_key.path[-1] == "contexts")

    # Re-running the month reuses the registry: nothing is validated again.
    rerun = _materialize(tmp_path)
    again = _contexts(tmp_path)
    assert all(r["status"] == "ok" and r["reused"] and r["attempts"] == 0 for r in again)
    assert [r["build_env_sh"] for r in again] == [r["build_env_sh"] for r in rows]
    assert _metadata(rerun)["reused"].value == 3
    registry = ContextRegistry(tmp_path / "cache" / "contexts" / "registry.sqlite")
    assert {(c.repo_name, c.validations) for c in registry.all()} == {(name, 1) for name in SPEEDUP_REPOS}


def test_a_repository_whose_scripts_all_fail_is_a_failed_row_and_the_month_succeeds(tmp_path, repo):
    store = Path(ensure_sample_store(tmp_path / "cache" / "sample-store")).parent
    repo.commit("Initial", {"README.md": "tiny\n"}, date="2024-01-05T00:00:00Z")
    _, _ = tiny_asv_repo(repo.path, packaged=False, date="2024-01-06T00:00:00Z")  # no pyproject: not installable
    repo.commit(
        "perf: faster add (#1)", {"tiny/__init__.py": "def add(a, b):\n    return b + a\n"}, date="2024-02-05T00:00:00Z"
    )
    csv = tmp_path / "repos.csv"
    fastmath = store / "origins" / "sample-org" / "fastmath.git"
    csv.write_text(f"repo_name,url,default_branch\nsample-org/fastmath,{fastmath},main\ntest/broken,{repo.path},main\n")
    result = _materialize(tmp_path, source={"source": "git", "repos_csv": str(csv)}, repeats=1)
    rows = {r["repo_name"]: r for r in _contexts(tmp_path)}
    assert rows["sample-org/fastmath"]["status"] == "ok"
    broken = rows["test/broken"]
    assert (broken["status"], broken["stage_failed"]) == ("failed", "build")
    assert broken["reason"].startswith("1 candidate script(s) failed; last (template): build_env.sh exited with")
    assert "does not appear to be a Python project" in broken["stderr_tail"]
    (attempt,) = attempts_of(broken)
    assert attempt["script"] == broken["build_env_sh"] and attempt["returncode"] not in (0, None)
    assert _metadata(result)["status_counts"].value == {"failed": 1, "ok": 1}


def test_without_an_allowed_sandbox_rows_are_skipped_with_the_reason(tmp_path):
    _materialize(tmp_path, validator="docker")
    rows = _contexts(tmp_path)
    assert len(rows) == 3 and {r["status"] for r in rows} == {"skipped"}
    assert all("unreachable" in r["reason"] for r in rows)
    github_like = ContextSynthesisResource(cache_dir=str(tmp_path), validator="auto", allow_local=False)
    validator, why = github_like.choose_validator(DockerEngineResource(base_url=f"unix://{tmp_path}/none.sock"))
    assert validator is None and "local validation is not enabled" in why


def test_two_months_materialized_at_once_both_land_in_the_registry(tmp_path):
    ensure_sample_store(tmp_path / "cache" / "sample-store")  # built once, before the race
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from formulacode_assets_tests.test_contexts_asset import materialize_month; "
                f"materialize_month({str(tmp_path)!r}, {month!r}, 'speedup,feature')",
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for month in ("2024-01-01", "2024-02-01")
    ]
    for process in processes:
        out, _ = process.communicate(timeout=400)
        assert process.returncode == 0, out.decode()[-3000:]
    january, february = _contexts(tmp_path, "2024-01"), _contexts(tmp_path, "2024-02")
    assert [r["repo_name"] for r in january] == ["sample-org/fastmath"]
    assert {r["repo_name"] for r in february} == SPEEDUP_REPOS
    assert all(r["status"] == "ok" for r in january + february)
    registered = ContextRegistry(tmp_path / "cache" / "contexts" / "registry.sqlite").all()
    assert {(c.repo_name, c.sha) for c in registered} == {(r["repo_name"], r["base_sha"]) for r in january + february}
    assert {c.month for c in registered} == {"2024-01-01", "2024-02-01"}


def test_sample_speedups_validate_in_docker(tmp_path, docker_host):  # noqa: F811 - pytest fixture injection
    docker = {"base_url": docker_host, "base_image": BASE_IMAGE, "extra_ca_certs": host_ca_bundle()}
    result = _materialize(tmp_path, docker=docker, validator="auto", allow_local=False)
    rows = _contexts(tmp_path)
    assert len(rows) == 3
    for row in rows:
        assert row["status"] == "ok", (row["repo_name"], row["stage_failed"], row["reason"], row["stdout_tail"])
        assert row["validator"] == "docker" and row["n_benchmarks"] >= 1 and row["benchmarks_stable"]
        assert row["python_version_built"].startswith("3.")
    assert "docker validator" in _metadata(result)["validator"].value


def test_repositories_not_valid_this_month_are_skipped_with_the_reason():
    valid = [
        {"repo_name": "a/ok", "status": "ok"},
        {"repo_name": "b/gone", "status": "failed", "reason": "mirror sync failed"},
    ]
    problems = repo_problems(valid, {"a/ok", "b/gone", "c/new"})
    assert problems == {
        "b/gone": "repository not valid this month: mirror sync failed",
        "c/new": "repository not listed in repos_valid this month",
    }
