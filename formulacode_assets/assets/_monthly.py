"""What every monthly asset shares: its months, its inputs by month, its output and metadata."""

from __future__ import annotations

import hashlib
import inspect
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from types import ModuleType
from typing import Any

import pyarrow as pa
from dagster import (
    AssetExecutionContext,
    BackfillPolicy,
    MetadataValue,
    Output,
    TableColumn,
    TableSchema,
    asset,
)

from formulacode_assets.checks import contract_check_results, contract_check_specs
from formulacode_assets.core.contracts import Contract
from formulacode_assets.partitions import monthly_partitions

# An upstream monthly input: one table, or {partition_key: table} when a run spans several months.
# (Typed as Any for Dagster's input type check, which cannot check a union.)
MonthlyInput = Any

_PREVIEW_ROWS = 10
_PREVIEW_TEXT = 60


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

    Single-run backfills: a range of months runs as one run, so per-run costs (mirror fetches,
    process start) are paid once; each month still lands in its own file.
    """
    return asset(
        name=contract.name,
        partitions_def=monthly_partitions,
        backfill_policy=BackfillPolicy.single_run(),
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


def _preview(table: pa.Table) -> str:
    if table.num_rows == 0:
        return "_no rows this month_"
    frame = table.slice(0, _PREVIEW_ROWS).to_pandas()
    for name in frame.columns:
        if frame[name].dtype == object:
            frame[name] = frame[name].map(
                lambda v: v if not isinstance(v, str) or len(v) <= _PREVIEW_TEXT else v[:_PREVIEW_TEXT] + "…"
            )
    return frame.to_markdown(index=False)


def monthly_output(
    context: AssetExecutionContext, contract: Contract, tables: dict[str, pa.Table], extra_metadata: dict | None = None
) -> Iterator[Output | object]:
    """Yield the output (one table per month) with the standard metadata, then the contract checks."""
    combined = pa.concat_tables(tables.values()) if tables else contract.to_table([])
    statuses = Counter(combined.column("status").to_pylist()) if combined.num_rows else Counter()
    reasons = Counter(
        r
        for r, s in zip(combined.column("reason").to_pylist(), combined.column("status").to_pylist(), strict=True)
        if s != "ok" and r
    )
    for status, count in sorted(statuses.items()):
        context.log.info(f"{contract.name}: {count} rows {status}")
    metadata = {
        "dagster/row_count": MetadataValue.int(combined.num_rows),
        "dagster/column_schema": column_schema(contract),
        "months": MetadataValue.json(sorted(tables)),
        "status_counts": MetadataValue.json(dict(sorted(statuses.items()))),
        "preview": MetadataValue.md(_preview(combined)),
        "top_reasons": MetadataValue.md(
            "\n".join(f"- {n} × {reason}" for reason, n in reasons.most_common(10)) or "_none_"
        ),
    }
    for status in ("ok", "skipped", "failed"):
        metadata[f"rows_{status}"] = MetadataValue.int(statuses.get(status, 0))
    metadata.update(extra_metadata or {})
    value = tables if len(tables) > 1 else next(iter(tables.values()))
    yield Output(value, metadata=metadata)
    yield from contract_check_results(contract, combined)
