"""The one entry point: every stage's assets and checks, the monthly job and schedule, the resources."""

from dagster import Definitions

from formulacode_assets.assets.contexts import contexts
from formulacode_assets.assets.dataset import dataset
from formulacode_assets.assets.dataset_overview import dataset_overview
from formulacode_assets.assets.human_speedups import human_speedups
from formulacode_assets.assets.images import images, images_exist
from formulacode_assets.assets.merge_commits import merge_commits
from formulacode_assets.assets.patches import patches
from formulacode_assets.assets.perf_commits import perf_commits
from formulacode_assets.assets.repos_discovered import repos_discovered
from formulacode_assets.assets.repos_valid import repos_valid
from formulacode_assets.assets.tasks import tasks
from formulacode_assets.jobs import monthly_job, monthly_schedule
from formulacode_assets.resources import build_executor, build_resources

defs = Definitions(
    assets=[
        repos_discovered,
        repos_valid,
        merge_commits,
        patches,
        perf_commits,
        contexts,
        human_speedups,
        images,
        tasks,
        dataset,
        dataset_overview,
    ],
    asset_checks=[images_exist],
    jobs=[monthly_job],
    schedules=[monthly_schedule],
    resources=build_resources(),
    executor=build_executor(),
)
