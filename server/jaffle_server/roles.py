"""The three roles: which Dagster permissions each one holds and which GraphQL mutations it may
send. Both lists are allowlists: a permission or mutation that is not named here needs admin, so a
mutation added by a Dagster upgrade is closed until someone decides otherwise."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from dagster._core.workspace.permissions import (
    EDITOR_PERMISSIONS,
    LOCATION_SCOPED_PERMISSIONS,
    VIEWER_PERMISSIONS,
    PermissionResult,
    Permissions,
)


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"


ROLE_NAMES: tuple[str, ...] = tuple(r.value for r in Role)

OPERATOR_PERMISSIONS: frozenset[str] = frozenset(
    {
        Permissions.LAUNCH_PIPELINE_EXECUTION,
        Permissions.LAUNCH_PIPELINE_REEXECUTION,
        Permissions.TERMINATE_PIPELINE_EXECUTION,
        Permissions.LAUNCH_PARTITION_BACKFILL,
        Permissions.CANCEL_PARTITION_BACKFILL,
        Permissions.START_SCHEDULE,
        Permissions.STOP_RUNNING_SCHEDULE,
        # Dagster's one permission for starting and stopping a sensor.
        Permissions.EDIT_SENSOR,
    }
)

# Harmless for anyone signed in: the UI sends them on its own (telemetry if enabled, the
# "what's new" dialog), and Dagster checks no permission for them either.
VIEWER_MUTATIONS: frozenset[str] = frozenset({"logTelemetry", "setNuxSeen"})

OPERATOR_MUTATIONS: frozenset[str] = VIEWER_MUTATIONS | {
    "launchRun",
    "launchPipelineExecution",
    "launchMultipleRuns",
    "launchRunReexecution",
    "launchPipelineReexecution",
    "terminateRun",
    "terminateRuns",
    "terminatePipelineExecution",
    "launchPartitionBackfill",
    "reexecutePartitionBackfill",
    "resumePartitionBackfill",
    "cancelPartitionBackfill",
    "startSchedule",
    "stopRunningSchedule",
    "resetSchedule",
    "startSensor",
    "stopSensor",
    "resetSensor",
}


def parse_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise ValueError(f"unknown role {value!r}: use one of {', '.join(ROLE_NAMES)}") from None


def mutation_allowed(role: Role, field_name: str) -> bool:
    """Whether `role` may send the top-level mutation field `field_name` (deny by default)."""
    if field_name == "__typename":
        return True
    if role is Role.ADMIN:
        return True
    if role is Role.OPERATOR:
        return field_name in OPERATOR_MUTATIONS
    return field_name in VIEWER_MUTATIONS


def _enabled(role: Role, permission: str) -> bool:
    if role is Role.ADMIN:
        # Dagster's own editor set: everything open source offers (app-managed components stay
        # off there because they are a Dagster+ feature).
        return EDITOR_PERMISSIONS.get(permission, False)
    if role is Role.OPERATOR:
        return permission in OPERATOR_PERMISSIONS
    return False


def role_permissions(role: Role) -> Mapping[str, PermissionResult]:
    """Dagster's permission map for `role`, in the shape its resolvers and the UI read."""
    return {
        perm: PermissionResult(
            enabled=_enabled(role, perm),
            disabled_reason=None if _enabled(role, perm) else f"Not allowed for role {role}",
        )
        for perm in VIEWER_PERMISSIONS
    }


def role_location_permissions(role: Role) -> Mapping[str, PermissionResult]:
    return {
        perm: result
        for perm, result in role_permissions(role).items()
        if perm in LOCATION_SCOPED_PERMISSIONS
    }
