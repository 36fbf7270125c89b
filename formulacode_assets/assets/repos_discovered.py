from dagster import AssetExecutionContext

from formulacode_assets.assets._monthly import monthly_asset, monthly_output, months_of_run
from formulacode_assets.core.contracts import REPOS_DISCOVERED
from formulacode_assets.core.github import source as github_source
from formulacode_assets.core.github.response_cache import month_is_closed
from formulacode_assets.core.mining import repos
from formulacode_assets.recover import recover_dead_runs
from formulacode_assets.resources.git_source import GitSourceResource
from formulacode_assets.resources.github import GitHubResource


@monthly_asset(REPOS_DISCOVERED, versioned_by=(repos, github_source), group_name="mining", kinds={"github"})
def repos_discovered(context: AssetExecutionContext, git_source: GitSourceResource, github_api: GitHubResource):
    """Candidate repositories: the repository list, plus (GitHub source) code search for ``asv.conf.json``.

    Code search returns at most 1,000 results per query: the query is split by file size until
    every slice is under the cap; a slice that cannot be split is logged and counted in metadata.
    """
    recover_dead_runs(context.instance, log=context.log.warning)  # runs killed earlier stay STARTED otherwise
    listed = git_source.repositories()
    listed_by = "sample" if git_source.source == "sample" else "csv"
    tables, capped_by_month = {}, {}
    for month, _start, end in months_of_run(context):
        hits = None
        if git_source.source == "github":
            api = github_api.source(log=context.log.warning)
            hits, capped = api.discover_asv_repositories(closed=month_is_closed(end), month=month)
            for slice_ in capped:
                context.log.warning(f"code search slice over the cap, results lost: {slice_}")
            capped_by_month[month] = {"search_slices_over_cap": len(capped)}
            context.log.info(f"{month}: code search found {len(hits)} repositories with asv.conf.json")
        tables[month] = REPOS_DISCOVERED.to_table(repos.discovered_rows(month, listed, listed_by, hits))
    yield from monthly_output(context, REPOS_DISCOVERED, tables, metadata_by_month=capped_by_month)
