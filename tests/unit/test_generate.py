"""The data generator: deterministic, classic schema, valid for the loader, some idle customers."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import duckdb

from jaffle_platform import settings
from jaffle_platform.defs.ingest.loader import RAW_TABLES, load_raw_table
from jaffle_platform.generate import generate, main


def digest(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in directory.glob("*.csv")}


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    generate(tmp_path / "a", customers=500, seed=3)
    generate(tmp_path / "b", customers=500, seed=3)
    generate(tmp_path / "c", customers=500, seed=4)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert digest(tmp_path / "a") != digest(tmp_path / "c")


def test_files_have_classic_schema_and_load_cleanly(tmp_path):
    counts = generate(tmp_path, customers=1000, orders=3000, seed=1)
    con = duckdb.connect()
    for table in RAW_TABLES.values():
        with (tmp_path / table.file_name).open() as f:
            assert next(csv.reader(f)) == list(table.columns)
        load_raw_table(con, table, tmp_path / table.file_name)
    sizes = {
        t: con.execute(f"select count(*) from jaffle_shop.{t}").fetchall()[0][0] for t in RAW_TABLES
    }
    assert sizes == {
        "raw_customers": 1000,
        "raw_orders": 3000,
        "raw_payments": counts.payments,
    }
    (idle,) = con.execute(
        "select count(*) from jaffle_shop.raw_customers c where not exists "
        "(select 1 from jaffle_shop.raw_orders o where o.user_id = c.id)"
    ).fetchall()[0]
    assert 0.05 * 1000 < idle < 0.35 * 1000, "about one customer in seven never orders"
    (orphans,) = con.execute(
        "select count(*) from jaffle_shop.raw_orders o where o.user_id not in "
        "(select id from jaffle_shop.raw_customers)"
    ).fetchall()[0]
    assert orphans == 0


def test_committed_sample_data_is_the_generators_output(tmp_path, capsys):
    assert main(["--customers", "100", "--seed", "42", "--out", str(tmp_path)]) == 0
    assert "100 customers" in capsys.readouterr().out
    assert digest(tmp_path) == digest(settings.SAMPLE_DATA_DIR)
