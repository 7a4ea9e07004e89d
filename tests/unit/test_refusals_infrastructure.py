"""Failures of the warehouse or the machine are WarehouseError, never a refusal of the file, and
leave the previous table as it was. Each is provoked for real: a full disk (a 1 MiB tmpfs), a
directory the loading user may not write, a DuckDB file locked by another process, a memory cap.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import duckdb
import pytest

from jaffle_platform.defs.ingest.loader import (
    RAW_TABLES,
    RawDataError,
    WarehouseError,
    infrastructure_errors,
    load_raw_table,
)

ORDERS = RAW_TABLES["raw_orders"]
HEADER = "id,user_id,order_date,status\n"
GOOD = HEADER + "".join(f"{i},{i % 7 + 1},2018-01-01,placed\n" for i in range(1, 101))
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def rows(db: Path) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("select * from jaffle_shop.raw_orders order by all").fetchall()
    finally:
        con.close()


def load_good(db: Path, tmp_path: Path) -> list[tuple]:
    good = tmp_path / "good.csv"
    good.write_text(GOOD)
    con = duckdb.connect(str(db))
    load_raw_table(con, ORDERS, good)
    con.close()
    return rows(db)


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory) -> Path:
    """500,000 valid orders (20 MiB) that compress badly: random customer ids and dates."""
    rng = random.Random(1)
    statuses = ("placed", "shipped", "completed")
    path = tmp_path_factory.mktemp("big") / "raw_orders.csv"
    lines = (
        f"{i},{rng.randrange(1, 10**12)},20{rng.randrange(10, 24)}-0{rng.randrange(1, 10)}-"
        f"1{rng.randrange(0, 9)},{rng.choice(statuses)}\n"
        for i in range(1, 500_001)
    )
    path.write_text(HEADER + "".join(lines))
    return path


def assert_infrastructure(error: WarehouseError, source: str) -> None:
    message = str(error)
    assert not isinstance(error, RawDataError)
    assert message.startswith(f"raw_orders: could not load {source}: infrastructure failure")
    assert "not a problem with the file" in message
    assert "retry" in message and "The previous table is unchanged" in message
    assert (error.table, error.source) == ("raw_orders", source)


@pytest.fixture
def tiny_disk(tmp_path: Path):
    """A 1 MiB tmpfs: needs root and mount(8)."""
    if not IS_ROOT or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount_point
    subprocess.run(["umount", str(mount_point)], check=True)


def test_disk_full_is_an_infrastructure_failure(tmp_path, tiny_disk, big_csv):
    db = tiny_disk / "w.duckdb"
    before = load_good(db, tmp_path)
    con = duckdb.connect(str(db))
    with pytest.raises(WarehouseError) as info:
        load_raw_table(con, ORDERS, big_csv)
    con.close()
    assert_infrastructure(info.value, str(big_csv))
    assert "No space left on device" in info.value.problem
    assert rows(db) == before


def test_read_only_warehouse_is_an_infrastructure_failure(tmp_path):
    db = tmp_path / "w.duckdb"
    before = load_good(db, tmp_path)
    con = duckdb.connect(str(db), read_only=True)
    with pytest.raises(WarehouseError) as info:
        # reload: the file the table was loaded from would otherwise be skipped, writing nothing.
        load_raw_table(con, ORDERS, tmp_path / "good.csv", reload=True)
    con.close()
    assert_infrastructure(info.value, str(tmp_path / "good.csv"))
    assert "read-only" in info.value.problem
    assert rows(db) == before


@pytest.fixture
def root_owned_dir():
    """A directory under /tmp that every user may read but only root may write."""
    if not IS_ROOT:
        pytest.skip("switching to another user needs root")
    path = Path(tempfile.mkdtemp(prefix="jaffle-perm-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def test_permission_denied_is_an_infrastructure_failure(tmp_path, root_owned_dir):
    # The warehouse file is writable by everyone, its directory only by root: the loading user
    # (nobody) opens the file but may not create its write-ahead log when the load commits.
    db = root_owned_dir / "w.duckdb"
    before = load_good(db, tmp_path)
    db.chmod(0o666)
    csv_path = root_owned_dir / "raw_orders.csv"
    csv_path.write_text(GOOD)
    csv_path.chmod(0o644)
    script = textwrap.dedent(
        f"""
        import encodings.utf_8_sig, os, duckdb
        from pathlib import Path
        from jaffle_platform.defs.ingest.loader import RAW_TABLES, WarehouseError, load_raw_table
        os.setgid(65534)
        os.setuid(65534)
        con = duckdb.connect({str(db)!r})
        try:
            load_raw_table(con, RAW_TABLES["raw_orders"], Path({str(csv_path)!r}), reload=True)
        except WarehouseError as exc:
            print(exc)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"raw_orders: could not load {csv_path}: infrastructure failure" in done.stdout
    assert "Permission denied" in done.stdout
    assert rows(db) == before


def test_warehouse_locked_by_another_process_is_an_infrastructure_failure(tmp_path):
    db = tmp_path / "w.duckdb"
    before = load_good(db, tmp_path)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
            "sys.stdin.read()",
            str(db),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with (
            pytest.raises(WarehouseError) as info,
            infrastructure_errors("raw_orders", "raw_orders.csv"),
        ):
            duckdb.connect(str(db))
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)
    assert_infrastructure(info.value, "raw_orders.csv")
    assert "lock" in info.value.problem
    assert rows(db) == before


def test_out_of_memory_is_an_infrastructure_failure(tmp_path, big_csv):
    db = tmp_path / "w.duckdb"
    before = load_good(db, tmp_path)
    con = duckdb.connect(str(db))
    con.execute("set memory_limit = '1MB'")
    with pytest.raises(WarehouseError) as info:
        load_raw_table(con, ORDERS, big_csv)
    con.close()
    assert_infrastructure(info.value, str(big_csv))
    assert "Out of Memory" in info.value.problem
    assert rows(db) == before
