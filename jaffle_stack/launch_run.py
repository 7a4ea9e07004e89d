"""Launch "materialize all" over a range of days (one run) through the webserver's GraphQL API
and wait for the run to finish.

Standard library only, so it runs from any Python 3.11 in the repository root, the project not
installed:
    JAFFLE_USER=admin JAFFLE_PASSWORD=... python3 -m jaffle_stack.launch_run \
        [--url http://127.0.0.1:3000] [--timeout 600] [--from DAY --to DAY]
The days default to the sample data's first and last.
The webserver takes HTTP Basic from API clients; the user needs the operator or admin role.
Prints the run id and final status as JSON; exits non-zero unless the run succeeded.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error

from jaffle_stack.graphql import LOCATION, WEBSERVER_URL, Auth, Dagster, sample_days
from jaffle_stack.wait import Timeout

# What a refusal means for this script's user.
REFUSED = {
    401: "no valid login: set JAFFLE_USER and JAFFLE_PASSWORD",
    403: "this user may not launch runs: it needs the operator or admin role",
}


def env_auth() -> Auth:
    user, password = os.environ.get("JAFFLE_USER"), os.environ.get("JAFFLE_PASSWORD")
    return (user, password) if user and password else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m jaffle_stack.launch_run",
        description=(__doc__ or "").strip().split("\n")[0],
    )
    parser.add_argument("--url", default=WEBSERVER_URL)
    parser.add_argument("--location", default=LOCATION)
    parser.add_argument("--timeout", type=float, default=600)
    first, last = sample_days()
    parser.add_argument("--from", dest="first", default=first, help="first day (YYYY-MM-DD)")
    parser.add_argument("--to", dest="last", default=last, help="last day, included")
    args = parser.parse_args(argv)

    started = time.monotonic()
    api = Dagster(url=args.url, location=args.location, auth=env_auth())
    try:
        run_id = api.launch_all_assets(days=(args.first, args.last))
    except urllib.error.HTTPError as e:
        detail = REFUSED.get(e.code)
        message = f"launch_run: {args.url} refused the launch ({e.code} {e.reason})"
        print(message + (f": {detail}" if detail else ""), file=sys.stderr)
        return 2
    except urllib.error.URLError as e:
        print(
            f"launch_run: cannot reach {args.url} ({e.reason}); is the stack up?", file=sys.stderr
        )
        return 2
    try:
        run = api.wait_run(run_id, args.timeout)
    except Timeout:
        run = api.run(run_id)
    print(
        json.dumps(
            {
                "run_id": run_id,
                "status": run.get("status"),
                "seconds": round(time.monotonic() - started, 1),
                "container_id": run["tagmap"].get("docker/container_id"),
            }
        )
    )
    return 0 if run.get("status") == "SUCCESS" else 1


if __name__ == "__main__":
    sys.exit(main())
