"""``/graphql`` transport hardening: bad bodies, content types, sizes and JSON nesting get a
4xx with a GraphQL-shaped error (never a 500 or ``text/plain``), WebSocket messages are
bounded, and a document with several operations needs ``operationName``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import GraphQLClient, RunningServer
from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.routing import Route, WebSocketRoute
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from domain.json_depth import MAX_JSON_DEPTH
from graph import limits
from graph.app import MemoriaGraphQL
from graph.schema import build_schema
from persistence.tables.memories import memories

JSON = {"Content-Type": "application/json"}
TYPENAME = b'{"query": "{ __typename }"'
SMALL_LIMIT = 4096


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    # The transport never reaches storage differently per backend: SQLite only keeps it fast.
    return f"sqlite+aiosqlite:///{tmp_path / 'memoria.db'}"


@pytest.fixture
async def small(server: RunningServer) -> AsyncIterator[RunningServer]:
    """The same services behind a ``/graphql`` whose body/message limit is 4 KiB."""
    graphql = MemoriaGraphQL(build_schema(), server.runtime.deps, max_body_bytes=SMALL_LIMIT)
    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
        ]
    )
    running = await RunningServer(app).start()
    try:
        yield running
    finally:
        await running.stop()


def _nested(depth: int, leaf: Any = "leaf") -> Any:
    value: Any = leaf
    for _ in range(depth):
        value = [value]
    return value


def _deep_text(depth: int) -> str:
    return "[" * depth + "]" * depth


def _only_error(response: httpx.Response) -> dict[str, Any]:
    """The single transport error, after checking the whole GraphQL error shape."""
    assert response.headers["content-type"].startswith("application/json"), response.text
    body = response.json()
    assert set(body) == {"errors"}, body
    (error,) = body["errors"]
    assert isinstance(error["message"], str)
    assert error["message"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", body
    return dict(error)


BAD_BODIES: list[tuple[str, bytes, str]] = [
    ("null", b"null", "JSON object"),
    ("a JSON string", b'"abc"', "JSON object"),
    ("a number", b"42", "JSON object"),
    ("invalid UTF-8", b'{"query": "{ __typename }", "x": "\xff\xfe"}', "not valid UTF-8"),
    ("malformed JSON", b'{"query": ', "Unable to parse request body as JSON"),
    ("a batch", b"[" + TYPENAME + b"}, " + TYPENAME + b"}]", "Batched operations"),
    ("a non-string query", b'{"query": 5}', '"query" must be a string'),
    ("no query", b"{}", "No GraphQL query"),
    ("a null query", b'{"query": null}', "No GraphQL query"),
    ("list variables", TYPENAME + b', "variables": [1]}', '"variables" must be an object'),
    ("number extensions", TYPENAME + b', "extensions": 3}', '"extensions" must be an object'),
    ("number operationName", TYPENAME + b', "operationName": 5}', '"operationName"'),
    (
        "JSON 5,000 levels deep",
        TYPENAME + b', "variables": {"v": ' + _deep_text(5000).encode() + b"}}",
        f"nested deeper than {MAX_JSON_DEPTH} levels",
    ),
    ("a bare deep array", _deep_text(100_000).encode(), "nested deeper than"),
]


async def test_bad_bodies_get_a_graphql_shaped_400(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        for case, body, message in BAD_BODIES:
            response = await http.post("/graphql", content=body, headers=JSON)
            assert response.status_code == 400, (case, response.status_code, response.text)
            assert message in _only_error(response)["message"], case
        # The same server still answers a good request.
        ok = await http.post("/graphql", content=TYPENAME + b"}", headers=JSON)
        assert ok.json() == {"data": {"__typename": "Query"}}


async def test_get_requests_get_the_same_errors(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        deep = await http.get(
            "/graphql",
            params={"query": "{ __typename }", "variables": json.dumps({"v": _nested(500)})},
            headers={"Accept": "application/json"},
        )
        assert deep.status_code == 400
        assert "nested deeper than" in _only_error(deep)["message"]
        missing = await http.get("/graphql", headers={"Accept": "application/json"})
        assert missing.status_code == 400
        assert "No GraphQL query" in _only_error(missing)["message"]


async def test_graphql_response_media_type_when_the_client_accepts_it(
    server: RunningServer,
) -> None:
    accept = "application/graphql-response+json, application/json;q=0.9"
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        response = await http.post("/graphql", content=b"{", headers={**JSON, "Accept": accept})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/graphql-response+json")
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_unsupported_content_types_are_415(server: RunningServer) -> None:
    unsupported = ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; b=x"]
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        for content_type in [*unsupported, None]:
            headers = {"Content-Type": content_type} if content_type else {}
            response = await http.post("/graphql", content=TYPENAME + b"}", headers=headers)
            assert response.status_code == 415, (content_type, response.text)
            assert "application/json" in _only_error(response)["message"]
        json_suffix = await http.post(
            "/graphql",
            content=TYPENAME + b"}",
            headers={"Content-Type": "application/graphql+json; charset=utf-8"},
        )
    assert json_suffix.json() == {"data": {"__typename": "Query"}}


async def test_a_body_past_the_limit_is_413(server: RunningServer) -> None:
    three_mib = TYPENAME + b', "x": "' + b"a" * (3 * 1024 * 1024) + b'"}'
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        response = await http.post("/graphql", content=three_mib, headers=JSON)
    assert response.status_code == 413
    error = _only_error(response)
    assert error["extensions"]["details"] == {"max_bytes": 1024 * 1024}
    assert "too large" in error["message"]


async def test_an_undeclared_body_is_refused_while_it_streams(small: RunningServer) -> None:
    """Chunked, no Content-Length: the 413 arrives after the limit, long before the 1 MiB
    the client would send, so the server never buffers more than the limit."""
    host, port = small.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"a" * 1024
    sent = 0
    status_line = b""
    while sent < 1024 * 1024 and not status_line:
        writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        await writer.drain()
        sent += len(chunk)
        try:
            status_line = await asyncio.wait_for(reader.readline(), timeout=0.01)
        except TimeoutError:
            continue
    writer.close()
    assert status_line.startswith(b"HTTP/1.1 413"), status_line
    assert sent < 64 * 1024, sent


async def test_the_limit_is_the_one_given(small: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=small.url, timeout=30) as http:
        fits = await http.post("/graphql", content=TYPENAME + b"}", headers=JSON)
        padded = TYPENAME + b', "x": "' + b"a" * SMALL_LIMIT + b'"}'
        too_big = await http.post("/graphql", content=padded, headers=JSON)
    assert fits.json() == {"data": {"__typename": "Query"}}
    assert too_big.status_code == 413
    assert _only_error(too_big)["extensions"]["details"] == {"max_bytes": SMALL_LIMIT}


async def _ws_close_code(server: RunningServer, message: str) -> int | None:
    url = server.url.replace("http", "ws", 1) + "/graphql"
    async with connect(url, subprotocols=["graphql-transport-ws"], max_size=None) as socket:  # type: ignore[list-item]
        await socket.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await socket.recv())["type"] == "connection_ack"
        await socket.send(message)
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(socket.recv(), timeout=5)
        return socket.close_code


async def test_websocket_messages_are_bounded(small: RunningServer) -> None:
    subscribe = {"id": "1", "type": "subscribe", "payload": {"query": "{ __typename }"}}
    big = {**subscribe, "payload": {**subscribe["payload"], "x": "a" * SMALL_LIMIT}}
    assert await _ws_close_code(small, json.dumps(big)) == 1009
    deep = {**subscribe, "payload": {**subscribe["payload"], "variables": {"v": _nested(200)}}}
    assert await _ws_close_code(small, json.dumps(deep)) == 4400


async def _post(client: GraphQLClient, payload: dict[str, Any] | bytes) -> httpx.Response:
    headers = {"Authorization": f"Bearer {client.token}"} if client.token else {}
    content = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    async with httpx.AsyncClient(base_url=client.base_url, timeout=30) as http:
        return await http.post("/graphql", content=content, headers={**JSON, **headers})


async def _memory_count(server: RunningServer) -> int:
    async with server.runtime.db.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(memories))).scalar_one())


async def test_deep_json_scalar_input_is_refused_and_writes_nothing(
    server: RunningServer, gql: GraphQLClient
) -> None:
    alice = await gql.register("alice")
    created = await alice.data('mutation { createMemoryField(name: "f") { id } }')
    field = created["createMemoryField"]["id"]
    add = """mutation($f: ID!, $m: JSON) {
      addMemory(fieldId: $f, input: {content: "hello", metadata: $m}) { metadata } }"""
    for depth in (MAX_JSON_DEPTH + 1, 3000):
        # Written by hand: the json module cannot encode what it could not decode.
        variables = f'{{"f": "{field}", "m": {_deep_text(depth)}}}'
        payload = f'{{"query": {json.dumps(add)}, "variables": {variables}}}'
        response = await _post(alice, payload.encode())
        assert response.status_code == 400
        assert "nested deeper than" in _only_error(response)["message"]
    assert await _memory_count(server) == 0
    # Moderate nesting is ordinary metadata.
    stored = await alice.data(add, {"f": field, "m": {"deep": _nested(20)}})
    assert stored["addMemory"]["metadata"] == {"deep": _nested(20)}
    assert await _memory_count(server) == 1


async def test_several_operations_need_an_operation_name(gql: GraphQLClient) -> None:
    alice = await gql.register("alice")
    two = """mutation A { createMemoryField(name: "a") { name } }
             mutation B { createMemoryField(name: "b") { name } }"""
    refused = await alice.error(two)
    assert refused.code == "BAD_USER_INPUT"
    assert "operation name" in refused.errors[0]["message"]
    assert (await alice.data("{ memoryFields { name } }"))["memoryFields"] == []

    chosen = await _post(alice, {"query": two, "operationName": "B"})
    assert chosen.json() == {"data": {"createMemoryField": {"name": "b"}}}
    unknown = await _post(alice, {"query": two, "operationName": "C"})
    assert unknown.status_code == 400
    assert "C" in _only_error(unknown)["message"]
    assert (await alice.data("{ memoryFields { name } }"))["memoryFields"] == [{"name": "b"}]


async def test_a_document_of_hundreds_of_operations_runs_none(gql: GraphQLClient) -> None:
    many = " ".join(f"query Q{i} {{ __typename }}" for i in range(300))
    for payload in ({"query": many}, {"query": many, "operationName": "Q7"}):
        body = (await _post(gql, payload)).json()
        assert body.get("data") is None, body
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body
        assert f"limit is {limits.MAX_DEFINITIONS}" in body["errors"][0]["message"]


async def test_a_deep_websocket_message_closes_only_its_socket(server: RunningServer) -> None:
    """Through the whole app (its request-id middleware reads subscribe messages too)."""
    deep = '{"id": "1", "type": "subscribe", "payload": {"query": "{ __typename }", '
    deep += '"variables": {"v": ' + _deep_text(5000) + "}}}"
    assert await _ws_close_code(server, deep) == 4400
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        ok = await http.post("/graphql", content=TYPENAME + b"}", headers=JSON)
    assert ok.json() == {"data": {"__typename": "Query"}}


async def test_inline_json_literals_are_bounded_like_variables(gql: GraphQLClient) -> None:
    alice = await gql.register("alice")
    created = await alice.data('mutation { createMemoryField(name: "f") { id } }')
    field = created["createMemoryField"]["id"]

    def add(depth: int) -> str:
        metadata = "{x: " + "[" * depth + "1" + "]" * depth + "}"
        return (
            f'mutation {{ addMemory(fieldId: "{field}", '
            f'input: {{content: "hi", metadata: {metadata}}}) {{ metadata }} }}'
        )

    refused = await alice.error(add(MAX_JSON_DEPTH))
    assert refused.code == "BAD_USER_INPUT"
    assert f"nested deeper than {MAX_JSON_DEPTH} levels" in refused.errors[0]["message"]
    stored = await alice.data(add(MAX_JSON_DEPTH - 2))
    assert stored["addMemory"]["metadata"] == {"x": _nested(MAX_JSON_DEPTH - 2, 1)}
