"""Stage test for ``human_speedups``: materialize() on the sample store, downstream of real contexts."""

import json

import pyarrow.parquet as pq
from dagster import DagsterInstance, materialize

from formulacode_assets.assets.contexts import contexts
from formulacode_assets.assets.human_speedups import human_speedups
from formulacode_assets.core.contracts import HUMAN_SPEEDUPS
from formulacode_assets_tests.test_contexts_asset import _resources, mining_assets, perf_commits_standin


def _run(tmp_path):
    result = materialize(
        [*mining_assets(), perf_commits_standin(), contexts, human_speedups],
        partition_key="2024-02-01",
        resources=_resources(tmp_path, measure_samples=3),
        instance=DagsterInstance.ephemeral(),
    )
    assert result.success
    table = pq.read_table(tmp_path / "data" / "human_speedups" / "2024-02.parquet")
    assert table.schema.equals(HUMAN_SPEEDUPS.schema, check_metadata=False)
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == "human_speedups"]
    return {r["repo_name"]: r for r in table.to_pylist()}, event.materialization.metadata


def test_sample_speedups_are_measured_and_a_rerun_reuses_the_timings(tmp_path):
    rows, metadata = _run(tmp_path)
    fastmath = rows["sample-org/fastmath"]
    assert fastmath["status"] == "ok", fastmath["reason"]
    assert fastmath["oracle_ok"] and fastmath["human_speedup"] > 5
    assert fastmath["improved"] == ["bench_primes.PrimesSuite.time_primes_below"]
    verdicts = {v["benchmark"]: v for v in json.loads(fastmath["verdicts"])}
    assert verdicts["bench_primes.PrimesSuite.time_primes_below"]["verdict"] == "improved"
    assert fastmath["benchmark_runs"] > 0 and not fastmath["timings_reused"]
    assert metadata["tasks_measured"].value == len(rows) and metadata["oracle_ok"].value >= 1

    again, metadata = _run(tmp_path)
    assert all(r["timings_reused"] and r["benchmark_runs"] == 0 for r in again.values() if r["status"] == "ok")
    assert metadata["benchmark_runs"].value == 0
    assert again["sample-org/fastmath"]["verdicts"] == fastmath["verdicts"]
