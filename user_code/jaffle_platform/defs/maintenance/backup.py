"""The backup job: Dagster's database and the warehouse, together, in one timestamped folder."""

import datetime as dt
import errno
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from jaffle_platform import settings
from jaffle_platform.defs.maintenance.postgres import (
    PostgresTarget,
    PostgresToolError,
    instance_postgres,
    run_tool,
)
from jaffle_platform.defs.publish.atomic import fsync_path
from jaffle_platform.defs.refresh.schedules import platform_schedule
from jaffle_platform.resources import DUCKDB_POOL

PREFIX = "jaffle-backup-"
# Only folders named like this are ever rotated away: nothing else in the folder is touched.
# A second backup in the same second (a manual run beside the nightly one) gets "-2", "-3"...
NAME = re.compile(r"^jaffle-backup-\d{8}T\d{6}Z(-\d+)?$")
TMP_SUFFIX = ".tmp"
POSTGRES_FILE = "dagster.pgdump"
WAREHOUSE_FILE = "warehouse.duckdb"
MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = 1
BACKUP_CRON = "0 2 * * *"
CHUNK = 1 << 20


class BackupError(Exception):
    """The backup could not be made; the message names what failed. No folder is left behind."""


@dataclass
class BackupResult:
    path: Path
    manifest: dict[str, Any]
    removed: list[str] = field(default_factory=list)


