"""Schema extensions: the per-operation scope (transaction) and error codes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from domain.errors import MemoriaError, RateLimited
from graph.context import GraphDeps, OperationContext

log = logging.getLogger("memoria.graphql")


class OperationScope(SchemaExtension):
    """Wraps each operation in one unit of work, committed only if no error occurred."""

    async def on_operation(self) -> AsyncIterator[None]:
        base = self.execution_context.context
        deps: GraphDeps = base["deps"]
        scope = OperationContext(deps, base)
        self.execution_context.context = scope
        ok = False
        try:
            yield
            result = self.execution_context.result
            ok = not getattr(result, "errors", None)
        finally:
            await scope.finish(commit=ok)


def format_error(error: GraphQLError) -> GraphQLError:
    """Domain errors keep their message and get ``extensions.code``; anything else is masked."""
    original = error.original_error
    while isinstance(original, GraphQLError) and original.original_error is not None:
        original = original.original_error
    if isinstance(original, MemoriaError):
        code, message = original.code, original.message
        extensions: dict[str, Any] = {"code": code}
        if isinstance(original, RateLimited):
            extensions["retryAfter"] = original.retry_after
        if original.details:
            extensions["details"] = original.details
    elif "code" in (error.extensions or {}):
        # Already given its code (subscription streams: graph/chat.py subscription_error).
        message, extensions = error.message, dict(error.extensions or {})
    elif original is None or isinstance(original, GraphQLError) or error.path is None:
        # Parse, validation and variable-coercion errors (raised before any resolver ran,
        # so they have no path): the client's input is wrong.
        message, extensions = error.message, {"code": "BAD_USER_INPUT"}
    else:
        log.error("unexpected error in %s", error.path, exc_info=original)
        message, extensions = "Internal server error", {"code": "INTERNAL"}
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=None,
        extensions=extensions,
    )


class ErrorCodes(SchemaExtension):
    """Runs outermost so it sees errors from every other hook."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = [format_error(e) for e in errors]  # type: ignore[union-attr]
