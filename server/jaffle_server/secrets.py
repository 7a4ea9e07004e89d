"""First start: generate the stack's secrets into named volumes, never into the environment.

Run once per `docker compose up` by the one-shot `init` service (as root, so it can hand the
files to the uid that reads them); every step is skipped when its file already exists, so the
secrets of a running stack never change:
- the Postgres superuser's password (volume mounted only into postgres);
- the password of Dagster's own, non-superuser Postgres role (read by the Dagster services and
  run containers through docker/entrypoint.sh);
- the webserver's session key and first admin (jaffle_server.users.bootstrap): the generated
  admin password is printed here once, so `docker compose logs init` shows it.
It also writes JAFFLE_ALERT_URLS, the operator's, into the alerts volume (replaced on every `up`).
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path

PG_SUPERUSER_FILE = Path("/run/jaffle/pg/superuser_password")
DAGSTER_PG_FILE = Path("/run/jaffle/secrets/postgres_password")
AUTH_DIR = Path("/var/lib/jaffle/auth")
APP_UID = 1000
# Host folders the runs write into (bind mounts, docker-compose.yml). Docker creates a missing
# one as root, where uid 1000 cannot write: init hands such a folder to uid 1000.
# JAFFLE_ALERT_URLS, which carries tokens: in a volume only the code server and the watchdog mount.
ALERT_URLS_FILE = Path("/run/jaffle/alerts/urls")
HOST_FOLDERS = (Path("/var/lib/jaffle/backups"), Path("/var/lib/jaffle/snapshot"))


def write_secret(path: Path, value: str, mode: int, uid: int | None = None) -> bool:
    """Create `path` holding `value` unless it exists; True when it was created."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(value)
    os.chmod(tmp, mode)
    if uid is not None and os.geteuid() == 0:
        os.chown(tmp, uid, uid)
    os.replace(tmp, path)
    return True


def init(pg_superuser: Path, dagster_pg: Path, auth_dir: Path, admin_password: str | None) -> None:
    from jaffle_server.users import bootstrap

    # World-readable inside volumes that only the containers needing them mount: the postgres
    # image reads its files as its own uid (999 in the official image), the services as 1000.
    if write_secret(pg_superuser, secrets.token_urlsafe(32), 0o444):
        print(f"init: generated the Postgres superuser password ({pg_superuser})")
    if write_secret(dagster_pg, secrets.token_urlsafe(32), 0o444):
        print(f"init: generated the password of Dagster's Postgres role ({dagster_pg})")
    auth_dir.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        os.chown(auth_dir, APP_UID, APP_UID)
        os.chmod(auth_dir, 0o700)
    generated = bootstrap(auth_dir, admin_password)
    if os.geteuid() == 0:
        for path in auth_dir.iterdir():
            os.chown(path, APP_UID, APP_UID)
    if generated:
        banner = "=" * 72
        print(
            f"{banner}\n"
            f"  First start: the UI's first user is 'admin' with the generated password\n\n"
            f"      {generated}\n\n"
            f"  It is shown only this once. Add users with\n"
            f"      docker compose exec webserver jaffle-users add NAME --role viewer\n"
            f"{banner}",
            flush=True,
        )
    print("init: secrets in place")


def prepare_host_folders(folders: tuple[Path, ...] = HOST_FOLDERS) -> None:
    for folder in folders:
        if not folder.is_dir() or os.geteuid() != 0:
            continue
        info = folder.stat()
        if info.st_uid == 0:
            os.chown(folder, APP_UID, APP_UID)
        elif info.st_uid != APP_UID and not info.st_mode & 0o002:
            print(f"init: warning: {folder} belongs to uid {info.st_uid}; runs (uid {APP_UID}) "
                  "cannot write there: chown it to 1000 on the host", flush=True)  # fmt: skip


def write_alert_urls(urls: str | None, path: Path = ALERT_URLS_FILE) -> None:
    """The alert URLs of this `up`, for the code server and the watchdog: replaced on every `up`
    (unlike the generated secrets, they are the operator's to change), removed when unset."""
    if not path.parent.is_dir():
        return
    if not urls or not urls.strip():
        if path.exists():
            path.unlink()
            print("init: alerts are off (JAFFLE_ALERT_URLS is empty)", flush=True)
        return
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
    with os.fdopen(fd, "w") as f:
        f.write(urls.strip() + "\n")
    if os.geteuid() == 0:
        os.chown(tmp, APP_UID, APP_UID)
    os.replace(tmp, path)
    print(f"init: alert URLs written to {path}", flush=True)


def pin_user_code_image() -> None:
    """Best effort: without a pin, runs use the tag (and the entrypoint says so)."""
    from jaffle_server.image_pin import PIN_FILE, pin

    tag = os.environ.get("USER_CODE_IMAGE", "").strip()
    if not tag or not Path("/var/run/docker.sock").exists():
        return
    try:
        print(f"init: runs start from {pin(tag)} ({tag})", flush=True)
    except Exception as exc:  # a missing image or engine must not stop the stack
        PIN_FILE.unlink(missing_ok=True)
        print(f"init: warning: could not pin {tag} ({exc}); runs use the tag", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jaffle-secrets", description=__doc__)
    parser.add_argument("command", choices=["init"])
    parser.parse_args(argv)
    admin_password = os.environ.pop("JAFFLE_ADMIN_PASSWORD", "") or None
    init(PG_SUPERUSER_FILE, DAGSTER_PG_FILE, AUTH_DIR, admin_password)
    write_alert_urls(os.environ.pop("JAFFLE_ALERT_URLS", "") or None)
    prepare_host_folders()
    pin_user_code_image()
    return 0


if __name__ == "__main__":
    sys.exit(main())
