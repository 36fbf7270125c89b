"""The monthly job over the whole graph and the schedule that runs the month that just closed."""

from dagster import AssetSelection, build_schedule_from_partitioned_job, define_asset_job

monthly_job = define_asset_job(
    "monthly_assets",
    selection=AssetSelection.all(),
    description="Materialize every monthly stage for one month (or a range, in one run).",
)

# Runs on the 2nd at 03:00 UTC for the month that closed: late pushes dated the last day of the
# month get a day to arrive.
monthly_schedule = build_schedule_from_partitioned_job(
    monthly_job, day_of_month=2, hour_of_day=3, minute_of_hour=0, name="monthly_assets_schedule"
)
