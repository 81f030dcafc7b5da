"""Shared pieces of the chat tests: a server with short LLM timeouts, a fake provider, and
small real WebSocket clients for graphql-transport-ws and legacy graphql-ws."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from conftest import GraphQLClient, RunningServer
from fake_llm import FakeLLM
from rest_helpers import loopback
from websockets.asyncio.client import ClientConnection, connect

from memoria.app import build_app
from memoria.settings import Settings
from providers.embedders.hashing import HashingEmbedder

CHAT = """subscription($i: ChatInput!) { chat(input: $i) {
  __typename
  ... on ChatStarted { conversationId userMessageId messageId model }
  ... on ChatDelta { text index }
  ... on ChatCompleted {
    message { id conversationId role content incomplete model promptTokens completionTokens }
    usage { promptTokens completionTokens totalTokens costMicros }
    memoryUsed { shortTerm longTerm sources memoryIds }
    finishReason
  }
  ... on ChatFailed { code reason: error partial { id content incomplete } }
} }"""

SEND = """mutation($i: ChatInput!) { sendMessage(input: $i) {
  conversationId finishReason
  message { id role content model incomplete promptTokens completionTokens }
  usage { promptTokens completionTokens costMicros }
  memoryUsed { shortTerm longTerm sources memoryIds }
} }"""

CREATE_PROVIDER = """mutation($i: ProviderInput!) { createProvider(input: $i) {
  id name kind apiEndpoint hasApiKey models { id name contextWindow inputPricePerM outputPricePerM }
} }"""

LOGIN = """mutation($u: String!, $p: String!) { login(input: {usernameOrEmail: $u, password: $p}) { accessToken } }"""


@pytest.fixture(name="fake_llm")
async def fake_llm_fixture() -> AsyncIterator[tuple[FakeLLM, str]]:
    llm = FakeLLM()
    server = await RunningServer(llm.app()).start()
    try:
        yield llm, server.url
    finally:
        await server.stop()


@pytest.fixture(name="chat_server")
async def chat_server_fixture(settings: Settings) -> AsyncIterator[RunningServer]:
    tuned = loopback(settings).with_(llm_read_timeout_seconds=1.0, llm_retry_pause_seconds=0.05)
    running = await RunningServer(build_app(tuned, embedder=HashingEmbedder())).start()
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture(name="client")
def client_fixture(chat_server: RunningServer) -> GraphQLClient:
    return GraphQLClient(chat_server.url)


async def admin(client: GraphQLClient) -> GraphQLClient:
    data = await client.data(LOGIN, {"u": "admin", "p": "admin-password-123"})
    return client.as_(data["login"]["accessToken"])


async def add_provider(
    client: GraphQLClient,
    url: str,
    *,
    name: str = "fake",
    kind: str = "openai",
    model: str = "fake-gpt",
    input_price: float = 0.0,
    output_price: float = 0.0,
    api_key: str | None = "sk-admin-key-123",
) -> dict[str, Any]:
    root = await admin(client)
    endpoint = f"{url}/v1" if kind == "openai" else url
    model_input = {
        "name": model,
        "contextWindow": 4096,
        "inputPricePerM": input_price,
        "outputPricePerM": output_price,
    }
    data = await root.data(
        CREATE_PROVIDER,
        {
            "i": {
                "name": name,
                "kind": kind,
                "apiEndpoint": endpoint,
                "apiKey": api_key,
                "models": [model_input],
            }
        },
    )
    provider: dict[str, Any] = data["createProvider"]
    return provider


def ws_url(server: RunningServer) -> str:
    return server.url.replace("http://", "ws://") + "/graphql"


class TransportWs:
    """graphql-transport-ws client over a real socket."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket

    @classmethod
    async def open(cls, server: RunningServer, payload: dict[str, Any]) -> TransportWs:
        socket = await connect(ws_url(server), subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
        await socket.send(json.dumps({"type": "connection_init", "payload": payload}))
        ack = json.loads(await socket.recv())
        assert ack["type"] == "connection_ack", ack
        return cls(socket)

    async def subscribe(self, query: str, variables: dict[str, Any], op_id: str = "1") -> None:
        message = {
            "id": op_id,
            "type": "subscribe",
            "payload": {"query": query, "variables": variables},
        }
        await self.socket.send(json.dumps(message))

    async def next(self) -> dict[str, Any]:
        """The next ``next`` payload; ``{}`` on ``complete``; errors raise."""
        while True:
            message = json.loads(await self.socket.recv())
            if message["type"] == "next":
                payload: dict[str, Any] = message["payload"]
                return payload
            if message["type"] == "complete":
                return {}
            if message["type"] == "error":
                raise AssertionError(message["payload"])

    async def close(self) -> None:
        await self.socket.close()


async def chat_over_ws(
    server: RunningServer, token: str, variables: dict[str, Any]
) -> list[dict[str, Any]]:
    ws = await TransportWs.open(server, {"Authorization": f"Bearer {token}"})
    try:
        await ws.subscribe(CHAT, variables)
        events: list[dict[str, Any]] = []
        while payload := await ws.next():
            assert not payload.get("errors"), payload
            events.append(payload["data"]["chat"])
        return events
    finally:
        await ws.close()
