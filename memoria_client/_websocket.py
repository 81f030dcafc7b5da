"""Subscriptions over graphql-transport-ws, for the async and the sync client.

One socket per subscription: ``connection_init`` carries the bearer token (the server
checks it and closes with 4403 when it is bad), then one ``subscribe``; ``next`` payloads
are yielded, ``error`` and GraphQL errors raise typed exceptions, ``complete`` ends the
stream, pings are answered. Closing early sends ``complete`` so the server stops the work.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Generator
from contextlib import suppress
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.sync.client import connect as connect_sync
from websockets.typing import Subprotocol

from memoria_client.errors import (
    MemoriaClientError,
    MemoriaResponseError,
    MemoriaTransportError,
    UnauthenticatedError,
    error_from_graphql,
)

SUBPROTOCOL = Subprotocol("graphql-transport-ws")
OPERATION_ID = "1"
COMPLETE = json.dumps({"id": OPERATION_ID, "type": "complete"})
PONG = json.dumps({"type": "pong"})
REJECTED = 4403  # graphql-transport-ws: connection_init refused (here: a bad token)


def init_message(token: str | None) -> str:
    payload = {"Authorization": f"Bearer {token}"} if token else {}
    return json.dumps({"type": "connection_init", "payload": payload})


def subscribe_message(document: str, variables: dict[str, Any]) -> str:
    payload = {"query": document, "variables": variables}
    return json.dumps({"id": OPERATION_ID, "type": "subscribe", "payload": payload})


def read_frame(raw: str | bytes) -> tuple[str, dict[str, Any] | None]:
    """A frame's type, with the ``data`` of a ``next``; an ``error`` frame raises."""
    try:
        message = json.loads(raw)
    except ValueError:
        raise MemoriaResponseError(f"not a graphql-transport-ws frame: {raw[:200]!r}") from None
    if not isinstance(message, dict):
        raise MemoriaResponseError(f"not a graphql-transport-ws frame: {message!r}")
    kind = str(message.get("type"))
    payload = message.get("payload")
    if kind == "error":
        raise error_from_graphql(payload)
    if kind != "next":
        return kind, None
    if not isinstance(payload, dict):
        raise MemoriaResponseError(f"a next frame without payload: {message!r}")
    if payload.get("errors"):
        raise error_from_graphql(payload["errors"])
    data = payload.get("data")
    if not isinstance(data, dict):
        raise MemoriaResponseError(f"a next frame without data: {message!r}")
    return kind, data


def closed_error(exc: ConnectionClosed) -> MemoriaClientError:
    code = exc.rcvd.code if exc.rcvd is not None else None
    reason = exc.rcvd.reason if exc.rcvd is not None else ""
    if code == REJECTED:
        message = reason or "the server rejected the credentials"
        return UnauthenticatedError("UNAUTHENTICATED", message)
    return MemoriaTransportError(f"the WebSocket closed ({code}: {reason or 'no reason'})")


def _open_error(url: str, exc: Exception) -> MemoriaTransportError:
    return MemoriaTransportError(f"cannot open a WebSocket to {url}: {exc}")


class Exchange:
    """The client's side of one operation, without I/O: what a frame means and what to
    answer. ``ended`` once the server completed or failed the operation."""

    def __init__(self) -> None:
        self.ended = False

    def acknowledged(self, raw: str | bytes) -> tuple[str | None, bool]:
        """Before ``connection_ack``: the reply to send, and whether this was the ack."""
        kind, _ = read_frame(raw)
        return (PONG if kind == "ping" else None), kind == "connection_ack"

    def receive(self, raw: str | bytes) -> tuple[str | None, dict[str, Any] | None]:
        """After ``subscribe``: the reply to send, and the event's ``data`` if one came."""
        try:
            kind, data = read_frame(raw)
        except MemoriaClientError:
            self.ended = True
            raise
        if kind == "complete":
            self.ended = True
        return (PONG if kind == "ping" else None), data

    def closed(self, exc: ConnectionClosed) -> MemoriaClientError:
        self.ended = True
        return closed_error(exc)


async def subscribe_async(
    url: str,
    token: str | None,
    document: str,
    variables: dict[str, Any],
    *,
    open_timeout: float,
) -> AsyncGenerator[dict[str, Any], None]:
    """The ``data`` of each event of one subscription."""
    try:
        socket = await connect(
            url, subprotocols=[SUBPROTOCOL], open_timeout=open_timeout, max_size=None
        )
    except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
        raise _open_error(url, exc) from exc
    exchange = Exchange()
    try:
        await socket.send(init_message(token))
        try:
            async with asyncio.timeout(open_timeout):
                acked = False
                while not acked:
                    reply, acked = exchange.acknowledged(await socket.recv())
                    if reply is not None:
                        await socket.send(reply)
        except TimeoutError:
            raise MemoriaTransportError(f"no connection_ack from {url}") from None
        await socket.send(subscribe_message(document, variables))
        while not exchange.ended:
            reply, data = exchange.receive(await socket.recv())
            if reply is not None:
                await socket.send(reply)
            if data is not None:
                yield data
    except ConnectionClosed as exc:
        raise exchange.closed(exc) from exc
    finally:
        if not exchange.ended:  # left early: the server stops the operation
            with suppress(ConnectionClosed, OSError):
                await socket.send(COMPLETE)
        await socket.close()


def subscribe_sync(
    url: str,
    token: str | None,
    document: str,
    variables: dict[str, Any],
    *,
    open_timeout: float,
) -> Generator[dict[str, Any], None, None]:
    """The ``data`` of each event of one subscription (blocking)."""
    try:
        socket = connect_sync(
            url, subprotocols=[SUBPROTOCOL], open_timeout=open_timeout, max_size=None
        )
    except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
        raise _open_error(url, exc) from exc
    exchange = Exchange()
    with socket:  # closes it on the way out
        try:
            socket.send(init_message(token))
            try:
                acked = False
                while not acked:
                    reply, acked = exchange.acknowledged(socket.recv(timeout=open_timeout))
                    if reply is not None:
                        socket.send(reply)
            except TimeoutError:
                raise MemoriaTransportError(f"no connection_ack from {url}") from None
            socket.send(subscribe_message(document, variables))
            while not exchange.ended:
                reply, data = exchange.receive(socket.recv())
                if reply is not None:
                    socket.send(reply)
                if data is not None:
                    yield data
        except ConnectionClosed as exc:
            raise exchange.closed(exc) from exc
        finally:
            if not exchange.ended:  # left early: the server stops the operation
                with suppress(ConnectionClosed, OSError):
                    socket.send(COMPLETE)
