"""Which role a GraphQL request needs, decided from the parsed document itself.

The Dagster UI does everything through one endpoint, so guarding pages would guard
nothing: the front parses each GraphQL document (graphql-core) and asks for the highest
role any of its operations needs. Queries and subscriptions read (viewer); the mutations
that run and steer pipelines are the operator's; every other mutation, including one this
list has never heard of (a newer Dagster), is the admin's. Root fields are read by their
name, never their alias, and fragments spread into a mutation are followed, so
`mutation { x: wipeAssets(...) }` or `mutation { ...F }` cannot pass as something milder.
"""

from __future__ import annotations

from graphql import (DocumentNode, FieldNode, FragmentDefinitionNode, FragmentSpreadNode, GraphQLError,
                     InlineFragmentNode, OperationDefinitionNode, OperationType, SelectionSetNode, parse)

from watchkeeper.security.roles import Role

# Dagster 1.13's mutations that act on runs, backfills, sensors and schedules.
OPERATOR_MUTATIONS = frozenset({
    "launchRun", "launchPipelineExecution", "launchMultipleRuns",
    "launchRunReexecution", "launchPipelineReexecution",
    "terminateRun", "terminatePipelineExecution", "terminateRuns",
    "launchPartitionBackfill", "cancelPartitionBackfill", "resumePartitionBackfill", "reexecutePartitionBackfill",
    "startSensor", "stopSensor", "resetSensor", "sensorDryRun",
    "startSchedule", "stopRunningSchedule", "resetSchedule", "scheduleDryRun",
})
MAX_DOCUMENT_CHARS = 200_000   # the UI's largest query is about 30 KB; a bigger one is not the UI


class GraphQLRequestError(ValueError):
    """A request that is not one well-formed GraphQL document (answered 400, never forwarded)."""


def required_role(query: object) -> Role:
    """The least role allowed to send `query` (the `query` string of a GraphQL request)."""
    if not isinstance(query, str) or not query.strip():
        raise GraphQLRequestError("the request has no GraphQL query")
    if len(query) > MAX_DOCUMENT_CHARS:
        raise GraphQLRequestError(f"the GraphQL document is longer than {MAX_DOCUMENT_CHARS} characters")
    try:
        document = parse(query, no_location=True)
    except GraphQLError as error:
        raise GraphQLRequestError(f"not a GraphQL document: {error.message}") from None
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if not operations:
        raise GraphQLRequestError("the GraphQL document has no operation")
    return max(_operation_role(op, fragments) for op in operations)


def _operation_role(operation: OperationDefinitionNode, fragments: dict[str, FragmentDefinitionNode]) -> Role:
    if operation.operation is not OperationType.MUTATION:
        return Role.VIEWER
    names = _root_fields(operation.selection_set, fragments, seen=set())
    return max((Role.OPERATOR if name in OPERATOR_MUTATIONS else Role.ADMIN for name in names), default=Role.ADMIN)


def _root_fields(selections: SelectionSetNode, fragments: dict[str, FragmentDefinitionNode],
                 seen: set[str]) -> list[str]:
    """Names of the fields selected at the root, through inline fragments and fragment spreads."""
    names = []
    for selection in selections.selections:
        if isinstance(selection, FieldNode):
            names.append(selection.name.value)
        elif isinstance(selection, InlineFragmentNode):
            names += _root_fields(selection.selection_set, fragments, seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in seen:
                continue
            if name not in fragments:   # an unknown fragment: the server would refuse it; so do we
                raise GraphQLRequestError(f"unknown fragment {name!r}")
            names += _root_fields(fragments[name].selection_set, fragments, seen | {name})
    return names
