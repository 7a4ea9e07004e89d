"""`jaffle-restore BACKUP`: puts a backup folder back, Dagster's database and the warehouse.

Run it with the webserver and the daemon stopped (docs/operations.md): the Postgres dump is
restored in one transaction (pg_restore --clean --if-exists --no-owner --single-transaction),
then the warehouse file is swapped in with a rename. Before anything is touched the backup is
checked against its manifest, and a failure changes nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import psycopg2
from dagster._core.events import DagsterEvent, DagsterEventType

from jaffle_platform import settings
from jaffle_platform.defs.maintenance.backup import (
    MANIFEST_FILE,
    MANIFEST_FORMAT,
    backups_in,
    copy_with_sha256,
    sha256_of,
)
from jaffle_platform.defs.maintenance.postgres import (
    PostgresTarget,
    PostgresToolError,
    instance_postgres,
    run_tool,
)

# Other sessions on Dagster's database are waited for this long before the restore refuses:
# a stopped daemon's last connection may take a moment to close.
OTHER_SESSIONS_WAIT_SECONDS = 10.0


class RestoreError(Exception):
    """The restore could not be done; the message says why and what was left unchanged."""


def read_manifest(backup: Path) -> dict[str, Any]:
    """The backup's manifest, after checking that every file it lists is there and intact."""
    path = backup / MANIFEST_FILE
    if not path.is_file():
        raise RestoreError(f"{backup} is not a backup folder: it has no {MANIFEST_FILE}")
    try:
        manifest = json.loads(path.read_text())
    except ValueError as e:
        raise RestoreError(f"{path} is not valid JSON: {e}") from None
    if manifest.get("format") != MANIFEST_FORMAT:
        raise RestoreError(f"{path}: unknown backup format {manifest.get('format')!r}")
    for part in ("postgres", "warehouse"):
        entry = manifest.get(part)
        if entry is None:
            continue
        file = backup / entry["file"]
        if not file.is_file():
            raise RestoreError(f"{file} is missing")
        if file.stat().st_size != entry["bytes"] or sha256_of(file) != entry["sha256"]:
            raise RestoreError(f"{file} does not match its checksum in {MANIFEST_FILE}: damaged")
    return manifest


def other_sessions(target: PostgresTarget) -> list[str]:
    """Application names of the other sessions connected to Dagster's database."""
    try:
        con = psycopg2.connect(
            dbname=target.dbname,
            host=target.host,
            port=target.port,
            user=target.user,
            password=target.password,
        )
    except psycopg2.Error as e:
        raise RestoreError(f"cannot connect to Dagster's {target}: {e}".strip()) from None
    try:
        with con.cursor() as cur:
            cur.execute(
                "select coalesce(nullif(application_name, ''), 'unnamed client') "
                "from pg_stat_activity where datname = current_database() "
                "and pid <> pg_backend_pid()"
            )
            return sorted(row[0] for row in cur.fetchall())
    finally:
        con.close()


