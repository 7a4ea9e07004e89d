"""Dagster's Postgres after 1,000 runs of refresh_all, without and with the retention job.

A throwaway Postgres 15 (the host's initdb/pg_ctl, a Unix socket in a temp dir) holds a Dagster
instance. One real `refresh_all` run (sample data, in-process, dbt included) is the template;
its rows in runs, run_tags, event_logs and asset_check_executions are copied (run id replaced)
to make 1,000 runs, 10 a day over 100 days:

- without retention: all 1,000 runs stay;
- the retention job run once over those 1,000 (30 days): rows deleted, then the size Postgres
  reports before and after VACUUM FULL (a DELETE frees space for reuse, not for the disk);
- retention every day: the same 100 days replayed, the job's deletion (30 days) and a plain
  VACUUM (what autovacuum does) after each day, so freed space is reused.

Figures are printed, nothing is asserted.

    uv run --frozen python bench/retention_bench.py [--runs 1000] [--per-day 10]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import dagster as dg
import psycopg2
from tables import table_text  # bench/ is on sys.path when a script here runs

from jaffle_platform.defs.maintenance.retention import delete_old_runs, retention_job

TABLES = ["runs", "run_tags", "event_logs", "asset_check_executions"]
# Columns whose text holds the run id, replaced in each copy.
TEXT_WITH_RUN_ID = {"run_body", "event", "evaluation_event", "value"}
RETENTION_DAYS = 30
ROLE, ROLE_PASSWORD = "dagster", "bench"


def pg_binary(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)), None
    )
    if not found:
        sys.exit(f"retention_bench: {name} not found (PostgreSQL server binaries)")
    return str(found)


@contextmanager
def throwaway_postgres() -> Iterator[Path]:
    """A Postgres server on a Unix socket in a temp dir (trust auth: nothing else reaches it)."""
    as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    root = Path(tempfile.mkdtemp(prefix="jaffle-pg-bench-"))
    if as_owner:
        shutil.chown(root, "postgres")
    data = root / "data"
    subprocess.run(
        [*as_owner, pg_binary("initdb"), "-D", str(data), "-U", "postgres", "-E", "UTF8",
         "--locale=C.UTF-8", "--auth=trust"],
        check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run(
        [*as_owner, pg_binary("pg_ctl"), "-D", str(data), "-w", "-l", str(root / "log"),
         "-o", f"-k {root} -c listen_addresses=''", "start"],
        check=True, capture_output=True,
    )  # fmt: skip
    try:
        yield root
    finally:
        subprocess.run(
            [*as_owner, pg_binary("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


def admin(socket_dir: Path, dbname: str = "postgres"):
    con = psycopg2.connect(host=str(socket_dir), user="postgres", dbname=dbname)
    con.autocommit = True
    return con


def new_database(socket_dir: Path, name: str) -> str:
    con = admin(socket_dir)
    try:
        with con.cursor() as cur:
            cur.execute(f"create database {name} owner {ROLE}")
    finally:
        con.close()
    return f"postgresql://{ROLE}:{quote(ROLE_PASSWORD)}@/{name}?host={socket_dir}"


def size_mb(socket_dir: Path, dbname: str) -> dict[str, float]:
    con = admin(socket_dir, dbname)
    try:
        with con.cursor() as cur:
            cur.execute("select pg_database_size(current_database())")
            row = cur.fetchone()
            sizes = {"database": row[0] / 1e6 if row else 0.0}
            for table in TABLES:
                cur.execute(f"select pg_total_relation_size('{table}'), count(*) from {table}")
                row = cur.fetchone()
                sizes[table] = row[0] / 1e6 if row else 0.0
                sizes[f"{table}_rows"] = row[1] if row else 0
        return sizes
    finally:
        con.close()


def dump(socket_dir: Path, dbname: str, out: Path) -> tuple[float, float]:
    """What the backup job's pg_dump writes for this database: MB and seconds."""
    started = time.perf_counter()
    subprocess.run(
        [pg_binary("pg_dump"), "--format=custom", f"--file={out}", "--host", str(socket_dir),
         "--username", "postgres", "--dbname", dbname],
        check=True,
    )  # fmt: skip
    return out.stat().st_size / 1e6, time.perf_counter() - started


def vacuum(socket_dir: Path, dbname: str, full: bool = False) -> None:
    con = admin(socket_dir, dbname)
    try:
        with con.cursor() as cur:
            cur.execute("vacuum full" if full else "vacuum")
    finally:
        con.close()


def columns(cur, table: str) -> list[str]:
    cur.execute(
        "select column_name from information_schema.columns where table_name = %s "
        "and column_name <> 'id' order by ordinal_position",
        (table,),
    )
    return [r[0] for r in cur.fetchall()]


