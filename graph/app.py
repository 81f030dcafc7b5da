"""The ASGI GraphQL endpoint with an offline GraphiQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import strawberry
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import (
    GRAPHQL_SSE_PROTOCOL,
    GRAPHQL_TRANSPORT_WS_PROTOCOL,
    GRAPHQL_WS_PROTOCOL,
)

from domain.errors import Unauthenticated
from graph.context import GraphDeps, bearer_token
from graph.delta_lane import LaneTransportWSHandler

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
    """Strawberry's ASGI app with Memoria's context and a GraphiQL that needs no CDN."""

    graphql_transport_ws_handler_class = LaneTransportWSHandler  # chat deltas: graph/delta_lane.py

    def __init__(self, schema: strawberry.Schema, deps: GraphDeps, *, ide: bool = True) -> None:
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
