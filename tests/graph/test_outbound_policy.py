"""The outbound policy on every surface that saves a destination (createProvider, REST
``/chat/llm-providers``, createWebhook, connectSource email) and at connect time: a
destination saved while the operator allowed it is refused once the policy no longer does
(the name is checked on every connection, not only when it was saved)."""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx
from chat_helpers import SEND, add_provider, admin, fake_llm_fixture  # noqa: F401  # fixture
from conftest import GraphQLClient, RunningServer
from fake_llm import FakeLLM
from rest_helpers import admin_token
from worker_support import FAST, Receiver, eventually, start_app

from memoria.settings import Settings

CREATE_PROVIDER = """mutation($e: String!) { createProvider(input: {name: "p", kind: "openai",
  apiEndpoint: $e, models: [{name: "m"}]}) { id } }"""
CREATE_WEBHOOK = """mutation($u: String!) { createWebhook(url: $u, events: ["memory.created"]) {
  webhook { id } } }"""
CONNECT = """mutation($c: JSON) { connectSource(type: "email", config: $c) { source { id } } }"""
DELIVERIES = """{ webhooks { deliveries { status attemptLog { error statusCode } } } }"""
FIELD = 'mutation { createMemoryField(name: "notes") { id } }'
ADD = """mutation($f: ID!) { addMemory(fieldId: $f, input: {content: "a note"}) { id } }"""

REFUSED = {
    "169.254.169.254": "169.254.169.254",
    "100.100.100.200": "100.100.100.200",
    "2130706433": "127.0.0.1",
    "0x7f000001": "127.0.0.1",
    "[::1]": "::1",
    "[2002:a9fe:a9fe::]": "2002:a9fe:a9fe::",
    "10.0.0.1": "10.0.0.1",
    "localhost": "127.0.0.1",
}


def _allowing(settings: Settings, *hosts: str) -> Settings:
    integrations = dataclasses.replace(FAST, allow_private_urls=False, allowed_private_hosts=hosts)
    return settings.with_(integrations=integrations)


async def test_create_provider_refuses_non_public_endpoints(gql: GraphQLClient) -> None:
    root = await admin(gql)
    for host, address in REFUSED.items():
        refused = await root.error(CREATE_PROVIDER, {"e": f"http://{host}:8080/v1"})
        assert refused.code == "BAD_USER_INPUT", host
        message = refused.errors[0]["message"]
        assert f"resolves to a non-public address {address}" in message, message
    assert len((await root.data("{ providers { id } }"))["providers"]) == 1  # built-in only


async def test_rest_provider_endpoint_refused_with_400(server: RunningServer) -> None:
    token = await admin_token(server.url)
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.post(
            "/chat/llm-providers",
            json={"name": "meta", "api_endpoint": "http://169.254.169.254/v1"},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 400
    assert "non-public address 169.254.169.254" in response.text


async def test_create_webhook_refuses_non_public_receivers(gql: GraphQLClient) -> None:
    alice = await gql.register("alice")
    for host, address in REFUSED.items():
        refused = await alice.error(CREATE_WEBHOOK, {"u": f"http://{host}/hook"})
        assert refused.code == "BAD_USER_INPUT", host
        assert f"non-public address {address}" in refused.errors[0]["message"]


async def test_connect_email_refuses_non_public_mail_hosts(gql: GraphQLClient) -> None:
    alice = await gql.register("alice")
    for host, address in REFUSED.items():
        config = {"host": host.strip("[]"), "username": "a", "password": "p", "port": 993}
        refused = await alice.error(CONNECT, {"c": config})
        assert refused.code == "BAD_USER_INPUT", host
        assert f"non-public address {address}" in refused.errors[0]["message"]
    assert (await alice.data("{ sources { id } }"))["sources"] == []


async def test_allow_listed_local_llm_chats_then_is_refused_once_unlisted(
    settings: Settings, fake_llm: tuple[FakeLLM, str]
) -> None:
    _llm, url = fake_llm
    local = url.replace("127.0.0.1", "localhost")
    first = await start_app(_allowing(settings, "localhost"))
    try:
        client = GraphQLClient(first.url)
        await add_provider(client, local)
        alice = await client.register("alice")
        reply = (await alice.data(SEND, {"i": {"message": "hello"}}))["sendMessage"]
        assert reply["message"]["content"] == "Hello there!"
        token = alice.token
    finally:
        await first.stop()

    strict = await start_app(_allowing(settings))
    try:
        alice = GraphQLClient(strict.url, token)
        failed = await alice.error(SEND, {"i": {"message": "hello again"}})
        assert failed.code == "PROVIDER_UNAVAILABLE"
        assert "localhost resolves to a non-public address" in failed.errors[0]["message"]
    finally:
        await strict.stop()


async def test_webhook_delivery_refused_at_connect_time(
    settings: Settings, receiver: tuple[Receiver, str]
) -> None:
    target, url = receiver
    first = await start_app(_allowing(settings, "localhost"))
    try:
        alice = await GraphQLClient(first.url).register("alice")
        await alice.data(CREATE_WEBHOOK, {"u": url.replace("127.0.0.1", "localhost")})
        token = alice.token
    finally:
        await first.stop()

    strict = await start_app(_allowing(settings))
    try:
        alice = GraphQLClient(strict.url, token)
        field = (await alice.data(FIELD))["createMemoryField"]["id"]
        await alice.data(ADD, {"f": field})

        def attempted(data: dict[str, Any]) -> bool:
            deliveries = data["webhooks"][0]["deliveries"]
            return bool(deliveries and deliveries[0]["attemptLog"])

        done = await eventually(lambda: alice.data(DELIVERIES), accept=attempted)
        attempt = done["webhooks"][0]["deliveries"][0]["attemptLog"][0]
        assert attempt["statusCode"] is None
        assert attempt["error"].startswith("refused: ")
        assert "non-public address" in attempt["error"]
    finally:
        await strict.stop()
    assert target.received == []
