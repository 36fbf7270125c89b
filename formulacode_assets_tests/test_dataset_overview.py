"""dataset_overview: every month summarized (counts per month, category, repository, build failures)."""

from __future__ import annotations

import pyarrow.parquet as pq
from dagster import DagsterInstance, materialize

from formulacode_assets.assets.dataset_overview import dataset_overview
from formulacode_assets.assets.merge_commits import merge_commits
from formulacode_assets.assets.patches import patches
from formulacode_assets.assets.repos_discovered import repos_discovered
from formulacode_assets.assets.repos_valid import repos_valid
from formulacode_assets.core import overview
from formulacode_assets.resources import GitSourceResource
from formulacode_assets.resources.github import GitHubResource
from formulacode_assets.storage import ParquetIOManager
from formulacode_assets.storage.remote_catalog import open_catalog

MINING = [repos_discovered, repos_valid, merge_commits, patches]


def test_overview_summarizes_every_materialized_month(tmp_path):
    resources = {
        "io_manager": ParquetIOManager(base_path=str(tmp_path / "data"), catalog_path=str(tmp_path / "c.duckdb")),
        "git_source": GitSourceResource(cache_dir=str(tmp_path / "cache")),
        "github_api": GitHubResource(cache_dir=str(tmp_path / "cache")),
    }
    instance = DagsterInstance.ephemeral()
    for month in ("2024-01-01", "2024-02-01"):
        assert materialize(MINING, partition_key=month, resources=resources, instance=instance).success
    result = materialize(
        [*MINING, dataset_overview], resources=resources, instance=instance, selection=[dataset_overview]
    )
    assert result.success

    table = pq.read_table(tmp_path / "data" / "dataset_overview.parquet")
    patches_rows = {r["month"]: r["rows"] for r in table.to_pylist() if r["stage"] == "patches"}
    assert patches_rows == {"2024-01": 4, "2024-02": 10}
    (materialization,) = result.asset_materializations_for_node("dataset_overview")
    md = materialization.metadata["overview"].value
    assert "2 months (2024-01 … 2024-02)" in md
    assert "2024-02 │" + "█" * 40 + " 10" in md  # the chart: February is the longest bar
    assert "## Build failure causes" in md and "## Categories" in md
    assert materialization.metadata["months"].value == 2
    # Repositories by number of changes, from the same views a user queries.
    con = open_catalog(str(tmp_path / "data"))
    top = con.sql("select repo_name, count(*) from patches group by all order by 2 desc, 1 limit 1").fetchone()
    assert f"| {top[0]} | {top[1]} |" in md


def test_overview_of_contexts_and_categories_from_tables(tmp_path):
    import duckdb

    con = duckdb.connect()
    con.execute(
        "create view perf_commits as select * from (values (date '2024-01-01', 'ok', true, 'caching'),"
        " (date '2024-01-01', 'ok', true, 'caching'), (date '2024-02-01', 'ok', true, 'vectorization'),"
        " (date '2024-02-01', 'ok', false, null)) t(month, status, is_performance, category)"
    )
    con.execute(
        "create view contexts as select * from (values (date '2024-01-01', 'failed', 'build', 'no wheel for numpy'),"
        " (date '2024-01-01', 'failed', 'build', 'no wheel for numpy'), (date '2024-02-01', 'ok', null, null))"
        " t(month, status, stage_failed, reason)"
    )
    counts = overview.counts_per_month(con)
    assert {(r["month"], r["stage"], r["ok"], r["failed"]) for r in counts.to_pylist()} == {
        ("2024-01", "perf_commits", 2, 0),
        ("2024-02", "perf_commits", 2, 0),
        ("2024-01", "contexts", 0, 2),
        ("2024-02", "contexts", 1, 0),
    }
    parts = overview.summary(con)
    assert parts["categories"] == [("caching", 2), ("vectorization", 1)]
    assert parts["build_failures"] == [("build", "no wheel for numpy", 2)]
    assert parts["performance_per_month"] == [("2024-01", 2, 2), ("2024-02", 1, 2)]
    md = overview.overview_markdown(counts, parts)
    assert "| build | no wheel for numpy | 2 |" in md
    assert "caching       │" + "█" * 40 + " 2" in md
