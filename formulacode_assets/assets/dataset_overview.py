from dagster import AssetExecutionContext, AssetKey, MetadataValue, Output, asset

from formulacode_assets.assets._monthly import OWNERS, code_version_of
from formulacode_assets.core import overview


@asset(
    deps=[AssetKey(stage) for stage in overview.STAGES],
    group_name="publishing",
    kinds={"duckdb", "parquet"},
    code_version=code_version_of(overview),
    required_resource_keys={"io_manager"},
    owners=OWNERS,
)
def dataset_overview(context: AssetExecutionContext):
    """Every month at a glance: counts per month, category, repository and build failure cause.

    Unpartitioned: it reads all months through the DuckDB views (local or S3), so materialize it
    after a backfill or the monthly run. The table is one row per (month, stage) with status counts.
    """
    from formulacode_assets.storage.remote_catalog import open_catalog  # DuckDB + fsspec: not at definitions load

    data_dir = str(context.resources.io_manager._base_path)
    con = open_catalog(data_dir)
    counts = overview.counts_per_month(con)
    parts = overview.summary(con)
    months = sorted(set(counts.column("month").to_pylist()))
    performance = sum(n for _m, n, _judged in parts["performance_per_month"])
    return Output(
        counts,
        metadata={
            "overview": MetadataValue.md(overview.overview_markdown(counts, parts)),
            "months": MetadataValue.int(len(months)),
            "performance_changes": MetadataValue.int(performance),
            "repositories": MetadataValue.int(len(parts["repositories"])),
            "dagster/row_count": MetadataValue.int(counts.num_rows),
        },
    )
