"""The webserver's GraphQL API as an API client sees it: HTTP Basic as one user, launch, runs,
the code location, schedules. Standard library only, so `launch_run` runs from any Python."""

from __future__ import annotations

import base64
import json
import urllib.request
from dataclasses import dataclass
from typing import Any

from jaffle_stack.compose import ROOT
from jaffle_stack.wait import poll

WEBSERVER_URL = "http://127.0.0.1:3000"
LOCATION = "jaffle_platform"
# Statuses of a run that is not finished yet.
IN_FLIGHT = ["QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING"]

# (user, password) for HTTP Basic, or None to send no credentials.
Auth = tuple[str, str] | None

REPOS_QUERY = """
query {
  repositoriesOrError {
    __typename
    ... on RepositoryConnection {
      nodes { name location { name } assetNodes { assetKey { path } isExecutable } }
    }
    ... on PythonError { message }
  }
}
"""

LAUNCH_MUTATION = """
mutation($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on PythonError { message stack }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on Error { message }
  }
}
"""

RUN_QUERY = """
query($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { runId status startTime endTime tags { key value } }
  }
}
"""

RUNS_QUERY = """
query($filter: RunsFilter) {
  runsOrError(filter: $filter) {
    __typename
    ... on Runs { results { runId status startTime endTime tags { key value } } }
  }
}
"""

WORKSPACE_QUERY = """
query {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on RepositoryLocation {
            repositories { name assetNodes { assetKey { path } } }
          }
          ... on PythonError { message }
        }
      }
    }
  }
}
"""

SCHEDULE_QUERY = """
query($selector: ScheduleSelector!) {
  scheduleOrError(scheduleSelector: $selector) {
    __typename
    ... on Schedule { name cronSchedule scheduleState { id status } }
  }
}
"""

STOP_SCHEDULE = """
mutation($id: String!) {
  stopRunningSchedule(id: $id) {
    __typename
    ... on ScheduleStateResult { scheduleState { status } }
    ... on PythonError { message }
  }
}
"""


BACKFILL_MUTATION = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on Error { message }
  }
}
"""

# The tags of a run over a range of daily partitions (what a single-run backfill launches).
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
SAMPLE_ORDERS = ROOT / "user_code" / "jaffle_platform" / "sample_data" / "raw_orders"


def sample_days() -> tuple[str, str]:
    """(first, last) day of the sample data's daily files: the range "Materialize all" covers."""
    days = sorted(p.stem for p in SAMPLE_ORDERS.glob("*.csv"))
    if not days:
        raise RuntimeError(f"no daily files in {SAMPLE_ORDERS}")
    return days[0], days[-1]


def last_sample_day() -> tuple[str, str]:
    """(day, day): the sample's last day, for a run whose range is not the point (faults,
    concurrency, backups): a day's run over the marts costs a few seconds, not the sample's 90
    days of partitions."""
    _, last = sample_days()
    return last, last


def basic_auth_header(auth: tuple[str, str]) -> str:
    return "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()


def asset_job_params(
    location: str, repository: str, assets: list[list[str]], tags: dict[str, str] | None = None
) -> dict[str, Any]:
    """LAUNCH_MUTATION's ExecutionParams for one run of these assets (keys as paths)."""
    params: dict[str, Any] = {
        "selector": {
            "repositoryLocationName": location,
            "repositoryName": repository,
            "jobName": "__ASSET_JOB",
            "assetSelection": [{"path": path} for path in assets],
        },
        "runConfigData": {},
    }
    if tags:
        params["executionMetadata"] = {"tags": [{"key": k, "value": v} for k, v in tags.items()]}
    return params


