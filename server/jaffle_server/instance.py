"""The Dagster instance class of the stack (dagster.yaml `instance_class`).

One difference from Dagster's own: every run worker watches its run's status and interrupts
itself when the run is marked CANCELING. Terminating a run from the UI then needs no Docker
access in the webserver: it only writes CANCELING to Postgres (see launcher.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dagster import DagsterInstance
from dagster._core.instance.ref import InstanceRef


class JaffleInstance(DagsterInstance):
    # A custom instance class must declare its own config (none) and defaults (Dagster's).
    @classmethod
    def config_schema(cls) -> dict[str, Any]:
        return {}

    @staticmethod
    def config_defaults(base_dir: str) -> Mapping[str, Any]:
        return InstanceRef.config_defaults(base_dir)

    @property
    def should_start_background_run_thread(self) -> bool:
        # Dagster's run worker starts its cancellation thread only when this is true; OSS
        # returns False because its launchers stop workers from outside instead.
        return True
