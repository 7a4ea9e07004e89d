"""`dbt build` on loaded raw tables: models, data tests and unit tests all run and pass."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import duckdb

from jaffle_platform import settings
from jaffle_platform.defs.ingest.contract import ORDER_STATUSES, PAYMENT_METHODS
from jaffle_platform.defs.ingest.loader import RAW_TABLES, load_raw_table


def test_dbt_build_runs_models_data_tests_and_unit_tests(workspace, tmp_path):
    workspace.duckdb_path.parent.mkdir(parents=True)
    con = duckdb.connect(str(workspace.duckdb_path))
    for table in RAW_TABLES.values():
        load_raw_table(con, table, workspace.raw_dir / table.file_name)
    con.close()

    project = tmp_path / "dbt_project"
    shutil.copytree(
        settings.dbt_project_dir(), project, ignore=shutil.ignore_patterns("target", "logs")
    )
    proc = subprocess.run(
        ["dbt", "build", "--project-dir", str(project), "--profiles-dir", str(project)],
        env={**os.environ, "DUCKDB_PATH": str(workspace.duckdb_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]

    results = json.loads((project / "target" / "run_results.json").read_text())["results"]
    by_type: dict[str, list[str]] = {}
    for r in results:
        by_type.setdefault(r["unique_id"].split(".")[0], []).append(r["status"])
    assert len(by_type["model"]) == 5
    assert len(by_type["unit_test"]) >= 2
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