@dataclass(kw_only=True)
class Dagster:
    """One webserver and one code location; calls go as `auth` unless a call names another user.

    An HTTP error (401 without a valid login, 403 for a role that may not) raises
    urllib.error.HTTPError; GraphQL errors raise RuntimeError."""

    url: str = WEBSERVER_URL
    location: str = LOCATION
    auth: Auth = None

    def graphql(
        self, query: str, variables: dict[str, Any] | None = None, auth: Auth = None
    ) -> dict[str, Any]:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        headers = {"Content-Type": "application/json"}
        user = auth or self.auth
        if user:
            headers["Authorization"] = basic_auth_header(user)
        request = urllib.request.Request(f"{self.url}/graphql", data=body, headers=headers)
        with urllib.request.urlopen(request, timeout=30) as response:
            payload = json.load(response)
        if payload.get("errors"):
            raise RuntimeError(f"GraphQL errors: {payload['errors']}")
        return payload["data"]

    def _assets(self, auth: Auth) -> tuple[str, list[list[str]]]:
        """(repository name, every executable asset key) of the location."""
        repos = self.graphql(REPOS_QUERY, auth=auth)["repositoriesOrError"]
        if repos["__typename"] != "RepositoryConnection":
            raise RuntimeError(f"cannot list repositories: {repos}")
        repo = next(r for r in repos["nodes"] if r["location"]["name"] == self.location)
        return repo["name"], [
            n["assetKey"]["path"] for n in repo["assetNodes"] if n["isExecutable"]
        ]

    def launch_all_assets(
        self,
        auth: Auth = None,
        tags: dict[str, str] | None = None,
        days: tuple[str, str] | None = None,
    ) -> str:
        """Launch every executable asset of the location in one run over the days `days`
        (first, last; default: the sample data's days), the run a single-run backfill of
        "Materialize all" over those partitions makes; returns the run id."""
        first, last = days or sample_days()
        repository, assets = self._assets(auth)
        range_tags = {RANGE_START_TAG: first, RANGE_END_TAG: last, **(tags or {})}
        params = asset_job_params(self.location, repository, assets, range_tags)
        result = self.graphql(LAUNCH_MUTATION, {"params": params}, auth)["launchRun"]
        if result["__typename"] != "LaunchRunSuccess":
            raise RuntimeError(f"launchRun failed: {result}")
        return result["run"]["runId"]

    def launch_backfill(
        self, days: list[str], auth: Auth = None, tags: dict[str, str] | None = None
    ) -> str:
        """A backfill of every asset over these partitions, as the UI's "Materialize all" then
        "Launch backfill" sends it; returns the backfill id (its runs carry dagster/backfill)."""
        _, assets = self._assets(auth)
        params: dict[str, Any] = {
            "assetSelection": [{"path": path} for path in assets],
            "partitionNames": days,
            "tags": [{"key": k, "value": v} for k, v in (tags or {}).items()],
        }
        result = self.graphql(BACKFILL_MUTATION, {"params": params}, auth)
        launched = result["launchPartitionBackfill"]
        if launched["__typename"] != "LaunchBackfillSuccess":
            raise RuntimeError(f"launchPartitionBackfill failed: {launched}")
        return launched["backfillId"]

    def launch_job(self, job: str, auth: Auth = None) -> str:
        """Launch a (non-asset) job of the location, as its Launchpad does; returns the run id."""
        repos = self.graphql(REPOS_QUERY, auth=auth)["repositoriesOrError"]
        repo = next(r for r in repos["nodes"] if r["location"]["name"] == self.location)
        params = {
            "selector": {
                "repositoryLocationName": self.location,
                "repositoryName": repo["name"],
                "jobName": job,
            },
            "runConfigData": {},
        }
        result = self.graphql(LAUNCH_MUTATION, {"params": params}, auth)["launchRun"]
        if result["__typename"] != "LaunchRunSuccess":
            raise RuntimeError(f"launchRun of {job} failed: {result}")
        return result["run"]["runId"]

    def run(self, run_id: str) -> dict[str, Any]:
        """The run, with its tags also as a dict under "tagmap"."""
        run = self.graphql(RUN_QUERY, {"runId": run_id})["runOrError"]
        assert run["__typename"] == "Run", run
        run["tagmap"] = {t["key"]: t["value"] for t in run["tags"]}
        return run

    def wait_run(self, run_id: str, timeout: float = 300, interval: float = 2.0) -> dict[str, Any]:
        """The run once it is no longer in flight (raises Timeout after `timeout` s)."""

        def finished() -> dict[str, Any] | None:
            run = self.run(run_id)
            return run if run["status"] not in IN_FLIGHT else None

        return poll(f"run {run_id} to finish", finished, timeout, interval)

    def runs(
        self, tags: dict[str, str] | None = None, statuses: list[str] | None = None
    ) -> list[dict[str, Any]]:
        """Runs, newest first, with all of `tags` and one of `statuses`."""
        run_filter: dict[str, Any] = {}
        if tags:
            run_filter["tags"] = [{"key": k, "value": v} for k, v in tags.items()]
        if statuses:
            run_filter["statuses"] = statuses
        result = self.graphql(RUNS_QUERY, {"filter": run_filter})["runsOrError"]
        assert result["__typename"] == "Runs", result
        return result["results"]

    def wait_idle(self, timeout: float = 300) -> None:
        """Until no run is queued or in progress (DuckDB can then be opened from outside)."""
        poll("no run in flight", lambda: not self.runs(statuses=IN_FLIGHT), timeout)

    def location_entry(self) -> dict[str, Any]:
        workspace = self.graphql(WORKSPACE_QUERY)["workspaceOrError"]
        assert workspace["__typename"] == "Workspace", workspace
        (entry,) = [e for e in workspace["locationEntries"] if e["name"] == self.location]
        return entry

    def schedule(self, name: str) -> dict[str, Any]:
        selector = {
            "repositoryLocationName": self.location,
            "repositoryName": "__repository__",
            "scheduleName": name,
        }
        schedule = self.graphql(SCHEDULE_QUERY, {"selector": selector})["scheduleOrError"]
        assert schedule["__typename"] == "Schedule", schedule
        return schedule
