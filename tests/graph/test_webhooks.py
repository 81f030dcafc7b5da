"""Webhooks end to end: subscribe, signed deliveries to a real receiver on loopback,
retries with backoff and an attempt log, secret rotation, deletion, SSRF refusal and
delivery after a server restart (the outbox is in the database)."""

from __future__ import annotations

import json

from conftest import GraphQLClient
from worker_support import Receiver, eventually, fast_settings, start_app

from memoria.settings import Settings
from providers.webhooks.signing import verify

CREATE = """mutation($u: String!, $e: [String!]!) {
  createWebhook(url: $u, events: $e) { secret webhook { id url events } }
}"""
DELIVERIES = """{ webhooks { id deliveries { eventId event status attempts lastStatus
  attemptLog { attempt statusCode latencyMs error } } } }"""
FIELD = 'mutation { createMemoryField(name: "notes") { id } }'
ADD = """mutation($f: ID!, $c: String!) { addMemory(fieldId: $f, input: {content: $c}) { id } }"""


async def _setup(gql: GraphQLClient, url: str, events: list[str]) -> tuple[GraphQLClient, str, str]:
    alice = await gql.register("alice")
    created = (await alice.data(CREATE, {"u": url, "e": events}))["createWebhook"]
    assert created["secret"].startswith("whsec_")
    assert created["webhook"]["events"] == events
    field = (await alice.data(FIELD))["createMemoryField"]["id"]
    return alice, created["secret"], field


async def test_signed_delivery_retried_until_accepted(
    worker_server: object, receiver: tuple[Receiver, str]
) -> None:
    target, url = receiver
    target.statuses = [500, 503]  # two failures, then success
    gql = GraphQLClient(worker_server.url)  # type: ignore[attr-defined]
    alice, secret, field = await _setup(gql, url, ["memory.created"])
    memory = (await alice.data(ADD, {"f": field, "c": "The launch is on Friday"}))["addMemory"]

    await eventually(lambda: _ok(target), within=20)
    assert [r.status for r in target.received] == [500, 503, 200]
    ids = {r.headers["x-memoria-event-id"] for r in target.received}
    assert len(ids) == 1, "a retried delivery keeps its event id, so receivers can de-duplicate"
    final = target.ok()[0]
    assert verify(secret, final.body, final.headers["x-memoria-signature"])
    assert not verify("whsec_wrong", final.body, final.headers["x-memoria-signature"])
    body = json.loads(final.body)
    assert body["type"] == "memory.created"
    assert body["id"] == ids.pop()
    assert body["data"]["id"] == memory["id"]
    assert body["data"]["content"] == "The launch is on Friday"

    hooks = (await alice.data(DELIVERIES))["webhooks"]
    (delivery,) = hooks[0]["deliveries"]
    assert delivery["status"] == "delivered"
    assert delivery["attempts"] == 3
    log = delivery["attemptLog"]
    assert [a["statusCode"] for a in log] == [500, 503, 200]
    assert all(a["latencyMs"] >= 0 for a in log)
    assert log[0]["error"] == "HTTP 500"


async def _ok(target: Receiver) -> int:
    return len(target.ok())


async def test_rotate_list_delete_and_tenancy(
    worker_server: object, receiver: tuple[Receiver, str]
) -> None:
    target, url = receiver
    gql = GraphQLClient(worker_server.url)  # type: ignore[attr-defined]
    alice, old_secret, field = await _setup(gql, url, ["memory.created", "memory.deleted"])
    hook_id = (await alice.data("{ webhooks { id } }"))["webhooks"][0]["id"]
    rotated = (
        await alice.data(
            "mutation($id: ID!) { rotateWebhookSecret(id: $id) { secret webhook { id } } }",
            {"id": hook_id},
        )
    )["rotateWebhookSecret"]
    assert rotated["secret"] != old_secret
    mem = (await alice.data(ADD, {"f": field, "c": "after rotation"}))["addMemory"]["id"]
    await alice.data("mutation($id: ID!) { deleteMemory(id: $id) }", {"id": mem})
    await eventually(lambda: _ok(target), accept=lambda n: n >= 2)
    for delivery in target.ok():
        assert verify(rotated["secret"], delivery.body, delivery.headers["x-memoria-signature"])
        assert not verify(old_secret, delivery.body, delivery.headers["x-memoria-signature"])
    assert sorted(r.headers["x-memoria-event"] for r in target.ok()) == [
        "memory.created",
        "memory.deleted",
    ]

    bob = await gql.register("bob")
    assert (await bob.data("{ webhooks { id } }"))["webhooks"] == []
    denied = await bob.error("mutation($id: ID!) { deleteWebhook(id: $id) }", {"id": hook_id})
    assert denied.code == "NOT_FOUND"
    assert (await alice.data("mutation($id: ID!) { deleteWebhook(id: $id) }", {"id": hook_id}))[
        "deleteWebhook"
    ]
    assert (await alice.data("{ webhooks { id } }"))["webhooks"] == []


