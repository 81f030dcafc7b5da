"""Request ids on every response and every log line emitted while handling the request
(GraphQL operations over a WebSocket included), and the text/JSON log formats."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import GraphQLClient, RunningServer
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from websockets.asyncio.client import connect
from worker_support import eventually

from memoria.app import build_app
from memoria.observability import configure_logging
from memoria.observability.logging_setup import JsonFormatter
from memoria.observability.metrics import AppMetrics
from memoria.observability.middleware import ObservabilityMiddleware
from memoria.observability.request_ids import RequestIdFilter, reset_request_id, set_request_id
from memoria.settings import Settings, SettingsError
from providers.embedders.hashing import HashingEmbedder

GENERATED = re.compile(r"[0-9a-f]{32}")
WATCH = "subscription Watch($c: ID!) { messageAdded(conversationId: $c) { id } }"


class Lines(logging.Handler):
    """Keeps each record as the JSON line the server would write."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(JsonFormatter())
        self.addFilter(RequestIdFilter())

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def documents(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines]


@pytest.fixture
def captured() -> Iterator[Lines]:
    handler = Lines()
    names = ("memoria.access", "memoria.graphql.operations", "memoria.http")
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)


@pytest.fixture
async def lite_server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'memoria.db'}",
        environment="test",
        embedder="hashing",
        fast_password_hashing=True,
        admin_password="admin-password-123",
    ).validated()
    running = await RunningServer(build_app(settings, embedder=HashingEmbedder())).start()
    try:
        yield running
    finally:
        await running.stop()


SENT_IDS = [
    ("trace-42.abc:DEF/9", True),
    ("x" * 128, True),
    ("x" * 129, False),
    ("has space", False),
    ("caf\u00e9", False),
    ("", False),
]


async def test_a_sane_client_request_id_is_echoed_else_one_is_generated(
    lite_server: RunningServer,
) -> None:
    async with httpx.AsyncClient(base_url=lite_server.url, timeout=10) as http:
        for sent, echoed in SENT_IDS:
            for path in ("/health", "/graphql", "/api/memory/stats", "/no/such/path"):
                headers = [("X-Request-ID", sent.encode("latin-1"))]
                got = (await http.get(path, headers=headers)).headers["x-request-id"]
                assert got == sent if echoed else GENERATED.fullmatch(got), (sent, path, got)


async def test_generated_ids_differ_per_request(lite_server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=lite_server.url, timeout=10) as http:
        ids = {(await http.get("/health")).headers["x-request-id"] for _ in range(5)}
    assert len(ids) == 5
    assert all(GENERATED.fullmatch(i) for i in ids)


async def test_log_lines_of_a_request_are_json_with_its_id(
    lite_server: RunningServer, captured: Lines
) -> None:
    client = GraphQLClient(lite_server.url)
    payload = json.dumps({"query": "query Me { me { id } }"})
    async with httpx.AsyncClient(base_url=lite_server.url, timeout=10) as http:
        response = await http.post(
            "/graphql",
            content=payload,
            headers={
                "Content-Type": "application/json",
                "X-Request-ID": "req-json-1",
                "Authorization": "Bearer not-a-real-token-secret",
            },
        )
    assert response.headers["x-request-id"] == "req-json-1"
    assert (await client.error("query Me { me { id } }")).code == "UNAUTHENTICATED"
    ours = [d for d in captured.documents() if d["request_id"] == "req-json-1"]
    by_logger = {d["logger"]: d for d in ours}
    assert set(by_logger) == {"memoria.access", "memoria.graphql.operations"}
    access = by_logger["memoria.access"]
    assert set(access) == {"time", "level", "logger", "message", "request_id"}
    assert access["level"] == "INFO"
    assert access["message"].startswith("POST /graphql 200 ")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", access["time"])
    assert by_logger["memoria.graphql.operations"]["message"].startswith(
        "graphql query Me: UNAUTHENTICATED"
    )
    # The other request logged under its own (generated) id; nothing carried the token.
    others = [d for d in captured.documents() if d["request_id"] != "req-json-1"]
    assert others
    assert all(GENERATED.fullmatch(d["request_id"]) for d in others)
    assert not any("not-a-real-token-secret" in line for line in captured.lines)


