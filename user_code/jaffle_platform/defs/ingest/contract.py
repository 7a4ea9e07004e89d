"""The data contract of the raw files: what the loader accepts, what the generator writes.

Defined once here: the columns and their types, the key, the required columns, the accepted
values and which range applies to each column. The range bounds themselves are settings
(`jaffle_platform.settings`, read at load time) so an operator can widen them without a release.
dbt reads the accepted values from `vars` in dbt_project.yml; tests/unit/test_contract.py fails
when those differ from this module. docs/data-contract.md describes every rule.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

RAW_SCHEMA = "jaffle_shop"

# The column of the daily tables (raw_orders, raw_payments) that names the day file a row came
# from. The key of a daily table is (key, load_day): a day's file may repeat an earlier day's key.
LOAD_DAY_COLUMN = "load_day"

ORDER_STATUSES = ("placed", "shipped", "completed", "return_pending", "returned")
PAYMENT_METHODS = ("credit_card", "coupon", "bank_transfer", "gift_card")

# Range kinds a column can carry; their bounds come from settings at load time.
ID = "id"
AMOUNT = "amount"
DATE = "date"


@dataclass(frozen=True)
class RawTable:
    """What a raw file must look like: typed columns, a unique key, required values, enums, ranges.

    BIGINT columns must hold plain integers (digits only); `ranges` maps a column to ID, AMOUNT
    or DATE, whose bounds are read from settings when a file is loaded.
    """

    name: str
    columns: dict[str, str]
    not_null: tuple[str, ...]
    key: str = "id"
    accepted_values: dict[str, tuple[str, ...]] = field(default_factory=dict)
    ranges: dict[str, str] = field(default_factory=dict)
    description: str = ""
    # Daily: one file a day, `<name>/YYYY-MM-DD.csv`, loaded into that day's rows. Otherwise one
    # file, `<name>.csv`, that replaces the whole table.
    daily: bool = False
    # A daily table whose key may appear in one day's file only (a payment is paid once).
    key_unique_across_days: bool = False

    @property
    def file_name(self) -> str:
        """The file of a snapshot table; for a daily table, see day_file_name."""
        return f"{self.name}.csv"

    def day_file_name(self, day: dt.date) -> str:
        """The file of one day of a daily table, relative to RAW_DATA_URI or the landing folder."""
        return f"{self.name}/{day.isoformat()}.csv"

    @property
    def table_columns(self) -> dict[str, str]:
        """The columns of the warehouse table: the file's, and for a daily table its load_day."""
        if not self.daily:
            return dict(self.columns)
        return {**self.columns, LOAD_DAY_COLUMN: "DATE"}

    @property
    def integer_columns(self) -> tuple[str, ...]:
        return tuple(c for c, t in self.columns.items() if t == "BIGINT")


RAW_TABLES: dict[str, RawTable] = {
    t.name: t
    for t in (
        RawTable(
            name="raw_customers",
            columns={"id": "BIGINT", "first_name": "VARCHAR", "last_name": "VARCHAR"},
            not_null=("id",),
            ranges={"id": ID},
            description="Customers as exported by the shop: one row per customer.",
        ),
        RawTable(
            name="raw_orders",
            columns={
                "id": "BIGINT",
                "user_id": "BIGINT",
                "order_date": "DATE",
                "status": "VARCHAR",
            },
            not_null=("id", "user_id", "order_date", "status"),
            accepted_values={"status": ORDER_STATUSES},
            ranges={"id": ID, "user_id": ID, "order_date": DATE},
            description=(
                "Orders as exported by the shop, one file a day: the orders created or changed "
                "that day; one row per order and load_day, the latest load_day wins."
            ),
            daily=True,
        ),
        RawTable(
            name="raw_payments",
            columns={
                "id": "BIGINT",
                "order_id": "BIGINT",
                "payment_method": "VARCHAR",
                "amount": "BIGINT",
            },
            not_null=("id", "order_id", "payment_method", "amount"),
            accepted_values={"payment_method": PAYMENT_METHODS},
            ranges={"id": ID, "order_id": ID, "amount": AMOUNT},
            description=(
                "Payments as exported by the shop, one file a day: that day's payments, amount in "
                "cents; one row per payment (append-only), tagged with its load_day."
            ),
            daily=True,
            key_unique_across_days=True,
        ),
    )
}


def dbt_vars() -> dict[str, list[str]]:
    """The contract's accepted values as dbt_project.yml must declare them under `vars`."""
    return {"order_statuses": list(ORDER_STATUSES), "payment_methods": list(PAYMENT_METHODS)}


class LoadProblem(Exception):
    """A raw load did not happen: which table, which file (or URL), what went wrong, and whether
    asking again may help (`retryable`). The previous table is unchanged."""

    retryable = False

    def __init__(self, table: str, source: str, problem: str, message: str):
        self.table = table
        self.source = source
        self.problem = problem
        super().__init__(message)


class RawDataError(LoadProblem):
    """A raw file was refused. The message names the table, the file, the problem and the line."""

    def __init__(self, table: str, source: str, problem: str, line: int | None = None):
        self.line = line
        where = f"{source}, line {line}" if line is not None else source
        super().__init__(
            table, source, problem,
            f"{table}: refused {where}: {problem}. The previous table is unchanged.",
        )  # fmt: skip


class WarehouseError(LoadProblem):
    """The warehouse or the machine failed during a load (disk, permissions, lock, memory).

    Not a verdict on the file: the same file may load once the cause is fixed, so it can be
    retried. The previous table is unchanged.
    """

    retryable = True

    def __init__(self, table: str, source: str, problem: str):
        super().__init__(
            table, source, problem,
            f"{table}: could not load {source}: infrastructure failure, not a problem with the "
            f"file: {problem}. The previous table is unchanged; retry once this is fixed.",
        )  # fmt: skip
