"""The domain's request budgets and sign-in throttle, applied to GraphQL operations, and the
per-operation credential check of WebSocket subscriptions.

Every root field of an operation is counted once, before anything runs, in the bucket the
REST route doing the same work counts in (``domain/rate_policy.py``): ``sendMessage`` and each
``chat`` subscription in the chat class, ``searchMemories`` and ``context`` in memory search,
``syncSource`` in sync, everything else in the user's tier bucket, or per client address
without a valid credential. Aliases are separate root fields, so they are counted
separately. A refused operation runs nothing: ``RATE_LIMITED`` with ``retryAfter`` (seconds)
in ``extensions``.

Sign-in fields (``login``, ``register``, ``confirmMfa``, ``disableMfa``) are also watched by
the sign-in throttle per client address (``AuthService`` counts ``login`` per account; the
MFA fields are counted here per signed-in account too): a refused credential counts, and a
locked address or account is refused before the field runs.

A WebSocket authenticates at ``connection_init``; a subscription started on it later
(graphql-transport-ws ``subscribe``, legacy graphql-ws ``start``) authenticates its token
again, so a revoked API key, a deleted user or an expired JWT stops there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, MutableMapping
from typing import Any

from graphql import (
    ExecutionResult,
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)
from graphql.language import BooleanValueNode, VariableNode
from graphql.utilities import get_operation_ast
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from domain.entities import Actor
from domain.errors import BadUserInput, Conflict, MemoriaError, RateLimited, Unauthenticated
from domain.ports import UnitOfWork
from domain.rate_policy import CHAT, MEMORY_SEARCH, SYNC
from graph.context import OperationContext, client_address

# Root fields doing the work of a REST route class; others count in the tier bucket.
FIELD_CLASSES: Mapping[str, str] = {
    "sendMessage": CHAT,
    "chat": CHAT,
    "searchMemories": MEMORY_SEARCH,
    "context": MEMORY_SEARCH,
    "syncSource": SYNC,
}
SIGN_IN_FIELDS = frozenset({"login", "register", "confirmMfa", "disableMfa"})
# Sign-in fields whose account is the caller (a TOTP code checked for the signed-in user).
CALLER_CODE_FIELDS = frozenset({"confirmMfa", "disableMfa"})


def domain_error(error: MemoriaError) -> GraphQLError:
    """A refusal with its code (and ``retryAfter`` for RATE_LIMITED), already formatted:
    it is raised before any resolver, where the ErrorCodes extension may not see it."""
    extensions: dict[str, Any] = {"code": error.code}
    if isinstance(error, RateLimited):
        extensions["retryAfter"] = error.retry_after
    if error.details:
        extensions["details"] = error.details
    return GraphQLError(error.message, extensions=extensions)


def root_fields(
    document: Any, operation_name: str | None, variables: Mapping[str, Any] | None
) -> list[tuple[str, str]]:
    """(response key, field name) of each root field the operation executes, in order;
    fragments followed, literal or variable ``@skip``/``@include`` applied."""
    operation = get_operation_ast(document, operation_name) if document is not None else None
    if not isinstance(operation, OperationDefinitionNode):
        return []
    fragments = {
        d.name.value: d.selection_set
        for d in document.definitions
        if d.kind == "fragment_definition"
    }
    found: dict[str, str] = {}
    _collect(operation.selection_set, fragments, variables or {}, found, set())
    return list(found.items())


def _collect(
    selections: SelectionSetNode,
    fragments: Mapping[str, SelectionSetNode],
    variables: Mapping[str, Any],
    found: dict[str, str],
    visited: set[str],
) -> None:
    for node in selections.selections:
        if not _included(node.directives or (), variables):
            continue
        if isinstance(node, FieldNode):
            # ``__schema`` and ``__type`` count like any field; ``__typename`` is a constant.
            name = node.name.value
            if name != "__typename":
                found.setdefault(node.alias.value if node.alias else name, name)
        elif isinstance(node, InlineFragmentNode):
            _collect(node.selection_set, fragments, variables, found, visited)
        elif isinstance(node, FragmentSpreadNode):
            spread = node.name.value
            if spread not in visited and spread in fragments:
                visited.add(spread)
                _collect(fragments[spread], fragments, variables, found, visited)


def _included(directives: Iterable[Any], variables: Mapping[str, Any]) -> bool:
    for directive in directives:
        name = directive.name.value
        if name not in ("skip", "include"):
            continue
        value: Any = True  # unreadable condition: counted (the safe side)
        for argument in directive.arguments or ():
            if isinstance(argument.value, BooleanValueNode):
                value = argument.value.value
            elif isinstance(argument.value, VariableNode):
                value = variables.get(argument.value.name.value) is True
        if (name == "skip" and value is True) or (name == "include" and value is False):
            return False
    return True


class RequestBudgets(SchemaExtension):
    """Counts each operation's root fields before they run; see the module docstring."""

    async def on_execute(self) -> AsyncIterator[None]:
        execution = self.execution_context
        scope = execution.context
        if not isinstance(scope, OperationContext):
            yield
            return
        fields = root_fields(
            execution.graphql_document, execution.operation_name, execution.variables
        )
        if not fields:  # nothing to count (``{ __typename }``)
            yield
            return
        subscription = execution.operation_type is OperationType.SUBSCRIPTION
        try:
            actor = await _admit(scope, fields, subscription=subscription)
        except MemoriaError as refused:
            if subscription:
                # Subscription streams report an exception raised here as their result.
                raise domain_error(refused) from None
            execution.result = ExecutionResult(data=None, errors=[domain_error(refused)])
            yield
            return
        yield
        _count_sign_in_failures(scope, fields, actor, execution.result)


