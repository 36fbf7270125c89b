"""Per-month truth: a single-run backfill records each month's own metadata and check results."""

import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest
from dagster import AssetCheckKey, AssetCheckSeverity, AssetKey, AssetSpec, DagsterInstance, materialize
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from formulacode_assets.assets._monthly import preview
from formulacode_assets.assets.contexts import contexts
from formulacode_assets.assets.merge_commits import merge_commits
from formulacode_assets.assets.patches import patches
from formulacode_assets.assets.perf_commits import perf_commits
from formulacode_assets.assets.repos_discovered import repos_discovered
from formulacode_assets.assets.repos_valid import repos_valid
from formulacode_assets.checks import monthly_check_results, monthly_check_specs
from formulacode_assets.core.contracts import MERGE_COMMITS, PATCHES, PERF_COMMITS
from formulacode_assets.partitions import monthly_partitions
from formulacode_assets.resources import GitSourceResource
from formulacode_assets.resources.contexts import ContextSynthesisResource
from formulacode_assets.resources.docker_engine import DockerEngineResource
from formulacode_assets.resources.github import GitHubResource
from formulacode_assets.resources.llm import LLMResource
from formulacode_assets.sample import SAMPLE_CHANGES
from formulacode_assets.storage import ParquetIOManager

MINING = [repos_discovered, repos_valid, merge_commits, patches]
MONTHS = ("2024-02-01", "2024-03-01")
RANGE_TAGS = {"dagster/asset_partition_range_start": MONTHS[0], "dagster/asset_partition_range_end": MONTHS[-1]}


def _io(base: Path) -> ParquetIOManager:
    return ParquetIOManager(base_path=str(base / "data"), catalog_path=str(base / "catalog.duckdb"))


@pytest.fixture(scope="module")
def backfill(tmp_path_factory):
    """February and March of the sample store, mined in ONE run (as BackfillPolicy.single_run() does)."""
    base = tmp_path_factory.mktemp("backfill")
    instance = DagsterInstance.ephemeral()
    result = materialize(
        MINING,
        resources={
            "io_manager": _io(base),
            "git_source": GitSourceResource(cache_dir=str(base / "cache")),
            "github_api": GitHubResource(cache_dir=str(base / "cache")),
        },
        instance=instance,
        tags=RANGE_TAGS,
    )
    assert result.success
    return base, instance, result


