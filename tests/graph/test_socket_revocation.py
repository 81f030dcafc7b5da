"""A WebSocket authenticates once, at ``connection_init``; every subscription started on it
later checks the credential again, so a revoked API key stops streaming at its next one."""

from __future__ import annotations

import json
from typing import Any

import httpx
from chat_helpers import CHAT, TransportWs, ws_url
from conftest import RunningServer
from sqlalchemy import func, select
from websockets.asyncio.client import connect

from persistence.tables.conversations import messages

REGISTER = """mutation($i: RegisterInput!) { register(input: $i) { accessToken } }"""
NEW_KEY = 'mutation { createApiKey(name: "socket") { key apiKey { id } } }'
REVOKE = "mutation($id: ID!) { revokeApiKey(id: $id) }"


async def _graphql(http: httpx.AsyncClient, query: str, variables: Any, token: str) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = (
        await http.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    ).json()
    assert not body.get("errors"), body
    return body["data"]


async def _key(http: httpx.AsyncClient, username: str) -> tuple[str, str, str]:
    """(JWT, API key, key id) of a new user."""
    variables = {
        "i": {
            "username": username,
            "email": f"{username}@example.com",
            "password": "correct-horse-1",
        }
    }
    jwt = (await _graphql(http, REGISTER, variables, ""))["register"]["accessToken"]
    created = (await _graphql(http, NEW_KEY, {}, jwt))["createApiKey"]
    return jwt, created["key"], created["apiKey"]["id"]


async def _stored_messages(server: RunningServer) -> int:
    async with server.runtime.db.engine.connect() as conn:
        total = await conn.execute(select(func.count()).select_from(messages))
        return int(total.scalar_one())


async def test_revoked_key_gets_an_error_on_its_next_subscribe(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        jwt, key, key_id = await _key(http, "alice")
        ws = await TransportWs.open(server, {"Authorization": f"Bearer {key}"})
        try:
            await ws.subscribe(CHAT, {"i": {"message": "hello"}}, op_id="1")
            kinds = []
            while payload := await ws.next():
                assert not payload.get("errors"), payload
                kinds.append(payload["data"]["chat"]["__typename"])
            assert kinds[-1] == "ChatCompleted"
            stored = await _stored_messages(server)
            assert await _graphql(http, REVOKE, {"id": key_id}, jwt) == {"revokeApiKey": True}
            await ws.subscribe(CHAT, {"i": {"message": "still there?"}}, op_id="2")
            refused = await ws.next()
            assert refused["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
            assert "revoked" in refused["errors"][0]["message"]
            assert await ws.next() == {}  # the operation is complete; nothing streamed
            assert await _stored_messages(server) == stored  # and the turn wrote nothing
        finally:
            await ws.close()


async def test_legacy_protocol_checks_the_key_at_each_start(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        jwt, key, key_id = await _key(http, "bob")
        async with connect(ws_url(server), subprotocols=["graphql-ws"]) as ws:  # type: ignore[list-item]
            await ws.send(json.dumps({"type": "connection_init", "payload": {"authToken": key}}))
            assert json.loads(await ws.recv())["type"] == "connection_ack"

            async def start(op_id: str, message: str) -> list[dict[str, Any]]:
                payload = {"query": CHAT, "variables": {"i": {"message": message}}}
                await ws.send(json.dumps({"id": op_id, "type": "start", "payload": payload}))
                frames = []
                while (frame := json.loads(await ws.recv()))["type"] != "complete":
                    if frame["type"] != "ka":
                        frames.append(frame)
                return frames

            first = await start("1", "hello")
            assert first[-1]["payload"]["data"]["chat"]["__typename"] == "ChatCompleted"
            await _graphql(http, REVOKE, {"id": key_id}, jwt)
            second = await start("2", "again")
            assert len(second) == 1
            errors = second[0]["payload"]["errors"]
            assert errors[0]["extensions"]["code"] == "UNAUTHENTICATED"