def copy_runs(socket_dir: Path, dbname: str, template: str, created: list[dt.datetime]) -> None:
    """Copies of the template run's rows, one per creation time, each with a new run id."""
    con = admin(socket_dir, dbname)
    try:
        with con.cursor() as cur:
            cols = {t: columns(cur, t) for t in TABLES}
            cur.execute("begin")
            for when in created:
                new = str(uuid.uuid4())
                for table, names in cols.items():
                    select = []
                    for c in names:
                        if c == "run_id":
                            select.append("%(new)s")
                        elif c in TEXT_WITH_RUN_ID:
                            select.append(f"replace({c}, %(old)s, %(new)s)")
                        elif c == "create_timestamp":
                            select.append("%(when)s")
                        else:
                            select.append(c)
                    cur.execute(
                        f"insert into {table} ({', '.join(names)}) select {', '.join(select)} "
                        f"from {table} where run_id = %(old)s",
                        {"old": template, "new": new, "when": when.replace(tzinfo=None)},
                    )
            cur.execute("commit")
    finally:
        con.close()


@contextmanager
def instance_on(url: str, home: Path) -> Iterator[dg.DagsterInstance]:
    home.mkdir(parents=True, exist_ok=True)
    overrides = {"storage": {"postgres": {"postgres_url": url}}}
    with dg.instance_for_test(overrides=overrides, temp_dir=str(home)) as instance:
        yield instance


def refresh_run(url: str, work: Path) -> tuple[str, float]:
    """One real refresh_all run into this database; its run id and wall time."""
    from jaffle_platform.definitions import defs

    os.environ["DUCKDB_PATH"] = str(work / "warehouse.duckdb")
    os.environ["REPORTS_DIR"] = str(work / "reports")
    started = time.perf_counter()
    with instance_on(url, work / "home") as instance:
        result = defs.get_job_def("refresh_all").execute_in_process(instance=instance)
    assert result.success
    return result.run_id, time.perf_counter() - started


def creation_times(runs: int, per_day: int, now: dt.datetime) -> list[dt.datetime]:
    """Oldest first: `per_day` runs a day, the last day ending now."""
    days = -(-runs // per_day)
    return [now - dt.timedelta(days=days - i // per_day, minutes=i % per_day) for i in range(runs)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--per-day", type=int, default=10)
    args = parser.parse_args(argv)
    rows: list[list[str]] = []

    def record(label: str, dbname: str, note: str = "", with_dump: bool = False) -> None:
        s = size_mb(sock, dbname)
        dumped = (
            ""
            if not with_dump
            else "{:.1f} MB, {:.1f} s".format(*dump(sock, dbname, work / f"{dbname}.pgdump"))
        )
        rows.append(
            [label, f"{s['runs_rows']:,}", f"{s['event_logs_rows']:,}",
             f"{s['asset_check_executions_rows']:,}", f"{s['event_logs']:.1f}",
             f"{s['asset_check_executions']:.1f}", f"{s['database']:.1f}", dumped, note]
        )  # fmt: skip

    with throwaway_postgres() as sock, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        con = admin(sock)
        with con.cursor() as cur:
            cur.execute(f"create role {ROLE} login password %s", (ROLE_PASSWORD,))
        con.close()
        now = dt.datetime.now(dt.UTC)

        # Without retention: the template and its copies, 10 a day over 100 days.
        url = new_database(sock, "without_retention")
        template, seconds = refresh_run(url, work / "a")
        print(f"template refresh_all run {template}: {seconds:.1f} s")
        record("1 refresh_all run", "without_retention", with_dump=True)
        times = creation_times(args.runs - 1, args.per_day, now)
        copy_runs(sock, "without_retention", template, times)
        vacuum(sock, "without_retention")
        record(f"{args.runs} runs, no retention", "without_retention", with_dump=True)

        # The job once over the same 1,000 runs.
        os.environ["JAFFLE_RETENTION_DAYS"] = str(RETENTION_DAYS)
        with instance_on(url, work / "a" / "home") as instance:
            started = time.perf_counter()
            result = retention_job.execute_in_process(instance=instance)
            job_seconds = time.perf_counter() - started
        deleted = next(
            e.step_output_data.metadata["deleted"].value
            for e in result.all_events
            if e.is_successful_output
        )
        record(
            "retention job once",
            "without_retention",
            f"{deleted} runs deleted in {job_seconds:.1f} s",
            with_dump=True,
        )
        vacuum(sock, "without_retention", full=True)
        record("... then VACUUM FULL", "without_retention")

        # Retention every day: the same 100 days replayed.
        url = new_database(sock, "daily_retention")
        template, _ = refresh_run(url, work / "b")
        with instance_on(url, work / "b" / "home") as instance:
            for day in range(0, len(times), args.per_day):
                today = times[day : day + args.per_day]
                copy_runs(sock, "daily_retention", template, today)
                cutoff = today[-1] - dt.timedelta(days=RETENTION_DAYS)
                delete_old_runs(instance, cutoff)
                vacuum(sock, "daily_retention")
        record(
            f"{args.runs} runs, retention daily",
            "daily_retention",
            "plain VACUUM after each day, as autovacuum would",
            with_dump=True,
        )

    print(
        table_text(
            [
                "state",
                "runs",
                "event_logs rows",
                "check rows",
                "event_logs MB",
                "checks MB",
                "database MB",
                "pg_dump -Fc",
                "note",
            ],
            rows,
        )  # fmt: skip
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
