"""The one place that reads environment variables.

Every value is read when it is needed (at run time), never when an asset module is imported, so a
test can set an env var and materialize without reloading anything.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
SAMPLE_DATA_DIR = PACKAGE_DIR / "sample_data"

# The dbt project sits beside user_code/ in the repo; images copy it elsewhere and set the env var.
DEFAULT_DBT_PROJECT_DIR = PACKAGE_DIR.parents[1] / "dbt_project"


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def raw_data_uri() -> str:
    """Local directory or http(s) base URL that holds the three raw CSV files."""
    return _env("RAW_DATA_URI") or str(SAMPLE_DATA_DIR)


def raw_data_uri_configured() -> bool:
    """True when RAW_DATA_URI is set: it then wins over files in the landing folder."""
    return _env("RAW_DATA_URI") is not None


def raw_data_is_remote(uri: str | None = None) -> bool:
    uri = uri if uri is not None else raw_data_uri()
    return uri.startswith(("http://", "https://"))


def duckdb_path() -> Path:
    """The warehouse file shared by the loads, dbt and the chart."""
    return Path(_env("DUCKDB_PATH") or Path.cwd() / "data" / "warehouse.duckdb").resolve()


# Under the run containers' 4 GiB (JAFFLE_RUN_MEM_LIMIT), with room for the run's own Python and
# dbt's beside it: runs use the in-process executor, so the loads and dbt share one container.
DEFAULT_DUCKDB_MEMORY_LIMIT = "2.5GB"
_MEMORY_LIMIT = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGT]?)(i?)B", re.IGNORECASE)
_MIN_MEMORY_LIMIT = 128 * 1024**2


def duckdb_memory_limit() -> str:
    """JAFFLE_DUCKDB_MEMORY_LIMIT: how much memory DuckDB may use in a load or in dbt, as DuckDB
    writes it ("2.5GB", "512MiB"; at least 128 MiB). Past it DuckDB spills to disk beside the
    warehouse; without a limit it takes up to 80 % of the machine's memory."""
    value = _env("JAFFLE_DUCKDB_MEMORY_LIMIT") or DEFAULT_DUCKDB_MEMORY_LIMIT
    match = _MEMORY_LIMIT.fullmatch(value)
    if not match:
        raise ValueError(
            f"JAFFLE_DUCKDB_MEMORY_LIMIT={value!r} is not an amount of memory (e.g. 2.5GB, 512MiB)"
        )
    number, prefix, binary = match.groups()
    power = "KMGT".find(prefix.upper()) + 1 if prefix else 0
    if float(number) * (1024 if binary else 1000) ** power < _MIN_MEMORY_LIMIT:
        raise ValueError(
            f"JAFFLE_DUCKDB_MEMORY_LIMIT={value!r} is below 128MiB: DuckDB could not even open "
            "the warehouse"
        )
    return value


# --- Load rules (data contract) ---
# Bounds the raw loader enforces (docs/data-contract.md). Read at every load, so a changed
# variable applies to the next run without a restart.


def _env_number(name: str, default: float, kind: type[int] | type[float]) -> float:
    value = _env(name)
    try:
        return kind(value) if value is not None else default
    except ValueError:
        raise ValueError(f"{name}={value!r} is not a number") from None


def _env_date(name: str, default: dt.date) -> dt.date:
    value = _env(name)
    try:
        return dt.date.fromisoformat(value) if value is not None else default
    except ValueError:
        raise ValueError(f"{name}={value!r} is not a date (YYYY-MM-DD)") from None


# The sample data's first day: the default first partition.
SAMPLE_DATA_FIRST_DAY = dt.date(2018, 1, 1)


def partitions_start() -> dt.date:
    """JAFFLE_PARTITIONS_START: the first daily partition (ISO date)."""
    return _env_date("JAFFLE_PARTITIONS_START", SAMPLE_DATA_FIRST_DAY)


def min_id() -> int:
    """Smallest id (and foreign id) a raw row may carry."""
    return int(_env_number("JAFFLE_MIN_ID", 1, int))


def min_amount() -> int:
    """Smallest payment amount, in cents."""
    return int(_env_number("JAFFLE_MIN_AMOUNT", 0, int))


def min_date() -> dt.date:
    return _env_date("JAFFLE_MIN_DATE", dt.date(1900, 1, 1))


def max_date() -> dt.date:
    """Latest date a raw row may carry; by default one year after today."""
    today = dt.date.today()
    try:
        default = today.replace(year=today.year + 1)
    except ValueError:  # 29 February
        default = today.replace(year=today.year + 1, day=28)
    return _env_date("JAFFLE_MAX_DATE", default)


def min_row_ratio() -> float:
    """A file with fewer rows than this share of the current table is refused (0 disables)."""
    ratio = _env_number("JAFFLE_MIN_ROW_RATIO", 0.5, float)
    if not 0 <= ratio <= 1:
        raise ValueError(f"JAFFLE_MIN_ROW_RATIO={ratio} is not between 0 and 1")
    return ratio


