"""The platform's one partitioning: a day, from JAFFLE_PARTITIONS_START up to today.

The contract between the loads and dbt (issue 10): a partition key is an ISO day `YYYY-MM-DD`;
a run covers the half-open window `[start, end)` of its partition key range; raw_orders and
raw_payments carry the day their file was for in a `load_day` DATE column.
"""

from __future__ import annotations

import dagster as dg

from jaffle_platform import settings
from jaffle_platform.defs.ingest.contract import LOAD_DAY_COLUMN

__all__ = ["LOAD_DAY_COLUMN", "daily_partitions"]


def daily_partitions() -> dg.DailyPartitionsDefinition:
    """Days from JAFFLE_PARTITIONS_START to today (in JAFFLE_SCHEDULE_TIMEZONE), today included."""
    return dg.DailyPartitionsDefinition(
        start_date=settings.partitions_start().isoformat(),
        timezone=settings.schedule_timezone(),
        end_offset=1,
    )
