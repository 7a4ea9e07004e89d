"""The code location: every domain under defs/ (assets, resources, automation), one executor,
and the freshness policies of the assets users read."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from jaffle_platform.defs.alerts.freshness import with_freshness_policies

defs = with_freshness_policies(
    dg.Definitions.merge(
        dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
        # One process runs every step: a step process per asset would re-import dbt each time
        # (about 5 s a step), which dominated the tutorial's run time.
        dg.Definitions(executor=dg.in_process_executor),
    )
)
