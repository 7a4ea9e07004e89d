"""What a GraphQL document asks to change: the top-level mutation fields of every mutation
operation in it (through fragments, whichever operation the request names), and the run ids a
mutation's variables or response mention, for the audit line."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    parse,
)


class UnreadableDocument(Exception):
    """The document cannot be parsed or names a fragment it does not define."""


def parse_document(query: str) -> DocumentNode:
    try:
        return parse(query)
    except GraphQLError as exc:
        raise UnreadableDocument(exc.message) from None


def _fields(
    selection_set: SelectionSetNode,
    fragments: dict[str, FragmentDefinitionNode],
    visiting: frozenset[str],
) -> Iterator[str]:
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            yield selection.name.value
        elif isinstance(selection, InlineFragmentNode):
            yield from _fields(selection.selection_set, fragments, visiting)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name not in fragments or name in visiting:
                raise UnreadableDocument(f"unknown or cyclic fragment {name!r}")
            yield from _fields(fragments[name].selection_set, fragments, visiting | {name})


def operation_types(document: DocumentNode) -> set[OperationType]:
    return {d.operation for d in document.definitions if isinstance(d, OperationDefinitionNode)}


def mutation_fields(document: DocumentNode) -> list[str]:
    """Top-level field names of all mutation operations, in order, without duplicates."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    names: list[str] = []
    for definition in document.definitions:
        if (
            isinstance(definition, OperationDefinitionNode)
            and definition.operation is OperationType.MUTATION
        ):
            for name in _fields(definition.selection_set, fragments, frozenset()):
                if name not in names:
                    names.append(name)
    return names


_RUN_ID_KEYS = ("runId", "runIds", "backfillId")


def _walk_ids(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in _RUN_ID_KEYS:
                if isinstance(item, str):
                    yield item
                elif isinstance(item, list):
                    yield from (i for i in item if isinstance(i, str))
            else:
                # The UI asks for `run { id }` (a Run's id is its run id), scripts for runId.
                if key == "run" and isinstance(item, dict) and isinstance(item.get("id"), str):
                    yield item["id"]
                yield from _walk_ids(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk_ids(item)


def run_ids(*sources: Any) -> list[str]:
    """Run (and backfill) ids named anywhere in the given variables / response data."""
    seen: list[str] = []
    for source in sources:
        for run_id in _walk_ids(source):
            if run_id not in seen:
                seen.append(run_id)
    return seen


def typenames(value: Any) -> Iterable[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "__typename" and isinstance(item, str):
                yield item
            else:
                yield from typenames(item)
    elif isinstance(value, list):
        for item in value:
            yield from typenames(item)