def wait_for_no_other_sessions(target: PostgresTarget, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while sessions := other_sessions(target):
        if time.monotonic() > deadline:
            raise RestoreError(
                f"{len(sessions)} other session(s) are connected to Dagster's {target} "
                f"({', '.join(sorted(set(sessions)))}): stop the webserver and the daemon "
                "(`docker compose stop webserver daemon`) and wait for runs to end, then "
                "restore again. Nothing was changed."
            )
        time.sleep(0.5)


def warehouse_in_use(path: Path) -> str | None:
    """Why the warehouse file cannot be replaced now (a process holds it), or None."""
    if not path.exists():
        return None
    try:
        duckdb.connect(str(path)).close()
    except duckdb.Error as e:
        return str(e)
    return None


def finish_backup_run(instance: dg.DagsterInstance, run_id: str | None) -> bool:
    """The run that took the backup was still running when Postgres was dumped: record its end.

    Left as it was, the restored run would stay STARTED until run monitoring gave up on it, and
    hold the `duckdb` pool meanwhile.
    """
    run = instance.get_run_by_id(run_id) if run_id else None
    if run is None or run.is_finished:
        return False
    instance.report_dagster_event(
        DagsterEvent(
            event_type_value=DagsterEventType.RUN_SUCCESS.value,
            job_name=run.job_name,
            message="This run took the backup that was restored here (jaffle-restore).",
        ),
        run_id=run.run_id,
    )
    instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
    return True


def restore(
    backup: Path,
    warehouse: Path,
    say: Callable[[str], None] = print,
    other_sessions_wait: float = OTHER_SESSIONS_WAIT_SECONDS,
) -> dict[str, Any]:
    """Restores Dagster's database (through the DAGSTER_HOME instance) and the warehouse."""
    manifest = read_manifest(backup)
    say(f"backup {backup.name} of {manifest['created_at']}: files match the manifest")
    pg_entry, wh_entry = manifest.get("postgres"), manifest.get("warehouse")

    staged: Path | None = None
    if wh_entry is not None:
        reason = warehouse_in_use(warehouse)
        if reason:
            raise RestoreError(
                f"the warehouse {warehouse} is in use by another process ({reason}): stop the "
                "daemon and wait for runs to end. Nothing was changed."
            )
        warehouse.parent.mkdir(parents=True, exist_ok=True)
        staged = warehouse.with_name(warehouse.name + ".restore.tmp")
        staged.unlink(missing_ok=True)
    try:
        if staged is not None and wh_entry is not None:
            try:
                copied = copy_with_sha256(backup / wh_entry["file"], staged)
            except OSError as e:
                raise RestoreError(
                    f"copying the warehouse to {staged} failed: {e.strerror or e}. "
                    "Nothing was changed."
                ) from None
            if copied != wh_entry["sha256"]:
                raise RestoreError(
                    f"the warehouse copied to {staged} differs from the backup's. "
                    "Nothing was changed."
                )

        if pg_entry is not None:
            with dg.DagsterInstance.get() as instance:
                target = instance_postgres(instance)
            if target is None:
                raise RestoreError(
                    "the backup holds a Postgres dump, but this Dagster instance (DAGSTER_HOME's "
                    "dagster.yaml) does not store its runs in Postgres. Nothing was changed."
                )
            wait_for_no_other_sessions(target, other_sessions_wait)
            say(f"restoring Dagster's {target} from {pg_entry['file']}")
            try:
                run_tool(
                    "pg_restore",
                    [
                        "--clean",
                        "--if-exists",
                        "--no-owner",
                        "--single-transaction",
                        "--exit-on-error",
                        "--no-password",
                        str(backup / pg_entry["file"]),
                    ],
                    target,
                )
            except PostgresToolError as e:
                raise RestoreError(f"{e}. Dagster's database was left unchanged.") from None
            with dg.DagsterInstance.get() as instance:
                if finish_backup_run(instance, manifest.get("dagster_run_id")):
                    say(f"marked the backup's own run {manifest['dagster_run_id']} finished")
        else:
            say("the backup holds no Postgres dump: Dagster's database is left as it is")

        if staged is not None:
            # A write-ahead log beside the old file would be replayed into the restored one.
            warehouse.with_name(warehouse.name + ".wal").unlink(missing_ok=True)
            os.replace(staged, warehouse)
            staged = None
            say(f"restored the warehouse {warehouse}")
        else:
            say("the backup holds no warehouse snapshot: the warehouse is left as it is")
    finally:
        if staged is not None:
            staged.unlink(missing_ok=True)
    return manifest


def find_backup(arg: str, folder: Path) -> Path:
    """A backup folder from a path, a name in BACKUPS_DIR, or `latest` (the newest there)."""
    if arg == "latest":
        found = backups_in(folder)
        if not found:
            raise RestoreError(f"there is no backup in {folder}")
        return found[-1]
    for candidate in (Path(arg), folder / arg):
        if candidate.is_dir():
            return candidate.resolve()
    names = ", ".join(p.name for p in backups_in(folder)) or "none"
    raise RestoreError(f"no backup {arg!r}: not a folder, nor one in {folder} (there: {names})")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="jaffle-restore",
        description="Restore a backup written by the backup job: Dagster's Postgres database "
        "(run history, schedules) and the DuckDB warehouse. Stop the webserver and the daemon "
        "first. Without an argument, lists the backups.",
    )
    parser.add_argument(
        "backup",
        nargs="?",
        help="a backup folder, its name in BACKUPS_DIR (jaffle-backup-20260101T020000Z), or "
        "`latest`",
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        folder = settings.backups_dir()
        if args.backup is None:
            names = [p.name for p in backups_in(folder)]
            print(f"backups in {folder}, oldest first:" if names else f"no backup in {folder}")
            print("\n".join(names))
            return 2
        backup = find_backup(args.backup, folder)
        restore(backup, settings.duckdb_path())
    except (RestoreError, ValueError, dg.DagsterError) as e:
        print(f"jaffle-restore: {e}", file=sys.stderr)
        return 1
    print(
        f"restored {backup.name} in {time.monotonic() - started:.1f} s; "
        "start the webserver and the daemon again"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
