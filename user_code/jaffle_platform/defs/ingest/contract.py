"""The data contract of the raw files: what the loader accepts, what the generator writes.

Defined once here: the columns and their types, the key, the required columns, the accepted
values and which range applies to each column. The range bounds themselves are settings
(`jaffle_platform.settings`, read at load time) so an operator can widen them without a release.
dbt reads the accepted values from `vars` in dbt_project.yml; tests/unit/test_contract.py fails
when those differ from this module. docs/data-contract.md describes every rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field

RAW_SCHEMA = "jaffle_shop"

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

    @property
    def file_name(self) -> str:
        return f"{self.name}.csv"

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
            description="Orders as exported by the shop: one row per order.",
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
            description="Payments as exported by the shop: one row per payment, amount in cents.",
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
