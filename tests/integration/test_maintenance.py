"""The retention and backup jobs and jaffle-restore, against real Dagster instances, real DuckDB
files and, when this machine has the PostgreSQL server binaries, a throwaway Postgres."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import psycopg2
import pytest
from dagster._core.events import DagsterEvent, DagsterEventType
from dagster._core.remote_origin import (
    RegisteredCodeLocationOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.storage.local_compute_log_manager import LocalComputeLogManager
from dagster._core.storage.runs.schema import RunsTable
from dagster._core.storage.runs.sql_run_storage import SqlRunStorage

from jaffle_platform.defs.maintenance.backup import (
    NAME,
    BackupError,
    backup_job,
    backups_in,
    take_backup,
)
from jaffle_platform.defs.maintenance.postgres import PostgresTarget, instance_postgres
from jaffle_platform.defs.maintenance.restore import RestoreError, main, restore
from jaffle_platform.defs.maintenance.retention import delete_old_runs, retention_job
from tests.conftest import Workspace

# --- Runs to seed the instances with -----------------------------------------------------------


@dg.op
def say_hello() -> str:
    print("hello from a seeded run")
    # Stored by the default IO manager under the run's id in the instance's storage folder.
    return "hello"


# The IO manager of launched runs (execute_in_process would keep outputs in memory).
@dg.job(resource_defs={"io_manager": dg.FilesystemIOManager()})
def hello_job():
    say_hello()


@dg.op
def break_down() -> None:
    raise RuntimeError("this run fails on purpose")


@dg.job
def failing_job():
    break_down()


@dg.asset
def greeting() -> str:
    return "hello"


@dg.asset_check(asset=greeting)
def greeting_is_polite() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True)


def check_runs(instance: dg.DagsterInstance) -> set[str]:
    """Runs that have a result of greeting_is_polite in the check history (as the UI lists it)."""
    key = dg.AssetCheckKey(dg.AssetKey("greeting"), "greeting_is_polite")
    history = instance.event_log_storage.get_asset_check_execution_history(key, limit=100)
    return {record.run_id for record in history}


def run_reaching(instance: dg.DagsterInstance, status: dg.DagsterRunStatus) -> str:
    """A run of hello_job taken to `status` by the events that move a run there."""
    steps = {
        dg.DagsterRunStatus.QUEUED: [DagsterEventType.RUN_ENQUEUED],
        dg.DagsterRunStatus.STARTED: [DagsterEventType.RUN_START],
        dg.DagsterRunStatus.CANCELING: [DagsterEventType.RUN_START, DagsterEventType.RUN_CANCELING],
    }[status]
    # A queued run says where the daemon would launch it from (the code location).
    origin = RemoteJobOrigin(
        repository_origin=RemoteRepositoryOrigin(
            code_location_origin=RegisteredCodeLocationOrigin("jaffle_platform"),
            repository_name="__repository__",
        ),
        job_name=hello_job.name,
    )
    run = instance.create_run_for_job(hello_job, remote_job_origin=origin)
    for event_type in steps:
        instance.report_dagster_event(
            DagsterEvent(event_type_value=event_type.value, job_name=run.job_name),
            run_id=run.run_id,
        )
    stored = instance.get_run_by_id(run.run_id)
    assert stored is not None and stored.status == status
    return run.run_id


def backdate(instance: dg.DagsterInstance, run_ids: list[str], days: int) -> None:
    """Moves the runs' creation time back, as if they had been launched `days` ago."""
    storage = instance.run_storage
    assert isinstance(storage, SqlRunStorage)
    # Stored as naive UTC, which RunsFilter(created_before=...) compares against.
    when = (dt.datetime.now(dt.UTC) - dt.timedelta(days=days)).replace(tzinfo=None)
    with storage.connect() as conn:
        conn.execute(
            RunsTable.update().where(RunsTable.c.run_id.in_(run_ids)).values(create_timestamp=when)
        )


