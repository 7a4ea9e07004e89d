"""The gate's pure rules: which mutations a document asks for, which role may send them, and
which Host / next values pass."""

from __future__ import annotations

import pytest
from dagster_graphql.schema import create_schema

from jaffle_server.gate import host_name, safe_next
from jaffle_server.graphql_gate import (
    UnreadableDocument,
    mutation_fields,
    parse_document,
    run_ids,
)
from jaffle_server.roles import OPERATOR_MUTATIONS, VIEWER_MUTATIONS, Role, mutation_allowed


def fields(query: str) -> list[str]:
    return mutation_fields(parse_document(query))


def test_mutation_fields_see_through_aliases_fragments_and_operations() -> None:
    assert fields("{ version }") == []
    assert fields("query Q { version } mutation M { a: launchRun { x } }") == ["launchRun"]
    doc = """
      mutation { ...F ... on Mutation { deleteRun(runId: "1") { x } } }
      fragment F on Mutation { wipeAssets { x } ...G }
      fragment G on Mutation { launchRun { x } }
    """
    assert fields(doc) == ["wipeAssets", "launchRun", "deleteRun"]


@pytest.mark.parametrize(
    "query",
    ["mutation {", "mutation { ...Missing }", "mutation { ...A } fragment A on Mutation { ...A }"],
)
def test_unreadable_documents_are_refused(query: str) -> None:
    with pytest.raises(UnreadableDocument):
        fields(query)


def test_allowlists_name_real_mutations() -> None:
    """A renamed mutation in a Dagster upgrade must not leave a dead name here."""
    mutation_type = create_schema().graphql_schema.mutation_type
    assert mutation_type is not None
    assert set(OPERATOR_MUTATIONS) - set(mutation_type.fields) == set()


def test_mutation_allowed_by_role() -> None:
    assert all(mutation_allowed(Role.VIEWER, m) for m in VIEWER_MUTATIONS)
    assert not mutation_allowed(Role.VIEWER, "launchRun")
    assert mutation_allowed(Role.OPERATOR, "launchRun")
    assert mutation_allowed(Role.OPERATOR, "stopSensor")
    for admin_only in ("wipeAssets", "deleteRun", "setConcurrencyLimit", "reloadWorkspace"):
        assert not mutation_allowed(Role.OPERATOR, admin_only)
        assert mutation_allowed(Role.ADMIN, admin_only)
    assert not mutation_allowed(Role.OPERATOR, "brandNewMutation")
    assert mutation_allowed(Role.ADMIN, "brandNewMutation")


def test_run_ids_from_variables_and_response() -> None:
    variables = {"runIds": ["a", "b"], "other": {"runId": "c"}}
    response = {"launchRun": {"run": {"runId": "d"}}, "x": [{"backfillId": "e"}]}
    assert run_ids(variables, response, None) == ["a", "b", "c", "d", "e"]
    ui_response = {"launchPipelineExecution": {"run": {"id": "f", "pipelineName": "j"}}}
    assert run_ids({"executionParams": {}}, ui_response) == ["f"]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("localhost:3000", "localhost"),
        ("LOCALHOST", "localhost"),
        ("127.0.0.1:3000", "127.0.0.1"),
        ("[::1]:3000", "::1"),
        ("dagster.example.com.", "dagster.example.com"),
        ("", None),
        (None, None),
    ],
)
def test_host_name(header: str | None, expected: str | None) -> None:
    assert host_name(header) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/runs?x=1", "/runs?x=1"),
        (None, "/"),
        ("runs", "/"),
        ("//evil.example", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example", "/"),
        ("/a\r\nSet-Cookie: x", "/"),
        ("/login?next=/login", "/"),
    ],
)
def test_safe_next(value: str | None, expected: str) -> None:
    assert safe_next(value) == expected
