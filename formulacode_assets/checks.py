"""Asset checks generated from the stage contracts, evaluated per month on every materialization.

Every monthly stage gets the same checks, each evaluated for **each month** of a run (a single-run
backfill of three months records three results per check, one per partition):

- ``unique_keys`` (blocking): no two rows of a month share the contract's key;
- ``contract`` (blocking): columns, types, non-null rules and status values;
- ``failure_rate`` (warning): half or more of the month's attempted rows (``ok`` + ``failed``;
  ``skipped`` rows were not attempted) failed — a month where everything attempted failed never
  passes;
- ``merged_at_in_window`` (blocking, stages with a ``merged_at`` column): every change lies in the
  month's half-open UTC window.

``monthly_check_specs(asset_key, contract)`` is generic: an asset that is not built with
``monthly_asset`` passes its own key and contract and yields ``monthly_check_results`` per month.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import pyarrow as pa
from dagster import AssetCheckSeverity, AssetCheckSpec, AssetKey, MetadataValue, PreviewWarning, asset_check

from formulacode_assets.core.contracts import Contract
from formulacode_assets.partitions import monthly_partitions

FAILURE_RATE_WARN = 0.5
TIME_COLUMN = "merged_at"

UNIQUE_KEYS = "unique_keys"
CONTRACT = "contract"
FAILURE_RATE = "failure_rate"
MERGED_AT_IN_WINDOW = "merged_at_in_window"
MONTHLY_CHECK_NAMES = frozenset({UNIQUE_KEYS, CONTRACT, FAILURE_RATE, MERGED_AT_IN_WINDOW})


@dataclass(frozen=True)
class MonthCheck:
    """One check's verdict on one month (turned into a Dagster evaluation by ``_monthly``)."""

    check_name: str
    month: str
    passed: bool
    severity: AssetCheckSeverity
    metadata: dict = field(default_factory=dict)
    description: str | None = None


def _has_time_column(contract: Contract) -> bool:
    return TIME_COLUMN in contract.names


def monthly_check_specs(
    asset_key: AssetKey | str, contract: Contract, partitions_def=monthly_partitions
) -> list[AssetCheckSpec]:
    """The checks of a monthly stage, partitioned like it so the UI shows each month's own result."""
    asset = AssetKey.from_coercible(asset_key)
    key = ", ".join(contract.key)
    specs = [
        (UNIQUE_KEYS, True, f"no two rows of a month share ({key})"),
        (CONTRACT, True, "columns, types, non-null rules and status values of the month's table"),
        (
            FAILURE_RATE,
            False,
            f"warns when {FAILURE_RATE_WARN:.0%} or more of a month's attempted rows (ok + failed) failed",
        ),
    ]
    if _has_time_column(contract):
        specs.append((MERGED_AT_IN_WINDOW, True, "every merged_at lies in the month's UTC window [start, end)"))
    return [
        monthly_check_spec(name, asset, blocking, description, partitions_def) for name, blocking, description in specs
    ]


def monthly_check_spec(
    name: str, asset: AssetKey, blocking: bool, description: str, partitions_def=monthly_partitions
) -> AssetCheckSpec:
    """One check partitioned by month (also for a stage's own checks, e.g. tasks' decontamination)."""
    # Partitioned checks are a Dagster preview feature; they are what makes per-month check results
    # visible in the UI, so the warning is silenced here, the one place that creates them.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PreviewWarning)
        return AssetCheckSpec(
            name, asset=asset, blocking=blocking, description=description, partitions_def=partitions_def
        )


def monthly_asset_check(**kwargs):
    """``@asset_check`` partitioned by month, so a standalone check records each month's own result."""

    def decorate(fn):
        with warnings.catch_warnings():  # the preview warning, as in ``monthly_check_spec``
            warnings.simplefilter("ignore", PreviewWarning)
            return asset_check(partitions_def=monthly_partitions, **kwargs)(fn)

    return decorate


def contract_check_specs(contract: Contract) -> list[AssetCheckSpec]:
    """The checks of a stage whose asset is named after its contract."""
    return monthly_check_specs(AssetKey(contract.name), contract)


def duplicate_keys(contract: Contract, table: pa.Table) -> int:
    if table.num_rows == 0 or not set(contract.key) <= set(table.column_names):
        return 0
    columns = [c for c in ("month", *contract.key) if c in table.column_names]
    keys = Counter(zip(*(table.column(c).to_pylist() for c in columns), strict=True))
    return sum(n - 1 for key, n in keys.items() if n > 1 and None not in key)


def failure_share(table: pa.Table) -> tuple[float, int, int]:
    """``(failed / attempted, failed, attempted)``; attempted rows are the ``ok`` and ``failed`` ones."""
    statuses = Counter(table.column("status").to_pylist()) if "status" in table.column_names else Counter()
    failed, attempted = statuses.get("failed", 0), statuses.get("ok", 0) + statuses.get("failed", 0)
    return (failed / attempted if attempted else 0.0), failed, attempted


def outside_window(table: pa.Table, start: datetime, end: datetime) -> int:
    if TIME_COLUMN not in table.column_names:
        return 0
    return sum(1 for t in table.column(TIME_COLUMN).to_pylist() if t is not None and not start <= t < end)


def monthly_check_results(
    contract: Contract, month: str, start: datetime, end: datetime, table: pa.Table
) -> list[MonthCheck]:
    """Every check of ``monthly_check_specs`` on one month's table."""
    dups = duplicate_keys(contract, table)
    problems = contract.violations(table)
    share, failed, attempted = failure_share(table)
    results = [
        MonthCheck(
            UNIQUE_KEYS,
            month,
            passed=not dups,
            severity=AssetCheckSeverity.ERROR,
            metadata={"duplicate_rows": MetadataValue.int(dups), "key": MetadataValue.text(", ".join(contract.key))},
        ),
        MonthCheck(
            CONTRACT,
            month,
            passed=not problems,
            severity=AssetCheckSeverity.ERROR,
            metadata={"problems": MetadataValue.json(problems), "rows": MetadataValue.int(table.num_rows)},
        ),
        MonthCheck(
            FAILURE_RATE,
            month,
            passed=share < FAILURE_RATE_WARN,
            severity=AssetCheckSeverity.WARN,
            metadata={
                "failed_share": MetadataValue.float(round(share, 4)),
                "rows_failed": MetadataValue.int(failed),
                "rows_attempted": MetadataValue.int(attempted),
            },
        ),
    ]
    if _has_time_column(contract):
        outside = outside_window(table, start, end)
        results.append(
            MonthCheck(
                MERGED_AT_IN_WINDOW,
                month,
                passed=not outside,
                severity=AssetCheckSeverity.ERROR,
                metadata={
                    "rows_outside": MetadataValue.int(outside),
                    "window": MetadataValue.text(f"[{start.isoformat()}, {end.isoformat()})"),
                },
            )
        )
    return results
