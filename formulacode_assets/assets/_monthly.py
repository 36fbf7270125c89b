"""What every monthly asset shares: its months, its inputs by month, its output and metadata."""

from __future__ import annotations

import hashlib
import inspect
import math
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import datetime
from types import ModuleType
from typing import Any

import pyarrow as pa
from dagster import (
    AssetCheckEvaluation,
    AssetExecutionContext,
    AssetKey,
    AssetRecordsFilter,
    BackfillPolicy,
    BetaWarning,
    MetadataValue,
    Output,
    TableColumn,
    TableSchema,
    asset,
)

# The evaluation's link to the month's materialization; Dagster does not export this record type.
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)

from formulacode_assets.checks import MONTHLY_CHECK_NAMES, MonthCheck, contract_check_specs, monthly_check_results
from formulacode_assets.core.contracts import Contract
from formulacode_assets.partitions import monthly_partitions

# An upstream monthly input: one table, or {partition_key: table} when a run spans several months.
# (Typed as Any for Dagster's input type check, which cannot check a union.)
MonthlyInput = Any

# Backfill policies: cheap mining stages run a range of months in one run (per-run costs such as
# mirror fetches and process start are paid once); build stages (minutes per context or image) get
# one run per month, so the queue spreads a range over runs and the pools bound what runs at once.
MINING_BACKFILL = BackfillPolicy.single_run()
BUILD_BACKFILL = BackfillPolicy.multi_run(max_partitions_per_run=1)

_PREVIEW_ROWS = 10
_PREVIEW_TEXT = 60
_PREVIEW_MAX_COLUMNS = 7
_SHORT_SHA = 10
# Columns a person scans first, after the contract's key (when a stage has them).
_PREVIEW_FIRST = ("title", "category", "is_performance", "stage_failed", "status", "reason")
OWNERS = ["team:formulacode"]


def code_version_of(*modules: ModuleType) -> str:
    """A hash of the source that decides an asset's output, so changed logic marks months stale."""
    digest = hashlib.sha256()
    for module in modules:
        digest.update(inspect.getsource(module).encode())
    return digest.hexdigest()[:12]


def monthly_asset(
    contract: Contract,
    *,
    versioned_by: tuple[ModuleType, ...],
    group_name: str,
    kinds: set[str],
    extra_check_specs: tuple = (),
    **asset_kwargs,
):
    """``@asset`` for a monthly stage named after its contract, with its checks and a code version.

    Backfills: ``MINING_BACKFILL`` (a range of months in one run, so per-run costs such as mirror
    fetches are paid once; each month still lands in its own file, with its own metadata and its
    own check results, see ``monthly_output``) unless the stage passes
    ``backfill_policy=BUILD_BACKFILL``.
    """
    asset_kwargs.setdefault("owners", OWNERS)
    # ``backfill_policy`` is marked beta in Dagster 1.13 but is the documented way to run a range of
    # months in one run; the warning would greet every CLI run, so it is silenced here, once.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BetaWarning)
        return asset(
            name=contract.name,
            partitions_def=monthly_partitions,
            backfill_policy=asset_kwargs.pop("backfill_policy", MINING_BACKFILL),
            code_version=code_version_of(*versioned_by),
            check_specs=[*contract_check_specs(contract), *extra_check_specs],
            group_name=group_name,
            kinds=kinds | {"parquet"},
            **asset_kwargs,
        )


def months_of_run(context: AssetExecutionContext) -> list[tuple[str, datetime, datetime]]:
    """``(partition_key, start, end)`` for each month this run materializes (several in a backfill)."""
    partitions_def = context.assets_def.partitions_def
    months = []
    for key in context.partition_keys:
        window = partitions_def.time_window_for_partition_key(key)
        months.append((key, window.start, window.end))
    return months


def tables_by_month(context: AssetExecutionContext, loaded: pa.Table | dict[str, pa.Table]) -> dict[str, pa.Table]:
    """An upstream input as ``{partition_key: table}`` whether the run spans one month or many."""
    if isinstance(loaded, dict):
        return loaded
    (key,) = context.partition_keys
    return {key: loaded}


def column_schema(contract: Contract) -> TableSchema:
    return TableSchema(
        columns=[TableColumn(name=c.name, type=str(c.type), description=c.description) for c in contract.columns]
    )


def _cell(value: Any, column: str) -> str:
    """One readable markdown cell: short SHAs, no ``nan``/``None``, no pipes or newlines breaking the table."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, str) and column.endswith("sha") and len(value) == 40:
        return value[:_SHORT_SHA]
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, list | dict):
        value = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    text = " ".join(str(value).split()).replace("|", "\\|")
    return text if len(text) <= _PREVIEW_TEXT else text[:_PREVIEW_TEXT] + "…"


def preview_columns(contract: Contract, table: pa.Table) -> list[str]:
    """The contract's key, then the few columns a person scans first; at most seven."""
    wanted = [*contract.key, *_PREVIEW_FIRST]
    columns = list(dict.fromkeys(c for c in wanted if c in table.column_names))
    return columns[:_PREVIEW_MAX_COLUMNS]


