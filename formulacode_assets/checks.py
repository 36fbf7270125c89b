"""Asset checks generated from the stage contracts, evaluated on every materialization.

The contract check blocks downstream stages when a month's table breaks its columns, types,
non-null rules or key uniqueness; the failure-rate check warns when most rows failed.
"""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetKey, MetadataValue

from formulacode_assets.core.contracts import Contract

FAILURE_RATE_WARN = 0.5


def contract_check_specs(contract: Contract) -> list[AssetCheckSpec]:
    asset = AssetKey(contract.name)
    return [
        AssetCheckSpec(
            "contract",
            asset=asset,
            blocking=True,
            description=f"columns, types, non-null and unique ({', '.join(contract.key)}) per month",
        ),
        AssetCheckSpec(
            "failure_rate",
            asset=asset,
            description=f"warns when more than {FAILURE_RATE_WARN:.0%} of a month's rows failed",
        ),
    ]


def duplicate_keys(contract: Contract, table: pa.Table) -> int:
    if table.num_rows == 0:
        return 0
    columns = ["month", *contract.key]
    keys = Counter(zip(*(table.column(c).to_pylist() for c in columns), strict=True))
    return sum(n - 1 for key, n in keys.items() if n > 1 and None not in key)


def contract_check_results(contract: Contract, table: pa.Table) -> list[AssetCheckResult]:
    problems = contract.violations(table)
    if not problems and (dups := duplicate_keys(contract, table)):
        problems.append(f"{dups} duplicate rows on ({', '.join(contract.key)})")
    statuses = Counter(table.column("status").to_pylist()) if "status" in table.column_names else Counter()
    failed_share = statuses.get("failed", 0) / table.num_rows if table.num_rows else 0.0
    return [
        AssetCheckResult(
            check_name="contract",
            asset_key=AssetKey(contract.name),
            passed=not problems,
            metadata={"problems": MetadataValue.json(problems)},
        ),
        AssetCheckResult(
            check_name="failure_rate",
            asset_key=AssetKey(contract.name),
            passed=failed_share <= FAILURE_RATE_WARN,
            severity=AssetCheckSeverity.WARN,
            metadata={"failed_share": MetadataValue.float(round(failed_share, 4))},
        ),
    ]
