from itertools import groupby

from dagster import AssetExecutionContext, MetadataValue

from formulacode_assets.assets._monthly import (
    MonthlyInput,
    monthly_asset,
    monthly_output,
    months_of_run,
    tables_by_month,
)
from formulacode_assets.core.contracts import PATCHES
from formulacode_assets.core.mining import month_cache
from formulacode_assets.core.mining import patches as core_patches
from formulacode_assets.resources.git_source import GitSourceResource


@monthly_asset(PATCHES, versioned_by=(core_patches,), group_name="mining", kinds={"git"})
def patches(
    context: AssetExecutionContext,
    git_source: GitSourceResource,
    merge_commits: MonthlyInput,
    repos_valid: MonthlyInput,
):
    """Each merged change's diff against its base, with stats, a file summary and bench/docs/core flags.

    One batched ``git diff-tree`` per repository-month; a change whose objects cannot be read
    (missing blob, corrupt pack) becomes a failed row with git's reason. A repository-month whose
    input rows are unchanged is read from the mined-month cache, not diffed again.
    """
    changes_by_month = tables_by_month(context, merge_commits)
    repos_by_month = tables_by_month(context, repos_valid)
    cache = month_cache.MinedMonthCache.in_cache_dir(git_source.cache_dir)
    code_version = context.assets_def.code_versions_by_key[context.asset_key]
    mined = {"mined": 0, "cached": 0}
    tables = {}
    for month, _start, _end in months_of_run(context):
        repos = {r["repo_name"]: r for r in repos_by_month[month].to_pylist()}
        changes = sorted(changes_by_month[month].to_pylist(), key=lambda r: r["repo_name"])
        groups = [(name, list(rows)) for name, rows in groupby(changes, key=lambda r: r["repo_name"])]

        def diff(item: tuple[str, list[dict]], repos=repos) -> tuple[list[dict], bool]:
            name, rows = item
            repo = repos.get(name, {})
            return month_cache.cached_patch_rows(
                cache,
                code_version,
                git_source.mirror_path(name),
                name,
                rows,
                repo.get("benchmark_dir"),
                repo.get("asv_conf_path"),
            )

        per_repo = git_source.map_repos(diff, groups)
        for _rows, was_mined in per_repo:
            mined["mined" if was_mined else "cached"] += 1
        rows = [row for repo_rows, _was_mined in per_repo for row in repo_rows]
        context.log.info(f"{month}: {len(rows)} patches from {len(groups)} repositories")
        tables[month] = PATCHES.to_table(rows)
    yield from monthly_output(
        context, PATCHES, tables, {f"repo_months_{k}": MetadataValue.int(v) for k, v in mined.items()}
    )
