from itertools import groupby

from dagster import AssetExecutionContext

from formulacode_assets.assets._monthly import (
    MonthlyInput,
    monthly_asset,
    monthly_output,
    months_of_run,
    tables_by_month,
)
from formulacode_assets.core.contracts import PATCHES
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
    (missing blob, corrupt pack) becomes a failed row with git's reason.
    """
    changes_by_month = tables_by_month(context, merge_commits)
    repos_by_month = tables_by_month(context, repos_valid)
    tables = {}
    for month, _start, _end in months_of_run(context):
        repos = {r["repo_name"]: r for r in repos_by_month[month].to_pylist()}
        changes = sorted(changes_by_month[month].to_pylist(), key=lambda r: r["repo_name"])
        groups = [(name, list(rows)) for name, rows in groupby(changes, key=lambda r: r["repo_name"])]
        per_repo = git_source.map_repos(
            lambda item, repos=repos: core_patches.patch_rows(
                git_source.mirror_path(item[0]),
                item[1],
                repos.get(item[0], {}).get("benchmark_dir"),
                repos.get(item[0], {}).get("asv_conf_path"),
            ),
            groups,
        )
        rows = [row for repo_rows in per_repo for row in repo_rows]
        context.log.info(f"{month}: {len(rows)} patches from {len(groups)} repositories")
        tables[month] = PATCHES.to_table(rows)
    yield from monthly_output(context, PATCHES, tables)
