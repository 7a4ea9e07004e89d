"""Backups as the README gives them: the `backup` job writes a Postgres dump and a warehouse
snapshot into JAFFLE_BACKUP_DIR, and `docker compose run --rm restore <name>` brings back both
the run history and the warehouse; the stack runs on afterwards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jaffle_stack.compose import docker
from jaffle_stack.graphql import last_sample_day
from jaffle_stack.stack import ObservedRun, Stack

pytestmark = [
    pytest.mark.stack,
    pytest.mark.usefixtures("schedule_stopped", "stack_healthy_after"),
]


def test_backup_job_then_restore_brings_back_runs_and_warehouse(
    stack: Stack, materialized: ObservedRun
) -> None:
    stack.wait_idle()
    backup_run = stack.wait_run(stack.launch_job("backup"))
    assert backup_run["status"] == "SUCCESS"
    folders = sorted(Path(stack.env["JAFFLE_BACKUP_DIR"]).glob("jaffle-backup-*"))
    assert folders, "the job wrote a backup folder on the host"
    backup = folders[-1]
    manifest = json.loads((backup / "manifest.json").read_text())
    assert (backup / "dagster.pgdump").read_bytes().startswith(b"PGDMP"), manifest
    runs_at_backup = {r["runId"] for r in stack.runs()} - {backup_run["runId"]}
    tables_at_backup = stack.warehouse_counts(["customers", "orders"])

    # Things change after the backup: a new run, then the warehouse is lost.
    later = stack.wait_run(stack.launch_all_assets(days=last_sample_day()))
    assert later["status"] == "SUCCESS"
    stack.wait_idle()
    stack.compose("stop", "webserver", "daemon")
    docker("run", "--rm", "-u", "0", "-v", "jaffle_warehouse:/v", stack.user_code_image(),
           "sh", "-c", "rm -rf /v/*")  # fmt: skip

    # Restore, as the README says, with webserver and daemon stopped.
    out = stack.compose("run", "--rm", "restore", backup.name)
    stack.compose("start", "webserver", "daemon")
    stack.wait_healthy()

    restored = {r["runId"] for r in stack.runs()}
    assert runs_at_backup <= restored, out
    assert later["runId"] not in restored
    assert stack.warehouse_counts(["customers", "orders"]) == tables_at_backup
    # The restored file is still writable by the runs (uid 1000): the platform carries on.
    after = stack.wait_run(stack.launch_all_assets(days=last_sample_day()))
    assert after["status"] == "SUCCESS"
