from dagster import AssetExecutionContext

from formulacode_assets.assets._monthly import (
    MonthlyInput,
    monthly_asset,
    monthly_output,
    months_of_run,
    tables_by_month,
)
from formulacode_assets.core import merged_changes
from formulacode_assets.core.contracts import MERGE_COMMITS
from formulacode_assets.resources.git_source import GitSourceResource


@monthly_asset(MERGE_COMMITS, versioned_by=(merged_changes,), group_name="mining", kinds={"git"})
def merge_commits(context: AssetExecutionContext, git_source: GitSourceResource, repos_valid: MonthlyInput):
    """Changes merged into each valid repository's default branch in the month (first-parent, UTC committer date).

    One ``git log`` per repository-month; a repository whose history cannot be read becomes a
    failed row and the rest of the month goes on.
    """
    valid_by_month = tables_by_month(context, repos_valid)
    tables = {}
    for month, start, end in months_of_run(context):
        valid = [r for r in valid_by_month[month].to_pylist() if r["status"] == "ok"]
        per_repo = git_source.map_repos(
            lambda r, month=month, start=start, end=end: merged_changes.merge_commit_rows(
                git_source.mirror_path(r["repo_name"]), r["repo_name"], r["default_branch"], month, start, end
            ),
            valid,
        )
        rows = [row for repo_rows in per_repo for row in repo_rows]
        context.log.info(f"{month}: {len(rows)} merged changes in {len(valid)} repositories")
        tables[month] = MERGE_COMMITS.to_table(rows)
    yield from monthly_output(context, MERGE_COMMITS, tables)