def compute_log_dir(instance: dg.DagsterInstance, run_id: str) -> Path:
    manager = instance.compute_log_manager
    assert isinstance(manager, LocalComputeLogManager)
    return Path(manager._base_dir) / run_id


def outputs_dir(instance: dg.DagsterInstance, run_id: str) -> Path:
    return Path(instance.storage_directory()) / run_id


def step_failure(result: dg.ExecuteInProcessResult) -> str:
    """What a user reads in the UI for the failed step: the Failure's description and error."""
    texts = []
    for event in result.all_events:
        if event.is_step_failure:
            data = event.step_failure_data
            if data.user_failure_data and data.user_failure_data.description:
                texts.append(data.user_failure_data.description)
            if data.error:
                texts.append(data.error.message)
    return "\n".join(texts)


def output_metadata(result: dg.ExecuteInProcessResult) -> dict[str, object]:
    for event in result.all_events:
        if event.is_successful_output:
            return {k: v.value for k, v in event.step_output_data.metadata.items()}
    raise AssertionError("no output")


# --- A throwaway Postgres, as Dagster's storage ------------------------------------------------


def _pg_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(candidates[-1]) if candidates else None


@dataclass
class PostgresServer:
    socket_dir: Path
    superuser_password: str
    # Dagster's role, as in the stack: owner of its database, not a superuser.
    user: str = "dagster"
    password: str = "dagster pass/with:odd@chars"

    def admin(self):
        con = psycopg2.connect(
            host=str(self.socket_dir),
            user="postgres",
            password=self.superuser_password,
            dbname="postgres",
        )
        con.autocommit = True
        return con

    def url(self, dbname: str) -> str:
        from urllib.parse import quote

        return (
            f"postgresql://{self.user}:{quote(self.password, safe='')}@/{dbname}"
            f"?host={self.socket_dir}"
        )


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[PostgresServer]:
    """A Postgres server on a Unix socket in a temp dir, password authentication only."""
    tools = {n: _pg_binary(n) for n in ("initdb", "pg_ctl", "postgres", "pg_dump", "pg_restore")}
    missing = [n for n, path in tools.items() if path is None]
    if missing:
        pytest.skip(f"no {', '.join(missing)} on this machine: the stack test covers Postgres")
    as_owner: list[str] = []
    if os.geteuid() == 0:
        # Postgres refuses to run as root: its files belong to the `postgres` user.
        if shutil.which("runuser") is None or subprocess.run(["id", "postgres"]).returncode:
            pytest.skip("running as root without a `postgres` user to run a Postgres server")
        as_owner = ["runuser", "-u", "postgres", "--"]
    # Not pytest's tmp_path: its parents are private to root, and the server runs as postgres.
    root = Path(tempfile.mkdtemp(prefix="jaffle-pg-"))
    superuser_password = uuid.uuid4().hex
    (root / "pw").write_text(superuser_password)
    if as_owner:
        shutil.chown(root, "postgres")
        shutil.chown(root / "pw", "postgres")
    data = root / "data"
    subprocess.run(
        [*as_owner, str(tools["initdb"]), "-D", str(data), "-U", "postgres", "-E", "UTF8",
         "--locale=C.UTF-8", "--auth=scram-sha-256", f"--pwfile={root / 'pw'}"],
        check=True, capture_output=True,
    )  # fmt: skip
    options = f"-k {root} -c listen_addresses='' -c fsync=off"
    subprocess.run(
        [*as_owner, str(tools["pg_ctl"]), "-D", str(data), "-o", options, "-w",
         "-l", str(root / "log"), "start"],
        check=True, capture_output=True,
    )  # fmt: skip
    server = PostgresServer(socket_dir=root, superuser_password=superuser_password)
    try:
        with server.admin() as con, con.cursor() as cur:
            cur.execute(
                f"create role {server.user} login password %s nosuperuser", (server.password,)
            )
        yield server
    finally:
        subprocess.run(
            [*as_owner, str(tools["pg_ctl"]), "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_db(postgres_server: PostgresServer) -> Iterator[str]:
    """A new database owned by the dagster role; its URL."""
    name = f"dagster_{uuid.uuid4().hex[:8]}"
    con = postgres_server.admin()
    try:
        with con.cursor() as cur:
            cur.execute(f"create database {name} owner {postgres_server.user}")
        yield postgres_server.url(name)
        with con.cursor() as cur:
            cur.execute(f"drop database {name} with (force)")
    finally:
        con.close()


@contextmanager
def instance_on(storage: str, request: pytest.FixtureRequest) -> Iterator[dg.DagsterInstance]:
    # As in the stack (dagster.yaml): compute logs in a folder of their own.
    logs = request.getfixturevalue("tmp_path") / "compute_logs"
    overrides: dict = {
        "compute_logs": {
            "module": "dagster.core.storage.local_compute_log_manager",
            "class": "LocalComputeLogManager",
            "config": {"base_dir": str(logs)},
        }
    }
    if storage == "postgres":
        url = request.getfixturevalue("postgres_db")
        overrides["storage"] = {"postgres": {"postgres_url": url}}
    with dg.instance_for_test(overrides=overrides) as instance:
        yield instance


# --- Retention ---------------------------------------------------------------------------------


@pytest.mark.parametrize("storage", ["sqlite", "postgres"])
def test_retention_deletes_old_finished_runs_with_their_logs(
    storage: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JAFFLE_RETENTION_DAYS", raising=False)
    with instance_on(storage, request) as instance:
        old_success = [hello_job.execute_in_process(instance=instance).run_id for _ in range(2)]
        old_failure = failing_job.execute_in_process(instance=instance, raise_on_error=False)
        assert not old_failure.success
        old_canceled = instance.create_run_for_job(hello_job, status=dg.DagsterRunStatus.CANCELED)
        instance.report_engine_event("canceled before it started", old_canceled)
        old_unfinished = {
            status: run_reaching(instance, status)
            for status in (
                dg.DagsterRunStatus.QUEUED,
                dg.DagsterRunStatus.STARTED,
                dg.DagsterRunStatus.CANCELING,
            )
        }
        old_checked = dg.materialize([greeting, greeting_is_polite], instance=instance).run_id
        old_finished = [*old_success, old_failure.run_id, old_canceled.run_id, old_checked]
        backdate(instance, old_finished + list(old_unfinished.values()), days=31)
        recent = dg.materialize([greeting, greeting_is_polite], instance=instance).run_id
        # A run 29 days old is inside the 30-day window.
        within = hello_job.execute_in_process(instance=instance).run_id
        backdate(instance, [within], days=29)
        for run_id in [*old_success, old_failure.run_id, recent]:
            assert compute_log_dir(instance, run_id).is_dir(), "seeded runs have compute logs"
            assert instance.all_logs(run_id)
        assert compute_log_dir(instance, recent).parent != Path(instance.storage_directory())
        assert all(outputs_dir(instance, run_id).is_dir() for run_id in old_success)
        assert check_runs(instance) == {old_checked, recent}

        result = retention_job.execute_in_process(instance=instance)

        assert result.success
        remaining = {r.run_id for r in instance.get_runs()}
        assert remaining == {*old_unfinished.values(), recent, within, result.run_id}
        for run_id in old_finished:
            assert instance.get_run_by_id(run_id) is None
            assert instance.all_logs(run_id) == [], "the event log goes with the run"
            assert not compute_log_dir(instance, run_id).exists(), "and its stdout/stderr"
            assert not outputs_dir(instance, run_id).exists(), "and its stored outputs"
        assert check_runs(instance) == {recent}, "and its asset check results"
        assert instance.all_logs(recent) and compute_log_dir(instance, recent).is_dir()
        assert output_metadata(result) == {
            "deleted": 5,
            "kept_unfinished": 3,
            # The recent run, the 29-day-old one and the retention run itself.
            "kept_recent": 3,
            "cutoff": output_metadata(result)["cutoff"],
            "retention_days": 30,
        }
        messages = [e.message for e in instance.all_logs(result.run_id)]
        assert any(
            m.startswith("deleted 5 runs older than 30 days with their event logs, compute logs")
            and "kept 3 older runs that have not finished" in m
            for m in messages
        ), messages


def test_retention_reads_runs_in_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    with dg.instance_for_test() as instance:
        old = [
            instance.create_run_for_job(hello_job, status=dg.DagsterRunStatus.SUCCESS).run_id
            for _ in range(12)
        ]
        backdate(instance, old, days=100)
        keep = instance.create_run_for_job(hello_job, status=dg.DagsterRunStatus.SUCCESS)
        logged: list[str] = []

        result = delete_old_runs(
            instance,
            dt.datetime.now(dt.UTC) - dt.timedelta(days=30),
            batch_size=5,
            log=logged.append,
        )

        assert result.deleted == 12
        assert logged == [
            "deleted 5 runs so far",
            "deleted 10 runs so far",
            "deleted 12 runs so far",
        ]
        assert [r.run_id for r in instance.get_runs()] == [keep.run_id]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "JAFFLE_RETENTION_DAYS='0' must be 1 or more"),
        ("-3", "JAFFLE_RETENTION_DAYS='-3' must be 1 or more"),
        ("a month", "JAFFLE_RETENTION_DAYS='a month' is not a whole number"),
    ],
)
def test_retention_refuses_a_bad_number_of_days_and_deletes_nothing(
    value: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JAFFLE_RETENTION_DAYS", value)
    with dg.instance_for_test() as instance:
        old = hello_job.execute_in_process(instance=instance).run_id
        backdate(instance, [old], days=400)

        result = retention_job.execute_in_process(instance=instance, raise_on_error=False)

        assert not result.success
        assert message in step_failure(result)
        assert instance.get_run_by_id(old) is not None


# --- Backups: the warehouse part, in-process ---------------------------------------------------


def make_warehouse(path: Path, rows: int, leave_wal: bool = False) -> None:
    """A warehouse written by another process; with leave_wal, one that died before closing
    (as a killed run does), so the last rows are only in the write-ahead log."""
    path.parent.mkdir(parents=True, exist_ok=True)
    code = (
        "import duckdb, os, sys\n"
        "con = duckdb.connect(sys.argv[1])\n"
        "con.execute('create schema if not exists jaffle_shop')\n"
        f"con.execute('create or replace table main.orders as select range as order_id, "
        f"range % 97 as customer_id, range * 3 % 1000 as amount from range({rows})')\n"
        "con.execute('checkpoint')\n"
        "con.execute('insert into main.orders values (-1, -1, 42)')\n"
        + ("os._exit(0)\n" if leave_wal else "con.close()\n")
    )
    subprocess.run([sys.executable, "-c", code, str(path)], check=True)


def orders(path: Path) -> tuple:
    con = duckdb.connect(str(path), read_only=True)
    try:
        row = con.execute("select count(*), sum(amount), min(order_id) from main.orders").fetchone()
    finally:
        con.close()
    assert row is not None
    return tuple(row)


@pytest.fixture
def backups(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "backups"
    monkeypatch.setenv("BACKUPS_DIR", str(folder))
    monkeypatch.delenv("JAFFLE_BACKUP_KEEP", raising=False)
    return folder


def test_backup_snapshot_opens_with_every_row_even_those_only_in_the_wal(
    workspace: Workspace, backups: Path
) -> None:
    make_warehouse(workspace.duckdb_path, rows=50_000, leave_wal=True)
    assert workspace.duckdb_path.with_name("warehouse.duckdb.wal").exists(), "a WAL was left"

    with dg.instance_for_test() as instance:
        result = backup_job.execute_in_process(instance=instance)

    assert result.success
    [backup] = backups_in(backups)
    assert NAME.match(backup.name)
    assert sorted(p.name for p in backups.iterdir()) == [backup.name], "no .tmp left"
    manifest = json.loads((backup / "manifest.json").read_text())
    snapshot = backup / "warehouse.duckdb"
    assert manifest["dagster_run_id"] == result.run_id
    assert manifest["postgres"] is None, "this instance keeps its runs in SQLite"
    assert manifest["warehouse"]["bytes"] == snapshot.stat().st_size
    assert manifest["warehouse"]["tables"] == 1
    assert orders(snapshot) == (50_001, sum(i * 3 % 1000 for i in range(50_000)) + 42, -1)
    assert orders(snapshot) == orders(workspace.duckdb_path)
    assert output_metadata(result)["warehouse_bytes"] == snapshot.stat().st_size


def test_backup_keeps_the_newest_and_touches_nothing_else(
    workspace: Workspace, backups: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_warehouse(workspace.duckdb_path, rows=100)
    start = dt.datetime(2026, 1, 1, 2, 0, tzinfo=dt.UTC)
    for day in range(3):
        take_backup(backups, workspace.duckdb_path, None, keep=10, now=start + dt.timedelta(day))
    (backups / "my-notes").mkdir()
    (backups / "jaffle-backup-old-by-hand").mkdir()
    (backups / "README.txt").write_text("not a backup")
    # Left by a backup that was killed half-way: removed by the next one.
    (backups / "jaffle-backup-20260102T000000Z.tmp").mkdir()
    monkeypatch.setenv("JAFFLE_BACKUP_KEEP", "2")

    with dg.instance_for_test() as instance:
        result = backup_job.execute_in_process(instance=instance)

    assert result.success
    newest = [p.name for p in backups_in(backups)]
    assert newest[0] == "jaffle-backup-20260103T020000Z" and len(newest) == 2
    assert sorted(p.name for p in backups.iterdir()) == sorted(
        [*newest, "my-notes", "jaffle-backup-old-by-hand", "README.txt"]
    )
    assert output_metadata(result)["deleted_backups"] == 2


def test_two_backups_in_the_same_second_are_both_kept(workspace: Workspace, backups: Path) -> None:
    make_warehouse(workspace.duckdb_path, rows=100)
    now = dt.datetime(2026, 1, 1, 2, 0, tzinfo=dt.UTC)
    first = take_backup(backups, workspace.duckdb_path, None, keep=7, now=now)
    second = take_backup(backups, workspace.duckdb_path, None, keep=7, now=now)
    names = [p.name for p in backups_in(backups)]
    assert names == ["jaffle-backup-20260101T020000Z", "jaffle-backup-20260101T020000Z-2"]
    assert [first.path.name, second.path.name] == names
    assert json.loads((second.path / "manifest.json").read_text())["name"] == names[1]


def test_backup_fails_clearly_and_leaves_nothing_when_the_warehouse_is_held(
    workspace: Workspace, backups: Path
) -> None:
    make_warehouse(workspace.duckdb_path, rows=100)
    take_backup(backups, workspace.duckdb_path, None, keep=7)
    before = sorted(backups.iterdir())
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('open', flush=True); "
         "sys.stdin.read()", str(workspace.duckdb_path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        with dg.instance_for_test() as instance:
            result = backup_job.execute_in_process(instance=instance, raise_on_error=False)
    finally:
        holder.communicate("")

    assert not result.success
    assert re.search(
        r"Backup failed: the warehouse .*warehouse.duckdb could not be opened for the snapshot "
        r"\(another process holds it\?\)",
        step_failure(result),
    ), step_failure(result)
    assert sorted(backups.iterdir()) == before


def test_backup_fails_clearly_and_leaves_nothing_when_the_disk_is_full(
    workspace: Workspace, tmp_path: Path
) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    full = tmp_path / "small-disk"
    full.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(full)]).returncode:
        pytest.skip("this machine does not allow mounting a tmpfs")
    try:
        make_warehouse(workspace.duckdb_path, rows=400_000)
        assert workspace.duckdb_path.stat().st_size > 1024 * 1024, "bigger than that disk"

        with pytest.raises(
            BackupError, match=r"writing the backup .*\.tmp failed: the disk is full"
        ):
            take_backup(full, workspace.duckdb_path, None, keep=7)

        assert list(full.iterdir()) == []
    finally:
        subprocess.run(["umount", str(full)], check=True)


def test_backup_without_pg_dump_fails_naming_it(
    workspace: Workspace, backups: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_warehouse(workspace.duckdb_path, rows=100)
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    monkeypatch.setenv("PATH", str(empty_bin))

    with pytest.raises(BackupError) as failed:
        take_backup(backups, workspace.duckdb_path, PostgresTarget(dbname="dagster"), keep=7)

    assert str(failed.value) == (
        "the Postgres dump failed: pg_dump is not installed (it comes with the "
        "postgresql-client package)"
    )
    assert list(backups.iterdir()) == []


def test_the_postgres_password_goes_to_the_environment_not_argv() -> None:
    target = PostgresTarget.from_url("postgresql://dagster:s3cr%2Ft@db.internal:5433/dagster")

    assert target.connection_args() == [
        "--host", "db.internal", "--port", "5433", "--username", "dagster", "--dbname", "dagster",
    ]  # fmt: skip
    assert target.env()["PGPASSWORD"] == "s3cr/t"
    assert "s3cr" not in str(target)


# --- Backups and restore with Postgres ---------------------------------------------------------


def test_backup_fails_clearly_when_pg_dump_cannot_log_in(
    workspace: Workspace, backups: Path, request: pytest.FixtureRequest
) -> None:
    make_warehouse(workspace.duckdb_path, rows=100)
    with instance_on("postgres", request) as instance:
        target = instance_postgres(instance)
        assert target is not None
        wrong = PostgresTarget(target.dbname, target.host, target.port, target.user, "wrong")

        with pytest.raises(BackupError, match="pg_dump failed on database .*password auth"):
            take_backup(backups, workspace.duckdb_path, wrong, keep=7)

    assert list(backups.iterdir()) == []


def test_backup_then_restore_brings_back_run_history_and_warehouse(
    workspace: Workspace, backups: Path, request: pytest.FixtureRequest
) -> None:
    make_warehouse(workspace.duckdb_path, rows=1_000)
    with instance_on("postgres", request) as instance:
        history = {hello_job.execute_in_process(instance=instance).run_id for _ in range(3)}
        backup_run = backup_job.execute_in_process(instance=instance)
        assert backup_run.success
        [backup] = backups_in(backups)
        manifest = json.loads((backup / "manifest.json").read_text())
        assert (backup / "dagster.pgdump").read_bytes().startswith(b"PGDMP")
        assert manifest["postgres"]["bytes"] == (backup / "dagster.pgdump").stat().st_size
        rows_at_backup = orders(workspace.duckdb_path)

        # Later: another run, a run deleted, the warehouse lost.
        later = hello_job.execute_in_process(instance=instance).run_id
        instance.delete_run(sorted(history)[0])
        workspace.duckdb_path.unlink()
        make_warehouse(workspace.duckdb_path, rows=5)

        assert main([str(backup)]) == 0

        with dg.DagsterInstance.get() as restored:
            runs = {r.run_id: r for r in restored.get_runs()}
            assert set(runs) == history | {backup_run.run_id}
            assert later not in runs
            # Running while Postgres was dumped; finished by the restore, so it holds no pool.
            assert runs[backup_run.run_id].status == dg.DagsterRunStatus.SUCCESS
            for run_id in history:
                assert runs[run_id].status == dg.DagsterRunStatus.SUCCESS
                assert restored.all_logs(run_id), "with its event log"
            assert orders(workspace.duckdb_path) == rows_at_backup
            # The platform carries on: a new run and a new backup on the restored state.
            assert hello_job.execute_in_process(instance=restored).success
            assert backup_job.execute_in_process(instance=restored).success


def test_restore_refuses_while_dagster_is_connected_and_changes_nothing(
    workspace: Workspace, backups: Path, request: pytest.FixtureRequest
) -> None:
    make_warehouse(workspace.duckdb_path, rows=10)
    with instance_on("postgres", request) as instance:
        assert backup_job.execute_in_process(instance=instance).success
        [backup] = backups_in(backups)
        after = hello_job.execute_in_process(instance=instance).run_id
        make_warehouse(workspace.duckdb_path, rows=20)
        target = instance_postgres(instance)
        assert target is not None
        daemon = psycopg2.connect(
            dbname=target.dbname, host=target.host, user=target.user,
            password=target.password, application_name="dagster-daemon",
        )  # fmt: skip
        try:
            with pytest.raises(RestoreError, match=r"1 other session\(s\) .*dagster-daemon"):
                restore(backup, workspace.duckdb_path, say=lambda _: None, other_sessions_wait=1)
        finally:
            daemon.close()

        assert instance.get_run_by_id(after) is not None
        assert orders(workspace.duckdb_path)[0] == 21
        assert not workspace.duckdb_path.with_name("warehouse.duckdb.restore.tmp").exists()


def test_restore_refuses_a_damaged_backup(
    workspace: Workspace, backups: Path, request: pytest.FixtureRequest, capsys
) -> None:
    make_warehouse(workspace.duckdb_path, rows=10)
    with instance_on("postgres", request) as instance:
        assert backup_job.execute_in_process(instance=instance).success
        [backup] = backups_in(backups)
        dump = backup / "dagster.pgdump"
        data = bytearray(dump.read_bytes())
        data[len(data) // 2] ^= 0xFF
        dump.write_bytes(bytes(data))
        after = hello_job.execute_in_process(instance=instance).run_id

        assert main([str(backup)]) == 1

        assert capsys.readouterr().err.strip().splitlines()[-1] == (
            f"jaffle-restore: {dump} does not match its checksum in manifest.json: damaged"
        )
        assert instance.get_run_by_id(after) is not None


def test_restore_lists_backups_and_restores_one_by_name(
    workspace: Workspace, backups: Path, capsys
) -> None:
    make_warehouse(workspace.duckdb_path, rows=10)
    first = take_backup(backups, workspace.duckdb_path, None, keep=7).path
    rows_at_first = orders(workspace.duckdb_path)
    make_warehouse(workspace.duckdb_path, rows=30)
    second = take_backup(
        backups, workspace.duckdb_path, None, keep=7,
        now=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5),
    ).path  # fmt: skip
    # A run killed after the backup: rows in a WAL that must not land in the restored file.
    make_warehouse(workspace.duckdb_path, rows=50, leave_wal=True)
    capsys.readouterr()

    assert main([]) == 2
    assert capsys.readouterr().out.splitlines() == [
        f"backups in {backups}, oldest first:",
        first.name,
        second.name,
    ]
    assert main(["jaffle-backup-19990101T000000Z"]) == 1
    assert f"no backup 'jaffle-backup-19990101T000000Z': not a folder, nor one in {backups}" in (
        capsys.readouterr().err
    )

    assert main([first.name]) == 0

    assert orders(workspace.duckdb_path) == rows_at_first
    assert not workspace.duckdb_path.with_name("warehouse.duckdb.wal").exists()
    out = capsys.readouterr().out
    assert "the backup holds no Postgres dump: Dagster's database is left as it is" in out
    assert main(["latest"]) == 0
    assert orders(workspace.duckdb_path)[0] == 31


@pytest.mark.parametrize(
    ("schedule", "job", "cron"),
    [("daily_retention", "retention", "0 3 * * *"), ("nightly_backup", "backup", "0 2 * * *")],
)
def test_the_daemon_fires_both_jobs_on_its_own(
    schedule: str, job: str, cron: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jaffle_platform.definitions import defs

    monkeypatch.setenv("JAFFLE_MAX_RUNTIME_SECONDS", "900")
    definition = defs.get_schedule_def(schedule)

    assert definition.job_name == job
    assert definition.cron_schedule == cron
    assert definition.default_status == dg.DefaultScheduleStatus.RUNNING
    with dg.build_schedule_context() as context:
        [request] = list(definition.evaluate_tick(context).run_requests or [])
    assert request.tags[dg.MAX_RUNTIME_SECONDS_TAG] == "900"
