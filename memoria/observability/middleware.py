"""ASGI middleware: a request id for every request and WebSocket, HTTP metrics by route
template, and one access log line per request (``memoria.access``).

Pure ASGI rather than ``BaseHTTPMiddleware``: streamed responses (SSE chat) pass through
untouched, and the per-request cost stays a few microseconds.
"""

from __future__ import annotations

import logging
import time

from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from domain.json_depth import load_json
from memoria.observability.metrics import HTTP_METHODS, OTHER, UNMATCHED_ROUTE, AppMetrics
from memoria.observability.request_ids import (
    HEADER,
    operation_request_id,
    request_id_from,
    reset_request_id,
    set_request_id,
)

log = logging.getLogger("memoria.access")
errors = logging.getLogger("memoria.http")

_START_OPERATION = ('"subscribe"', '"start"')  # graphql-transport-ws, legacy graphql-ws


def route_label(scope: Scope) -> str:
    """The template of the route that served the request (``/api/memory/{id}``), never the
    raw path: a path no route matched is ``unmatched``."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return UNMATCHED_ROUTE
    return f"{path}/{{path}}" if isinstance(route, Mount) else path or "/"


def _with_header(message: Message, request_id: str) -> Message:
    headers = list(message.get("headers") or ())
    headers.append((HEADER, request_id.encode("ascii")))
    return {**message, "headers": headers}


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: AppMetrics | None) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = request_id_from(scope["headers"])
        token = set_request_id(request_id)
        started = time.perf_counter()
        status = 500
        responded = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.start":
                responded = True
                status = message["status"]
                message = _with_header(message, request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            if responded:
                raise  # the response is under way: the server can only cut it off
            # Logged here, under the request id, instead of by the server without it; the
            # client gets the same bare 500 it would otherwise get, with the id to quote.
            errors.exception("unhandled error in %s %s", scope["method"], route_label(scope))
            await send_with_id(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8")],
                }
            )
            await send({"type": "http.response.body", "body": b"Internal Server Error"})
        finally:
            elapsed = time.perf_counter() - started
            method = scope["method"] if scope["method"] in HTTP_METHODS else OTHER
            route = route_label(scope)
            if self.metrics is not None:
                self.metrics.observe_http(method, route, status, elapsed)
            log.info("%s %s %d %.1f ms", method, route, status, elapsed * 1000)
            reset_request_id(token)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        connection_id = request_id_from(scope["headers"])
        token = set_request_id(connection_id)
        started = time.perf_counter()

        async def receive_marking_operations() -> Message:
            # Strawberry starts each operation's task while handling the message that
            # subscribes it, right after this returns, in this task: the id set here is the
            # one that task (and every log line of the operation) inherits.
            message = await receive()
            text = message.get("text") if message["type"] == "websocket.receive" else None
            operation = connection_id
            if text and any(marker in text for marker in _START_OPERATION):
                try:
                    document = load_json(text)  # depth-bounded: a deep message is refused later
                except ValueError:
                    document = None
                if isinstance(document, dict) and document.get("type") in ("subscribe", "start"):
                    operation = operation_request_id(connection_id, document.get("id"))
            set_request_id(operation)
            return message

        async def send_with_id(message: Message) -> None:
            if message["type"] in ("websocket.accept", "websocket.http.response.start"):
                message = _with_header(message, connection_id)
            await send(message)

        if self.metrics is not None:
            self.metrics.websocket_connections.inc()
        try:
            await self.app(scope, receive_marking_operations, send_with_id)
        finally:
            if self.metrics is not None:
                self.metrics.websocket_connections.dec()
            set_request_id(connection_id)
            log.info("WS %s closed after %.1f s", route_label(scope), time.perf_counter() - started)
            reset_request_id(token)
