"""Compose and docker, run from the repository root: one compose project with its own env file,
its services' health, the env file's one writer, and the check for another project's volumes.

As an operator script, compose with the stack's settings (v2 when present, else v1 through
BuildKit), e.g. the generated admin password of a stack brought up by `jaffle_stack.up`:
    python3 -m jaffle_stack.compose --env-file .stack/stack.env logs init
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jaffle_stack.wait import poll

ROOT = Path(__file__).resolve().parents[1]
# The stack tests' infrastructure the toolkit also runs: engine.sh and build_standins.sh.
TEST_INFRA = ROOT / "tests" / "stack"
# Services that run once and exit (0) at each `up`, before the others start.
ONE_SHOT = {"init", "migrate"}


def docker(*args: str, check: bool = True, timeout: float = 120) -> str:
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise subprocess.CalledProcessError(
            result.returncode, result.args, result.stdout, result.stderr
        )
    return result.stdout


def compose_command(env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """`docker compose` (v2) when present, else docker-compose 1.29 and the environment it needs.

    Asked at every call, as the engine may be installed (engine.sh) between two calls."""
    try:
        v2 = subprocess.run(
            ["docker", "compose", "version"], capture_output=True, env=env, check=False
        )
    except FileNotFoundError:  # no docker client at all: docker-compose may still be there
        v2 = None
    if v2 is not None and v2.returncode == 0:
        return ["docker", "compose"], env
    # docker-compose 1.29 builds by running `docker build`. Debian's 20.10 client (/usr/bin) drives
    # the engine's built-in BuildKit, which RUN --mount needs; the 28.x one has no buildx here.
    v1_env = {
        **env,
        "PATH": f"/usr/bin:{env.get('PATH', '')}",
        "DOCKER_BUILDKIT": "1",
        "COMPOSE_DOCKER_CLI_BUILD": "1",
    }
    return ["docker-compose"], v1_env


def compose_file_names() -> tuple[list[str], list[str]]:
    """The fixed volume and network names docker-compose.yml gives (`name:`)."""
    # Imported here: the project's environment has it, and `python3 -m jaffle_stack.compose`
    # then runs from any Python.
    import yaml

    config = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    volumes = [v["name"] for v in (config.get("volumes") or {}).values() if v and "name" in v]
    networks = [n["name"] for n in (config.get("networks") or {}).values() if n and "name" in n]
    return volumes, networks


def write_env_file(path: Path, project: str, **extra: str) -> dict[str, str]:
    """A compose env file for a throwaway project: stand-in base images, nothing else required.

    No secret and no Docker group: the stack generates and finds those itself at first start.
    The one writer of the toolkit's env files (tests, bench, `jaffle_stack.up`)."""
    env = {
        "COMPOSE_PROJECT_NAME": project,
        "PYTHON_BASE_IMAGE": os.environ.get(
            "STANDIN_PYTHON_IMAGE", "jaffle-standin/python:3.11-bookworm"
        ),
        "POSTGRES_IMAGE": os.environ.get("STANDIN_POSTGRES_IMAGE", "jaffle-standin/postgres:15"),
        **extra,
    }
    path.parent.mkdir(exist_ok=True)
    path.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    return env


def read_env_file(path: Path) -> dict[str, str]:
    """The KEY=VALUE lines of an env file (comments and blank lines skipped)."""
    lines = [line.strip() for line in path.read_text().splitlines()]
    pairs = [line.split("=", 1) for line in lines if line and not line.startswith("#")]
    return {key.strip(): value for key, value in pairs}


def foreign_resources(project: str) -> list[str]:
    """The stack's fixed-name volumes and network that exist and another compose project owns."""
    volumes, networks = compose_file_names()
    foreign = []
    for kind, names in (("volume", volumes), ("network", networks)):
        for name in names:
            # A missing name prints `[]` (or nothing, with older clients) and exits non-zero.
            found = json.loads(docker(kind, "inspect", name, check=False).strip() or "[]")
            if not found:
                continue
            owner = (found[0].get("Labels") or {}).get("com.docker.compose.project")
            if owner != project:
                foreign.append(f"{kind} {name} (compose project: {owner or 'none'})")
    return foreign


