"""The dbt docs site and the warehouse snapshot, published after a real materialize of everything.

The docs are served by a real http.server over REPORTS_DIR (what the compose `reports` service
runs) and rendered by headless Chromium; the snapshot is opened read-only while another process
holds the warehouse's write lock, and replaced under a reader that keeps reading the old one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import http.server
import json
import os
import shutil
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from jaffle_platform import settings
from jaffle_platform.definitions import defs
from jaffle_platform.defs.dbt.docs import DOCS_DIR
from jaffle_platform.defs.dbt.runs import FULL_REFRESH_TAG
from jaffle_platform.defs.publish.atomic import publish_copy, publish_dir
from jaffle_platform.defs.publish.snapshot import SNAPSHOT_FILE
from tests.conftest import Workspace
from tests.integration.daily_data import (
    expected_marts,
    generate_days,
    write_customers,
    write_days,
)
from tests.integration.test_materialize import query

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
MARTS = "select (select count(*) from main.customers), (select count(*) from main.orders), " \
    "(select sum(customer_lifetime_value) from main.customers)"  # fmt: skip


FIRST_DAY = dt.date(2018, 1, 1)
DAYS = 10
RAW = {"raw_customers", "raw_orders", "raw_payments"}


def write_raw(duckdb_path: Path, customers: int = 100, seed: int = 1) -> tuple[int, int]:
    """Ten days of raw tables in the daily contract; returns the customers and orders the marts
    must then hold."""
    duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    data = generate_days(FIRST_DAY, DAYS, customers, orders_per_day=20, seed=seed)
    write_customers(duckdb_path, data.customers)
    write_days(duckdb_path, data, data.days)
    marts = expected_marts(data, data.days, data.customers)
    return len(marts.customers), len(marts.orders)


def materialize(
    instance: dg.DagsterInstance,
    selection: str = "*",
    raise_on_error: bool = True,
    full_refresh: bool = False,
):
    """Everything but the raw loads (the tables are written by write_raw), for the ten days as
    one run, as a backfill of them does."""
    graph = defs.resolve_asset_graph()
    keys = dg.AssetSelection.from_string(selection).resolve(graph)
    keys = {k for k in keys if k.to_user_string() not in RAW}
    return defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance,
        asset_selection=list(keys),
        raise_on_error=raise_on_error,
        tags={
            "dagster/asset_partition_range_start": FIRST_DAY.isoformat(),
            "dagster/asset_partition_range_end": (FIRST_DAY + dt.timedelta(DAYS - 1)).isoformat(),
            **({FULL_REFRESH_TAG: "true"} if full_refresh else {}),
        },
    )


@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as inst:
        yield inst


@pytest.fixture
def snapshot_path(workspace, monkeypatch) -> Path:
    monkeypatch.setenv("SNAPSHOT_DIR", str(workspace.root / "snapshot"))
    return workspace.root / "snapshot" / SNAPSHOT_FILE


@contextmanager
def serve(directory: Path) -> Iterator[str]:
    directory.mkdir(parents=True, exist_ok=True)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format, *args):  # noqa: A002
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(directory))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def latest_metadata(instance: dg.DagsterInstance, asset: str) -> dict:
    event = instance.get_latest_materialization_event(dg.AssetKey(asset))
    assert event is not None and event.asset_materialization is not None, asset
    return dict(event.asset_materialization.metadata)


def remove_dbt_targets(instance: dg.DagsterInstance) -> None:
    """Removes the target dirs dagster-dbt left in the dbt project for this instance's runs."""
    target = settings.dbt_project_dir() / "target"
    for record in instance.get_run_records():
        for path in target.glob(f"jaffle_shop_dbt_assets-{record.dagster_run.run_id[:7]}-*"):
            shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def dbt_targets(instance) -> Iterator[None]:
    yield
    remove_dbt_targets(instance)


@dataclass
class DocsRun:
    """One materialize of everything, its reports served over HTTP at `url`."""

    workspace: Workspace
    instance: dg.DagsterInstance
    url: str
    dbt_target: Path  # a copy of the build's dbt target dir (manifest.json, partial parse)


