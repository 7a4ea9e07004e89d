"""DuckDB's memory limit: the loads and dbt open the warehouse with the same one.

Without it DuckDB takes up to 80 % of the machine's memory in each process; at 10^8 orders a
full refresh peaked at 16.9 GiB (docs/benchmarks.md).
"""

from __future__ import annotations

import duckdb
import pytest

from jaffle_platform import settings
from jaffle_platform.defs.dbt.resources import dbt_cli
from jaffle_platform.resources import DuckDBWarehouse

SHOW_LIMIT = "select current_setting('memory_limit') as memory_limit"


def limit_as_duckdb_reads(value: str) -> str:
    con = duckdb.connect(config={"memory_limit": value})
    try:
        (shown,) = con.execute(SHOW_LIMIT).fetchone() or ("",)
    finally:
        con.close()
    return shown


def dbt_limit() -> str:
    """The limit dbt's own connection has, started as the dbt asset starts it."""
    invocation = dbt_cli.cli(["show", "--inline", SHOW_LIMIT, "--output", "json"])
    shown = [
        str(event.raw_event["data"].get("preview", ""))
        for event in invocation.stream_raw_events()
        if "preview" in event.raw_event.get("data", {})
    ]
    invocation.wait()
    assert shown, "dbt show printed no preview"
    return shown[0]


@pytest.mark.parametrize("configured", [None, "512MiB"])
def test_the_loads_and_dbt_share_the_memory_limit(workspace, monkeypatch, configured):
    if configured is None:
        monkeypatch.delenv("JAFFLE_DUCKDB_MEMORY_LIMIT", raising=False)
    else:
        monkeypatch.setenv("JAFFLE_DUCKDB_MEMORY_LIMIT", configured)
    expected = limit_as_duckdb_reads(configured or settings.DEFAULT_DUCKDB_MEMORY_LIMIT)
    # Not DuckDB's own default (80 % of this machine), or the test shows nothing.
    (duckdb_default,) = duckdb.connect().execute(SHOW_LIMIT).fetchone() or ("",)
    assert expected != duckdb_default

    with DuckDBWarehouse().connect() as con:
        (in_loads,) = con.execute(SHOW_LIMIT).fetchone() or ("",)
    assert in_loads == expected
    assert expected in dbt_limit()


@pytest.mark.parametrize(
    ("value", "problem"),
    [("lots", "is not an amount"), ("6 G", "is not an amount"), ("64MiB", "is below 128MiB")],
)
def test_a_bad_memory_limit_is_named(monkeypatch, value, problem):
    monkeypatch.setenv("JAFFLE_DUCKDB_MEMORY_LIMIT", value)
    with pytest.raises(ValueError, match=f"JAFFLE_DUCKDB_MEMORY_LIMIT='{value}' {problem}"):
        settings.duckdb_memory_limit()


@pytest.mark.parametrize("value", ["128MiB", "0.5GB", "2.5GB", "16GiB"])
def test_memory_limits_duckdb_takes_are_taken(monkeypatch, value):
    monkeypatch.setenv("JAFFLE_DUCKDB_MEMORY_LIMIT", value)
    assert settings.duckdb_memory_limit() == value
    assert limit_as_duckdb_reads(value)
