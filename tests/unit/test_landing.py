"""The run side of the landing sensor: it loads exactly the file version the sensor saw."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from jaffle_platform import settings
from jaffle_platform.definitions import defs
from jaffle_platform.defs.ingest import assets as raw_assets_module
from jaffle_platform.defs.ingest import sensor as landing


@pytest.fixture
def landing_dir(workspace, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = workspace.root / "landing"
    path.mkdir()
    monkeypatch.setenv("LANDING_DIR", str(path))
    # Nothing should come from RAW_DATA_URI in these runs: point it at an empty folder.
    empty = workspace.root / "empty"
    empty.mkdir()
    monkeypatch.setenv("RAW_DATA_URI", str(empty))
    return path


def sensor_request(landing_dir: Path, monkeypatch: pytest.MonkeyPatch) -> dg.RunRequest:
    """Two ticks of the real sensor, 20 s apart on its clock."""
    now = [1_000_000.0]
    monkeypatch.setattr(landing, "_now", lambda: now[0])
    sensor = defs.get_sensor_def("raw_files_sensor")
    cursor = None
    requests: list[dg.RunRequest] = []
    with dg.DagsterInstance.ephemeral() as instance:
        for _ in range(2):
            with dg.build_sensor_context(
                cursor=cursor, definitions=defs, instance=instance
            ) as context:
                result = sensor.evaluate_tick(context)
            cursor = result.cursor
            requests = list(result.run_requests or [])
            now[0] += 20
    (request,) = requests
    return request


DAY = "2018-03-25"


def drop_day(landing_dir: Path, day: str = DAY) -> Path:
    """Land the sample's files of `day`; returns the orders file."""
    for table in ("raw_orders", "raw_payments"):
        (landing_dir / table).mkdir(exist_ok=True)
        shutil.copy(settings.SAMPLE_DATA_DIR / table / f"{day}.csv", landing_dir / table)
    return landing_dir / "raw_orders" / f"{day}.csv"


def run(request_or_config, tables: list[str], tags: dict[str, str] | None = None, day: str = DAY):
    if isinstance(request_or_config, dg.RunRequest):
        run_config, tags = request_or_config.run_config, dict(request_or_config.tags)
        day = request_or_config.partition_key or day
    else:
        run_config = request_or_config
    job = defs.resolve_implicit_global_asset_job_def()
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(
            run_config=run_config,
            asset_selection=[dg.AssetKey(t) for t in tables],
            tags=tags or {},
            instance=instance,
            raise_on_error=False,
            partition_key=day,
        )
        meta = {}
        if result.success:
            for t in tables:
                event = instance.get_latest_materialization_event(dg.AssetKey(t))
                meta[t] = event.asset_materialization.metadata  # type: ignore[union-attr]
    return result, meta


def events(result, kind: str) -> list:
    return [e for e in result.all_events if e.event_type_value == kind]


def rows(workspace, table: str) -> int | None:
    if not workspace.duckdb_path.exists():
        return None
    con = duckdb.connect(str(workspace.duckdb_path), read_only=True)
    try:
        found = con.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = 'jaffle_shop' and table_name = ?",
            [table],
        ).fetchall()
        if found != [(1,)]:
            return None
        return con.execute(f"select count(*) from jaffle_shop.{table}").fetchall()[0][0]
    finally:
        con.close()


def test_the_sensors_run_loads_the_landed_file(workspace, landing_dir, monkeypatch):
    landed = drop_day(landing_dir)
    request = sensor_request(landing_dir, monkeypatch)
    assert request.partition_key == DAY

    result, meta = run(request, ["raw_orders"])
    assert result.success
    assert rows(workspace, "raw_orders") == len(landed.read_text().splitlines()) - 1 == 6
    assert meta["raw_orders"]["source"].value == str(landed)
    assert meta["raw_orders"]["sha256"].value == hashlib.sha256(landed.read_bytes()).hexdigest()


def test_a_file_changed_after_the_sensor_saw_it_is_not_loaded(workspace, landing_dir, monkeypatch):
    landed = drop_day(landing_dir)
    request = sensor_request(landing_dir, monkeypatch)
    with landed.open("a") as out:
        out.write("100000,1,2018-01-01,placed\n")

    result, _ = run(request, ["raw_orders"])
    assert not result.success
    (failure,) = events(result, "STEP_FAILURE")
    message = failure.event_specific_data.error.message
    assert str(landed) in message
    assert "changed since the sensor saw it" in message
    assert "will be picked up again" in message
    assert not events(result, "STEP_UP_FOR_RETRY"), "a changed file is not retried"
    assert rows(workspace, "raw_orders") is None, "nothing loaded"


def test_a_day_folder_replaced_by_a_symlink_is_refused(workspace, landing_dir, monkeypatch):
    drop_day(landing_dir)
    request = sensor_request(landing_dir, monkeypatch)
    shutil.rmtree(landing_dir / "raw_orders")
    (landing_dir / "raw_orders").symlink_to(settings.SAMPLE_DATA_DIR / "raw_orders")

    result, _ = run(request, ["raw_orders"])
    assert not result.success
    message = events(result, "STEP_FAILURE")[0].event_specific_data.error.message
    assert "folder is not a plain folder" in message
    assert rows(workspace, "raw_orders") is None


