"""REST routes of patterns, webhooks and data sources, in their documents' dialects:
MemoryKit ``/v1/patterns`` and ``/v1/webhooks``; Senua ``/api/sources`` (connect, upload,
202 sync, OAuth callback) and the statistics routes fed by them."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from conftest import GraphQLClient, RunningServer
from ext_support import Receiver, eventually
from fake_services import FakeCloud

from providers.webhooks.signing import verify


async def _client(server: RunningServer, username: str) -> httpx.AsyncClient:
    token = (await GraphQLClient(server.url).register(username)).token
    return httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


async def test_memorykit_patterns_and_webhooks(
    ext_server: RunningServer, receiver: tuple[Receiver, str]
) -> None:
    target, url = receiver
    async with await _client(ext_server, "alice") as http:
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


async def test_senua_sources_upload_sync_and_stats(ext_server: RunningServer) -> None:
    async with await _client(ext_server, "alice") as http:
        assert (await http.get("/api/sources")).json() == {"sources": []}
        unknown = await http.post("/api/sources", json={"type": "fax"})
        assert unknown.status_code == 400
        assert unknown.json()["error"]["code"] == "bad_request"
        created = await http.post("/api/sources", json={"type": "files"})
        assert created.status_code == 201
        source = created.json()
        assert source["status"] == "connected"
        assert "oauth_url" not in source
        upload = await http.post(
            f"/api/sources/{source['id']}/files",
            files={
                "file": ("todo.md", b"# Todo\n\nRenew the passport before May.", "text/markdown")
            },
        )
        assert upload.status_code == 201, upload.text
        synced = await http.post(f"/api/sources/{source['id']}/sync")
        assert synced.status_code == 202
        assert synced.json()["status"] == "syncing"
        assert synced.json()["id"] == source["id"]
        assert "X-RateLimit-Limit" in synced.headers

        async def listing() -> dict[str, Any]:
            body: dict[str, Any] = (await http.get("/api/sources")).json()["sources"][0]
            return body

        done = await eventually(listing, accept=lambda s: s["status"] == "idle")
        assert done["item_count"] == 1
        assert done["last_sync"]
        stats = (await http.get("/api/memory/stats")).json()
        assert stats["by_source"] == {"files": 1}
        assert stats["total_memories"] == 1
        assert stats["last_sync"] == done["last_sync"]

        missing = await http.post("/api/sources/nope/sync")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"


async def test_oauth_callback_route(cloud_app: RunningServer, cloud: tuple[FakeCloud, str]) -> None:
    async with await _client(cloud_app, "alice") as http:
        created = await http.post(
            "/api/sources", json={"type": "notion", "config": {"query": "roadmap"}}
        )
        assert created.status_code == 201
        body = created.json()
        assert body["status"] == "pending_auth"
        state = parse_qs(urlsplit(body["oauth_url"]).query)["state"][0]
    async with httpx.AsyncClient(base_url=cloud_app.url) as anonymous:  # a browser redirect
        bad = await anonymous.get(
            "/api/sources/oauth/callback", params={"code": "good-code", "state": "x.y"}
        )
        assert bad.status_code == 400
        ok = await anonymous.get(
            "/api/sources/oauth/callback", params={"code": "good-code", "state": state}
        )
        assert ok.status_code == 200, ok.text
        assert ok.json()["status"] == "connected"
        assert ok.json()["id"] == body["id"]