def backup_name(now: dt.datetime) -> str:
    return PREFIX + now.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def backups_in(folder: Path) -> list[Path]:
    """Finished backups in folder, oldest first (the names sort by time)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and NAME.match(p.name))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def copy_with_sha256(source: Path, dest: Path) -> str:
    """Copies in one pass, hashing what is written, and syncs the copy to disk."""
    digest = hashlib.sha256()
    with source.open("rb") as src, dest.open("xb") as dst:
        while chunk := src.read(CHUNK):
            dst.write(chunk)
            digest.update(chunk)
        dst.flush()
        os.fsync(dst.fileno())
    return digest.hexdigest()


def dump_postgres(target: PostgresTarget, dest: Path) -> dict[str, Any]:
    """pg_dump's custom format (compressed, restorable table by table) of Dagster's database."""
    started = time.perf_counter()
    run_tool("pg_dump", ["--format=custom", "--no-password", f"--file={dest}"], target)
    fsync_path(dest)
    return {
        "file": dest.name,
        "bytes": dest.stat().st_size,
        "sha256": sha256_of(dest),
        "database": target.dbname,
        "seconds": round(time.perf_counter() - started, 3),
    }


def snapshot_warehouse(source: Path, dest: Path) -> dict[str, Any] | None:
    """A copy of the warehouse file as of now, or None when there is no warehouse yet.

    The copy is made while this process holds DuckDB's write lock on the file, after a
    CHECKPOINT has moved the write-ahead log into it: nothing can change the file meanwhile, and
    the copy is a complete database on its own. (Measured against DuckDB's COPY FROM DATABASE
    into a new file: 0.1-0.2 s against 5.6-8 s for a 160 MB warehouse; docs/operations.md.)
    """
    if not source.exists():
        return None
    started = time.perf_counter()
    try:
        con = duckdb.connect(str(source))
    except duckdb.Error as e:
        raise BackupError(
            f"the warehouse {source} could not be opened for the snapshot (another process "
            f"holds it?): {e}"
        ) from None
    try:
        con.execute("checkpoint")
        sha256 = copy_with_sha256(source, dest)
    except duckdb.Error as e:
        raise BackupError(f"the checkpoint of the warehouse {source} failed: {e}") from None
    finally:
        con.close()
    try:
        check = duckdb.connect(str(dest), read_only=True)
        try:
            row = check.execute(
                "select count(*) from information_schema.tables where table_catalog = "
                "current_database()"
            ).fetchone()
        finally:
            check.close()
    except duckdb.Error as e:
        raise BackupError(f"the warehouse snapshot {dest} does not open: {e}") from None
    return {
        "file": dest.name,
        "bytes": dest.stat().st_size,
        "sha256": sha256,
        "source": str(source),
        "tables": int(row[0]) if row else 0,
        "seconds": round(time.perf_counter() - started, 3),
    }


def rotate(folder: Path, keep: int) -> list[str]:
    """Deletes all but the newest `keep` backups; returns the names deleted."""
    removed = []
    for old in backups_in(folder)[:-keep]:
        shutil.rmtree(old)
        removed.append(old.name)
    return removed


def _remove_unfinished(folder: Path, log: Callable[[str], None]) -> None:
    """A backup killed half-way (container gone, host down) leaves its .tmp folder: delete it.
    Backups never overlap (they hold the duckdb pool), so no .tmp here belongs to a live one."""
    for tmp in folder.glob(f"{PREFIX}*{TMP_SUFFIX}"):
        if tmp.is_dir() and NAME.match(tmp.name.removesuffix(TMP_SUFFIX)):
            shutil.rmtree(tmp, ignore_errors=True)
            log(f"deleted {tmp.name}, left by a backup that did not finish")


def take_backup(
    folder: Path,
    warehouse: Path,
    postgres: PostgresTarget | None,
    keep: int,
    run_id: str | None = None,
    now: dt.datetime | None = None,
    log: Callable[[str], None] = lambda _message: None,
) -> BackupResult:
    """Writes a new backup folder atomically (built as NAME.tmp, then renamed), then rotates."""
    now = now or dt.datetime.now(dt.UTC)
    name = backup_name(now)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _remove_unfinished(folder, log)
        taken = backup_name(now)
        for n in range(2, 100):
            if not (folder / name).exists() and not (folder / (name + TMP_SUFFIX)).exists():
                break
            name = f"{taken}-{n}"
        final = folder / name
        tmp = folder / (name + TMP_SUFFIX)
        tmp.mkdir()
    except OSError as e:
        raise BackupError(f"cannot write backups to {folder}: {e.strerror or e}") from None
    try:
        manifest: dict[str, Any] = {
            "format": MANIFEST_FORMAT,
            "name": name,
            "created_at": now.astimezone(dt.UTC).isoformat(timespec="seconds"),
            "dagster_run_id": run_id,
            "postgres": None,
            "warehouse": None,
        }
        if postgres is not None:
            log(f"dumping Dagster's {postgres}")
            manifest["postgres"] = dump_postgres(postgres, tmp / POSTGRES_FILE)
        manifest["warehouse"] = snapshot_warehouse(warehouse, tmp / WAREHOUSE_FILE)
        if manifest["warehouse"] is None:
            log(f"no warehouse at {warehouse} yet: the backup holds no warehouse snapshot")
        if manifest["postgres"] is None and manifest["warehouse"] is None:
            raise BackupError(
                f"nothing to back up: the instance does not store its runs in Postgres and "
                f"there is no warehouse at {warehouse}"
            )
        manifest_path = tmp / MANIFEST_FILE
        manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
        fsync_path(manifest_path)
        fsync_path(tmp)
        os.rename(tmp, final)
        fsync_path(folder)
    except PostgresToolError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise BackupError(f"the Postgres dump failed: {e}") from None
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        reason = "the disk is full" if e.errno == errno.ENOSPC else (e.strerror or str(e))
        raise BackupError(f"writing the backup {tmp} failed: {reason}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        removed = rotate(folder, keep)
    except OSError as e:
        raise BackupError(
            f"{final} was written, but deleting an older backup failed: {e.strerror or e}"
        ) from None
    return BackupResult(path=final, manifest=manifest, removed=removed)


@dg.op(
    name="take_backup",
    out=dg.Out(dg.Nothing),
    # The warehouse is copied while no run writes it: the same one-slot pool as every asset
    # that opens the file.
    pool=DUCKDB_POOL,
)
def take_backup_op(context: dg.OpExecutionContext):
    """Dumps Dagster's Postgres database and snapshots the warehouse into BACKUPS_DIR."""
    # From the environment only, never from run config: a launch cannot aim the backup at
    # another folder or make it delete more backups.
    try:
        folder = settings.backups_dir()
        keep = settings.backup_keep()
    except ValueError as e:
        raise dg.Failure(description=f"Backup refused: {e}", allow_retries=False) from None
    postgres = instance_postgres(context.instance)
    if postgres is None:
        context.log.warning(
            "this Dagster instance does not store its runs in Postgres: only the warehouse is "
            "backed up"
        )
    try:
        result = take_backup(
            folder,
            settings.duckdb_path(),
            postgres,
            keep=keep,
            run_id=context.run_id,
            log=context.log.info,
        )
    except BackupError as e:
        raise dg.Failure(description=f"Backup failed: {e}", allow_retries=False) from None
    manifest = result.manifest
    sizes = {part: (manifest[part] or {}).get("bytes") for part in ("postgres", "warehouse")}
    context.log.info(
        f"wrote {result.path} (Postgres dump {sizes['postgres']} bytes, warehouse "
        f"{sizes['warehouse']} bytes); kept the newest {keep} backups"
        + (f", deleted {', '.join(result.removed)}" if result.removed else "")
    )
    return dg.Output(
        None,
        metadata={
            "path": dg.MetadataValue.path(str(result.path)),
            "postgres_bytes": sizes["postgres"] or 0,
            "warehouse_bytes": sizes["warehouse"] or 0,
            "deleted_backups": len(result.removed),
            "manifest": dg.MetadataValue.json(manifest),
        },
    )


@dg.job(
    name="backup",
    description="Writes Dagster's Postgres database and a snapshot of the warehouse to a new "
    "folder in BACKUPS_DIR and keeps the newest JAFFLE_BACKUP_KEEP (default 7).",
)
def backup_job():
    take_backup_op()


def build_backup_schedule() -> dg.ScheduleDefinition:
    return platform_schedule(
        "nightly_backup",
        backup_job,
        BACKUP_CRON,
        "Backs up Dagster's database and the warehouse every night at 02:00.",
    )


@dg.definitions
def backup() -> dg.Definitions:
    return dg.Definitions(jobs=[backup_job], schedules=[build_backup_schedule()])
