"""The monthly partitions shared by every monthly stage.

A month is the half-open UTC window ``[first day, first day of next month)`` on the merge time of a
change; keys look like ``2024-02-01``. The first month is ``FORMULACODE_START_MONTH`` (default
2024-01-01); the newest partition is the month that has just closed.
"""

import os

from dagster import MonthlyPartitionsDefinition

DEFAULT_START_MONTH = "2024-01-01"

monthly_partitions = MonthlyPartitionsDefinition(
    start_date=os.environ.get("FORMULACODE_START_MONTH", DEFAULT_START_MONTH),
    timezone="UTC",
    end_offset=0,
)
