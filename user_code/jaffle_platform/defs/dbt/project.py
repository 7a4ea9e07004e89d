"""The dbt project; `dagster-dbt project prepare-and-package --file` on this module builds it."""

from __future__ import annotations

from dagster_dbt import DbtProject

from jaffle_platform import settings

jaffle_dbt_project = DbtProject(project_dir=settings.dbt_project_dir())

# `dagster dev` re-parses on every load so model edits show up; deployments (the image build)
# prepare the manifest ahead of time. A fresh clone has none yet, so it is parsed once here too.
if not jaffle_dbt_project.manifest_path.exists():
    jaffle_dbt_project.preparer.prepare(jaffle_dbt_project)
else:
    jaffle_dbt_project.prepare_if_dev()
