"""Upgrades: the schema is migrated before anything uses it, and a rebuild never changes the code
of a run already waiting in the queue (runs start from an image id, not the moving tag)."""

from __future__ import annotations

import datetime as dt
import subprocess
from collections.abc import Iterator

import pytest

from jaffle_stack.compose import docker
from jaffle_stack.graphql import last_sample_day
from jaffle_stack.stack import ObservedRun, Stack

pytestmark = [
    pytest.mark.stack,
    pytest.mark.usefixtures("schedule_stopped", "stack_healthy_after"),
]


def started(stack: Stack, service: str, key: str = "StartedAt") -> dt.datetime:
    ids = stack.compose("ps", "-a", "-q", service).split()
    stamp = stack.inspect(ids[0])["State"][key]
    # Docker writes nanoseconds; fromisoformat takes microseconds.
    head, _, frac = stamp.rstrip("Z").partition(".")
    return dt.datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}")


def test_migrate_runs_before_the_webserver_and_daemon(stack: Stack) -> None:
    migrate = stack.inspect(stack.compose("ps", "-a", "-q", "migrate").split()[0])["State"]
    assert (migrate["Status"], migrate["ExitCode"]) == ("exited", 0)
    finished = started(stack, "migrate", "FinishedAt")
    for service in ("webserver", "daemon"):
        assert finished <= started(stack, service), f"{service} started before migrate ended"
    logs = stack.compose("logs", "--no-color", "migrate")
    assert "schedule_storage" in logs and "event_log_storage" in logs, logs[-2000:]


def code_server_image(stack: Stack) -> str:
    environ = docker("exec", stack.container("user_code"), "cat", "/proc/1/environ")
    variables = dict(v.split("=", 1) for v in environ.split("\0") if "=" in v)
    return variables["DAGSTER_CURRENT_IMAGE"]


LOGS_QUERY = """
query($runId: ID!) {
  logsForRun(runId: $runId, limit: 1000) {
    __typename
    ... on EventConnection { events { __typename ... on MessageEvent { message } } }
  }
}
"""


def launch_messages(stack: Stack, run_id: str) -> list[str]:
    """The launcher's "Launching run in a new container <id> with image <image>" events, read
    from the run's event log, since finished run containers are removed (auto_remove)."""
    logs = stack.graphql(LOGS_QUERY, {"runId": run_id})["logsForRun"]
    assert logs["__typename"] == "EventConnection", logs
    messages = [e.get("message") or "" for e in logs["events"]]
    # The launcher's class name comes first: "[JaffleDockerRunLauncher] Launching run ...".
    return [m for m in messages if "] Launching run in a new container " in m]


@pytest.fixture
def original_user_code_image(stack: Stack) -> Iterator[tuple[str, str]]:
    """(tag, image id) of the code server; the tag points back to that id afterwards."""
    tag = stack.user_code_image()
    image_id = docker("image", "inspect", "-f", "{{.Id}}", tag).strip()
    yield tag, image_id
    docker("tag", image_id, tag)
    stack.compose("up", "-d", "--no-build")
    stack.wait_healthy()
    assert code_server_image(stack) == image_id


def test_a_queued_run_starts_from_its_image_after_a_rebuild(
    stack: Stack, materialized: ObservedRun, original_user_code_image: tuple[str, str]
) -> None:
    tag, before = original_user_code_image
    assert code_server_image(stack) == before, "the code server reports the image id, not the tag"

    stack.wait_idle()
    stack.compose("stop", "daemon")
    run_id = stack.launch_all_assets(days=last_sample_day())
    assert stack.run(run_id)["status"] == "QUEUED"

    # A rebuild while the run waits: the same tag now names another image.
    subprocess.run(
        ["docker", "build", "-q", "-t", tag, "-"],
        input=f"FROM {before}\nLABEL jaffle.test=rebuilt\n",
        text=True, check=True, capture_output=True,
    )  # fmt: skip
    after = docker("image", "inspect", "-f", "{{.Id}}", tag).strip()
    assert after != before
    stack.compose("up", "-d", "--no-build")  # init pins the new id; user_code is recreated
    stack.wait_healthy()
    assert code_server_image(stack) == after, "new runs get the rebuilt image"

    # The daemon is back: the queued run starts (and may well finish during wait_healthy).
    run = stack.wait_run(run_id, 300)
    launches = launch_messages(stack, run_id)
    assert len(launches) == 1, launches
    assert launches[0].endswith(f"with image {before}"), (launches, before)
    assert run["status"] == "SUCCESS", run