async def test_websocket_operations_log_under_connection_and_operation_ids(
    lite_server: RunningServer, captured: Lines
) -> None:
    user = await GraphQLClient(lite_server.url).register("carol")
    url = lite_server.url.replace("http://", "ws://") + "/graphql"
    async with connect(
        url,
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        additional_headers={"X-Request-ID": "conn-7"},
    ) as socket:
        assert socket.response is not None
        assert socket.response.headers["X-Request-ID"] == "conn-7"
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {user.token}"}}
        await socket.send(json.dumps(init))
        assert json.loads(await socket.recv())["type"] == "connection_ack"
        # Each operation ends by itself (no such conversation), having logged its outcome.
        subscribe = {"query": WATCH, "variables": {"c": "no-such-conversation"}}
        for op_id in ("a1", "b 2"):  # the second id is not sane: it is not copied into logs
            await socket.send(json.dumps({"id": op_id, "type": "subscribe", "payload": subscribe}))

        async def operations() -> list[str]:
            return [
                d["request_id"]
                for d in captured.documents()
                if d["logger"] == "memoria.graphql.operations"
                and d["message"].startswith("graphql subscription Watch: NOT_FOUND")
            ]

        ids = await eventually(operations, accept=lambda found: len(found) == 2, within=5)
    assert sorted(ids) == ["conn-7/?", "conn-7/a1"]
    closed = await eventually(
        lambda: _access_lines(captured, "conn-7"), accept=lambda found: bool(found), within=5
    )
    assert closed[0].startswith("WS /graphql closed after ")


async def _access_lines(captured: Lines, request_id: str) -> list[str]:
    return [
        d["message"]
        for d in captured.documents()
        if d["logger"] == "memoria.access" and d["request_id"] == request_id
    ]


async def test_an_unhandled_error_is_a_500_with_the_id_and_one_logged_traceback(
    captured: Lines,
) -> None:
    async def broken(_request: Request) -> Response:
        raise RuntimeError("boom in handler")

    metrics = AppMetrics()
    app = Starlette(  # wired as build_app wires it
        routes=[Route("/items/{id}", broken)],
        middleware=[Middleware(ObservabilityMiddleware, metrics=metrics)],
    )
    server = await RunningServer(app).start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            response = await http.get("/items/123", headers={"X-Request-ID": "boom-1"})
    finally:
        await server.stop()
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "boom-1"
    assert response.text == "Internal Server Error"
    logged = [d for d in captured.documents() if d["logger"] == "memoria.http"]
    assert len(logged) == 1
    assert logged[0]["request_id"] == "boom-1"
    assert logged[0]["message"] == "unhandled error in GET /items/{id}"
    assert "RuntimeError: boom in handler" in logged[0]["exception"]
    count = metrics.registry.get_sample_value(
        "memoria_http_requests_total", {"method": "GET", "route": "/items/{id}", "status": "500"}
    )
    assert count == 1


def test_configure_logging_writes_json_or_text_with_the_request_id() -> None:
    stream = io.StringIO()
    log = logging.getLogger("memoria.test_request_ids")
    root = logging.getLogger()
    level = root.level
    handler = configure_logging("json", stream=stream)
    try:
        token = set_request_id("cfg-1")
        try:
            log.info("hello %s", "there", extra={"authorization": "Bearer leaked-secret"})
            try:
                raise ValueError("bad value")
            except ValueError:
                log.exception("failed")
        finally:
            reset_request_id(token)
        log.warning("outside")
        settings = Settings.from_env({"MEMORIA_LOG_FORMAT": "text"})
        text_handler = configure_logging(settings, stream=stream)
        assert handler not in root.handlers  # replaced, not stacked
        token = set_request_id("cfg-2")
        log.info("as text")
        reset_request_id(token)
    finally:
        for installed in [h for h in root.handlers if h.get_name() == "memoria"]:
            root.removeHandler(installed)
        root.setLevel(level)
    lines = stream.getvalue().splitlines()
    hello, failed, outside = (json.loads(line) for line in lines[:3])
    assert hello["message"] == "hello there"
    assert hello["request_id"] == "cfg-1"
    assert "leaked-secret" not in lines[0]
    assert failed["level"] == "ERROR"
    assert "ValueError: bad value" in failed["exception"]
    assert outside["request_id"] is None
    assert text_handler.get_name() == "memoria"
    assert re.fullmatch(r".+ INFO memoria\.test_request_ids \[cfg-2\] as text", lines[-1])


def test_log_format_setting_is_validated() -> None:
    assert Settings.from_env({}).log_format == "text"
    assert Settings.from_env({"MEMORIA_LOG_FORMAT": "JSON"}).log_format == "json"
    with pytest.raises(SettingsError, match="MEMORIA_LOG_FORMAT"):
        Settings.from_env({"MEMORIA_LOG_FORMAT": "xml"})
    with pytest.raises(TypeError):
        configure_logging(42)
