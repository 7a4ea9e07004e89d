"""The run launcher of the stack: Dagster's DockerRunLauncher, narrowed and completed.

- `terminate` only marks the run CANCELING; the run worker (JaffleInstance) interrupts itself
  within `cancellation_thread_poll_interval_seconds`. So the webserver, which handles the UI's
  Terminate button, needs no Docker socket: only the daemon mounts it, to launch and watch runs.
- Runs get the host folders mounted from the same host directories as the daemon's own, whatever
  paths the operator chose, without naming them twice: the landing folder read-only
  (JAFFLE_LANDING_DIR), the backups and the warehouse snapshot read-write (JAFFLE_BACKUP_DIR,
  JAFFLE_SNAPSHOT_DIR).
"""

from __future__ import annotations

import os
import socket
from functools import cached_property

from dagster._core.storage.dagster_run import DagsterRun
from dagster_docker import DockerRunLauncher
from dagster_docker.container_context import DockerContainerContext

LANDING_MOUNT = "/var/lib/jaffle/landing"
# Destination in the daemon and the runs -> mode in the runs.
HOST_FOLDERS = {
    LANDING_MOUNT: "ro",
    "/var/lib/jaffle/backups": "rw",
    "/var/lib/jaffle/snapshot": "rw",
}


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
    def _host_folders(self) -> list[str]:
        """`source:destination:mode` of each HOST_FOLDERS mount of this (the daemon's) container."""
        if not os.path.exists("/var/run/docker.sock"):
            return []
        import docker.errors

        import docker

        try:
            me = docker.from_env().containers.get(socket.gethostname())
        except docker.errors.DockerException:
            return []
        found = []
        for mount in me.attrs.get("Mounts", []):
            destination = mount.get("Destination")
            if destination in HOST_FOLDERS:
                source = mount.get("Name") or mount.get("Source")
                found.append(f"{source}:{destination}:{HOST_FOLDERS[destination]}")
        return found

    def get_container_context(self, dagster_run: DagsterRun) -> DockerContainerContext:
        context = super().get_container_context(dagster_run)
        if not self._host_folders:
            return context
        kwargs = dict(context.container_kwargs)
        kwargs["volumes"] = [*kwargs.get("volumes", []), *self._host_folders]
        return context._replace(container_kwargs=kwargs)
