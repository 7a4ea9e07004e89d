"""The one place that reads environment variables.

Every value is read when it is needed (at run time), never when an asset module is imported, so a
test can set an env var and materialize without reloading anything.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
SAMPLE_DATA_DIR = PACKAGE_DIR / "sample_data"

# The dbt project sits beside user_code/ in the repo; images copy it elsewhere and set the env var.
DEFAULT_DBT_PROJECT_DIR = PACKAGE_DIR.parents[1] / "dbt_project"

RAW_FILES = ("raw_customers.csv", "raw_orders.csv", "raw_payments.csv")


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def raw_data_uri() -> str:
    """Local directory or http(s) base URL that holds the three raw CSV files."""
    return _env("RAW_DATA_URI") or str(SAMPLE_DATA_DIR)


def raw_data_is_remote(uri: str | None = None) -> bool:
    uri = uri if uri is not None else raw_data_uri()
    return uri.startswith(("http://", "https://"))


def duckdb_path() -> Path:
    """The warehouse file shared by the loads, dbt and the chart."""
    return Path(_env("DUCKDB_PATH") or Path.cwd() / "data" / "warehouse.duckdb").resolve()


def reports_dir() -> Path:
    return Path(_env("REPORTS_DIR") or Path.cwd() / "reports").resolve()


def reports_base_url() -> str | None:
    """Where REPORTS_DIR is served over HTTP (compose's reports service), for clickable links."""
    url = _env("REPORTS_BASE_URL")
    return url.rstrip("/") if url else None


def dbt_project_dir() -> Path:
    return Path(_env("DBT_PROJECT_DIR") or DEFAULT_DBT_PROJECT_DIR).resolve()


def schedule_cron() -> str:
    return _env("JAFFLE_SCHEDULE_CRON") or "0 6 * * *"


def schedule_timezone() -> str:
    return _env("JAFFLE_SCHEDULE_TIMEZONE") or "UTC"
