"""The WebSocket clients of ``bench/chat_stream.py``: accounts and memories set up through
GraphQL, then one ``chat`` subscription per turn over graphql-transport-ws, timing every
token it receives."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
from websockets.asyncio.client import connect

LOGIN = """mutation($p: String!) {
  login(input: {usernameOrEmail: "admin", password: $p}) { accessToken } }"""


ADD_MEMORIES = """mutation($f: ID!, $i: [MemoryInput!]!) {
  addMemories(fieldId: $f, inputs: $i) { id } }"""


REGISTER = """mutation($u: String!, $e: String!, $p: String!) {
  register(input: {username: $u, email: $e, password: $p}) { accessToken } }"""


CHAT = """subscription($i: ChatInput!) { chat(input: $i) {
  __typename ... on ChatDelta { text } ... on ChatFailed { code reason: error } } }"""


async def gql(
    http: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str | None = None
) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = (
        await http.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    ).json()
    if body.get("errors"):
        raise RuntimeError(body["errors"])
    return body["data"]


async def setup(base: str, provider_port: int, users: int) -> list[str]:
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        login = await gql(
            http,
            LOGIN,
            {"p": "bench-admin-password"},
        )
        root = login["login"]["accessToken"]
        await gql(
            http,
            """mutation($e: String!) { createProvider(input: {name: "fake", kind: "openai",
               apiEndpoint: $e, models: [{name: "fake-50tps", contextWindow: 8192}]}) { id } }""",
            {"e": f"http://127.0.0.1:{provider_port}/v1"},
            root,
        )
        tokens = []
        for u in range(users):
            reg = await gql(
                http,
                REGISTER,
                {"u": f"user{u}", "e": f"user{u}@example.com", "p": "bench-password-1"},
            )
            token = reg["register"]["accessToken"]
            field = (
                await gql(http, 'mutation { createMemoryField(name: "notes") { id } }', {}, token)
            )["createMemoryField"]["id"]
            inputs = [
                {"content": f"User {u} fact {k}: likes topic {k * 7 % 13} on day {k}"}
                for k in range(20)
            ]
            await gql(
                http,
                ADD_MEMORIES,
                {"f": field, "i": inputs},
                token,
            )
            tokens.append(token)
        return tokens


async def open_socket(url: str, token: str, *, compression: str | None = "deflate") -> Any:
    """A graphql-transport-ws connection, initialised (connection_ack received).
    ``compression="deflate"`` offers permessage-deflate, as browsers and websockets do by
    default; the server decides whether to use it."""
    ws = await connect(
        url,
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        max_queue=None,
        compression=compression,
    )
    await ws.send(
        json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
    )
    json.loads(await ws.recv())
    return ws


ACTIVE = {"now": 0, "peak": 0}  # streams between their first and last token


async def one_subscription(
    url: str,
    token: str,
    expected: int,
    *,
    memory: bool = True,
    ws: Any = None,
    compression: str | None = "deflate",
) -> dict[str, Any]:
    """One ``chat`` turn: on ``ws`` if given (already connected), else on a new socket."""
    result: dict[str, Any] = {
        "ttft": None,
        "delays": [],
        "indices": [],
        "sent": [],
        "failed": None,
    }
    if ws is None:
        ws = await open_socket(url, token, compression=compression)
    async with ws:
        variables = {
            "i": {"message": "What topics do I like, and on which day?", "includeMemory": memory}
        }
        subscribed = time.monotonic()
        await ws.send(
            json.dumps(
                {"id": "1", "type": "subscribe", "payload": {"query": CHAT, "variables": variables}}
            )
        )
        async for raw in ws:
            received = time.monotonic()
            message = json.loads(raw)
            if message["type"] == "complete":
                break
            if message["type"] != "next":
                result["failed"] = str(message)[:200]
                break
            if message["payload"].get("errors"):
                result["failed"] = str(message["payload"]["errors"])[:300]
                break
            event = message["payload"]["data"]["chat"]
            if event["__typename"] == "ChatFailed":
                result["failed"] = event["reason"]
            if event["__typename"] != "ChatDelta":
                continue
            for piece in event["text"].split("|"):
                if not piece:
                    continue
                index, sent, arrived = piece.split(":")
                if int(index) == 0:
                    result["ttft"] = (received - subscribed) - (float(sent) - float(arrived))
                    ACTIVE["now"] += 1
                    ACTIVE["peak"] = max(ACTIVE["peak"], ACTIVE["now"])
                if int(index) == expected - 1:
                    ACTIVE["now"] -= 1
                result["indices"].append(int(index))
                result["delays"].append(received - float(sent))
                result["sent"].append(float(sent))
    return result