def test_a_single_run_backfill_reports_each_months_own_materialization(backfill):
    _, _, result = backfill
    expected = {
        m: sum(1 for c in SAMPLE_CHANGES if c.month == m[:7] and c.repo_name != "sample-org/notes") for m in MONTHS
    }
    assert expected == {"2024-02-01": 10, "2024-03-01": 2}  # today's sample store
    by_month = {
        (e.asset_key.path[-1], e.partition): e.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    assert {month for asset, month in by_month if asset == "patches"} == set(MONTHS)
    for month, rows in expected.items():
        metadata = by_month[("patches", month)]
        assert metadata["dagster/row_count"].value == rows
        assert metadata["rows_ok"].value == rows and metadata["status_counts"].value == {"ok": rows}
        assert metadata["month"].value == month and metadata["file"].value == f"patches/{month[:7]}.parquet"
        assert "paths" not in metadata  # no range-wide list of files on a month
        assert by_month[("merge_commits", month)]["dagster/row_count"].value == rows
    # The previews are the months' own rows, not the range's.
    assert by_month[("patches", MONTHS[0])]["preview"].value != by_month[("patches", MONTHS[1])]["preview"].value
    assert "first 10 of" not in by_month[("patches", MONTHS[1])]["preview"].value


def test_a_single_run_backfill_records_each_months_own_check_results(backfill):
    _, instance, result = backfill
    evaluations = result.get_asset_check_evaluations()
    seen = {(e.asset_key.path[-1], e.check_name, e.partition) for e in evaluations}
    assert len(seen) == len(evaluations)  # one result per check and month
    for asset, contract in (("merge_commits", MERGE_COMMITS), ("patches", PATCHES)):
        names = {s.name for s in monthly_check_specs(asset, contract)}
        assert names == {"unique_keys", "contract", "failure_rate", "merged_at_in_window"}
        assert {(n, m) for a, n, m in seen if a == asset} == {(n, m) for n in names for m in MONTHS}
    contract_rows = {
        e.partition: e.metadata["rows"].value
        for e in evaluations
        if e.asset_key.path[-1] == "patches" and e.check_name == "contract"
    }
    assert contract_rows == {"2024-02-01": 10, "2024-03-01": 2}
    # The instance stores them per partition, each linked to that month's materialization.
    records = instance.event_log_storage.get_asset_check_execution_history(
        AssetCheckKey(AssetKey("patches"), "contract"), limit=10
    )
    assert {r.partition: r.status for r in records} == {m: AssetCheckExecutionRecordStatus.SUCCEEDED for m in MONTHS}
    targets = {e.partition: e.target_materialization_data for e in evaluations if e.asset_key.path[-1] == "patches"}
    assert all(t is not None for t in targets.values()) and targets[MONTHS[0]] != targets[MONTHS[1]]


def test_contexts_of_a_two_month_run_count_each_month_on_its_own(backfill, tmp_path):
    """Issue 14: March's contexts said 3 (February's) while March has none."""
    base, _, _ = backfill
    cache = str(base / "cache")
    result = materialize(
        [AssetSpec(name, partitions_def=monthly_partitions) for name in ("patches", "repos_valid")]
        + [perf_commits, contexts],
        resources={
            "io_manager": _io(base),
            "llm": LLMResource(cache_dir=str(tmp_path / "llm")),
            "git_source": GitSourceResource(cache_dir=cache),
            # Docker only, and no engine: every context is a skipped row at once (no builds here).
            "context_synthesis": ContextSynthesisResource(cache_dir=str(tmp_path / "ctx"), validator="docker"),
            "docker_engine": DockerEngineResource(base_url=f"unix://{tmp_path}/no-engine.sock"),
        },
        instance=DagsterInstance.ephemeral(),
        tags=RANGE_TAGS,
    )
    assert result.success
    rows = {
        e.partition: e.materialization.metadata["dagster/row_count"].value
        for e in result.get_asset_materialization_events()
        if e.asset_key.path[-1] == "contexts"
    }
    assert rows == {"2024-02-01": 3, "2024-03-01": 0}
    judged = {
        e.partition: e.materialization.metadata["is_performance"].value
        for e in result.get_asset_materialization_events()
        if e.asset_key.path[-1] == "perf_commits"
    }
    assert judged["2024-02-01"] == 3 and judged["2024-03-01"] == 0


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: connections are refused


def test_a_month_where_every_judged_row_failed_does_not_pass_the_failure_rate_check(backfill, tmp_path):
    base, _, _ = backfill
    dead = LLMResource(
        model_name="dead-model",
        api_base=f"http://127.0.0.1:{_closed_port()}/v1",
        api_key="unused",
        max_retries=0,
        timeout_seconds=5,
        cache_dir=str(tmp_path / "cache"),
    )
    result = materialize(
        [AssetSpec("patches", partitions_def=monthly_partitions), perf_commits],
        partition_key=MONTHS[0],
        resources={"io_manager": _io(base), "llm": dead},
        instance=DagsterInstance.ephemeral(),
    )
    assert result.success  # a warning, not a failed month
    (event,) = result.get_asset_materialization_events()
    counts = event.materialization.metadata["status_counts"].value
    assert counts.get("failed", 0) > 0 and "ok" not in counts  # every judged row failed, the rest skipped
    (rate,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "failure_rate"]
    assert not rate.passed and rate.severity == AssetCheckSeverity.WARN
    assert rate.metadata["failed_share"].value == 1.0


def _change(**row):
    return {
        "month": "2024-02-01",
        "repo_name": "o/r",
        "merge_commit_sha": "a" * 40,
        "status": "ok",
        "merged_at": datetime(2024, 2, 3, tzinfo=UTC),
        **row,
    }


WINDOW = (datetime(2024, 2, 1, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC))


def _verdicts(rows) -> dict:
    table = MERGE_COMMITS.to_table(rows)
    return {r.check_name: r for r in monthly_check_results(MERGE_COMMITS, "2024-02-01", *WINDOW, table)}


def test_duplicate_keys_and_changes_outside_the_month_fail_blocking_checks():
    fine = _verdicts([_change(), _change(merge_commit_sha="b" * 40)])
    assert all(v.passed for v in fine.values())
    dup = _verdicts([_change(), _change()])
    assert not dup["unique_keys"].passed and dup["unique_keys"].severity == AssetCheckSeverity.ERROR
    late = _verdicts([_change(merged_at=WINDOW[1])])  # the window is half-open
    assert not late["merged_at_in_window"].passed and late["unique_keys"].passed


def test_failure_rate_counts_only_attempted_rows():
    table = PERF_COMMITS.to_table(
        [_change(merge_commit_sha=f"{i:040x}", status="skipped") for i in range(5)]
        + [_change(merge_commit_sha=f"{i:040x}", status="failed", reason="LM down") for i in range(5, 10)]
    )
    (rate,) = [
        r for r in monthly_check_results(PERF_COMMITS, "2024-02-01", *WINDOW, table) if r.check_name == "failure_rate"
    ]
    assert not rate.passed and rate.metadata["rows_attempted"].value == 5


def test_preview_is_short_and_readable():
    table = PATCHES.to_table(
        [_change(title="Speed | up\nthings", reason=None), _change(merge_commit_sha="c" * 40, title=None)]
    )
    text = preview(PATCHES, table)
    header, _, first, second = text.splitlines()
    assert header.count("|") - 1 <= 7 and "nan" not in text and "None" not in text
    assert "a" * 10 in first and "a" * 11 not in first and "Speed \\| up things" in first
    assert first.count("|") - first.count("\\|") == header.count("|") == second.count("|")
