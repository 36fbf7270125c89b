from dagster import AssetExecutionContext, MetadataValue

from formulacode_assets.assets._monthly import (
    MonthlyInput,
    monthly_asset,
    monthly_output,
    months_of_run,
    tables_by_month,
)
from formulacode_assets.core.contracts import MERGE_COMMITS
from formulacode_assets.core.github import source as github_source
from formulacode_assets.core.github.response_cache import month_is_closed
from formulacode_assets.core.mining import merged_changes, month_cache
from formulacode_assets.resources.git_source import GitSourceResource
from formulacode_assets.resources.github import GitHubResource


@monthly_asset(
    MERGE_COMMITS, versioned_by=(merged_changes, github_source), group_name="mining", kinds={"git", "github"}
)
def merge_commits(
    context: AssetExecutionContext,
    git_source: GitSourceResource,
    github_api: GitHubResource,
    repos_valid: MonthlyInput,
):
    """Changes merged into each valid repository's default branch in the month.

    git / sample source: first-parent commits by UTC committer date, one ``git log`` per
    repository-month. GitHub source: every PR merged in the month (by ``merged_at``, whenever it
    was opened), with its text, labels, discussion before the merge and linked issues; the code
    side (base sha, parents) comes from the mirror. A repository or PR that cannot be read becomes a
    failed row and the rest of the month goes on. A git-source repository-month whose history
    through the window end is unchanged is read from the mined-month cache, not mined again.
    """
    valid_by_month = tables_by_month(context, repos_valid)
    api = github_api.source(log=context.log.warning) if git_source.source == "github" else None
    cache = month_cache.MinedMonthCache.in_cache_dir(git_source.cache_dir)
    code_version = context.assets_def.code_versions_by_key[context.asset_key]
    mined = {"mined": 0, "cached": 0}  # git-source repository-months
    tables = {}
    for month, start, end in months_of_run(context):
        valid = [r for r in valid_by_month[month].to_pylist() if r["status"] == "ok"]
        closed = month_is_closed(end)

        def mine(repo: dict, month=month, start=start, end=end, closed=closed) -> tuple[list[dict], bool]:
            git_dir = git_source.mirror_path(repo["repo_name"])
            if api is None:
                return month_cache.cached_merge_commit_rows(
                    cache, code_version, git_dir, repo["repo_name"], repo["default_branch"], month, start, end
                )
            pulls, capped = api.merged_pull_requests(repo["repo_name"], repo["default_branch"], start, end, closed)
            for slice_ in capped:
                context.log.warning(f"{repo['repo_name']}: PR search slice over the cap, results lost: {slice_}")
            return merged_changes.pull_request_rows(git_dir, repo["repo_name"], month, start, end, pulls), True

        per_repo = git_source.map_repos(mine, valid)
        for _rows, was_mined in per_repo:
            mined["mined" if was_mined else "cached"] += 1
        rows = [row for repo_rows, _was_mined in per_repo for row in repo_rows]
        context.log.info(f"{month}: {len(rows)} merged changes in {len(valid)} repositories")
        tables[month] = MERGE_COMMITS.to_table(rows)
    yield from monthly_output(context, MERGE_COMMITS, tables, _mining_metadata(mined) if api is None else None)


def _mining_metadata(mined: dict[str, int]) -> dict:
    return {f"repo_months_{k}": MetadataValue.int(v) for k, v in mined.items()}
