"""A tiny code location for the login gate's tests: one asset, one job, one schedule."""

import dagster as dg


@dg.asset
def hello() -> int:
    """A constant, so the gate's tests have something to launch and wipe."""
    return 1


hello_job = dg.define_asset_job("hello_job", selection=[hello])
hello_schedule = dg.ScheduleDefinition(
    name="hello_schedule", job=hello_job, cron_schedule="0 * * * *"
)

defs = dg.Definitions(assets=[hello], jobs=[hello_job], schedules=[hello_schedule])
