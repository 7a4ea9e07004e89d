"""The partitioned raw loads run by Dagster: a day replaces its rows, a range is one run, a
replayed day changes nothing, a refused file changes nothing, a day without a file is skipped."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from jaffle_platform.definitions import defs
from jaffle_platform.generate import generate_days
from jaffle_platform.partitions import daily_partitions
from tests.integration.expected import read, read_days
from tests.integration.test_materialize import run_cli

RAW = [dg.AssetKey(t) for t in ("raw_customers", "raw_orders", "raw_payments")]
DAYS = 20
FIRST, LAST = "2018-01-01", "2018-01-20"


@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as inst:
        yield inst


@pytest.fixture
def daily(workspace):
    """20 days of 50 orders, with status changes and late payments, in the raw dir."""
    generate_days(workspace.raw_dir, days=DAYS, orders_per_day=50, seed=5)
    return workspace


def load(instance, days: str | tuple[str, str], raise_on_error: bool = True):
    job = defs.resolve_implicit_global_asset_job_def()
    if isinstance(days, str):
        where: dict = {"partition_key": days}
    else:
        where = {
            "tags": {
                "dagster/asset_partition_range_start": days[0],
                "dagster/asset_partition_range_end": days[1],
            }
        }
    return job.execute_in_process(
        instance=instance, asset_selection=RAW, raise_on_error=raise_on_error, **where
    )


def contents(path: Path, table: str) -> list[tuple]:
    """Every row and every column of the table, in a fixed order, and its schema."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        columns = con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'jaffle_shop' and table_name = ? order by ordinal_position",
            [table],
        ).fetchall()
        return [
            tuple(columns),
            *con.execute(f"select * from jaffle_shop.{table} order by all").fetchall(),
        ]
    finally:
        con.close()


def from_files(raw_dir: Path, table: str) -> list[tuple]:
    """The table a loader must build from the day files: their rows, each with its day."""
    casts = {"id": int, "user_id": int, "order_id": int, "amount": int}
    result = []
    for row in read_days(raw_dir, table):
        values = []
        for name, value in row.items():
            if name in ("order_date", "load_day"):
                values.append(dt.date.fromisoformat(value))
            else:
                values.append(casts.get(name, str)(value))
        result.append(tuple(values))
    return sorted(result)


def failure_message(result) -> str:
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    return failure.event_specific_data.error.message  # type: ignore[union-attr]


def test_a_range_of_days_loads_in_one_run_and_a_replayed_day_changes_nothing(daily, instance):
    ws = daily
    result = load(instance, (FIRST, LAST))
    assert result.success
    assert len(instance.get_runs()) == 1
    assert instance.get_materialized_partitions(dg.AssetKey("raw_orders")) == {
        (dt.date(2018, 1, 1) + dt.timedelta(days=i)).isoformat() for i in range(DAYS)
    }
    for table in ("raw_orders", "raw_payments"):
        assert contents(ws.duckdb_path, table)[1:] == from_files(ws.raw_dir, table)
    (changed,) = duckdb.connect(str(ws.duckdb_path), read_only=True).execute(
        "select count(*) from (select id from jaffle_shop.raw_orders group by id having "
        "count(*) > 1)"
    ).fetchone() or (0,)
    assert changed > 0, "the data has status changes: one order on several days"

    before = {t: contents(ws.duckdb_path, t) for t in ("raw_orders", "raw_payments")}
    assert load(instance, "2018-01-10").success
    assert load(instance, ("2018-01-03", "2018-01-05")).success
    assert load(instance, (FIRST, LAST)).success
    assert {t: contents(ws.duckdb_path, t) for t in before} == before


def test_a_day_replaces_exactly_its_rows(daily, instance):
    ws = daily
    assert load(instance, (FIRST, LAST)).success
    day = ws.raw_dir / "raw_orders" / "2018-01-10.csv"
    lines = day.read_text().splitlines()
    first_id = lines[1].split(",")[0]
    lines[1] = lines[1].rsplit(",", 1)[0] + ",returned"
    day.write_text("\n".join(lines) + "\n")
    meta_result = load(instance, "2018-01-10")
    assert meta_result.success
    assert contents(ws.duckdb_path, "raw_orders")[1:] == from_files(ws.raw_dir, "raw_orders")
    con = duckdb.connect(str(ws.duckdb_path), read_only=True)
    (status,) = con.execute(
        f"select status from jaffle_shop.raw_orders where id = {first_id} "
        "and load_day = date '2018-01-10'"
    ).fetchone() or (None,)
    con.close()
    assert status == "returned"


