"""The landing folder in the stack (issue 7): files copied into JAFFLE_LANDING_DIR are loaded by
the sensor in one run; a bad file gives exactly one failed run and leaves the marts as they were.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from jaffle_platform.defs.ingest.assets import ALLOW_SHRINK_TAG
from jaffle_platform.generate import generate
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


def landing(stack: Stack) -> Path:
    return Path(stack.env["JAFFLE_LANDING_DIR"])


def drop(src: Path, dest_dir: Path) -> None:
    """The documented safe protocol: write NAME.part, then rename it."""
    part = dest_dir / f"{src.name}.part"
    shutil.copyfile(src, part)
    part.rename(dest_dir / src.name)


def sensor_runs(stack: Stack) -> list[dict]:
    return stack.runs(tags=SENSOR_TAG)


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


@dataclass
class Landed:
    """Three generated files dropped into the landing folder, and what the sensor did with them."""

    files: Path
    sensor_runs_before: int
    run: dict
    sensor_runs_after: int


@pytest.fixture(scope="module")
def landed(
    stack: Stack, materialized: ObservedRun, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Landed]:
    """The three files landed and loaded by one sensor run. Afterwards the landing folder is
    emptied and the sample data loaded again (fewer rows: allow_shrink), so that the tests of other
    modules, whatever their order, launch runs on the sample data and count its rows."""
    files = tmp_path_factory.mktemp("landed")
    stack.wait_idle()
    before = len(sensor_runs(stack))
    # More rows than the sample data already loaded: a smaller file would be refused as a shrink.
    generate(files, customers=130, orders=170, seed=5)
    try:
        for name in ("raw_customers.csv", "raw_orders.csv", "raw_payments.csv"):
            drop(files / name, landing(stack))
        runs = poll("a sensor run", lambda: sensor_runs(stack)[: -before or None], 120)
        run = stack.wait_run(runs[0]["runId"], 300)
        stack.wait_idle()
        yield Landed(files, before, run, len(sensor_runs(stack)))
    finally:
        for path in landing(stack).iterdir():
            path.unlink()
        stack.wait_idle()
        restore = stack.launch_all_assets(tags={ALLOW_SHRINK_TAG: "true"})
        restored = stack.wait_run(restore, 300)
        assert restored["status"] == "SUCCESS", f"the sample data was not loaded again: {restored}"


def test_files_dropped_in_landing_are_loaded_in_one_run(stack: Stack, landed: Landed) -> None:
    assert landed.run["status"] == "SUCCESS"
    assert landed.sensor_runs_after == landed.sensor_runs_before + 1, (
        "the three files gave more than one run"
    )
    assert mart_sums(stack) == expected_sums(landed.files)


def test_bad_file_in_landing_fails_once_and_keeps_the_marts(
    stack: Stack, landed: Landed, tmp_path: Path
) -> None:
    stack.wait_idle()
    marts_before = mart_sums(stack)
    before = {r["runId"] for r in stack.runs()}
    failures_before = metrics.value(metrics.scrape(), "jaffle_runs", status="FAILURE")
    good = landed.files / "raw_orders.csv"
    lines = good.read_text().splitlines()
    # One order with a status the data contract does not know.
    header, first = lines[0], lines[1].rsplit(",", 1)[0] + ",teleported"
    bad = tmp_path / "raw_orders.csv"
    bad.write_text("\n".join([header, first, *lines[2:]]) + "\n")
    drop(bad, landing(stack))

    new = poll(
        "a sensor run for the bad file",
        lambda: [r for r in sensor_runs(stack) if r["runId"] not in before],
        120,
    )
    failed = stack.wait_run(new[0]["runId"], 300)
    assert failed["status"] == "FAILURE"
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
    lines = (landed.files / "raw_orders.csv").read_text().splitlines()
    order_id, _, rest = lines[1].split(",", 2)
    unknown_customer = 10 * len(lines) + 7  # generate() numbers customers 1..130
    orphan = tmp_path / "raw_orders.csv"
    orphan.write_text(
        "\n".join([lines[0], f"{order_id},{unknown_customer},{rest}", *lines[2:]]) + "\n"
    )
    drop(orphan, landing(stack))

    new = poll(
        "a sensor run for the orphan order",
        lambda: [r for r in sensor_runs(stack) if r["runId"] not in before],
        120,
    )
    run_id = new[0]["runId"]
    assert stack.wait_run(run_id, 300)["status"] == "FAILURE"

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