def test_a_landed_file_replaced_by_a_symlink_is_refused(workspace, landing_dir, monkeypatch):
    landed = landing_dir / "raw_customers.csv"
    shutil.copy(settings.SAMPLE_DATA_DIR / "raw_customers.csv", landed)
    request = sensor_request(landing_dir, monkeypatch)
    landed.unlink()
    landed.symlink_to(settings.SAMPLE_DATA_DIR / "raw_customers.csv")

    result, _ = run(request, ["raw_customers"])
    assert not result.success
    assert "symlink" in events(result, "STEP_FAILURE")[0].event_specific_data.error.message
    assert rows(workspace, "raw_customers") is None


def test_from_landing_needs_the_signature(workspace, landing_dir):
    drop_day(landing_dir)
    config = {"ops": {"raw_orders": {"config": {"from_landing": True}}}}
    result, _ = run(config, ["raw_orders"])
    assert not result.success
    assert "expected_size" in events(result, "STEP_FAILURE")[0].event_specific_data.error.message


def test_run_config_cannot_name_another_file(workspace, landing_dir):
    config = {"ops": {"raw_orders": {"config": {"path": "/etc/passwd"}}}}
    with pytest.raises(dg.DagsterInvalidConfigError):
        run(config, ["raw_orders"])


@pytest.mark.parametrize(
    ("config", "tags", "expected"),
    [
        ({}, {}, False),
        ({"ops": {"raw_customers": {"config": {"allow_shrink": True}}}}, {}, True),
        ({}, {"jaffle/allow_shrink": "true"}, True),
        ({}, {"jaffle/allow_shrink": "no"}, False),
    ],
)
def test_allow_shrink_from_config_or_tag_reaches_the_loader(
    workspace, monkeypatch, config, tags, expected
):
    seen: list[bool] = []
    real = raw_assets_module.load_raw_table

    def spy(*args, **kwargs):
        seen.append(kwargs.get("allow_shrink", False))
        return real(*args, **kwargs)

    monkeypatch.setattr(raw_assets_module, "load_raw_table", spy)
    result, meta = run(config, ["raw_customers"], tags)
    assert result.success
    assert seen == [expected]
    assert meta["raw_customers"]["allow_shrink"].value is expected


def test_a_shrunk_file_is_refused_once_and_loads_with_the_allow_shrink_tag(workspace):
    config = {}
    assert run(config, ["raw_customers"])[0].success
    lines = (settings.SAMPLE_DATA_DIR / "raw_customers.csv").read_text().splitlines()
    (workspace.raw_dir / "raw_customers.csv").write_text("\n".join(lines[:11]) + "\n")

    refused, _ = run(config, ["raw_customers"])
    assert not refused.success
    assert not events(refused, "STEP_UP_FOR_RETRY"), "a refused file is not retried"
    assert "allow_shrink" in events(refused, "STEP_FAILURE")[0].event_specific_data.error.message
    assert rows(workspace, "raw_customers") == 100

    allowed, _ = run(config, ["raw_customers"], {"jaffle/allow_shrink": "true"})
    assert allowed.success
    assert rows(workspace, "raw_customers") == 10


def test_a_scheduled_load_takes_the_landed_file_unless_raw_data_uri_is_set(
    workspace, landing_dir, monkeypatch
):
    """The daily refresh must not replace what was landed with the sample data."""
    lines = (settings.SAMPLE_DATA_DIR / "raw_customers.csv").read_text().splitlines()
    (landing_dir / "raw_customers.csv").write_text("\n".join(lines[:61]) + "\n")  # 60 rows
    monkeypatch.delenv("RAW_DATA_URI")
    result, meta = run({}, ["raw_customers"])
    assert result.success
    assert rows(workspace, "raw_customers") == 60
    assert str(meta["raw_customers"]["source"].value) == str(landing_dir / "raw_customers.csv")

    # RAW_DATA_URI, when set, wins over the landing folder.
    monkeypatch.setenv("RAW_DATA_URI", str(settings.SAMPLE_DATA_DIR))
    result, _ = run({}, ["raw_customers"])
    assert result.success
    assert rows(workspace, "raw_customers") == len(lines) - 1


def test_a_scheduled_day_takes_the_landed_day_file(workspace, landing_dir, monkeypatch):
    landed = drop_day(landing_dir)
    landed.write_text("\n".join(landed.read_text().splitlines()[:3]) + "\n")  # 2 of 6 orders
    monkeypatch.delenv("RAW_DATA_URI")
    result, meta = run({}, ["raw_orders"])
    assert result.success
    assert rows(workspace, "raw_orders") == 2
    assert str(meta["raw_orders"]["source"].value) == str(landed)
    # A day landed nowhere falls back to RAW_DATA_URI (here unset: the sample data).
    result, meta = run({}, ["raw_orders"], day="2018-03-29")
    assert result.success
    assert rows(workspace, "raw_orders") == 2 + 3
