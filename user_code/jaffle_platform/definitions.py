"""The code location: every domain under defs/ (assets, resources, automation), one executor."""

from __future__ import annotations

import warnings

import dagster as dg

import jaffle_platform.defs
from jaffle_platform import settings


def load_defs_folder() -> dg.Definitions:
    """What `dg.load_from_defs_folder` does once it has read [tool.dg] from pyproject.toml: import
    every module under defs/ and merge what each defines (assets, jobs, schedules, sensors, and
    what its `@dg.definitions` function returns: the resources, the refresh job and schedule)."""
    with warnings.catch_warnings():
        # The loader calls helpers marked preview; load_from_defs_folder silences them the same way.
        warnings.simplefilter("ignore", category=dg.PreviewWarning)
        return dg.ComponentTree.from_module(
            defs_module=jaffle_platform.defs, project_root=settings.PACKAGE_DIR.parents[1]
        ).build_defs()


defs = dg.Definitions.merge(
    load_defs_folder(),
    # One process runs every step: a step process per asset would re-import dbt each time
    # (about 5 s a step), which dominated the tutorial's run time.
    dg.Definitions(executor=dg.in_process_executor),
)
