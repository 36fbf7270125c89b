from dagster import AssetExecutionContext

from formulacode_assets.assets._monthly import monthly_asset, monthly_output, months_of_run
from formulacode_assets.core import asv_config, mirror, repos
from formulacode_assets.core.contracts import REPOS_VALID
from formulacode_assets.resources.git_source import GitSourceResource


@monthly_asset(REPOS_VALID, versioned_by=(repos, asv_config, mirror), group_name="mining", kinds={"git"})
def repos_valid(context: AssetExecutionContext, git_source: GitSourceResource):
    """Repositories fit to mine in the month: an ``asv.conf.json`` on the default branch at month end.

    Every listed repository has a row; excluded or unreachable ones say why. Mirrors are fetched
    once per run (a backfill of many months fetches once).
    """
    specs = git_source.repositories()
    context.log.info(f"syncing {len(specs)} repositories from the {git_source.source} source")
    mirrors = git_source.sync_all(specs)
    for name, result in mirrors.items():
        context.log.info(f"{name}: {result if isinstance(result, str) else result.action}")
    tables = {
        month: REPOS_VALID.to_table(repos.repos_valid_rows(specs, mirrors, git_source.source, month, end))
        for month, _start, end in months_of_run(context)
    }
    yield from monthly_output(context, REPOS_VALID, tables)