def preview(contract: Contract, table: pa.Table) -> str:
    """A markdown table of a month's first rows (all columns are in the parquet and the catalog)."""
    if table.num_rows == 0:
        return "_no rows this month_"
    columns = preview_columns(contract, table)
    rows = table.slice(0, _PREVIEW_ROWS).select(columns).to_pylist()
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row[c], c) for c in columns) + " |" for row in rows]
    more = f"\n\n_first {len(rows)} of {table.num_rows} rows_" if table.num_rows > len(rows) else ""
    return "\n".join(lines) + more


def month_metadata(contract: Contract, month: str, table: pa.Table) -> dict:
    """The metadata of one month's materialization: counts the UI plots across months, a preview."""
    statuses = Counter(table.column("status").to_pylist()) if table.num_rows else Counter()
    reasons = Counter(
        r
        for r, s in zip(table.column("reason").to_pylist(), table.column("status").to_pylist(), strict=True)
        if s != "ok" and r
    )
    metadata = {
        "dagster/row_count": MetadataValue.int(table.num_rows),
        "month": MetadataValue.text(month),
        "file": MetadataValue.path(f"{contract.name}/{month[:7]}.parquet"),
        "status_counts": MetadataValue.json(dict(sorted(statuses.items()))),
        "preview": MetadataValue.md(preview(contract, table)),
        "top_reasons": MetadataValue.md(
            "\n".join(f"- {n} × {reason}" for reason, n in reasons.most_common(10)) or "_none_"
        ),
    }
    for status in ("ok", "skipped", "failed"):
        metadata[f"rows_{status}"] = MetadataValue.int(statuses.get(status, 0))
    return metadata


def _materialization_of(context: AssetExecutionContext, asset_key: AssetKey, month: str):
    records = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=asset_key, asset_partitions=[month]), limit=1
    ).records
    if not records:
        return None
    record = records[0]
    return AssetCheckEvaluationTargetMaterializationData(
        storage_id=record.storage_id, run_id=record.event_log_entry.run_id, timestamp=record.timestamp
    )


def monthly_checks(
    context: AssetExecutionContext, contract: Contract, tables: dict[str, pa.Table], asset_key: AssetKey | None = None
) -> Iterator[Output | AssetCheckEvaluation]:
    """Each month's own results of the generic checks (``checks.monthly_check_specs``)."""
    windows = {key: (start, end) for key, start, end in months_of_run(context)}
    results = [
        result
        for month in sorted(tables)
        for result in monthly_check_results(contract, month, *windows[month], tables[month])
    ]
    yield from month_check_evaluations(context, asset_key or AssetKey(contract.name), MONTHLY_CHECK_NAMES, results)


def month_check_evaluations(
    context: AssetExecutionContext, asset_key: AssetKey, names: Iterable[str], results: Iterable[MonthCheck]
) -> Iterator[Output | AssetCheckEvaluation]:
    """Per-month verdicts of the checks ``names`` as evaluations, after the month's output was stored.

    Dagster evaluates an ``AssetCheckResult`` once per step, for the whole range; a single-run
    backfill therefore yields one evaluation per check **and month**, linked to that month's
    materialization, and the checks' (Nothing) outputs once. Checks not selected for the run are
    left out.
    """
    selected = context.selected_asset_check_keys
    names = set(names)
    specs = {
        spec.name: (output_name, spec)
        for output_name, spec in context.assets_def.check_specs_by_output_name.items()
        if spec.asset_key == asset_key and spec.key in selected and spec.name in names
    }
    for output_name, _spec in specs.values():
        yield Output(None, output_name=output_name)
    targets: dict[str, object] = {}
    for result in results:
        if result.check_name not in specs:
            continue
        if result.month not in targets:
            targets[result.month] = _materialization_of(context, asset_key, result.month)
        yield AssetCheckEvaluation(
            asset_key=asset_key,
            check_name=result.check_name,
            passed=result.passed,
            metadata=result.metadata,
            target_materialization_data=targets[result.month],
            severity=result.severity,
            blocking=specs[result.check_name][1].blocking,
            description=result.description,
            partition=result.month,
        )


def monthly_output(
    context: AssetExecutionContext,
    contract: Contract,
    tables: dict[str, pa.Table],
    extra_metadata: dict | None = None,
    metadata_by_month: dict[str, dict] | None = None,
) -> Iterator[Output | object]:
    """Yield the output (one table per month), each month's own metadata, then each month's checks.

    ``extra_metadata`` is about the run (the same on every month of it, e.g. the classifier);
    ``metadata_by_month`` holds numbers that differ by month (e.g. performance rows), so the UI
    plots them across partitions.
    """
    for month, table in sorted(tables.items()):
        counts = Counter(table.column("status").to_pylist()) if table.num_rows else Counter()
        context.log.info(
            f"{contract.name} {month}: {table.num_rows} rows ("
            + (", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none")
            + ")"
        )
        context.add_asset_metadata(
            {**month_metadata(contract, month, table), **(metadata_by_month or {}).get(month, {})},
            partition_key=month,
        )
    metadata = {
        "dagster/column_schema": column_schema(contract),
        "months_in_run": MetadataValue.json(sorted(tables)),
        **(extra_metadata or {}),
    }
    value = tables if len(tables) > 1 else next(iter(tables.values()))
    yield Output(value, metadata=metadata)
    yield from monthly_checks(context, contract, tables)
