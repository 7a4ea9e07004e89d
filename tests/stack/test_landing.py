"""The landing folder in the stack (issues 7 and 10): daily files copied into JAFFLE_LANDING_DIR
are loaded by day, one sensor run a complete day; a changed day is loaded again; a bad file gives
exactly one failed run and leaves the marts as they were; a failed dbt check alerts.

The landed days are three of the sample's, changed (a later status, a late payment); afterwards
the fixture empties the folder and reloads those days from the sample data, so the marts are the
sample's again for the other modules, whatever their order.
"""

from __future__ import annotations

import csv
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from jaffle_platform import settings
from jaffle_stack import metrics
from jaffle_stack.alert_hook import AlertHook
from jaffle_stack.stack import ObservedRun, Stack
from jaffle_stack.wait import poll
from tests.integration.expected import expected_customers

pytestmark = pytest.mark.stack

SENSOR_TAG = {"trigger": "landing"}
MART_SUMS = (
    "select count(*), sum(number_of_orders), sum(customer_lifetime_value) from main.customers"
)
SAMPLE = Path(settings.SAMPLE_DATA_DIR)
DAYS = ("2018-01-01", "2018-01-02", "2018-01-03")


def landing(stack: Stack) -> Path:
    return Path(stack.env["JAFFLE_LANDING_DIR"])


def drop(src: Path, dest: Path) -> None:
    """The documented safe protocol: write NAME.part, then rename it."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f"{dest.name}.part")
    shutil.copyfile(src, part)
    part.rename(dest)


def drop_days(files: Path, stack: Stack, days: tuple[str, ...] = DAYS) -> None:
    for day in days:
        for table in ("raw_orders", "raw_payments"):
            drop(files / table / f"{day}.csv", landing(stack) / table / f"{day}.csv")


def sensor_runs(stack: Stack) -> list[dict]:
    return stack.runs(tags=SENSOR_TAG)


def new_sensor_runs(stack: Stack, before: set[str], count: int) -> list[dict]:
    """Waits for `count` sensor runs not in `before`, then for each to finish."""

    def enough() -> list[dict] | None:
        new = [r for r in sensor_runs(stack) if r["runId"] not in before]
        return new if len(new) >= count else None

    new = poll(f"{count} sensor run(s)", enough, 180)
    return [stack.wait_run(r["runId"], 300) for r in new[:count]]


def mart_sums(stack: Stack) -> tuple[int, int, Decimal]:
    ((n, orders, value),) = stack.warehouse_query(MART_SUMS)
    return int(n), int(orders), Decimal(value)


def expected_sums(raw_dir: Path) -> tuple[int, int, Decimal]:
    customers = expected_customers(raw_dir)
    return (
        len(customers),
        sum(c[2] for c in customers.values()),
        sum((c[3] for c in customers.values()), Decimal(0)),
    )


def read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="") as f:
        header, *rows = list(csv.reader(f))
    return header, rows


def write_rows(path: Path, header: list[str], rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows([header, *rows])


@dataclass
class Landed:
    """The sample with three changed days, as landed, and what the sensor did with them."""

    files: Path  # the whole data set as it should now be: the sample, the landed days over it
    before: set[str]  # sensor runs before the landing
    runs: list[dict]


def changed_sample(out: Path) -> Path:
    """The sample, where the first day's order is returned on the third day, and a late coupon
    payment for it arrives on the second."""
    shutil.copytree(SAMPLE, out)
    header, first_day = read_rows(out / "raw_orders" / f"{DAYS[0]}.csv")
    order = list(first_day[0])
    order[header.index("status")] = "returned" if order[-1] != "returned" else "completed"
    third = out / "raw_orders" / f"{DAYS[2]}.csv"
    header3, rows3 = read_rows(third)
    write_rows(third, header3, [*rows3, order])
    max_payment = max(
        int(row[0]) for day in (out / "raw_payments").glob("*.csv") for row in read_rows(day)[1]
    )
    second = out / "raw_payments" / f"{DAYS[1]}.csv"
    pheader, prow = read_rows(second)
    write_rows(second, pheader, [*prow, [str(max_payment + 1), order[0], "coupon", "500"]])
    return out


@pytest.fixture(scope="module")
def landed(
    stack: Stack, materialized: ObservedRun, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Landed]:
    """Three changed days landed and loaded by the sensor, one run a day. Afterwards the folder
    is emptied and one run of those days loads the sample's own files again."""
    files = changed_sample(tmp_path_factory.mktemp("landed") / "data")
    stack.wait_idle()
    before = {r["runId"] for r in sensor_runs(stack)}
    try:
        drop_days(files, stack)
        yield Landed(files, before, new_sensor_runs(stack, before, len(DAYS)))
    finally:
        stack.wait_idle()
        # Removing files starts no sensor run; with no landed file, runs read the sample data.
        shutil.rmtree(landing(stack) / "raw_orders", ignore_errors=True)
        shutil.rmtree(landing(stack) / "raw_payments", ignore_errors=True)
        restored = stack.wait_run(stack.launch_all_assets(days=(DAYS[0], DAYS[-1])))
        stack.wait_idle()
        assert restored["status"] == "SUCCESS", restored


