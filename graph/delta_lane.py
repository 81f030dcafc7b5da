"""The delta lane: a ``chat`` stream's ChatDelta frames written straight to its
graphql-transport-ws socket, byte for byte what Strawberry would have sent.

Why: nearly every event of a chat stream is a ChatDelta, and each one went through
graphql-core's mapping of the subscription source, Strawberry's per-result extension hooks,
the transport handler's message building, JSON encoding of a nested dict and Starlette's send
wrappers before reaching the socket. The frame itself is fixed by the operation (its id, the
root field's response key and the plan of the ChatDelta selection that
:mod:`graph.executor` makes), so the lane builds it from a template and sends it itself.

The lane is used only when nothing in those layers could change the frame:

- the operation runs on graphql-transport-ws (our handler marks its task, below);
- the operation's executor has a delta plan (a plain leaf selection: see graph/executor.py);
- no schema extension has a per-result hook (``get_results``/``on_stream_result``);
- the view encodes JSON the default way.

Otherwise (legacy graphql-ws, SSE, unusual selections) events take the normal path.
Ordering holds because the pipeline is sequential: the resolver's generator is resumed only
after the previous event's frame was sent, so a delta written here always follows the
ChatStarted frame and precedes ChatCompleted.
"""

from __future__ import annotations

import json
from contextvars import ContextVar
from json.encoder import encode_basestring_ascii
from typing import Any

from starlette.websockets import WebSocketDisconnect
from strawberry.extensions import SchemaExtension
from strawberry.http.base import BaseView
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)

from domain.services.chat_events import ChatDelta as DomainChatDelta
from graph.executor import EventStableExecutor
from graph.types.chat import ChatDelta

# The operation being run by this task, set by LaneTransportWSHandler.run_operation.
_OPERATION: ContextVar[tuple[BaseGraphQLTransportWSHandler[Any, Any], Operation[Any, Any]]] = (
    ContextVar("memoria_ws_operation")
)


class LaneTransportWSHandler(BaseGraphQLTransportWSHandler[Any, Any]):
    """Strawberry's graphql-transport-ws handler, marking each operation's task so the
    ``chat`` resolver can find its socket."""

    async def run_operation(self, operation: Operation[Any, Any]) -> None:
        # Each operation runs in a task of its own (created by handle_subscribe), so this
        # is seen by that operation only.
        _OPERATION.set((self, operation))
        await super().run_operation(operation)


def _json(value: object) -> str:
    if type(value) is str:
        return str(encode_basestring_ascii(value))
    if type(value) is int:
        return str(value)
    return json.dumps(value, separators=(",", ":"))


def _plain_extensions(extensions: list[Any]) -> bool:
    for extension in extensions:
        cls: Any = extension if isinstance(extension, type) else type(extension)
        if (
            cls.get_results is not SchemaExtension.get_results
            or cls.on_stream_result is not SchemaExtension.on_stream_result
        ):
            return False
    return True


class DeltaLane:
    """Sends one operation's ChatDelta frames; ``current()`` gives it when it applies."""

    __slots__ = ("_executor", "_fields", "_handler", "_head", "_operation")

    def __init__(
        self,
        handler: BaseGraphQLTransportWSHandler[Any, Any],
        operation: Operation[Any, Any],
        executor: EventStableExecutor,
        key: str,
        fields: list[tuple[str, str, Any]],
    ) -> None:
        self._handler = handler
        self._operation = operation
        self._executor = executor
        self._head = (
            f'{{"id":{_json(operation.id)},"type":"next","payload":{{"data":{{{_json(key)}:{{'
        )
        self._fields = [(f"{_json(out)}:", name, serialize) for out, name, serialize in fields]

    @classmethod
    def current(cls) -> DeltaLane | None:
        target = _OPERATION.get(None)
        executor = EventStableExecutor.current()
        if target is None or executor is None:
            return None
        handler, operation = target
        if type(handler.view).encode_json is not BaseView.encode_json:
            return None
        if not _plain_extensions(list(getattr(handler.schema, "extensions", ()))):
            return None
        plan = executor.delta_plan()
        if plan is None:
            return None
        key, fields = plan
        return cls(handler, operation, executor, key, fields)

    def frame(self, delta: ChatDelta | DomainChatDelta) -> str:
        parts = [
            out + ('"ChatDelta"' if serialize is None else _json(serialize(getattr(delta, name))))
            for out, name, serialize in self._fields
        ]
        return self._head + ",".join(parts) + "}}}}"

    async def send(self, delta: ChatDelta | DomainChatDelta) -> bool:
        """Write the delta's frame; False when it must take the normal path instead (the
        operation is over or being aborted: the normal path knows what to do then)."""
        operation = self._operation
        signal = self._executor.abort_signal
        if (
            operation.completed
            or self._handler.operations.get(operation.id) is not operation
            or (signal is not None and signal.aborted)
        ):
            return False
        try:
            frame = self.frame(delta)
        except Exception:  # noqa: BLE001  # the normal path reports it as GraphQL errors
            return False
        try:
            await self._handler.websocket.ws.send_text(frame)  # type: ignore[attr-defined]  # the ASGI adapter's Starlette socket
        except WebSocketDisconnect as exc:  # what the adapter's send_json raises instead
            raise WebSocketDisconnected from exc
        return True
