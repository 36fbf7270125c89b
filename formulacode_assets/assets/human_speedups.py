"""The human speed-up per performance change: interleaved A/B timings of the selected benchmarks."""

from pathlib import Path
from statistics import median

from dagster import AssetExecutionContext, MetadataValue

from formulacode_assets.assets._monthly import (
    MonthlyInput,
    monthly_asset,
    monthly_output,
    months_of_run,
    tables_by_month,
)
from formulacode_assets.core.contracts import HUMAN_SPEEDUPS
from formulacode_assets.core.measurement import harness, selection, speedups, statistics
from formulacode_assets.core.measurement.harness import HarnessSettings
from formulacode_assets.core.measurement.speedups import SpeedupMeasurer, TimingStore
from formulacode_assets.core.measurement.statistics import VerdictSettings
from formulacode_assets.resources.contexts import ContextSynthesisResource
from formulacode_assets.resources.git_source import GitSourceResource


@monthly_asset(
    HUMAN_SPEEDUPS,
    versioned_by=(harness, selection, speedups, statistics),
    group_name="measurement",
    kinds={"python"},
    pool="docker",
)
def human_speedups(
    context: AssetExecutionContext,
    git_source: GitSourceResource,
    context_synthesis: ContextSynthesisResource,
    contexts: MonthlyInput,
):
    """What the human author achieved, per performance change of a validated context.

    The selected benchmarks are timed at the base and at the merged commit in interleaved A/B
    rounds; every timing is stored (a re-run reuses them: zero benchmark runs); per benchmark a
    Mann-Whitney verdict, per task the human speed-up and ``oracle_ok`` (a change that speeds up
    nothing measurable is not a task). Measured in the local sandbox, so only where local
    validation is allowed (trusted sources); elsewhere the rows are skipped with that reason.
    """
    cfg = context_synthesis
    cache = cfg.cache_dir
    measurer = SpeedupMeasurer(
        store=TimingStore(Path(cache) / "measurement" / "timings.sqlite"),
        mirror_path=git_source.mirror_path,
        interpreters=cfg.interpreters(),
        settings=HarnessSettings(rounds=cfg.measure_rounds, samples=cfg.measure_samples, cpu=cfg.measure_cpu),
        verdict_settings=VerdictSettings(threshold=cfg.speedup_threshold, alpha=cfg.speedup_alpha),
        cache_dir=Path(cache),
        work_root=Path(cache) / "measurement" / "work",
        uv_cache_dir=Path(cache) / "uv",
        force=cfg.force_measure,
        unavailable_reason=None if cfg.allow_local else "measuring needs the local sandbox (allow_local=False)",
        log=context.log.info,
    )
    by_month = tables_by_month(context, contexts)
    tables = {}
    for month, _start, _end in months_of_run(context):
        tables[month] = HUMAN_SPEEDUPS.to_table(measurer.rows_for_month(month, by_month[month].to_pylist()))
    rows = [r for t in tables.values() for r in t.to_pylist()]
    ok = [r for r in rows if r["status"] == "ok"]
    speedups_ok = [r["human_speedup"] for r in ok if r["oracle_ok"] and r["human_speedup"]]
    metadata = {
        "tasks_measured": MetadataValue.int(len(ok)),
        "oracle_ok": MetadataValue.int(sum(bool(r["oracle_ok"]) for r in ok)),
        "median_human_speedup": MetadataValue.float(float(median(speedups_ok)) if speedups_ok else 0.0),
        "benchmark_runs": MetadataValue.int(measurer.benchmark_runs),
        "timings_reused": MetadataValue.int(sum(bool(r["timings_reused"]) for r in ok)),
    }
    yield from monthly_output(context, HUMAN_SPEEDUPS, tables, metadata)
