"""The stack toolkit's parts that need no Docker engine: every GraphQL document the stack tests
send, checked against the installed Dagster's schema; the env file; the polling loop; launch_run
without a webserver."""

from __future__ import annotations

import ast
import socket
from pathlib import Path

import pytest
from dagster_graphql.schema import create_schema
from graphql import GraphQLSchema, OperationDefinitionNode, parse, validate
from graphql.execution.values import get_variable_values

from jaffle_stack import graphql as api
from jaffle_stack import launch_run
from jaffle_stack.compose import ROOT, read_env_file, write_env_file
from jaffle_stack.wait import Timeout, poll

SENDERS = [Path(api.__file__), *sorted((ROOT / "tests" / "stack").glob("*.py"))]


def graphql_documents() -> list[tuple[str, str]]:
    """(module:NAME, text) of each module-level string that is a GraphQL query or mutation."""
    found = []
    for path in SENDERS:
        for node in ast.parse(path.read_text()).body:
            if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)):
                continue
            text = node.value.value
            if isinstance(text, str) and text.lstrip().startswith(("query", "mutation")):
                for target in node.targets:
                    assert isinstance(target, ast.Name)
                    found.append((f"{path.stem}:{target.id}", text))
    return found


DOCUMENTS = graphql_documents()


def test_the_stack_tests_send_graphql_documents() -> None:
    names = {name for name, _ in DOCUMENTS}
    assert {"graphql:LAUNCH_MUTATION", "graphql:RUN_QUERY", "graphql:STOP_SCHEDULE"} <= names
    assert {"test_pipeline:RUN_MATERIALIZATIONS", "test_security:START_SCHEDULE"} <= names


@pytest.fixture(scope="module")
def schema() -> GraphQLSchema:
    return create_schema().graphql_schema


@pytest.mark.parametrize(("name", "document"), DOCUMENTS, ids=[n for n, _ in DOCUMENTS])
def test_graphql_document_is_valid_for_the_installed_dagster(
    schema: GraphQLSchema, name: str, document: str
) -> None:
    """A field Dagster renamed or removed fails here, not only in the stack tests."""
    errors = validate(schema, parse(document))
    assert errors == [], f"{name}: {[e.message for e in errors]}"


@pytest.mark.parametrize("tags", [None, {"jaffle/allow_shrink": "true", "team": "data"}])
def test_launch_params_are_what_launch_run_accepts(
    schema: GraphQLSchema, tags: dict[str, str] | None
) -> None:
    """The variables the client sends, coerced as Dagster's server coerces them."""
    (operation,) = parse(api.LAUNCH_MUTATION).definitions
    assert isinstance(operation, OperationDefinitionNode)
    params = api.asset_job_params("jaffle_platform", "__repository__", [["raw_orders"]], tags)
    coerced = get_variable_values(schema, operation.variable_definitions, {"params": params})
    assert isinstance(coerced, dict), coerced
    sent_tags = coerced["params"].get("executionMetadata", {}).get("tags", [])
    assert {t["key"]: t["value"] for t in sent_tags} == (tags or {})
    assert coerced["params"]["selector"]["assetSelection"] == [{"path": ["raw_orders"]}]


def test_env_file_is_read_back_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STANDIN_POSTGRES_IMAGE", "mirror.example/postgres:15")
    monkeypatch.delenv("STANDIN_PYTHON_IMAGE", raising=False)
    path = tmp_path / "new" / "stack.env"
    written = write_env_file(path, "jaffletry", JAFFLE_SCHEDULE_CRON="* * * * *")
    assert written == {
        "COMPOSE_PROJECT_NAME": "jaffletry",
        "PYTHON_BASE_IMAGE": "jaffle-standin/python:3.11-bookworm",
        "POSTGRES_IMAGE": "mirror.example/postgres:15",
        "JAFFLE_SCHEDULE_CRON": "* * * * *",
    }
    assert read_env_file(path) == written


def test_env_file_reader_skips_comments_and_keeps_equals_in_values(tmp_path: Path) -> None:
    path = tmp_path / "stack.env"
    path.write_text("# settings\n\nCOMPOSE_PROJECT_NAME=jaffle\nRAW_DATA_URI=http://h/?a=b\n")
    assert read_env_file(path) == {
        "COMPOSE_PROJECT_NAME": "jaffle",
        "RAW_DATA_URI": "http://h/?a=b",
    }


def test_launch_run_names_a_webserver_it_cannot_reach(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:  # a port nobody listens on once closed
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    assert launch_run.main(["--url", url, "--timeout", "1"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert f"launch_run: cannot reach {url}" in err and "is the stack up?" in err


def test_poll_retries_errors_then_returns_the_first_truthy_value() -> None:
    answers: list[Exception | str | None] = [ConnectionRefusedError("not up"), None, "", "ready"]

    def check() -> str | None:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert poll("the server", check, timeout=5, interval=0) == "ready"


def test_poll_times_out_naming_what_it_waited_for_and_the_last_error() -> None:
    def check() -> None:
        raise RuntimeError("GraphQL errors: boom")

    with pytest.raises(Timeout, match=r"waiting for the run .*last error: GraphQL errors: boom"):
        poll("the run", check, timeout=0.05, interval=0.01)
    assert issubclass(Timeout, AssertionError)  # a test shows a timed-out wait as a failure
