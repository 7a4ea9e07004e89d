"""`dbt build` on raw tables in the daily contract: models, data tests and unit tests all run and
pass, for a first build and for an incremental build of one day."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess

from jaffle_platform import settings
from jaffle_platform.defs.ingest.contract import ORDER_STATUSES, PAYMENT_METHODS
from tests.integration.daily_data import (
    differences,
    expected_marts,
    generate_days,
    read_marts,
    write_customers,
    write_days,
)


def test_dbt_build_runs_models_data_tests_and_unit_tests(workspace, tmp_path):
    workspace.duckdb_path.parent.mkdir(parents=True)
    data = generate_days(dt.date(2018, 1, 1), days=6, customers=40, orders_per_day=10, seed=1)
    write_customers(workspace.duckdb_path, data.customers)
    write_days(workspace.duckdb_path, data, data.days[:5])

    project = tmp_path / "dbt_project"
    shutil.copytree(
        settings.dbt_project_dir(), project, ignore=shutil.ignore_patterns("target", "logs")
    )

    def dbt_build(*args: str) -> None:
        proc = subprocess.run(
            ["dbt", "build", "--project-dir", str(project), "--profiles-dir", str(project), *args],
            env={**os.environ, "DUCKDB_PATH": str(workspace.duckdb_path)},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stdout[-3000:]

    # An incremental build of the sixth day after a first build of five.
    dbt_build()
    write_days(workspace.duckdb_path, data, data.days[5:])
    dbt_build("--vars", json.dumps({"min_day": "2018-01-06", "max_day": "2018-01-07"}))
    expected = expected_marts(data, data.days, data.customers)
    assert differences(read_marts(workspace.duckdb_path), expected) == []

    results = json.loads((project / "target" / "run_results.json").read_text())["results"]
    by_type: dict[str, list[str]] = {}
    for r in results:
        by_type.setdefault(r["unique_id"].split(".")[0], []).append(r["status"])
    assert len(by_type["model"]) == 5
    assert len(by_type["unit_test"]) >= 5
    assert len(by_type["test"]) >= 10
    assert {s for statuses in by_type.values() for s in statuses} <= {"success", "pass"}

    # The accepted_values tests compiled from the contract's vars list exactly its values.
    compiled = {
        p.name: p.read_text() for p in (project / "target" / "compiled").rglob("accepted_values_*")
    }
    assert len(compiled) == 3
    for name, sql in compiled.items():
        values = ORDER_STATUSES if "status" in name else PAYMENT_METHODS
        listed = sql[sql.rindex("not in (") :]
        assert listed.split(")")[0].split("(")[1].strip() == ",".join(f"'{v}'" for v in values)
