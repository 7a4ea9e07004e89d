"""Where raw files come from: a local directory or an http(s) base URL (RAW_DATA_URI)."""

from __future__ import annotations

import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from jaffle_platform import settings
from jaffle_platform.defs.ingest.loader import RawDataError

DOWNLOAD_TIMEOUT_S = 60


def file_location(uri: str, file_name: str) -> str:
    if settings.raw_data_is_remote(uri):
        return uri.rstrip("/") + "/" + file_name
    return str(Path(uri) / file_name)


@contextmanager
def fetch_raw_file(
    table: str, file_name: str, uri: str | None = None
) -> Iterator[tuple[Path, str]]:
    """Yield (local path, how to name the file in errors); downloads go to a temp dir."""
    uri = uri or settings.raw_data_uri()
    location = file_location(uri, file_name)
    if not settings.raw_data_is_remote(uri):
        yield Path(location), location
        return
    tmp = Path(tempfile.mkdtemp(prefix="jaffle-raw-"))
    try:
        local = tmp / file_name
        try:
            with (
                urllib.request.urlopen(location, timeout=DOWNLOAD_TIMEOUT_S) as response,
                local.open("wb") as out,
            ):
                shutil.copyfileobj(response, out)
        except (urllib.error.URLError, OSError) as exc:
            raise RawDataError(table, location, f"download failed: {exc}") from exc
        yield local, location
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
