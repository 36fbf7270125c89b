"""Stage tests: materialize() of the graph on small real inputs, asserting on parquet and metadata."""

import hashlib
import subprocess
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from dagster import DagsterInstance, materialize

from formulacode_assets.assets.merge_commits import merge_commits
from formulacode_assets.assets.patches import patches
from formulacode_assets.assets.repos_discovered import repos_discovered
from formulacode_assets.assets.repos_valid import repos_valid
from formulacode_assets.core.contracts import PATCHES
from formulacode_assets.core.mining.mirror import sync_mirror
from formulacode_assets.resources import GitSourceResource
from formulacode_assets.resources.github import GitHubResource
from formulacode_assets.sample import SAMPLE_CHANGES
from formulacode_assets.storage import ParquetIOManager

ASSETS = [repos_discovered, repos_valid, merge_commits, patches]


def _resources(tmp_path: Path, **source) -> dict:
    return {
        "io_manager": ParquetIOManager(base_path=str(tmp_path / "data"), catalog_path=str(tmp_path / "catalog.duckdb")),
        "git_source": GitSourceResource(cache_dir=str(tmp_path / "cache"), **source),
        "github_api": GitHubResource(cache_dir=str(tmp_path / "cache")),
    }


def _run(tmp_path, partition_key="2024-02-01", **kwargs):
    result = materialize(
        ASSETS,
        partition_key=partition_key,
        resources=_resources(tmp_path, **kwargs),
        instance=DagsterInstance.ephemeral(),
    )
    assert result.success
    return result


def _table(tmp_path, asset, month="2024-02"):
    return pq.read_table(tmp_path / "data" / asset / f"{month}.parquet")


def test_sample_month_materializes_the_mining_graph(tmp_path):
    result = _run(tmp_path)
    repos = {r["repo_name"]: r for r in _table(tmp_path, "repos_valid").to_pylist()}
    assert repos["sample-org/notes"]["status"] == "skipped"
    assert {r["benchmark_dir"] for name, r in repos.items() if r["status"] == "ok"} == {
        "benchmarks",
        "asv_bench/benchmarks",
        "benchmarks/benchmarks",
    }

    table = _table(tmp_path, "patches")
    assert table.schema.equals(PATCHES.schema, check_metadata=False)
    rows = {(r["repo_name"], r["merged_at"].strftime("%Y-%m-%dT%H:%M:%SZ")): r for r in table.to_pylist()}
    expected = [c for c in SAMPLE_CHANGES if c.month == "2024-02" and c.repo_name != "sample-org/notes"]
    assert len(rows) == len(expected) == 10
    kinds = {}
    for change in expected:
        kinds.setdefault(change.kind, []).append(rows[(change.repo_name, change.committed_at)])
    assert all(r["touches_core"] for r in kinds["speedup"])
    assert all(r["docs_only"] and not r["touches_core"] for r in kinds["docs_only"])
    assert all(r["bench_only"] for r in kinds["bench_only"])
    assert all(r["n_files"] == 0 for r in kinds["empty"])
    assert {r["merge_style"] for r in table.to_pylist()} == {"merge", "squash", "direct"}

    materializations = {
        e.asset_key.path[-1]: e.materialization.metadata for e in result.get_asset_materialization_events()
    }
    assert materializations["patches"]["dagster/row_count"].value == 10
    assert materializations["patches"]["status_counts"].value == {"ok": 10}
    assert "merge_commit_sha" in [c.name for c in materializations["patches"]["dagster/column_schema"].schema.columns]
    assert "| repo_name" in materializations["patches"]["preview"].value
    checks = result.get_asset_check_evaluations()
    assert len(checks) == 4 * 3 + 2 and all(c.passed for c in checks)
    assert {c.partition for c in checks} == {"2024-02-01"}

    with duckdb.connect(str(tmp_path / "catalog.duckdb"), read_only=True) as con:
        assert con.sql("select count(*) from patches").fetchone() == (10,)
        assert con.sql("select count(*) from repos_valid where status = 'ok'").fetchone() == (3,)


