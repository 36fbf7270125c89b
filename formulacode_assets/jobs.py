"""The monthly job over the whole graph and the schedule that runs the month that just closed."""

import warnings

from dagster import AssetSelection, build_schedule_from_partitioned_job, define_asset_job

# The job mixes single-run mining stages with one-month-per-run build stages, so Dagster warns (on
# every CLI call, when it resolves the job) that a backfill of the whole job takes the stricter
# policy. That is the intended behaviour: a backfill of this job runs one month per run. Silenced
# here, for this job only.
warnings.filterwarnings(
    "ignore", message="Asset job monthly_assets materializes assets with varying BackfillPolicies", category=UserWarning
)

monthly_job = define_asset_job(
    "monthly_assets",
    selection=AssetSelection.all(),
    description="Materialize every monthly stage for one month; a backfill of the job runs one month per run.",
)

# Runs on the 2nd at 03:00 UTC for the month that closed: late pushes dated the last day of the
# month get a day to arrive.
monthly_schedule = build_schedule_from_partitioned_job(
    monthly_job, day_of_month=2, hour_of_day=3, minute_of_hour=0, name="monthly_assets_schedule"
)
