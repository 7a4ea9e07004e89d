"""Publishing for readers who never see a half-written file or folder: write aside, then rename.

A rename within one filesystem is atomic: a reader opens either the previous version or the new
one, and a reader that has the previous one open keeps reading it (its inode lives on until
closed). A folder cannot be renamed over a non-empty folder, so a published folder is a symlink
to a versioned sibling, and the symlink is what gets replaced.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
STALE_SECONDS = 15 * 60


def fsync_path(path: Path) -> None:
    """Flushes a file's data, or a directory's entries (which makes a rename in it durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _writable_dir(path: Path, what: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(f"{what}: cannot create {path}: {exc.strerror}") from exc
    if not os.access(path, os.W_OK | os.X_OK):
        raise PermissionError(
            f"{what}: {path} is not writable by uid {os.getuid()}: give that user the folder "
            f"(for the compose stack's host folder: `sudo chown 1000 <folder>`)"
        )


def publish_dir(parent: Path, name: str, files: Mapping[str, bytes]) -> Path:
    """Publishes `files` as folder `parent/name` in one step; returns the versioned folder.

    `parent/name` is a relative symlink to `.<name>-<version>`; older versions are removed.
    A real folder found at `parent/name` (not made here) is moved aside first, once.
    """
    _writable_dir(parent, name)
    token = uuid.uuid4().hex[:8]
    # Sortable versions: cleaning up removes only versions older than this one.
    version = parent / f".{name}-{time.time_ns():020d}-{token}"
    version.mkdir()
    link = parent / f".{name}.link-{token}"
    try:
        for file_name, data in files.items():
            with open(version / file_name, "xb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        fsync_path(version)
        os.symlink(version.name, link)
        live = parent / name
        if live.is_dir() and not live.is_symlink():
            live.rename(parent / f".{name}-{0:020d}-{token}")
        os.replace(link, live)
    except BaseException:
        link.unlink(missing_ok=True)
        shutil.rmtree(version, ignore_errors=True)
        raise
    fsync_path(parent)
    for old in parent.glob(f".{name}-*"):
        if old.name < version.name and old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
    for stale_link in parent.glob(f".{name}.link-*"):
        stale_link.unlink(missing_ok=True)
    return version


def publish_copy(source: Path, target: Path, check: Callable[[Path], T]) -> T:
    """Copies `source` to `target` atomically, read-only, durable; `check` vets the copy first.

    The copy is written beside the target under a hidden temporary name, flushed to disk, made
    read-only (so nobody opens it for writing by mistake), handed to `check`, then renamed over
    the target. A failed check or copy leaves the previous target as it was.
    """
    _writable_dir(target.parent, target.name)
    for stale in target.parent.glob(f".{target.name}.*.tmp"):
        # Left by a copy that was killed. One being written right now (by another process, whose
        # writes keep its mtime fresh) is not touched.
        with contextlib.suppress(FileNotFoundError):
            if time.time() - stale.stat().st_mtime > STALE_SECONDS:
                stale.unlink()
    tmp = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        # copyfile uses the kernel's copy (sendfile) on Linux: no round trip through Python.
        shutil.copyfile(source, tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, READ_ONLY)
        checked = check(tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_path(target.parent)
    return checked