@pytest.mark.parametrize(
    ("table", "damage", "problem"),
    [
        ("raw_orders", lambda lines: lines[:-1] + [lines[-1][:5]], "expected 4 columns"),
        ("raw_orders", lambda lines: lines[:3] + ["x" + lines[3]] + lines[4:], 'column "id"'),
        ("raw_payments", lambda lines: [*lines, "1,1,coupon,100"], "already loaded from the file"),
        ("raw_payments", lambda lines: [*lines, lines[-1]], "is not unique"),
    ],
    ids=["half-written file", "not an integer", "payment of another day", "duplicate key"],
)
def test_a_refused_day_leaves_the_tables_exactly_as_they_were(
    daily, instance, table, damage, problem
):
    ws = daily
    assert load(instance, (FIRST, LAST)).success
    before = {t: contents(ws.duckdb_path, t) for t in ("raw_orders", "raw_payments")}
    path = ws.raw_dir / table / "2018-01-15.csv"
    path.write_text("\n".join(damage(path.read_text().splitlines())))

    result = load(instance, (FIRST, LAST), raise_on_error=False)
    assert not result.success
    message = failure_message(result)
    assert f"{table}: refused {path}, line" in message and problem in message
    assert {t: contents(ws.duckdb_path, t) for t in before} == before


def test_a_day_without_a_file_is_skipped_and_its_rows_kept(daily, instance):
    ws = daily
    assert load(instance, (FIRST, LAST)).success
    before = contents(ws.duckdb_path, "raw_orders")
    for table in ("raw_orders", "raw_payments"):
        (ws.raw_dir / table / "2018-01-12.csv").unlink()
    result = load(instance, ("2018-01-11", "2018-01-25"))
    assert result.success
    assert contents(ws.duckdb_path, "raw_orders") == before
    meta = instance.get_latest_materialization_event(
        dg.AssetKey("raw_orders")
    ).asset_materialization.metadata  # type: ignore[union-attr]
    assert meta["missing_days"].value == ("6 day(s): 2018-01-12, 2018-01-21 to 2018-01-25 (5 days)")
    assert meta["num_missing_days"].value == 6
    assert meta["window"].value == "[2018-01-11, 2018-01-26)"
    logs = [e.message for e in instance.all_logs(result.run_id) if e.user_message]
    assert any("no file for 6 day(s)" in m for m in logs)


def test_materialize_all_partitions_of_the_sample_data_succeeds(workspace, instance):
    """A newcomer's 'Materialize all' over every day up to today: days without files skip."""
    partitions = daily_partitions()
    first, last = partitions.get_first_partition_key(), partitions.get_last_partition_key()
    assert first == "2018-01-01" and last is not None
    result = load(instance, (first, last))
    assert result.success
    assert len(instance.get_runs()) == 1
    assert contents(workspace.duckdb_path, "raw_payments")[1:] == from_files(
        workspace.raw_dir, "raw_payments"
    )
    customers = contents(workspace.duckdb_path, "raw_customers")
    assert len(customers) - 1 == len(read(workspace.raw_dir / "raw_customers.csv")) == 100


def test_cli_partition_range_is_one_run(daily):
    ws = daily
    cli = run_cli(
        ws,
        "--select",
        "raw_customers,raw_orders,raw_payments",
        "--partition-range",
        f"{FIRST}...{LAST}",
    )
    assert cli.returncode == 0, cli.stderr[-2000:]
    assert contents(ws.duckdb_path, "raw_orders")[1:] == from_files(ws.raw_dir, "raw_orders")
    with dg.DagsterInstance.from_config(str(ws.root / "dagster_home")) as instance:
        assert len(instance.get_runs()) == 1
