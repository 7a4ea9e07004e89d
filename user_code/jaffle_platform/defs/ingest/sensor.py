"""Landing sensor: new or changed CSVs in a local RAW_DATA_URI directory trigger their loads."""

import json
from pathlib import Path

import dagster as dg

from jaffle_platform import settings
from jaffle_platform.defs.ingest.loader import RAW_TABLES


def snapshot(directory: Path) -> dict[str, list[int]]:
    """Size and modification time of each raw file present, by table name."""
    state: dict[str, list[int]] = {}
    for table in RAW_TABLES.values():
        path = directory / table.file_name
        if path.is_file():
            st = path.stat()
            state[table.name] = [st.st_size, st.st_mtime_ns]
    return state


def changed_tables(previous: dict[str, list[int]], current: dict[str, list[int]]) -> list[str]:
    return sorted(name for name, sig in current.items() if previous.get(name) != sig)


@dg.sensor(
    name="raw_files_sensor",
    description=(
        "Watches the RAW_DATA_URI directory; a new or changed CSV launches one run that loads it "
        "and rebuilds everything downstream (dbt models, chart). Files already there when the "
        "sensor first runs are the baseline."
    ),
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    target=dg.AssetSelection.all(),
)
def raw_files_sensor(context: dg.SensorEvaluationContext):
    uri = settings.raw_data_uri()
    if settings.raw_data_is_remote(uri):
        return dg.SkipReason(f"RAW_DATA_URI is a URL ({uri}); only local directories are watched")
    directory = Path(uri)
    if not directory.is_dir():
        return dg.SkipReason(f"RAW_DATA_URI {uri} is not a directory")
    current = snapshot(directory)
    if context.cursor is None:
        context.update_cursor(json.dumps(current))
        return dg.SkipReason(f"baseline recorded for {len(current)} file(s) in {uri}")
    changed = changed_tables(json.loads(context.cursor), current)
    context.update_cursor(json.dumps(current))
    if not changed:
        return dg.SkipReason("no new or changed raw files")
    selection = dg.AssetSelection.assets(*changed).downstream()
    keys = selection.resolve(context.repository_def.asset_graph)  # type: ignore[union-attr]
    run_key = "-".join(f"{name}@{current[name][1]}" for name in changed)
    return dg.RunRequest(
        run_key=run_key, asset_selection=sorted(keys), tags={"trigger": "raw_files"}
    )
