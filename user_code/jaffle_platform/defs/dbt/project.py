"""The dbt project, built on first use: importing this module reads no env var, parses nothing."""

from __future__ import annotations

import functools

from dagster_dbt import DbtProject

from jaffle_platform import settings


@functools.cache
def jaffle_dbt_project() -> DbtProject:
    """The project at DBT_PROJECT_DIR, with a manifest ready for @dbt_assets."""
    project = DbtProject(project_dir=settings.dbt_project_dir())
    # `dagster dev` re-parses on every load so model edits show up; deployments (the image build)
    # prepare the manifest ahead of time. A fresh clone has none yet, so it is parsed once here too.
    if not project.manifest_path.exists():
        project.preparer.prepare(project)
    else:
        project.prepare_if_dev()
    return project
