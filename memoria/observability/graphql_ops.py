"""A schema extension that counts and times GraphQL operations and tracks live
subscriptions, labelled by operation type and name only.

It runs outermost (first in the schema's list), so the errors it reads already carry the
``extensions.code`` that ``graph.extensions.ErrorCodes`` gives them. It implements no
per-result hook, which keeps chat deltas on their fast lane (graph/delta_lane.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from typing import Any

from graphql import DocumentNode, OperationDefinitionNode
from starlette.websockets import WebSocket
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

from memoria.observability.metrics import AppMetrics, error_code_label

log = logging.getLogger("memoria.graphql.operations")

MAX_NAME_LENGTH = 100
UNKNOWN_TYPE = "unknown"
INVALID_NAME = "invalid"  # the document did not parse or has no such operation
ANONYMOUS = "anonymous"


def _operation(document: DocumentNode | None, name: str | None) -> OperationDefinitionNode | None:
    if document is None:
        return None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        return operations[0] if len(operations) == 1 else None
    return next((o for o in operations if o.name is not None and o.name.value == name), None)


def operation_labels(context: ExecutionContext, metrics: AppMetrics | None) -> tuple[str, str]:
    """(type, name) of the operation run, from the parsed document only."""
    try:
        name = context.operation_name
    except Exception:  # noqa: BLE001  # a malformed document is labelled, not raised
        name = None
    operation = _operation(context.graphql_document, name)
    if operation is None:
        return UNKNOWN_TYPE, INVALID_NAME
    kind = operation.operation.value
    if operation.name is None:
        return kind, ANONYMOUS
    label = operation.name.value
    if len(label) > MAX_NAME_LENGTH:
        return kind, "other"
    return kind, metrics.operation_names.admit(label) if metrics is not None else label


def _error_code(result: Any) -> str:
    errors = getattr(result, "errors", None)
    if not errors:
        return "none"
    extensions = getattr(errors[0], "extensions", None) or {}
    return error_code_label(extensions.get("code"))


def operation_observer(metrics: AppMetrics | None) -> type[SchemaExtension]:
    """The extension class for one app's metrics (Strawberry instantiates it per
    operation with no arguments, hence a class per app rather than a parameter)."""

    class OperationObserver(SchemaExtension):
        _transport = "http"
        _subscribed = False

        def on_operation(self) -> Iterator[None]:
            started = time.perf_counter()
            base = self.execution_context.context
            request = base.get("request") if isinstance(base, dict) else None
            self._transport = "websocket" if isinstance(request, WebSocket) else "sse"
            outcome = "none"
            try:
                yield
                outcome = _error_code(self.execution_context.result)
            except asyncio.CancelledError:
                raise  # how a subscription ends when its client completes it or goes away
            except Exception:
                outcome = "INTERNAL"
                raise
            finally:
                elapsed = time.perf_counter() - started
                kind, name = operation_labels(self.execution_context, metrics)
                if self._subscribed and metrics is not None:
                    metrics.active_subscriptions.labels(self._transport).dec()
                if metrics is not None:
                    metrics.graphql_operations.labels(kind, name, outcome).inc()
                    if kind != "subscription":
                        metrics.graphql_seconds.labels(kind, name).observe(elapsed)
                log.debug("graphql %s %s: %s in %.1f ms", kind, name, outcome, elapsed * 1000)

        def on_execute(self) -> Iterator[None]:
            # Reached only by valid operations: the subscription is live from here on.
            context = self.execution_context
            if metrics is not None and not self._subscribed:
                kind, _ = operation_labels(context, None)
                if kind == "subscription":
                    self._subscribed = True
                    metrics.active_subscriptions.labels(self._transport).inc()
            yield

    return OperationObserver
