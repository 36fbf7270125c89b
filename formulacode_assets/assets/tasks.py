from collections import Counter

import pyarrow.parquet as pq
from dagster import AssetCheckSeverity, AssetExecutionContext, AssetKey, MetadataValue

from formulacode_assets.assets._monthly import (
    MonthlyInput,
    month_check_evaluations,
    monthly_asset,
    monthly_output,
    months_of_run,
    tables_by_month,
)
from formulacode_assets.checks import MonthCheck, monthly_check_spec
from formulacode_assets.core.contracts import TASKS
from formulacode_assets.core.publishing import tasks as tasks_core
from formulacode_assets.core.publishing.tasks import decontamination_problems, task_rows
from formulacode_assets.resources.publishing import PublishingResource

DECONTAMINATION = monthly_check_spec(
    "decontamination",
    AssetKey("tasks"),
    blocking=True,
    description="every task's merged_at lies inside its month, and no task_id appears in two months",
)


@monthly_asset(
    TASKS, versioned_by=(tasks_core,), group_name="publishing", kinds={"python"}, extra_check_specs=(DECONTAMINATION,)
)
def tasks(
    context: AssetExecutionContext,
    publishing: PublishingResource,
    images: MonthlyInput,
    contexts: MonthlyInput,
    perf_commits: MonthlyInput,
):
    """The FormulaCode task table: one row per performance change whose base has an image.

    Changes without an image stay out, each with the reason in the metadata (``excluded``).
    """
    images_by_month = tables_by_month(context, images)
    contexts_by_month = tables_by_month(context, contexts)
    perf_by_month = tables_by_month(context, perf_commits)
    tables, excluded, windows = {}, [], {}
    for month, start, end in months_of_run(context):
        windows[month] = (start, end)
        rows, left_out = task_rows(
            month,
            images_by_month[month].to_pylist(),
            contexts_by_month[month].to_pylist(),
            perf_by_month[month].to_pylist(),
        )
        excluded.extend({"month": month, **e} for e in left_out)
        tables[month] = TASKS.to_table(rows)
        context.log.info(f"{month}: {len(rows)} tasks, {len(left_out)} changes without a task")
    n_tasks = sum(t.num_rows for t in tables.values())
    why_empty = None
    if n_tasks == 0:
        reasons = Counter(e["reason"] for e in excluded)
        why_empty = "; ".join(f"{n} × {r}" for r, n in reasons.most_common(5)) or "no validated contexts this month"
        context.log.warning(f"tasks: no task this month: {why_empty}")
    metadata = {
        "excluded": MetadataValue.json(excluded),
        "excluded_reasons": MetadataValue.json(dict(Counter(e["reason"] for e in excluded).most_common(10))),
        "why_empty": MetadataValue.text(why_empty or ""),
    }
    yield from monthly_output(context, TASKS, tables, metadata)
    earlier = earlier_task_months(publishing, set(tables))
    verdicts = []
    for month in sorted(tables):
        # Each month against every other month of this run and on disk.
        others = dict(earlier)
        for other in sorted(set(tables) - {month}):
            others.update(dict.fromkeys(tables[other].column("task_id").to_pylist(), other))
        problems = decontamination_problems({month: tables[month].to_pylist()}, windows, others)
        verdicts.append(
            MonthCheck(
                DECONTAMINATION.name,
                month,
                passed=not problems,
                severity=AssetCheckSeverity.ERROR,
                metadata={
                    "problems": MetadataValue.json(problems[:50]),
                    "n_problems": MetadataValue.int(len(problems)),
                },
            )
        )
    yield from month_check_evaluations(context, AssetKey("tasks"), {DECONTAMINATION.name}, verdicts)


def earlier_task_months(publishing: PublishingResource, months: set[str]) -> dict[str, str]:
    """``{task_id: month}`` of the task files already written for months outside this run."""
    found = {}
    folder = publishing.asset_dir("tasks")
    run_files = {m[:7] for m in months}
    for path in sorted(folder.glob("*.parquet")) if folder.is_dir() else []:
        if path.stem in run_files:
            continue
        table = pq.read_table(path, columns=["month", "task_id"])
        found.update(zip(table.column("task_id").to_pylist(), table.column("month").to_pylist(), strict=True))
    return found