async def _admit(
    scope: OperationContext, fields: list[tuple[str, str]], *, subscription: bool
) -> Actor | None:
    """Authenticate (again, for a socket's subscription), check the sign-in throttle and
    count every root field; the actor, or None when anonymous."""
    if subscription:
        # A subscription may live for minutes: a short unit of work of its own, never the
        # operation's (see graph/chat.py).
        async with scope.deps.uow_factory() as uow:
            actor = await _subscriber(scope, uow)
            await _check(scope, uow, actor, fields)
            await uow.commit()
        return actor
    actor = None
    if scope.token:
        try:
            actor = await scope.actor()
        except Unauthenticated:
            actor = None  # counted per address; the fields needing a user refuse it
    await _check(scope, await scope.uow() if actor is not None else None, actor, fields)
    return actor


async def _subscriber(scope: OperationContext, uow: UnitOfWork) -> Actor | None:
    """The subscription's actor from its token, checked now: on a socket this is the
    per-operation check that a key revoked (or a user deleted, a JWT expired) since
    ``connection_init`` no longer streams anything."""
    if not scope.token:
        return None
    try:
        actor = await scope.deps.auth.authenticate(uow=uow, token=scope.token)
    except Unauthenticated:
        if scope.base.get("ws_actor") is not None:
            if isinstance(scope.base, MutableMapping):
                scope.base.pop("ws_actor", None)  # the socket's identity is gone
            raise
        return None
    if isinstance(scope.base, MutableMapping) and "ws_actor" in scope.base:
        scope.base["ws_actor"] = actor  # what the resolvers use: as of now
    return actor


async def _check(
    scope: OperationContext,
    uow: UnitOfWork | None,
    actor: Actor | None,
    fields: list[tuple[str, str]],
) -> None:
    client = client_address(scope.base)
    signing_in = [name for _key, name in fields if name in SIGN_IN_FIELDS]
    throttle = scope.deps.auth.throttle if signing_in else None
    if throttle is not None:
        for name in signing_in:
            account = actor.user_id if actor is not None and name in CALLER_CODE_FIELDS else None
            throttle.guard(account=account, client=client)
    limiter = scope.deps.rate_limits
    for _key, name in fields:
        await limiter.check(
            uow=uow,
            actor=actor,
            route_class=FIELD_CLASSES.get(name),
            client=client,
        )


def _count_sign_in_failures(
    scope: OperationContext, fields: list[tuple[str, str]], actor: Actor | None, result: Any
) -> None:
    """A refused credential in a sign-in field counts against the address (and, for a
    TOTP code of the signed-in user, against the account)."""
    throttle = scope.deps.auth.throttle
    signing_in = {key: name for key, name in fields if name in SIGN_IN_FIELDS}
    if throttle is None or not signing_in:
        return
    client = client_address(scope.base)
    for error in getattr(result, "errors", None) or ():
        name = signing_in.get(str(error.path[0])) if error.path else None
        if name is None or not _refused_credential(error):
            continue
        account = actor.user_id if actor is not None and name in CALLER_CODE_FIELDS else None
        throttle.failed(account=account, client=client)


def _refused_credential(error: GraphQLError) -> bool:
    original: Any = error.original_error
    while isinstance(original, GraphQLError) and original.original_error is not None:
        original = original.original_error
    if isinstance(original, Unauthenticated):
        return original.details.get("reason") != "mfa_required"
    if isinstance(original, Conflict):
        return True  # register: a taken username or email (probing for accounts)
    if isinstance(original, BadUserInput):
        return original.details.get("reason") == "invalid_mfa_code"  # confirmMfa, disableMfa
    return False
