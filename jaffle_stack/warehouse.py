"""The DuckDB warehouse read from outside the stack: read-only, in a throwaway container of the
user-code image, on the warehouse volume, with no network. Answers come back as JSON text."""

from __future__ import annotations

import json
from typing import Any

from jaffle_stack.compose import docker

VOLUME = "jaffle_warehouse"
_CONNECT = "import duckdb, json, sys\ncon = duckdb.connect('/w/warehouse.duckdb', read_only=True)\n"


def _run(image: str, script: str, *args: str) -> Any:
    out = docker(
        "run", "--rm", "--network", "none", "-v", f"{VOLUME}:/w:ro",
        image, "python", "-c", _CONNECT + script, *args,
    )  # fmt: skip
    return json.loads(out)


def query(image: str, sql: str) -> list[list[Any]]:
    """Rows of one query (values that JSON lacks, such as decimals, as text)."""
    return _run(image, "print(json.dumps(con.execute(sys.argv[1]).fetchall(), default=str))\n", sql)


def counts(image: str, tables: list[str]) -> dict[str, int]:
    """Row count of each table of the main schema."""
    script = (
        "print(json.dumps({t: con.execute(f'select count(*) from main.{t}').fetchone()[0]"
        " for t in sys.argv[1:]}))\n"
    )
    return _run(image, script, *tables)