def test_daily_files_dropped_in_landing_are_loaded_by_day(stack: Stack, landed: Landed) -> None:
    assert [r["status"] for r in landed.runs] == ["SUCCESS"] * len(DAYS), landed.runs
    partitions = sorted(r["tagmap"].get("dagster/partition") for r in landed.runs)
    assert partitions == list(DAYS), "one run per landed day, each for its day"
    time.sleep(35)  # the next sensor tick: nothing more to load
    assert len([r for r in sensor_runs(stack) if r["runId"] not in landed.before]) == len(DAYS)
    assert mart_sums(stack) == expected_sums(landed.files)
    # The later day's status wins over the first day's, whatever the arrival order.
    _, rows = read_rows(landed.files / "raw_orders" / f"{DAYS[2]}.csv")
    order_id, status = rows[-1][0], rows[-1][3]
    ((mart_status,),) = stack.warehouse_query(
        f"select status from main.orders where order_id = {int(order_id)}"
    )
    assert mart_status == status


def test_bad_file_in_landing_fails_once_and_keeps_the_marts(
    stack: Stack, landed: Landed, tmp_path: Path
) -> None:
    stack.wait_idle()
    marts_before = mart_sums(stack)
    before = {r["runId"] for r in stack.runs()}
    failures_before = metrics.value(metrics.scrape(), "jaffle_runs", status="FAILURE")
    header, rows = read_rows(landed.files / "raw_orders" / f"{DAYS[1]}.csv")
    # One order with a status the data contract does not know.
    rows[0][header.index("status")] = "teleported"
    bad = tmp_path / f"{DAYS[1]}.csv"
    write_rows(bad, header, rows)
    drop(bad, landing(stack) / "raw_orders" / f"{DAYS[1]}.csv")

    (failed,) = new_sensor_runs(stack, before, 1)
    assert failed["status"] == "FAILURE"
    assert failed["tagmap"].get("dagster/partition") == DAYS[1]
    stack.wait_idle()
    after = [r for r in stack.runs() if r["runId"] not in before]
    assert [r["runId"] for r in after] == [failed["runId"]], "a refused file was retried"
    assert mart_sums(stack) == marts_before
    # The metrics endpoint counts the failure (issue 8).
    assert failures_before is not None
    failures = metrics.value(metrics.scrape(), "jaffle_runs", status="FAILURE")
    assert failures == failures_before + 1


def test_a_failed_dbt_check_alerts_once_naming_the_check(
    stack: Stack, landed: Landed, hook: AlertHook, tmp_path: Path
) -> None:
    """An order whose customer is not in raw_customers passes the loader (each file is valid on
    its own) and fails dbt's relationships test: the check's alert names it (issue 8)."""
    stack.wait_idle()
    before = {r["runId"] for r in stack.runs()}
    header, rows = read_rows(landed.files / "raw_orders" / f"{DAYS[0]}.csv")
    rows[0][header.index("user_id")] = "9999"  # the sample's customers are 1..100
    orphan = tmp_path / f"{DAYS[0]}.csv"
    write_rows(orphan, header, rows)
    drop(orphan, landing(stack) / "raw_orders" / f"{DAYS[0]}.csv")

    (run,) = new_sensor_runs(stack, before, 1)
    run_id = run["runId"]
    assert run["status"] == "FAILURE"

    def about_run() -> list[dict] | None:
        found = [m for m in hook.messages() if run_id in m.get("message", "")]
        return found if len(found) >= 2 else None

    poll("the run's and the check's alerts", about_run, 120)
    time.sleep(35)  # one more run_alerts tick: a duplicate would show now
    titles = sorted(m["title"] for m in hook.messages() if run_id in m.get("message", ""))
    assert len(titles) == 2, titles
    check, failed = titles
    assert check.startswith("Check failed: stg_orders relationships_stg_orders_customer_id"), check
    assert failed.startswith("Run failed: ") and run_id[:8] in failed, failed
