"""The README's backup and restore commands, run as written: a restore brings back both the
Dagster database (run history) and the DuckDB warehouse, and the stack runs on afterwards."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from jaffle_stack.compose import docker
from jaffle_stack.stack import ObservedRun, Stack

pytestmark = [pytest.mark.stack, pytest.mark.usefixtures("stack_healthy_after")]


def tar_volume(image: str, backup_dir: Path, *tar_args: str, read_only: bool = False) -> None:
    """The README's `docker run --rm -u 0 -v jaffle_warehouse:/v … tar …` line."""
    volume = "jaffle_warehouse:/v" + (":ro" if read_only else "")
    docker("run", "--rm", "-u", "0", "-v", volume, "-v", f"{backup_dir}:/backup", image,
           "tar", "-C", "/v", *tar_args)  # fmt: skip


def test_backup_then_restore_brings_back_runs_and_warehouse(
    stack: Stack, materialized: ObservedRun, tmp_path: Path
) -> None:
    stack.wait_idle()
    runs_at_backup = {r["runId"] for r in stack.runs()}
    tables_at_backup = stack.warehouse_counts(["customers", "orders"])
    image = stack.user_code_image()

    # Back up, as the README says.
    dump = stack.compose_bytes(
        "exec", "-T", "postgres", "pg_dump", "-U", "dagster", "-Fc", "dagster"
    )
    assert dump.startswith(b"PGDMP"), "pg_dump wrote a custom-format archive"
    stack.compose("stop", "daemon")
    tar_volume(image, tmp_path, "-czf", "/backup/warehouse.tgz", ".", read_only=True)
    assert (tmp_path / "warehouse.tgz").stat().st_size > 0
    stack.compose("start", "daemon")
    stack.wait_healthy()

    # Things change after the backup: a new run, then the warehouse is lost.
    later = stack.wait_run(stack.launch_all_assets())
    assert later["status"] == "SUCCESS"
    stack.wait_idle()
    stack.compose("stop", "webserver", "daemon")
    docker("run", "--rm", "-u", "0", "-v", "jaffle_warehouse:/v", image,
           "sh", "-c", "rm -rf /v/*")  # fmt: skip
    with pytest.raises(subprocess.CalledProcessError):
        stack.warehouse_counts(["customers"])

    # Restore, as the README says, with webserver and daemon stopped.
    stack.compose_bytes(
        "exec", "-T", "postgres", "pg_restore", "-U", "dagster", "-d", "dagster",
        "--clean", "--if-exists", stdin=dump,
    )  # fmt: skip
    tar_volume(image, tmp_path, "-xzf", "/backup/warehouse.tgz")
    stack.compose("start", "webserver", "daemon")
    stack.wait_healthy()

    assert {r["runId"] for r in stack.runs()} == runs_at_backup
    assert stack.warehouse_counts(["customers", "orders"]) == tables_at_backup
    # The restored file is still writable by the runs (uid 1000): the platform carries on.
    after = stack.wait_run(stack.launch_all_assets())
    assert after["status"] == "SUCCESS"
