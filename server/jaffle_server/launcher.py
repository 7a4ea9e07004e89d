"""The run launcher of the stack: Dagster's DockerRunLauncher, narrowed and completed.

- `terminate` only marks the run CANCELING; the run worker (JaffleInstance) interrupts itself
  within `cancellation_thread_poll_interval_seconds`. So the webserver, which handles the UI's
  Terminate button, needs no Docker socket: only the daemon mounts it, to launch and watch runs.
- Runs get the landing folder mounted read-only from the same host directory as the daemon's
  own, whatever path the operator chose (JAFFLE_LANDING_DIR), without naming it twice.
"""

from __future__ import annotations

import os
import socket
from functools import cached_property

from dagster._core.storage.dagster_run import DagsterRun
from dagster_docker import DockerRunLauncher
from dagster_docker.container_context import DockerContainerContext

LANDING_MOUNT = "/var/lib/jaffle/landing"


class JaffleDockerRunLauncher(DockerRunLauncher):
    def terminate(self, run_id: str) -> bool:
        run = self._instance.get_run_by_id(run_id)
        if not run or run.is_finished:
            return False
        self._instance.report_run_canceling(
            run, message="Run marked for termination; its worker stops itself."
        )
        return True

    @cached_property
    def _landing_source(self) -> str | None:
        """The host path mounted at LANDING_MOUNT in this (the daemon's) container, if any."""
        if not os.path.isdir(LANDING_MOUNT) or not os.path.exists("/var/run/docker.sock"):
            return None
        import docker.errors

        import docker

        try:
            me = docker.from_env().containers.get(socket.gethostname())
        except docker.errors.DockerException:
            return None
        for mount in me.attrs.get("Mounts", []):
            if mount.get("Destination") == LANDING_MOUNT:
                return mount.get("Name") or mount.get("Source")
        return None

    def get_container_context(self, dagster_run: DagsterRun) -> DockerContainerContext:
        context = super().get_container_context(dagster_run)
        source = self._landing_source
        if source is None:
            return context
        kwargs = dict(context.container_kwargs)
        kwargs["volumes"] = [*kwargs.get("volumes", []), f"{source}:{LANDING_MOUNT}:ro"]
        return context._replace(container_kwargs=kwargs)
