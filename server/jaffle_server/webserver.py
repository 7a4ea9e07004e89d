"""`jaffle-webserver`: dagster-webserver's start-up (instance, workspace, uvicorn) serving
Dagster's app behind the login gate. Takes the dagster-webserver arguments the stack uses."""

from __future__ import annotations

import logging
import sys

import click
import uvicorn
from dagster._cli.utils import assert_no_remaining_opts
from dagster._cli.workspace.cli_target import workspace_opts_to_load_target
from dagster._core.errors import DagsterUserCodeUnreachableError
from dagster._core.execution.compute_logs import warn_if_compute_logs_disabled
from dagster._core.instance import DagsterInstance
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.workspace import CodeLocationLoadStatus
from dagster._utils.log import configure_loggers
from dagster_shared.cli import WorkspaceOpts, workspace_options
from dagster_webserver.cli import (
    DEFAULT_DB_STATEMENT_TIMEOUT,
    DEFAULT_POOL_MAX_OVERFLOW,
    DEFAULT_POOL_RECYCLE,
    _lifespan,
)
from dagster_webserver.version import __version__

from jaffle_server.audit import audit_log
from jaffle_server.context import create_dagster_app
from jaffle_server.gate import HEALTH_PATH, GateSettings, create_gate

logger = logging.getLogger("jaffle.webserver")
UNREACHABLE = {DagsterUserCodeUnreachableError.__name__}


def unreachable_locations(process_context: WorkspaceProcessContext) -> str | None:
    """The code locations the server cannot reach yet, for /healthz: the webserver starts beside
    the code server (docker-compose.yml), and Dagster's watch thread loads the location within a
    second of it answering. A location that loads with an error is served (the UI shows it)."""
    entries = process_context.get_current_workspace().code_location_entries
    waiting = sorted(
        name
        for name, entry in entries.items()
        if entry.load_status == CodeLocationLoadStatus.LOADING
        or (entry.load_error is not None and entry.load_error.cls_name in UNREACHABLE)
    )
    return ", ".join(waiting) or None


def configure_audit_logging() -> None:
    """Audit and login lines go to stdout, one line each, beside Dagster's own logs."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    for name in (audit_log.name, logger.name):
        log = logging.getLogger(name)
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


@click.command(name="jaffle-webserver")
@click.option("--host", "-h", default="127.0.0.1", show_default=True)
@click.option("--port", "-p", type=int, default=3000, show_default=True)
@click.option("--db-statement-timeout", type=int, default=DEFAULT_DB_STATEMENT_TIMEOUT)
@click.option("--db-pool-recycle", type=int, default=DEFAULT_POOL_RECYCLE)
@click.option("--db-pool-max-overflow", type=int, default=DEFAULT_POOL_MAX_OVERFLOW)
@click.option("--uvicorn-log-level", default="warning", show_default=True)
@click.option("--dagster-log-level", default="info", show_default=True)
@click.option("--log-format", default="colored", show_default=True)
@click.option("--code-server-log-level", default="info", show_default=True)
@click.option("--live-data-poll-rate", type=int, default=2000, show_default=True)
@workspace_options
def cli(
    host: str,
    port: int,
    db_statement_timeout: int,
    db_pool_recycle: int,
    db_pool_max_overflow: int,
    uvicorn_log_level: str,
    dagster_log_level: str,
    log_format: str,
    code_server_log_level: str,
    live_data_poll_rate: int,
    **other_opts: object,
) -> None:
    workspace_opts = WorkspaceOpts.extract_from_cli_options(other_opts)
    assert_no_remaining_opts(other_opts)
    configure_loggers(formatter=log_format, log_level=dagster_log_level.upper())
    configure_audit_logging()
    # Fails when the users file's session key is missing: no gate, no server.
    settings = GateSettings.from_env()

    # DAGSTER_HOME must be set: a server must not fall back to a throw-away instance.
    with DagsterInstance.get() as instance:
        instance.optimize_for_webserver(db_statement_timeout, db_pool_recycle, db_pool_max_overflow)
        with WorkspaceProcessContext(
            instance,
            version=__version__,
            read_only=False,
            workspace_load_target=workspace_opts_to_load_target(workspace_opts),
            code_server_log_level=code_server_log_level,
        ) as process_context:
            warn_if_compute_logs_disabled()
            app = create_dagster_app(process_context, live_data_poll_rate, lifespan=_lifespan)
            gate = create_gate(app, settings, ready=lambda: unreachable_locations(process_context))
            logger.info(
                "Serving Dagster behind the login gate on http://%s:%s (hosts: %s; health: %s)",
                host,
                port,
                ",".join(sorted(settings.allowed_hosts)),
                HEALTH_PATH,
            )
            uvicorn.run(gate, host=host, port=port, log_level=uvicorn_log_level.lower())


def main() -> None:
    cli(auto_envvar_prefix="DAGSTER_WEBSERVER")
