from dagster import AssetExecutionContext

from formulacode_assets.assets._monthly import (
    MonthlyInput,
    monthly_asset,
    monthly_output,
    months_of_run,
    tables_by_month,
)
from formulacode_assets.core.contracts import REPOS_VALID
from formulacode_assets.core.github import source as github_source
from formulacode_assets.core.github.response_cache import month_is_closed
from formulacode_assets.core.mining import asv_config, mirror, repos
from formulacode_assets.resources.git_source import GitSourceResource
from formulacode_assets.resources.github import GitHubResource


@monthly_asset(REPOS_VALID, versioned_by=(repos, asv_config, mirror, github_source), group_name="mining", kinds={"git"})
def repos_valid(
    context: AssetExecutionContext,
    git_source: GitSourceResource,
    github_api: GitHubResource,
    repos_discovered: MonthlyInput,
):
    """Repositories fit to mine in the month: an ``asv.conf.json`` on the default branch at month end.

    GitHub source: also accessible, not a fork, not archived or disabled, not asv itself, at least
    ``min_stars`` stars. Every discovered repository has a row; excluded or unreachable ones say why.
    Mirrors are fetched once per run (a backfill of many months fetches once).
    """
    discovered = tables_by_month(context, repos_discovered)
    api = github_api.source(log=context.log.warning) if git_source.source == "github" else None
    specs, metadata, to_sync = {}, {}, {}
    for month, _start, end in months_of_run(context):
        specs[month] = repos.specs_from_discovered(discovered[month].to_pylist())
        if api is not None:
            names = [s.repo_name for s in specs[month] if s.problem is None]
            metadata[month] = api.repositories(names, closed=month_is_closed(end), month=month)
        for spec in repos.mirror_candidates(specs[month], metadata.get(month), github_api.min_stars):
            to_sync[spec.repo_name] = spec
    context.log.info(f"syncing {len(to_sync)} mirrors ({git_source.source} source)")
    mirrors = git_source.sync_all([to_sync[name] for name in sorted(to_sync)])
    for name, result in mirrors.items():
        context.log.info(f"{name}: {result if isinstance(result, str) else result.action}")
    tables = {
        month: REPOS_VALID.to_table(
            repos.repos_valid_rows(
                specs[month], mirrors, git_source.source, month, end, metadata.get(month), github_api.min_stars
            )
        )
        for month, _start, end in months_of_run(context)
    }
    yield from monthly_output(context, REPOS_VALID, tables)