@dataclass(kw_only=True)
class Compose:
    """One compose project, reached with its own env file."""

    project: str
    env_file: Path
    env: dict[str, str] = field(default_factory=dict)

    def process_env(self) -> dict[str, str]:
        # The env file's values win over whatever the caller's shell exports.
        return {**os.environ, **self.env, "COMPOSE_PROJECT_NAME": self.project}

    def compose(self, *args: str, timeout: float = 600, check: bool = True) -> str:
        return self.compose_bytes(*args, timeout=timeout, check=check).decode()

    def compose_bytes(
        self,
        *args: str,
        stdin: bytes | None = None,
        timeout: float = 600,
        check: bool = True,
        capture: bool = True,
    ) -> bytes:
        """compose with binary stdin and stdout (pg_dump's custom format is not text).

        With capture=False the output goes to this process's stdout and stderr."""
        command, env = compose_command(self.process_env())
        result = subprocess.run(
            [*command, "--env-file", str(self.env_file), *args],
            cwd=ROOT,
            env=env,
            input=stdin,
            capture_output=capture,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"compose {' '.join(args)} exited {result.returncode}"
                + (":\n" + result.stderr.decode(errors="replace")[-3000:] if capture else "")
            )
        return result.stdout or b""

    def save_logs(self, directory: Path, suffix: str = "") -> None:
        """Every service's logs to <directory>/compose-<service><suffix>.log."""
        directory.mkdir(parents=True, exist_ok=True)
        for service in self.services():
            logs = self.compose("logs", "--no-color", "--timestamps", service, check=False)
            (directory / f"compose-{service}{suffix}.log").write_text(logs)

    def services(self) -> list[str]:
        """The services `up` starts: those in a profile (`restore`, run on demand) are left out,
        which `config --services` of docker-compose 1.29 does not do."""
        import yaml

        config = yaml.safe_load(self.compose("config"))
        return [name for name, spec in config["services"].items() if not spec.get("profiles")]

    def container(self, service: str) -> str:
        """Id of the service's container (running or not)."""
        ids = self.compose("ps", "-q", service).split()
        assert len(ids) == 1, f"expected one {service} container, found {ids}"
        return ids[0]

    def inspect(self, container: str) -> dict[str, Any]:
        return json.loads(docker("inspect", container))[0]

    def health(self) -> dict[str, str]:
        """Service -> health status ('healthy', 'starting', 'unhealthy', or the state).

        A one-shot service that exited 0 is 'completed'."""
        out: dict[str, str] = {}
        for service in self.services():
            # -a: compose v2 lists only running containers without it, and `init` has exited.
            ids = self.compose("ps", "-a", "-q", service).split()
            if not ids:
                out[service] = "missing"
                continue
            state = self.inspect(ids[0])["State"]
            if service in ONE_SHOT and state["Status"] == "exited" and state["ExitCode"] == 0:
                out[service] = "completed"
                continue
            out[service] = (state.get("Health") or {}).get("Status") or state["Status"]
        return out

    def wait_healthy(self, timeout: float = 240, interval: float = 2) -> dict[str, str]:
        def all_healthy() -> dict[str, str] | None:
            health = self.health()
            return health if set(health.values()) <= {"healthy", "completed"} else None

        return poll("every service healthy", all_healthy, timeout, interval)

    def run_containers(self, run_id: str | None = None) -> list[str]:
        """Run containers (DockerRunLauncher labels them dagster/run_id) of this stack."""
        label = f"dagster/run_id={run_id}" if run_id else "dagster/run_id"
        return docker("ps", "-aq", "--filter", f"label={label}").split()

    def user_code_image(self) -> str:
        return self.inspect(self.container("user_code"))["Config"]["Image"]


def main(argv: list[str]) -> int:
    """compose in the repository root with the arguments as given (`--env-file` among them)."""
    command, env = compose_command(dict(os.environ))
    try:
        return subprocess.run([*command, *argv], cwd=ROOT, env=env, check=False).returncode
    except FileNotFoundError:
        print("compose: neither `docker compose` nor docker-compose is installed", file=sys.stderr)
        return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