# --- End of load rules ---


def reports_dir() -> Path:
    return Path(_env("REPORTS_DIR") or Path.cwd() / "reports").resolve()


def reports_base_url() -> str | None:
    """Where REPORTS_DIR is served over HTTP (compose's reports service), for clickable links."""
    url = _env("REPORTS_BASE_URL")
    return url.rstrip("/") if url else None


def snapshot_dir() -> Path:
    """Folder of the read-only warehouse snapshot, warehouse.duckdb, replaced after each refresh."""
    return Path(_env("SNAPSHOT_DIR") or Path.cwd() / "snapshot").resolve()


def dbt_project_dir() -> Path:
    return Path(_env("DBT_PROJECT_DIR") or DEFAULT_DBT_PROJECT_DIR).resolve()


def schedule_cron() -> str:
    return _env("JAFFLE_SCHEDULE_CRON") or "0 6 * * *"


def schedule_timezone() -> str:
    return _env("JAFFLE_SCHEDULE_TIMEZONE") or "UTC"


def full_tests_cron() -> str:
    """JAFFLE_FULL_TESTS_CRON: when the weekly full dbt tests run (default Sundays 07:00)."""
    return _env("JAFFLE_FULL_TESTS_CRON") or "0 7 * * 0"


# --- Landing folder and downloads ---


def _positive_number(name: str, default: float) -> float:
    raw = _env(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number") from None
    if value < 0:
        raise ValueError(f"{name}={raw!r} must not be negative")
    return value


def landing_dir() -> Path:
    """Folder the landing sensor watches for raw_*.csv (LANDING_DIR; default ./landing)."""
    return Path(_env("LANDING_DIR") or Path.cwd() / "landing").resolve()


def landing_stable_seconds() -> float:
    """How long a landed file must stay unchanged (size and mtime) before it is loaded."""
    return _positive_number("JAFFLE_LANDING_STABLE_SECONDS", 20)


def download_max_bytes() -> int:
    """Largest raw file accepted from an http(s) RAW_DATA_URI (default 1 GiB)."""
    return int(_positive_number("JAFFLE_DOWNLOAD_MAX_BYTES", 1024**3))


def download_timeout_seconds() -> float:
    """Deadline for one whole download, connect to last byte, so a trickling server cannot hold
    the warehouse slot."""
    return _positive_number("JAFFLE_DOWNLOAD_TIMEOUT_SECONDS", 300)


def max_runtime_seconds() -> int:
    """Runs launched by the schedule and the sensor are stopped by run monitoring after this."""
    return int(_positive_number("JAFFLE_MAX_RUNTIME_SECONDS", 3600))


# --- Alerts ---


# Where `init` writes JAFFLE_ALERT_URLS in the stack: a volume only the code server and the
# watchdog mount, because the URLs carry tokens and no container keeps a secret in its environment.
DEFAULT_ALERT_URLS_FILE = Path("/run/jaffle/alerts/urls")


def alert_urls() -> str | None:
    """Apprise URLs that alerts go to (one or more, separated by spaces or commas): the variable
    JAFFLE_ALERT_URLS when set (a process outside the stack), else the file JAFFLE_ALERT_URLS_FILE
    (in the stack). Neither: alerts are off. A file that exists but cannot be read is an error."""
    value = _env("JAFFLE_ALERT_URLS")
    if value is not None:
        return value
    path = Path(_env("JAFFLE_ALERT_URLS_FILE") or DEFAULT_ALERT_URLS_FILE)
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ValueError(f"JAFFLE_ALERT_URLS_FILE: cannot read {path}: {exc.strerror}") from None


def public_url() -> str:
    """The Dagster UI's address as users reach it (JAFFLE_PUBLIC_URL), for links in alerts."""
    return (_env("JAFFLE_PUBLIC_URL") or "http://localhost:3000").rstrip("/")


# --- Maintenance: retention and backups ---


def _env_count(name: str, default: int) -> int:
    """A whole number of 1 or more (days, backups)."""
    raw = _env(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a whole number") from None
    if value < 1:
        raise ValueError(f"{name}={raw!r} must be 1 or more")
    return value


def retention_days() -> int:
    """Finished runs created more than this many days ago are deleted by the retention job."""
    return _env_count("JAFFLE_RETENTION_DAYS", 30)


def backups_dir() -> Path:
    """Where the backup job writes (BACKUPS_DIR; default ./backups)."""
    return Path(_env("BACKUPS_DIR") or Path.cwd() / "backups").resolve()


def backup_keep() -> int:
    """How many backups the backup job keeps; older ones are deleted after a new one is made."""
    return _env_count("JAFFLE_BACKUP_KEEP", 7)