@pytest.fixture(scope="module")
def docs_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DocsRun]:
    root = tmp_path_factory.mktemp("docs_run")
    ws = Workspace(root, root / "raw", root / "warehouse" / "warehouse.duckdb", root / "reports")
    write_raw(ws.duckdb_path)
    with (
        dg.DagsterInstance.ephemeral() as instance,
        serve(ws.reports_dir) as url,
        pytest.MonkeyPatch.context() as env,
    ):
        for name, value in {
            "RAW_DATA_URI": ws.raw_dir,
            "DUCKDB_PATH": ws.duckdb_path,
            "REPORTS_DIR": ws.reports_dir,
            "REPORTS_BASE_URL": url,
            "SNAPSHOT_DIR": root / "snapshot",
        }.items():
            env.setenv(name, str(value))
        try:
            result = materialize(instance)
            assert result.success
            (target,) = (settings.dbt_project_dir() / "target").glob(
                f"jaffle_shop_dbt_assets-{result.run_id[:7]}-*"
            )
            shutil.copytree(target, root / "dbt_target")
        finally:
            remove_dbt_targets(instance)
        env.undo()
        yield DocsRun(ws, instance, url, root / "dbt_target")


def test_dbt_docs_are_served_at_dbt_and_linked_from_each_model(docs_run: DocsRun, tmp_path):
    url, instance = docs_run.url, docs_run.instance
    status, page = get(f"{url}/{DOCS_DIR}/")
    assert status == 200
    html = page.decode()
    # dbt's docs app with this project's manifest and catalog inlined (one self-contained page).
    assert "MANIFEST.JSON INLINE DATA" not in html and "CATALOG.JSON INLINE DATA" not in html
    for model in ("customers", "orders", "stg_orders"):
        assert f'"model.jaffle_shop.{model}"' in html

    for model in ("customers", "orders"):
        link = latest_metadata(instance, model)["dbt_docs"]
        assert isinstance(link, dg.UrlMetadataValue)
        assert link.value == f"{url}/dbt/#!/model/model.jaffle_shop.{model}"
        assert get(link.value.split("#", 1)[0])[0] == 200
    assert "dbt_docs_error" not in latest_metadata(instance, "customers")

    # The catalog (column types for the docs) is the one dbt itself writes for this warehouse.
    status, body = get(f"{url}/{DOCS_DIR}/catalog.json")
    assert status == 200
    ours = json.loads(body)
    theirs_dir = tmp_path / "dbt_docs_generate"
    shutil.copytree(docs_run.dbt_target, theirs_dir)
    dbt_project = settings.dbt_project_dir()
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "dbt"),
            "docs",
            "generate",
            "--no-compile",
            *("--project-dir", str(dbt_project), "--profiles-dir", str(dbt_project)),
            *("--target-path", str(theirs_dir), "--log-path", str(theirs_dir)),
        ],
        env={**os.environ, "DUCKDB_PATH": str(docs_run.workspace.duckdb_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    theirs = json.loads((theirs_dir / "catalog.json").read_text())
    assert ours["nodes"] == theirs["nodes"] and ours["sources"] == theirs["sources"]
    columns = ours["nodes"]["model.jaffle_shop.customers"]["columns"]
    assert columns["customer_lifetime_value"]["type"] == "DECIMAL(38,2)"
    assert set(ours["sources"]) == {
        f"source.jaffle_shop.jaffle_shop.raw_{t}" for t in ("customers", "orders", "payments")
    }
    manifest = json.loads(get(f"{url}/{DOCS_DIR}/manifest.json")[1])
    assert manifest == json.loads((theirs_dir / "manifest.json").read_text())


def test_dbt_docs_render_in_a_browser(docs_run: DocsRun):
    if not Path(CHROMIUM).exists():
        message = f"no Chromium at {CHROMIUM} (apt-get install chromium, or set CHROMIUM)"
        if os.environ.get("JAFFLE_REQUIRE_STACK") == "1":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import expect, sync_playwright

    link = latest_metadata(docs_run.instance, "customers")["dbt_docs"].value
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page()
            page.goto(link, wait_until="load")
            # The model's page, as a user opens it from the asset's metadata: its name, and its
            # columns with the types read from the warehouse (the catalog).
            main = page.locator("[ui-view]").first
            expect(main).to_contain_text("customers", timeout=30_000)
            expect(main).to_contain_text("customer_lifetime_value")
            expect(main).to_contain_text("DECIMAL(38,2)")
            # The site's front page, searched as a user would: each model, then its page.
            page.goto(link.split("#", 1)[0], wait_until="load")
            expect(page.get_by_role("heading", name="Welcome!")).to_be_visible(timeout=30_000)
            page.get_by_placeholder("Search for models...").fill("orders")
            for model in ("orders", "customers", "stg_orders"):
                result = page.get_by_role("heading", name=f"{model} model", exact=True)
                expect(result).to_be_visible()
            page.get_by_role("heading", name="orders model", exact=True).click()
            expect(main).to_contain_text("credit_card_amount")
            assert page.url.endswith("#!/model/model.jaffle_shop.orders")
        finally:
            browser.close()


def test_a_failed_docs_refresh_warns_and_keeps_the_build(
    workspace, instance, snapshot_path, dbt_targets, monkeypatch
):
    # A file where the reports folder should be: the site cannot be written.
    blocker = workspace.root / "not_a_folder"
    blocker.write_text("")
    monkeypatch.setenv("REPORTS_DIR", str(blocker / "reports"))
    write_raw(workspace.duckdb_path)
    result = materialize(instance, "not key:order_count_chart")
    assert result.success

    meta = latest_metadata(instance, "customers")
    assert "dbt_docs" not in meta
    error = meta["dbt_docs_error"].value
    assert "dbt docs not refreshed" in error and str(blocker) in error
    assert meta["dagster/row_count"].value == 100
    warnings = [
        e.message
        for e in instance.all_logs(result.run_id)
        if e.level == 30 and "dbt docs not refreshed" in e.message
    ]
    assert len(warnings) == 1
    assert snapshot_path.exists(), "the snapshot downstream still ran"


def test_docs_site_is_replaced_in_one_step_while_being_read(tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    # A real folder left at the site's path (say, copied by hand) is replaced too.
    (reports / DOCS_DIR).mkdir()
    (reports / DOCS_DIR / "index.html").write_text("by hand")
    versions = {
        i: {
            "index.html": f"v{i}".encode() + b"i" * 2_000_000,
            "catalog.json": f"v{i}".encode() + b"c" * 500_000,
        }
        for i in range(12)
    }
    seen: list[tuple[int, bytes, bytes]] = []
    stop = threading.Event()
    with serve(reports) as url:
        publish_dir(reports, DOCS_DIR, versions[0])

        def read() -> None:
            while not stop.is_set():
                index = get(f"{url}/{DOCS_DIR}/index.html")
                catalog = get(f"{url}/{DOCS_DIR}/catalog.json")
                seen.append((min(index[0], catalog[0]), index[1], catalog[1]))

        reader = threading.Thread(target=read)
        reader.start()
        try:
            for files in versions.values():
                publish_dir(reports, DOCS_DIR, files)
        finally:
            stop.set()
            reader.join()
    assert len(seen) > 5
    indexes = {f["index.html"] for f in versions.values()}
    catalogs = {f["catalog.json"] for f in versions.values()}
    for status, index, catalog in seen:
        assert status == 200
        assert index in indexes and catalog in catalogs, "a reader got part of a site"
    assert (reports / DOCS_DIR).is_symlink()
    assert (reports / DOCS_DIR / "index.html").read_bytes() == versions[11]["index.html"]
    assert sorted(p.name for p in reports.iterdir() if p.name != DOCS_DIR) == [
        os.readlink(reports / DOCS_DIR)
    ], "older versions and temporary links are removed"

    # A publish that fails half-way (here: a file it cannot create) leaves the site as it was.
    before = sorted(p.name for p in reports.iterdir())
    with pytest.raises(FileNotFoundError):
        publish_dir(reports, DOCS_DIR, {"index.html": b"new", "no/such/dir.json": b"{}"})
    assert sorted(p.name for p in reports.iterdir()) == before
    assert (reports / DOCS_DIR / "index.html").read_bytes() == versions[11]["index.html"]


def test_a_copy_that_fails_its_check_keeps_the_previous_snapshot(tmp_path):
    source = tmp_path / "source.bin"
    target = tmp_path / "snap" / "copy.bin"
    source.write_bytes(b"first")
    assert publish_copy(source, target, lambda p: p.read_bytes()) == b"first"
    assert stat.S_IMODE(target.stat().st_mode) == 0o444

    source.write_bytes(b"second, broken")

    def refuse(path: Path) -> None:
        raise ValueError(f"{path.name} is broken")

    with pytest.raises(ValueError, match="broken"):
        publish_copy(source, target, refuse)
    assert target.read_bytes() == b"first"
    assert [p.name for p in target.parent.iterdir()] == ["copy.bin"]

    # A temporary copy left by a killed run goes; one another process is writing now stays.
    dead, live = target.parent / ".copy.bin.dead.tmp", target.parent / ".copy.bin.live.tmp"
    dead.write_bytes(b"half")
    live.write_bytes(b"half")
    an_hour_ago = time.time() - 3600
    os.utime(dead, (an_hour_ago, an_hour_ago))
    publish_copy(source, target, lambda p: None)
    assert target.read_bytes() == b"second, broken"
    assert sorted(p.name for p in target.parent.iterdir()) == [live.name, "copy.bin"]


HOLD_WRITE_LOCK = """
import duckdb, sys
con = duckdb.connect(sys.argv[1])
con.execute("create or replace table main.writer_was_here as select 1 as x")
print("locked", flush=True)
sys.stdin.readline()
"""

READ_TWICE = """
import duckdb, sys
con = duckdb.connect(sys.argv[1], read_only=True)
sql = sys.argv[2]
print(con.execute(sql).fetchone(), flush=True)
sys.stdin.readline()
print(con.execute(sql).fetchone(), flush=True)
"""


def release(process: subprocess.Popen) -> None:
    """Lets a process started by python() go on past its stdin.readline()."""
    if process.stdin is not None and not process.stdin.closed:
        # Two threads may release it at once; the second finds the pipe closed.
        with contextlib.suppress(ValueError, BrokenPipeError):
            process.stdin.write("\n")
            process.stdin.close()


def release_on_retry(instance: dg.DagsterInstance, process: subprocess.Popen) -> None:
    """Releases the process once a step of the instance's run is up for retry (or after 120 s)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not process.stdin.closed:  # type: ignore[union-attr]
        runs = instance.get_runs(limit=1)
        if runs and any(
            e.dagster_event is not None and e.dagster_event.event_type_value == "STEP_UP_FOR_RETRY"
            for e in instance.all_logs(runs[0].run_id)
        ):
            break
        time.sleep(0.2)
    release(process)


def python(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def test_snapshot_opens_while_a_writer_holds_the_warehouse_and_is_replaced_atomically(
    workspace, instance, snapshot_path, dbt_targets
):
    counts = write_raw(workspace.duckdb_path)
    assert materialize(instance).success
    marts = query(workspace.duckdb_path, MARTS)
    assert marts[0][:2] == counts
    assert stat.S_IMODE(snapshot_path.stat().st_mode) == 0o444
    assert sorted(p.name for p in snapshot_path.parent.iterdir()) == [SNAPSHOT_FILE]
    meta = latest_metadata(instance, "warehouse_snapshot")
    assert meta["path"].value == str(snapshot_path)
    assert meta["size_bytes"].value == snapshot_path.stat().st_size
    assert "| main.customers | 100 |" in meta["tables"].value
    customers = query(workspace.duckdb_path, "select * from main.customers order by 1")

    # Another process writes to the warehouse and holds its lock: the warehouse is closed to
    # readers, the snapshot is not.
    writer = python(HOLD_WRITE_LOCK, str(workspace.duckdb_path))
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "locked"
        with pytest.raises(duckdb.IOException, match="lock"):
            duckdb.connect(str(workspace.duckdb_path), read_only=True)
        assert query(snapshot_path, MARTS) == marts
        assert query(snapshot_path, "select * from main.customers order by 1") == customers
        # A snapshot asked for meanwhile waits for the writer (a retry 5 s later), then publishes.
        with dg.instance_for_test() as on_disk:
            threading.Thread(target=release_on_retry, args=(on_disk, writer)).start()
            result = materialize(on_disk, "key:warehouse_snapshot", raise_on_error=False)
    finally:
        release(writer)
        writer.wait(timeout=30)
    assert result.success
    assert len([e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]) == 1
    assert query(snapshot_path, "select count(*) from main.writer_was_here") == [(1,)]

    # A reader keeps the first snapshot open across the next refresh, which brings more data.
    old_inode = snapshot_path.stat().st_ino
    reader = python(READ_TWICE, str(snapshot_path), MARTS)
    try:
        assert reader.stdout is not None
        first = reader.stdout.readline().strip()
        assert first == repr(marts[0])
        # Another history altogether: a full refresh.
        new_counts = write_raw(workspace.duckdb_path, customers=400, seed=11)
        assert materialize(instance, full_refresh=True).success
        assert reader.stdin is not None
        reader.stdin.write("\n")
        reader.stdin.flush()
        assert reader.stdout.readline().strip() == first, "the open snapshot stays as it was"
    finally:
        if reader.stdin is not None:
            reader.stdin.close()
        reader.wait(timeout=30)
    assert reader.returncode == 0
    assert snapshot_path.stat().st_ino != old_inode
    new_marts = query(snapshot_path, MARTS)
    assert new_marts[0][:2] == new_counts != counts
    assert new_marts == query(workspace.duckdb_path, MARTS)
    assert sorted(p.name for p in snapshot_path.parent.iterdir()) == [SNAPSHOT_FILE]
