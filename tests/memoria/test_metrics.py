"""Prometheus metrics, scraped from real servers: HTTP requests by route template, GraphQL
operations by type/name/error code, search and embedding timings, queue depths, live
subscriptions, webhook outcomes; the optional bearer token and MEMORIA_METRICS=off."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from conftest import GraphQLClient, RunningServer
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect
from worker_support import Receiver, eventually, fast_settings

from memoria.app import build_app
from memoria.settings import Settings, SettingsError
from providers.embedders.hashing import HashingEmbedder

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

NEW_FIELD = "mutation NewField($n: String!) { createMemoryField(name: $n) { id } }"
SEARCH = """query Recall($f: ID!, $q: String!) {
  searchMemories(fieldId: $f, query: $q) { score memory { content } } }"""
CONVERSATION = 'mutation Talk { createConversation(input: {title: "t"}) { id } }'
WATCH = "subscription Watch($c: ID!) { messageAdded(conversationId: $c) { id } }"
TOKEN = "metrics-token-0123456789"


async def scrape(server: RunningServer, token: str | None = None) -> tuple[str, Samples]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        response = await http.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return response.text, samples


def value(samples: Samples, metric: str, /, **labels: str) -> float:
    return samples.get((metric, frozenset(labels.items())), 0.0)


def sqlite_settings(tmp_path: Path, **changes: object) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'memoria.db'}",
        environment="test",
        embedder="hashing",
        fast_password_hashing=True,
        admin_password="admin-password-123",
    ).with_(**changes)


@pytest.fixture
async def lite_server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    running = await RunningServer(
        build_app(sqlite_settings(tmp_path), embedder=HashingEmbedder())
    ).start()
    try:
        yield running
    finally:
        await running.stop()


async def test_requests_are_counted_by_route_template_and_graphql_operation(
    server: RunningServer, gql: GraphQLClient
) -> None:
    alice = await gql.register("alice")  # an anonymous mutation
    field = (await alice.data(NEW_FIELD, {"n": "notes"}))["createMemoryField"]["id"]
    unauthenticated = await gql.error("query Me { me { id } }")
    assert unauthenticated.code == "UNAUTHENTICATED"
    auth = {"Authorization": f"Bearer {alice.token}"}
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        added = await http.post(
            f"/fields/{field}/memories", json={"content": "Alice keeps bees"}, headers=auth
        )
        assert added.status_code == 201, added.text
        missing = await http.post(
            "/fields/no-such-field/memories", json={"content": "x"}, headers=auth
        )
        assert missing.status_code == 404
        assert (await http.get("/no/such/place-alice-secret")).status_code == 404
    hits = (await alice.data(SEARCH, {"f": field, "q": "bees"}))["searchMemories"]
    assert hits[0]["memory"]["content"] == "Alice keeps bees"

    text, samples = await scrape(server)
    requests = "memoria_http_requests_total"
    route = "/fields/{fieldId}/memories"
    assert value(samples, requests, method="POST", route=route, status="201") == 1
    assert value(samples, requests, method="POST", route=route, status="404") == 1
    assert value(samples, requests, method="GET", route="unmatched", status="404") == 1
    assert value(samples, requests, method="POST", route="/graphql", status="200") == 4
    durations = "memoria_http_request_duration_seconds_count"
    assert value(samples, durations, method="POST", route=route) == 2
    operations = "memoria_graphql_operations_total"
    assert value(samples, operations, type="mutation", name="anonymous", error_code="none") == 1
    assert value(samples, operations, type="mutation", name="NewField", error_code="none") == 1
    assert value(samples, operations, type="query", name="Me", error_code="UNAUTHENTICATED") == 1
    assert value(samples, operations, type="query", name="Recall", error_code="none") == 1
    op_seconds = "memoria_graphql_operation_duration_seconds_count"
    assert value(samples, op_seconds, type="query", name="Recall") == 1
    assert value(samples, "memoria_memory_search_duration_seconds_count") == 1
    assert value(samples, "memoria_embedding_duration_seconds_count", call="query") == 1
    assert value(samples, "memoria_embedding_duration_seconds_count", call="batch") >= 1
    assert value(samples, "memoria_embedded_texts_total", call="batch") >= 1
    for queue in (
        "webhook_deliveries",
        "source_syncs",
        "reembed_fields",
        "memory_extraction",
        "pattern_learning",
        "message_recall",
    ):
        assert ("memoria_queue_depth", frozenset({("queue", queue)})) in samples
    assert value(samples, "memoria_queue_depth", queue="reembed_fields") == 0
    # Templates only: no raw path, user content, username or token ever becomes a label.
    for private in ("alice", "bees", field, str(alice.token)):
        assert private not in text


async def test_a_websocket_subscription_is_live_in_the_gauge_until_completed(
    lite_server: RunningServer,
) -> None:
    user = await GraphQLClient(lite_server.url).register("bob")
    conversation = (await user.data(CONVERSATION))["createConversation"]["id"]
    url = lite_server.url.replace("http://", "ws://") + "/graphql"
    live = "memoria_graphql_active_subscriptions"
    async with connect(url, subprotocols=["graphql-transport-ws"]) as socket:  # type: ignore[list-item]
        await socket.send(
            json.dumps(
                {"type": "connection_init", "payload": {"Authorization": f"Bearer {user.token}"}}
            )
        )
        assert json.loads(await socket.recv())["type"] == "connection_ack"
        subscribe = {"query": WATCH, "variables": {"c": conversation}}
        await socket.send(json.dumps({"id": "w1", "type": "subscribe", "payload": subscribe}))

        async def samples() -> Samples:
            return (await scrape(lite_server))[1]

        running = await eventually(
            samples, accept=lambda s: value(s, live, transport="websocket") == 1, within=5
        )
        assert value(running, "memoria_websocket_connections") == 1
        await socket.send(json.dumps({"id": "w1", "type": "complete"}))
        ended = await eventually(
            samples, accept=lambda s: value(s, live, transport="websocket") == 0, within=5
        )
    operations = "memoria_graphql_operations_total"
    assert value(ended, operations, type="subscription", name="Watch", error_code="none") == 1
    # Subscriptions last as long as their clients: they are counted, not timed.
    op_seconds = "memoria_graphql_operation_duration_seconds_count"
    assert value(ended, op_seconds, type="subscription", name="Watch") == 0
    closed = await eventually(
        samples, accept=lambda s: value(s, "memoria_websocket_connections") == 0, within=5
    )
    assert value(closed, live, transport="sse") == 0


async def test_operation_names_are_bounded_and_invalid_documents_collapse(
    lite_server: RunningServer,
) -> None:
    client = GraphQLClient(lite_server.url)
    assert (await client.error("query Broken { nope")).code == "BAD_USER_INPUT"
    long_name = "Q" + "x" * 150
    assert (await client.error(f"query {long_name} {{ me {{ id }} }}")).code == "UNAUTHENTICATED"
    text, samples = await scrape(lite_server)
    operations = "memoria_graphql_operations_total"
    labels = {"error_code": "BAD_USER_INPUT"}
    assert value(samples, operations, type="unknown", name="invalid", **labels) == 1
    labels = {"error_code": "UNAUTHENTICATED"}
    assert value(samples, operations, type="query", name="other", **labels) == 1
    assert long_name not in text


async def test_webhook_delivery_outcomes_are_counted(
    tmp_path: Path, receiver: tuple[Receiver, str]
) -> None:
    target, url = receiver
    target.statuses = [500, 410]  # a retry, then the receiver says it is gone
    settings = fast_settings(sqlite_settings(tmp_path))
    server = await RunningServer(build_app(settings, embedder=HashingEmbedder())).start()
    try:
        alice = await GraphQLClient(server.url).register("alice")
        await alice.data(
            'mutation($u: String!) { createWebhook(url: $u, events: ["memory.created"]) '
            "{ secret } }",
            {"u": url},
        )
        field = (await alice.data(NEW_FIELD, {"n": "n"}))["createMemoryField"]["id"]
        add = (
            "mutation($f: ID!, $c: String!) { addMemory(fieldId: $f, input: {content: $c}) { id } }"
        )

        async def samples() -> Samples:
            return (await scrape(server))[1]

        outcomes = "memoria_webhook_deliveries_total"
        await alice.data(add, {"f": field, "c": "first"})
        counted = await eventually(
            samples, accept=lambda s: value(s, outcomes, outcome="failed") == 1, within=10
        )
        assert value(counted, outcomes, outcome="retried") == 1
        assert value(counted, outcomes, outcome="delivered") == 0
        await alice.data(add, {"f": field, "c": "second"})
        counted = await eventually(
            samples, accept=lambda s: value(s, outcomes, outcome="delivered") == 1, within=10
        )
        assert value(counted, outcomes, outcome="given_up") == 0
        depth = "memoria_queue_depth"
        await eventually(samples, accept=lambda s: value(s, depth, queue="webhook_deliveries") == 0)
    finally:
        await server.stop()


async def test_webhook_failure_past_the_retry_window_is_given_up(
    tmp_path: Path, receiver: tuple[Receiver, str]
) -> None:
    target, url = receiver
    target.statuses = [503]
    settings = fast_settings(sqlite_settings(tmp_path), webhook_retry_window_seconds=0.0)
    server = await RunningServer(build_app(settings, embedder=HashingEmbedder())).start()
    try:
        alice = await GraphQLClient(server.url).register("alice")
        await alice.data(
            'mutation($u: String!) { createWebhook(url: $u, events: ["memory.created"]) '
            "{ secret } }",
            {"u": url},
        )
        field = (await alice.data(NEW_FIELD, {"n": "n"}))["createMemoryField"]["id"]
        await alice.data(
            'mutation($f: ID!) { addMemory(fieldId: $f, input: {content: "x"}) { id } }',
            {"f": field},
        )

        async def samples() -> Samples:
            return (await scrape(server))[1]

        outcomes = "memoria_webhook_deliveries_total"
        counted = await eventually(
            samples, accept=lambda s: value(s, outcomes, outcome="given_up") == 1, within=10
        )
        assert value(counted, outcomes, outcome="retried") == 0
    finally:
        await server.stop()


async def test_token_protects_the_endpoint_when_set(tmp_path: Path) -> None:
    settings = sqlite_settings(tmp_path, metrics_token=TOKEN)
    server = await RunningServer(build_app(settings, embedder=HashingEmbedder())).start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            for headers in (
                {},
                {"Authorization": "Bearer wrong-token"},
                {"Authorization": f"Basic {TOKEN}"},
                {"Authorization": f"Bearer {TOKEN}x"},
            ):
                refused = await http.get("/metrics", headers=headers)
                assert refused.status_code == 401
                assert refused.headers["www-authenticate"].startswith("Bearer")
                assert "memoria_" not in refused.text
        text, _ = await scrape(server, TOKEN)
        assert "memoria_http_requests_total" in text
        assert TOKEN not in text
    finally:
        await server.stop()


async def test_metrics_off_removes_the_endpoint_but_keeps_request_ids(tmp_path: Path) -> None:
    settings = sqlite_settings(tmp_path, metrics_enabled=False)
    app = build_app(settings, embedder=HashingEmbedder())
    assert app.state.runtime.metrics is None
    server = await RunningServer(app).start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            response = await http.get("/metrics")
            assert response.status_code == 404
            assert response.headers["x-request-id"]
            assert (await http.get("/health")).status_code == 200
    finally:
        await server.stop()


async def test_apps_in_one_process_keep_separate_registries(
    lite_server: RunningServer, tmp_path: Path
) -> None:
    other = await RunningServer(
        build_app(sqlite_settings(tmp_path / "other"), embedder=HashingEmbedder())
    ).start()
    try:
        async with httpx.AsyncClient(base_url=other.url, timeout=10) as http:
            for _ in range(3):
                assert (await http.get("/health")).status_code == 200
        _, mine = await scrape(lite_server)
        _, theirs = await scrape(other)
    finally:
        await other.stop()
    health = {"method": "GET", "route": "/health", "status": "200"}
    assert value(mine, "memoria_http_requests_total", **health) == 0
    assert value(theirs, "memoria_http_requests_total", **health) == 3


def test_metrics_settings_are_read_and_validated() -> None:
    settings = Settings.from_env({"MEMORIA_METRICS": "off", "MEMORIA_METRICS_TOKEN": TOKEN})
    assert not settings.metrics_enabled
    assert settings.metrics_token == TOKEN
    assert TOKEN not in repr(settings)
    assert Settings.from_env({}).metrics_enabled
    assert Settings.from_env({}).metrics_token is None
    with pytest.raises(SettingsError, match="MEMORIA_METRICS must be on or off"):
        Settings.from_env({"MEMORIA_METRICS": "of"})
    with pytest.raises(SettingsError, match="MEMORIA_METRICS_TOKEN"):
        Settings.from_env({"MEMORIA_METRICS_TOKEN": "two words"})
    with pytest.raises(SettingsError, match="16"):
        Settings.from_env({"MEMORIA_ENV": "production", "MEMORIA_METRICS_TOKEN": "short"})
