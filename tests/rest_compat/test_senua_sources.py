"""Senua's ``/api/sources`` routes (connect, upload, 202 sync, OAuth callback) and the
statistics routes fed by them, in Senua's dialect."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from conftest import GraphQLClient, RunningServer
from fake_cloud import FakeCloud
from worker_support import eventually


async def _client(server: RunningServer, username: str) -> httpx.AsyncClient:
    token = (await GraphQLClient(server.url).register(username)).token
    return httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


async def test_senua_sources_upload_sync_and_stats(worker_server: RunningServer) -> None:
    async with await _client(worker_server, "alice") as http:
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
