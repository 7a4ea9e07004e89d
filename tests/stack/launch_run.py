"""Launch "materialize all" through the webserver's GraphQL API and wait for the run to finish.

Stdlib only, so it runs from any Python without the project installed:
    JAFFLE_USER=admin JAFFLE_PASSWORD=... python3 tests/stack/launch_run.py \
        [--url http://127.0.0.1:3000] [--timeout 600]
The webserver takes HTTP Basic from API clients; the user needs the operator or admin role.
Prints the run id and final status as JSON; exits non-zero unless the run succeeded.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
import urllib.request

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
    ... on Run { runId status tags { key value } }
  }
}
"""

FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}


Auth = tuple[str, str] | None


def basic_auth_header(auth: tuple[str, str]) -> str:
    return "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()


def env_auth() -> Auth:
    user, password = os.environ.get("JAFFLE_USER"), os.environ.get("JAFFLE_PASSWORD")
    return (user, password) if user and password else None


def graphql(url: str, query: str, variables: dict | None = None, auth: Auth = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    headers = {"Content-Type": "application/json"}
    if auth:
        headers["Authorization"] = basic_auth_header(auth)
    request = urllib.request.Request(f"{url}/graphql", data=body, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        payload = json.load(response)
    if payload.get("errors"):
        raise RuntimeError(f"GraphQL errors: {payload['errors']}")
    return payload["data"]


def launch_all_assets(url: str, location: str, auth: Auth = None) -> str:
    repos = graphql(url, REPOS_QUERY, auth=auth)["repositoriesOrError"]
    if repos["__typename"] != "RepositoryConnection":
        raise RuntimeError(f"cannot list repositories: {repos}")
    repo = next(r for r in repos["nodes"] if r["location"]["name"] == location)
    selection = [{"path": n["assetKey"]["path"]} for n in repo["assetNodes"] if n["isExecutable"]]
    params = {
        "selector": {
            "repositoryLocationName": location,
            "repositoryName": repo["name"],
            "jobName": "__ASSET_JOB",
            "assetSelection": selection,
        },
        "runConfigData": {},
    }
    result = graphql(url, LAUNCH_MUTATION, {"params": params}, auth)["launchRun"]
    if result["__typename"] != "LaunchRunSuccess":
        raise RuntimeError(f"launchRun failed: {result}")
    return result["run"]["runId"]


def wait_for_run(url: str, run_id: str, timeout: float, auth: Auth = None) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        run = graphql(url, RUN_QUERY, {"runId": run_id}, auth)["runOrError"]
        if run.get("status") in FINISHED or time.monotonic() > deadline:
            return run
        time.sleep(2)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().split("\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:3000")
    parser.add_argument("--location", default="jaffle_platform")
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()

    started = time.monotonic()
    auth = env_auth()
    run_id = launch_all_assets(args.url, args.location, auth)
    run = wait_for_run(args.url, run_id, args.timeout, auth)
    tags = {t["key"]: t["value"] for t in run.get("tags", [])}
    print(
        json.dumps(
            {
                "run_id": run_id,
                "status": run.get("status"),
                "seconds": round(time.monotonic() - started, 1),
                "container_id": tags.get("docker/container_id"),
            }
        )
    )
    return 0 if run.get("status") == "SUCCESS" else 1


if __name__ == "__main__":
    sys.exit(main())
