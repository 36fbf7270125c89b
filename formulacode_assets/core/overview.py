"""A summary of every month of the dataset, for people browsing it: counts as markdown with a chart.

Reads the DuckDB views (:mod:`formulacode_assets.storage.remote_catalog`, local or S3) rather than
loading partitions as inputs, so months that were never materialized are simply absent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa

if TYPE_CHECKING:
    import duckdb

# Stages summarized per month, in pipeline order; a stage without data yet is left out.
STAGES = ("repos_valid", "merge_commits", "patches", "perf_commits", "contexts")
_BAR_WIDTH = 40

OVERVIEW_SCHEMA = pa.schema(
    [
        pa.field("month", pa.string()),
        pa.field("stage", pa.string()),
        pa.field("rows", pa.int64()),
        pa.field("ok", pa.int64()),
        pa.field("skipped", pa.int64()),
        pa.field("failed", pa.int64()),
    ]
)


def _views(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {name for (name,) in con.sql("select view_name from duckdb_views() where not internal").fetchall()}


def counts_per_month(con: duckdb.DuckDBPyConnection) -> pa.Table:
    """One row per (month, stage): rows and their statuses."""
    views = _views(con)
    parts = [
        f"select left(cast(month as varchar), 7) as month, '{stage}' as stage, count(*) as rows,"
        " count(*) filter (where status = 'ok') as ok, count(*) filter (where status = 'skipped') as skipped,"
        f" count(*) filter (where status = 'failed') as failed from {stage} group by all"
        for stage in STAGES
        if stage in views
    ]
    if not parts:
        return OVERVIEW_SCHEMA.empty_table()
    table = con.sql(" union all ".join(parts) + " order by month, stage").arrow()
    table = table.read_all() if hasattr(table, "read_all") else table
    return table.cast(OVERVIEW_SCHEMA)


def _rows(con, views: set[str], needs: str, sql: str) -> list[tuple]:
    return con.sql(sql).fetchall() if needs in views else []


def summary(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    views = _views(con)
    return {
        "performance_per_month": _rows(
            con,
            views,
            "perf_commits",
            "select left(cast(month as varchar), 7), count(*) filter (where is_performance), count(*)"
            " from perf_commits group by all order by 1",
        ),
        "categories": _rows(
            con,
            views,
            "perf_commits",
            "select coalesce(category, '(none)'), count(*) from perf_commits where is_performance"
            " group by all order by 2 desc, 1",
        ),
        "repositories": _rows(
            con,
            views,
            "patches",
            "select repo_name, count(*) from patches group by all order by 2 desc, 1 limit 25",
        ),
        "build_failures": _rows(
            con,
            views,
            "contexts",
            "select coalesce(stage_failed, '(unknown)'), coalesce(reason, ''), count(*) from contexts"
            " where status = 'failed' group by all order by 3 desc, 1, 2 limit 20",
        ),
    }


def bar_chart(pairs: list[tuple[str, int]], width: int = _BAR_WIDTH) -> str:
    """A text bar chart (renders anywhere markdown does, the Dagster UI included)."""
    if not pairs:
        return "_no data_"
    top = max(n for _, n in pairs) or 1
    label = max(len(k) for k, _ in pairs)
    lines = [f"{k.ljust(label)} │{'█' * max(1 if n else 0, round(n / top * width))} {n}" for k, n in pairs]
    return "```\n" + "\n".join(lines) + "\n```"


def _table(header: list[str], rows: list[tuple]) -> str:
    if not rows:
        return "_none_"
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += [
        "| " + " | ".join(str(v).replace("|", "\\|").replace("\n", " ")[:120] for v in row) + " |" for row in rows
    ]
    return "\n".join(lines)


def overview_markdown(counts: pa.Table, parts: dict[str, list[tuple]]) -> str:
    rows = counts.to_pylist()
    months = sorted({r["month"] for r in rows})
    patches = {r["month"]: r["rows"] for r in rows if r["stage"] == "patches"}
    by_month = [
        (m, *(next((r["ok"] for r in rows if r["month"] == m and r["stage"] == s), "–") for s in STAGES))
        for m in months
    ]
    sections = [
        f"# FormulaCode dataset overview\n\n{len(months)} months"
        + (f" ({months[0]} … {months[-1]})" if months else ""),
        "## Changes per month (patches)\n\n" + bar_chart([(m, patches.get(m, 0)) for m in months]),
        "## Rows ok per stage and month\n\n" + _table(["month", *STAGES], by_month),
        "## Performance changes per month\n\n"
        + _table(["month", "performance", "judged"], parts["performance_per_month"]),
        "## Categories\n\n" + bar_chart([(str(c), n) for c, n in parts["categories"]]),
        "## Repositories (changes, top 25)\n\n" + _table(["repository", "changes"], parts["repositories"]),
        "## Build failure causes (contexts)\n\n" + _table(["stage", "reason", "contexts"], parts["build_failures"]),
    ]
    return "\n\n".join(sections) + "\n"
