"""Run config cannot change what a resource executes or where it writes (issue 6, item 4)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from jaffle_platform.definitions import defs

HOSTILE = {
    "dbt executable": {"dbt": {"dbt_executable": "python3"}},
    "dbt flags": {"dbt": {"global_config_flags": ["-c", "open('{marker}', 'w')"]}},
    "dbt project dir": {"dbt": {"project_dir": "/tmp"}},
    "dbt profiles dir": {"dbt": {"profiles_dir": "/tmp"}},
    "warehouse path": {"warehouse": {"path": "{marker}"}},
}


@pytest.mark.parametrize("attempt", sorted(HOSTILE))
def test_run_config_that_reconfigures_a_resource_is_refused(attempt: str, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    resources = {
        key: {"config": {k: _fill(v, marker) for k, v in config.items()}}
        for key, config in HOSTILE[attempt].items()
    }
    job = defs.resolve_job_def("refresh_all")
    with pytest.raises(dg.DagsterInvalidConfigError) as refused:
        job.execute_in_process(run_config={"resources": resources})
    assert "Received unexpected config entry" in str(refused.value)
    assert not marker.exists()


def _fill(value, marker: Path):
    if isinstance(value, list):
        return [_fill(v, marker) for v in value]
    return value.replace("{marker}", str(marker)) if isinstance(value, str) else value
