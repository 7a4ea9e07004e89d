"""The landing folder's side of a run: copy exactly the file version the sensor saw."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from pathlib import Path

from jaffle_platform import settings
from jaffle_platform.defs.ingest.contract import LoadProblem
from jaffle_platform.defs.ingest.sources import CHUNK_BYTES


class LandingFileChanged(LoadProblem):
    """The landed file is not the version the sensor saw (rewritten, replaced or removed)."""

    def __init__(self, table: str, source: str, problem: str):
        super().__init__(
            table, source, problem,
            f"{table}: {source} changed since the sensor saw it ({problem}); not loaded. "
            "It will be picked up again once it stays unchanged.",
        )  # fmt: skip


def copy_landed_file(
    table: str, file_name: str, expected_size: int, expected_mtime_ns: int, dest: Path
) -> tuple[str, str]:
    """Copy LANDING_DIR/file_name to dest if it is still the version the sensor saw.

    Returns (source, sha256 of the copy). The name is always the table's fixed file name (or a
    day's, from the run's partition), never a path from run config, and a symlink (file or day
    folder) is refused, so config cannot make a run read other files.
    """
    source_path = settings.landing_dir() / file_name
    source = str(source_path)
    expected = (expected_size, expected_mtime_ns)
    if source_path.parent != settings.landing_dir():
        # A day file: its folder (raw_orders/) must be a real folder, not a link elsewhere.
        try:
            folder = os.lstat(source_path.parent)
        except FileNotFoundError:
            raise LandingFileChanged(table, source, "its folder is gone") from None
        if not stat.S_ISDIR(folder.st_mode):
            raise LandingFileChanged(table, source, "its folder is not a plain folder")
    try:
        fd = os.open(source_path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise LandingFileChanged(table, source, "it is gone") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise LandingFileChanged(table, source, "it is now a symlink") from None
        raise
    digest = hashlib.sha256()
    copied = 0
    with os.fdopen(fd, "rb") as src:
        before = os.fstat(src.fileno())
        if not stat.S_ISREG(before.st_mode):
            raise LandingFileChanged(table, source, "it is not a regular file")
        if (before.st_size, before.st_mtime_ns) != expected:
            raise LandingFileChanged(
                table,
                source,
                f"{_sig(before.st_size, before.st_mtime_ns)}, sensor saw {_sig(*expected)}",
            )
        with dest.open("wb") as out:
            while chunk := src.read(CHUNK_BYTES):
                digest.update(chunk)
                out.write(chunk)
                copied += len(chunk)
        after = os.fstat(src.fileno())
    if (after.st_size, after.st_mtime_ns) != expected or copied != expected_size:
        raise LandingFileChanged(
            table, source, f"written to while being copied ({copied} bytes read)"
        )
    return source, digest.hexdigest()


def _sig(size: int, mtime_ns: int) -> str:
    return f"size={size} mtime_ns={mtime_ns}"
