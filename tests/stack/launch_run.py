"""Launch "materialize all" through the webserver's GraphQL API and wait for the run to finish.

Stdlib only, so it runs from any Python without the project installed:
    python3 tests/stack/launch_run.py [--url http://127.0.0.1:3000] [--timeout 600]
Prints the run id and final status as JSON; exits non-zero unless the run succeeded.
"""

from __future__ import annotations

import argparse
import json
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


def graphql(url: str, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(
        f"{url}/graphql", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        payload = json.load(response)
    if payload.get("errors"):
        raise RuntimeError(f"GraphQL errors: {payload['errors']}")
    return payload["data"]


def launch_all_assets(url: str, location: str) -> str:
    repos = graphql(url, REPOS_QUERY)["repositoriesOrError"]
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
    result = graphql(url, LAUNCH_MUTATION, {"params": params})["launchRun"]
    if result["__typename"] != "LaunchRunSuccess":
        raise RuntimeError(f"launchRun failed: {result}")
    return result["run"]["runId"]


def wait_for_run(url: str, run_id: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        run = graphql(url, RUN_QUERY, {"runId": run_id})["runOrError"]
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
    run_id = launch_all_assets(args.url, args.location)
    run = wait_for_run(args.url, run_id, args.timeout)
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