async def test_bad_subscriptions_are_refused(gql: GraphQLClient) -> None:
    """The default server refuses private and loopback receivers (SSRF)."""
    alice = await gql.register("alice")
    for url in (
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://10.1.2.3/x",
        "http://[::1]/x",
        "http://169.254.169.254/latest",
    ):
        refused = await alice.error(CREATE, {"u": url, "e": ["memory.created"]})
        assert refused.code == "BAD_USER_INPUT", url
    for url, events in (
        ("ftp://example.com/x", ["memory.created"]),
        ("https://example.com/x", ["no.such.event"]),
        ("https://example.com/x", []),
        ("https://user:pw@example.com/x", ["memory.created"]),
    ):
        refused = await alice.error(CREATE, {"u": url, "e": events})
        assert refused.code == "BAD_USER_INPUT", (url, events)
    assert (await alice.data("{ webhooks { id } }"))["webhooks"] == []


async def test_slow_receiver_does_not_slow_requests(
    worker_server: object, receiver: tuple[Receiver, str]
) -> None:
    target, url = receiver
    target.hold = True  # the receiver accepts the connection and then says nothing
    gql = GraphQLClient(worker_server.url)  # type: ignore[attr-defined]
    alice, _, field = await _setup(gql, url, ["memory.created"])
    await alice.data(ADD, {"f": field, "c": "first"})
    await eventually(lambda: _waiting(target))
    # While a delivery hangs, requests keep being answered (delivery is not in their path).
    for i in range(3):
        await alice.data(ADD, {"f": field, "c": f"more {i}"})
    assert target.received == []  # still hanging: nothing was answered yet
    target.release.set()
    await eventually(lambda: _ok(target), accept=lambda n: n == 4)


async def _waiting(target: Receiver) -> int:
    return target.waiting


async def test_outbox_survives_restart(settings: Settings, receiver: tuple[Receiver, str]) -> None:
    target, url = receiver
    # First life: no workers run, so the delivery can only sit in the outbox.
    first = await start_app(fast_settings(settings, background_workers=False))
    try:
        gql = GraphQLClient(first.url)
        alice, secret, field = await _setup(gql, url, ["memory.created", "message.created"])
        await alice.data(ADD, {"f": field, "c": "written before the restart"})
    finally:
        await first.stop()
    assert target.received == []
    # Second life on the same database: the worker finds and sends it.
    second = await start_app(fast_settings(settings))
    try:
        await eventually(lambda: _ok(target))
        (delivery,) = target.ok()
        assert json.loads(delivery.body)["data"]["content"] == "written before the restart"
        assert verify(secret, delivery.body, delivery.headers["x-memoria-signature"])
    finally:
        await second.stop()


async def test_failed_change_writes_no_delivery(
    worker_server: object, receiver: tuple[Receiver, str]
) -> None:
    """The outbox row shares the change's transaction: a failed batch sends nothing."""
    target, url = receiver
    gql = GraphQLClient(worker_server.url)  # type: ignore[attr-defined]
    alice, _, field = await _setup(gql, url, ["memory.created"])
    failed = await alice.error(
        """mutation($f: ID!) { addMemories(fieldId: $f, inputs: [{content: "ok"}, {content: " "}]) { id } }""",
        {"f": field},
    )
    assert failed.code == "BAD_USER_INPUT"
    await alice.data(ADD, {"f": field, "c": "marker"})
    await eventually(lambda: _ok(target))
    assert [json.loads(r.body)["data"]["content"] for r in target.received] == ["marker"]


async def test_update_and_source_sync_events(
    worker_server: object, receiver: tuple[Receiver, str]
) -> None:
    target, url = receiver
    gql = GraphQLClient(worker_server.url)  # type: ignore[attr-defined]
    alice, secret, field = await _setup(gql, url, ["memory.updated", "source.synced"])
    memory = (await alice.data(ADD, {"f": field, "c": "The office opens at 8"}))["addMemory"]
    await alice.data(
        'mutation($id: ID!) { updateMemory(id: $id, input: {content: "The office opens at 9"}) { id } }',
        {"id": memory["id"]},
    )
    connect = 'mutation { connectSource(type: "files", config: {}) { source { id } } }'
    source = (await alice.data(connect))["connectSource"]["source"]["id"]
    await alice.data(
        """mutation($s: ID!) { uploadSourceFile(sourceId: $s, name: "a.txt",
             contentBase64: "UmVtZW1iZXIgdGhlIG1pbGsu") }""",
        {"s": source},
    )
    await alice.data("mutation($id: ID!) { syncSource(id: $id) { id } }", {"id": source})
    await eventually(lambda: _ok(target), accept=lambda n: n == 2)
    bodies = {json.loads(r.body)["type"]: json.loads(r.body) for r in target.ok()}
    assert set(bodies) == {"memory.updated", "source.synced"}  # memory.created was not asked for
    assert bodies["memory.updated"]["data"]["content"] == "The office opens at 9"
    assert all(verify(secret, r.body, r.headers["x-memoria-signature"]) for r in target.ok())
    assert source in json.dumps(bodies["source.synced"]["data"])
