"""MemoryKit's ``/v1/patterns`` and ``/v1/webhooks`` routes, in MemoryKit's dialect."""

from __future__ import annotations

import json
from typing import Any

import httpx
from conftest import GraphQLClient, RunningServer
from worker_support import Receiver, eventually

from providers.webhooks.signing import verify


async def _client(server: RunningServer, username: str) -> httpx.AsyncClient:
    token = (await GraphQLClient(server.url).register(username)).token
    return httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


async def test_memorykit_patterns_and_webhooks(
    worker_server: RunningServer, receiver: tuple[Receiver, str]
) -> None:
    target, url = receiver
    async with await _client(worker_server, "alice") as http:
        bad = await http.post("/v1/webhooks", json={"url": url, "events": ["nope"]})
        assert bad.status_code == 400
        assert bad.json()["error"] == "BAD_REQUEST"
        created = await http.post("/v1/webhooks", json={"url": url, "events": ["message.created"]})
        assert created.status_code == 201
        hook = created.json()
        assert set(hook) >= {"id", "url", "events", "secret"}
        listed = (await http.get("/v1/webhooks")).json()
        assert [h["id"] for h in listed] == [hook["id"]]
        assert "secret" not in listed[0]

        conv = (await http.post("/v1/conversations", json={"title": "prefs"})).json()["id"]
        for text in ("Always answer in Portuguese.", "I prefer tabs over spaces."):
            sent = await http.post(
                f"/v1/conversations/{conv}/messages", json={"role": "user", "content": text}
            )
            assert sent.status_code == 201

        async def patterns() -> dict[str, Any]:
            body: dict[str, Any] = (await http.get("/v1/patterns?page=1&pageSize=1")).json()
            return body

        page = await eventually(patterns, accept=lambda p: p["totalCount"] == 2)
        assert (page["page"], page["pageSize"], len(page["items"])) == (1, 1, 1)
        first = page["items"][0]
        assert set(first) >= {"id", "name", "description", "triggers", "usageCount", "lastUsed"}
        assert first["triggers"][0]["type"] in ("Keyword", "Regex", "Semantic")
        assert (await http.delete(f"/v1/patterns/{first['id']}")).status_code == 204
        gone = await http.delete(f"/v1/patterns/{first['id']}")
        assert gone.status_code == 404
        assert gone.json()["error"] == "NOT_FOUND"
        stats = (await http.get("/v1/memory/statistics")).json()
        assert (stats["messageCount"], stats["patternCount"]) == (2, 1)

        received = await eventually(lambda: _bodies(target), accept=lambda b: len(b) == 2)
        for delivery in target.ok():
            assert verify(hook["secret"], delivery.body, delivery.headers["x-memoria-signature"])
        assert {json.loads(b)["data"]["content"] for b in received} == {
            "Always answer in Portuguese.",
            "I prefer tabs over spaces.",
        }


async def _bodies(target: Receiver) -> list[bytes]:
    return [r.body for r in target.ok()]