def test_rematerializing_a_month_writes_identical_files(tmp_path):
    _run(tmp_path)
    files = sorted((tmp_path / "data").rglob("*.parquet"))
    first = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    _run(tmp_path)
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in files} == first
    assert not list((tmp_path / "data").rglob(".*.tmp"))


def test_empty_month_is_an_empty_typed_table(tmp_path):
    _run(tmp_path, partition_key="2024-06-01")
    table = _table(tmp_path, "patches", "2024-06")
    assert table.num_rows == 0 and table.schema.equals(PATCHES.schema, check_metadata=False)
    assert _table(tmp_path, "repos_valid", "2024-06").num_rows == 4


def test_single_run_backfill_writes_one_file_per_month(tmp_path):
    result = materialize(
        ASSETS,
        resources=_resources(tmp_path),
        instance=DagsterInstance.ephemeral(),
        tags={"dagster/asset_partition_range_start": "2024-01-01", "dagster/asset_partition_range_end": "2024-03-01"},
    )
    assert result.success
    counts = {m: _table(tmp_path, "merge_commits", m).num_rows for m in ("2024-01", "2024-02", "2024-03")}
    expected = {m: sum(1 for c in SAMPLE_CHANGES if c.month == m and c.repo_name != "sample-org/notes") for m in counts}
    assert counts == expected
    months = {m for m in _table(tmp_path, "patches", "2024-03").column("month").to_pylist()}
    assert months == {"2024-03-01"}


def test_broken_repositories_become_status_rows_and_the_month_succeeds(tmp_path, repo):
    repo.commit("Initial", {"asv.conf.json": "{}", "pkg/a.py": "1\n", "README.md": "a\n"}, date="2024-01-05T00:00:00Z")
    repo.commit("Speed up a (#1)", {"pkg/a.py": "2\n"}, date="2024-02-05T00:00:00Z")
    docs = repo.commit("Docs (#2)", {"README.md": "b\n"}, date="2024-02-06T00:00:00Z")
    # A mirror whose blob for the docs change is gone (e.g. a corrupt cache).
    mirror = sync_mirror(tmp_path / "cache", "good/repo", str(repo.path)).path
    for pack in (mirror / "objects" / "pack").glob("*.pack"):
        moved = pack.rename(tmp_path / pack.name)
        subprocess.run(["git", f"--git-dir={mirror}", "unpack-objects", "-q"], stdin=moved.open("rb"), check=True)
        pack.with_suffix(".idx").unlink()
    blob = repo.git("rev-parse", f"{docs}:README.md")
    (mirror / "objects" / blob[:2] / blob[2:]).unlink()

    csv = tmp_path / "repos.csv"
    csv.write_text(f"repo_name,url\ngood/repo,{repo.path}\ngone/repo,{tmp_path / 'missing'}\n../escape,/etc\n")
    _run(tmp_path, source="git", repos_csv=str(csv))

    repos = {r["repo_name"]: r for r in _table(tmp_path, "repos_valid").to_pylist()}
    assert [repos[n]["status"] for n in ("../escape", "gone/repo", "good/repo")] == ["failed", "failed", "ok"]
    assert not (tmp_path / "cache" / "mirrors" / "..").joinpath("escape.git").exists()
    rows = {r["title"]: r for r in _table(tmp_path, "patches").to_pylist()}
    assert rows["Speed up a"]["status"] == "ok" and rows["Speed up a"]["touches_core"]
    assert rows["Docs"]["status"] == "failed" and "unreadable objects" in rows["Docs"]["reason"]


@pytest.mark.parametrize("source", ["gitlab", "nope"])
def test_unknown_source_is_a_clear_error(tmp_path, source):
    with pytest.raises(ValueError, match="unknown source"):
        GitSourceResource(cache_dir=str(tmp_path), source=source).repositories()
