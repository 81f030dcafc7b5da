"""The ASGI GraphQL endpoint with an offline GraphiQL and bounded, GraphQL-shaped transport
(graph/transport.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import strawberry
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLRequestData
from strawberry.http.parse_content_type import parse_content_type
from strawberry.subscriptions import (
    GRAPHQL_SSE_PROTOCOL,
    GRAPHQL_TRANSPORT_WS_PROTOCOL,
    GRAPHQL_WS_PROTOCOL,
)

from domain.errors import Unauthenticated
from domain.json_depth import load_json
from graph.context import GraphDeps, bearer_token
from graph.delta_lane import LaneTransportWSHandler
from graph.transport import (
    DEFAULT_MAX_BODY_BYTES,
    BodyTooLarge,
    BoundedWebSocketAdapter,
    is_json_media,
    parse_json_input,
    read_body,
    replaying,
    request_data,
    transport_error,
)

STATIC_DIR = Path(__file__).parent / "static"
STATIC_URL = "/static/graphiql"

_GRAPHIQL_HTML = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8" />
  <title>Memoria GraphiQL</title>
  <link rel="stylesheet" href="{static}/graphiql.min.css" />
  <style>body {{ margin: 0; height: 100vh; }} #graphiql {{ height: 100vh; }}</style>
</head>
<body>
  <div id="graphiql">Loading GraphiQL…</div>
  <script src="{static}/react.production.min.js"></script>
  <script src="{static}/react-dom.production.min.js"></script>
  <script src="{static}/graphiql.min.js"></script>
  <script>
    const url = new URL("/graphql", window.location.href).toString();
    const wsUrl = url.replace(/^http/, "ws");
    const fetcher = GraphiQL.createFetcher({{ url, subscriptionUrl: wsUrl }});
    ReactDOM.createRoot(document.getElementById("graphiql")).render(
      React.createElement(GraphiQL, {{
        fetcher,
        defaultEditorToolsVisibility: true,
        defaultHeaders: '{{"Authorization": "Bearer <token>"}}',
      }})
    );
  </script>
</body>
</html>
"""


class MemoriaGraphQL(GraphQL[dict[str, Any], None]):
    """Strawberry's ASGI app with Memoria's context, a GraphiQL that needs no CDN, and request
    bodies / WebSocket messages bounded by ``max_body_bytes`` (see graph/transport.py)."""

    graphql_transport_ws_handler_class = LaneTransportWSHandler  # chat deltas: graph/delta_lane.py
    websocket_adapter_class = BoundedWebSocketAdapter

    def __init__(
        self,
        schema: strawberry.Schema,
        deps: GraphDeps,
        *,
        ide: bool = True,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if ide else None,
            subscription_protocols=(
                GRAPHQL_TRANSPORT_WS_PROTOCOL,
                GRAPHQL_WS_PROTOCOL,
                GRAPHQL_SSE_PROTOCOL,  # subscriptions over POST with Accept: text/event-stream
            ),
            multipart_uploads_enabled=False,
        )
        self.deps = deps
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            if request.method == "POST":
                body = await read_body(request, self.max_body_bytes)
                request = Request(scope, replaying(body, receive))
            response = await self.run(request)
        except BodyTooLarge as exc:
            details = {"max_bytes": exc.limit}
            response = transport_error(request, exc.status_code, exc.reason, details)
        except HTTPException as exc:
            response = transport_error(request, exc.status_code, exc.reason)
        await response(scope, receive, send)

    def decode_json(self, data: str | bytes) -> object:
        return load_json(data)  # json.loads with bounded nesting (domain/json_depth.py)

    def parse_json(self, data: str | bytes) -> Any:
        return parse_json_input(data)  # decode_json, its failures as 400s

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        """POST bodies are checked here (GET goes through strawberry, whose JSON parsing is
        :meth:`parse_json`): JSON only (415 otherwise), one operation object, typed members."""
        if request.method != "POST":
            return await super().parse_http_body(request)
        media, _ = parse_content_type(request.content_type or "")
        if not is_json_media(media.lower()):
            raise HTTPException(
                415, f"Unsupported Content-Type {media!r}: send the operation as application/json"
            )
        data = self.parse_json(await request.get_body())
        transport = self._get_stream_transport_from_headers(request.headers)  # SSE or plain
        return request_data(data, transport.protocol if transport else "http")

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket | None
    ) -> dict[str, Any]:
        return {"deps": self.deps, "request": request, "response": response}

    async def on_ws_connect(self, context: dict[str, Any]) -> None:
        """A token in ``connection_init`` must be valid: a bad one closes the socket (4403 on
        graphql-transport-ws; legacy graphql-ws answers ``connection_error``). No token is
        allowed here; operations that need a user then fail with UNAUTHENTICATED. The check
        runs in its own short unit of work, so nothing stays open for the connection."""
        token = bearer_token(context)
        if token is None:
            return None
        try:
            async with self.deps.uow_factory() as uow:
                # Kept for the connection's operations: a socket is authenticated once.
                context["ws_actor"] = await self.deps.auth.authenticate(uow=uow, token=token)
        except Unauthenticated as exc:
            raise ConnectionRejectionError({"message": exc.message}) from None
        return None

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        return HTMLResponse(_GRAPHIQL_HTML.format(static=STATIC_URL))
