"""The HTTP and WebSocket edges of ``/graphql``: bounded bodies and messages, bounded JSON, and
transport errors in GraphQL's own shape.

Strawberry answers transport problems (malformed JSON, a batch, a missing ``query``) with
``text/plain`` and lets others through as 500s (a body of ``null``, invalid UTF-8, JSON
nested thousands of levels deep). Here every such request gets ``{"errors": [{"message",
"extensions": {"code": "BAD_USER_INPUT"}}]}`` with a 4xx status, and no body or message is
read past the request size limit.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Mapping
from typing import Any

from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Message, Receive
from starlette.websockets import WebSocketDisconnect, WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.http import GraphQLRequestData, GraphQLRequestProtocol
from strawberry.http.exceptions import NonJsonMessageReceived, NonTextMessageReceived

from domain.json_depth import JsonTooDeep, load_json

DEFAULT_MAX_BODY_BYTES = 1024 * 1024  # the composition root passes MEMORIA_MAX_REQUEST_BYTES
GRAPHQL_RESPONSE_MEDIA = "application/graphql-response+json"
WS_MESSAGE_TOO_BIG = 1009  # RFC 6455: the peer sent a message too big to process
WS_INVALID_MESSAGE = 4400  # graphql-transport-ws: invalid message

_CODES = {404: "NOT_FOUND"}  # any other transport error is the client's input


def transport_error(
    request: Request, status: int, message: str, details: Mapping[str, Any] | None = None
) -> Response:
    """A GraphQL-shaped error body; ``application/graphql-response+json`` when accepted."""
    extensions: dict[str, Any] = {"code": _CODES.get(status, "BAD_USER_INPUT")}
    if details:
        extensions["details"] = dict(details)
    accept = request.headers.get("accept", "")
    media = GRAPHQL_RESPONSE_MEDIA if GRAPHQL_RESPONSE_MEDIA in accept else "application/json"
    body = {"errors": [{"message": message, "extensions": extensions}]}
    return JSONResponse(body, status_code=status, media_type=media)


class BodyTooLarge(HTTPException):
    """413: the request body is past the limit (declared or counted while reading)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"Request body too large (limit {limit} bytes)")
        self.limit = limit


async def read_body(request: Request, limit: int) -> bytes:
    """The body, read chunk by chunk and refused as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def replaying(body: bytes, receive: Receive) -> Receive:
    """``receive`` that hands out the already-read body once, then defers to the client's
    (streamed responses still hear the disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def is_json_media(media: str) -> bool:
    return media == "application/json" or media.endswith("+json")


def parse_json_input(data: str | bytes) -> Any:
    """JSON from a request (body, or ``variables``/``extensions`` of a GET) or a 400."""
    try:
        return load_json(data)
    except JsonTooDeep as exc:
        raise HTTPException(400, str(exc)) from None
    except UnicodeDecodeError:
        raise HTTPException(400, "Request body is not valid UTF-8") from None
    except ValueError as exc:
        raise HTTPException(400, f"Unable to parse request body as JSON: {exc}") from None


def request_data(data: Any, protocol: GraphQLRequestProtocol) -> GraphQLRequestData:
    """One operation from a decoded POST body, with every member's type checked."""
    if isinstance(data, list):
        raise HTTPException(
            400, "Batched operations (a JSON array) are not supported: send one per request"
        )
    if not isinstance(data, dict):
        raise HTTPException(400, 'The request body must be a JSON object with a "query" string')
    query = data.get("query")
    if query is None:
        raise HTTPException(400, "No GraphQL query found in the request")
    if not isinstance(query, str):
        raise HTTPException(400, 'The GraphQL operation\'s "query" must be a string')
    operation_name = data.get("operationName")
    if not isinstance(operation_name, (str, type(None))):
        raise HTTPException(400, '"operationName" must be a string or null')
    for member in ("variables", "extensions"):
        if not isinstance(data.get(member), (dict, type(None))):
            raise HTTPException(400, f'"{member}" must be an object or null')
    return GraphQLRequestData(
        query=query,
        variables=data.get("variables"),
        operation_name=operation_name,
        extensions=data.get("extensions"),
        protocol=protocol,
    )


class BoundedWebSocketAdapter(ASGIWebSocketAdapter):
    """Strawberry's WebSocket adapter with a message size limit and bounded JSON: a message
    past the limit closes the socket with 1009, one nested too deeply with 4400 (on the
    legacy graphql-ws protocol, which ignores unparsable messages, it is skipped)."""

    async def iter_json(
        self, *, ignore_parsing_errors: bool = False
    ) -> AsyncGenerator[object, None]:
        limit = int(getattr(self.view, "max_body_bytes", DEFAULT_MAX_BODY_BYTES))
        try:
            while self.ws.application_state != WebSocketState.DISCONNECTED:
                text = await self.ws.receive_text()
                # A character is 1-4 bytes: encode only when the count could pass the limit.
                if len(text) > limit or (len(text) * 4 > limit and len(text.encode()) > limit):
                    await self.close(WS_MESSAGE_TOO_BIG, f"Message too big (limit {limit} bytes)")
                    return
                try:
                    message = load_json(text)
                except JsonTooDeep as exc:
                    if not ignore_parsing_errors:
                        await self.close(WS_INVALID_MESSAGE, str(exc))
                        return
                except json.JSONDecodeError as exc:
                    if not ignore_parsing_errors:
                        raise NonJsonMessageReceived from exc
                else:
                    yield message
        except KeyError as exc:  # a binary frame: starlette finds no "text"
            raise NonTextMessageReceived from exc
        except WebSocketDisconnect:
            pass
