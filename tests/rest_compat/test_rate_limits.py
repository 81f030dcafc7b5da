"""Per-user rate limits and tier quotas, with budgets from settings (not constants)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from conftest import RunningServer
from rest_helpers import Account, Rest, roomy
from sqlalchemy import func, select

from domain.entities import Tier
from domain.rate_policy import MB, TierQuota
from memoria.settings import Settings
from persistence.tables.conversations import conversations


@pytest.fixture
def rest_settings(settings: Settings) -> Settings:
    return roomy(
        settings,
        tier_limits={Tier.FREE: 5, Tier.STANDARD: 6, Tier.PREMIUM: 9, Tier.UNLIMITED: 1000},
        class_limits={"chat": 60, "memory_search": 3, "sync": 10},
        user_tiers={"bob": Tier.PREMIUM},
        quotas={Tier.FREE: TierQuota(conversations=2, messages=3, storage_bytes=MB)},
        default_tier=Tier.FREE,  # a server selling plans; self-hosting defaults to unlimited
        window_seconds=3600,  # counts span the set-up too: a window rolling over mid-test is rare
    )


def _headers(response: Any) -> tuple[int, int]:
    return int(response.headers["X-RateLimit-Limit"]), int(
        response.headers["X-RateLimit-Remaining"]
    )


async def test_senua_memory_search_class_budget(anon: Rest, alice: Account) -> None:
    api = anon.as_(alice.jwt)
    seen = []
    for _ in range(3):
        response = await api.get("/api/memory/search", params={"q": "x"})
        assert response.status_code == 200
        seen.append(_headers(response))
        assert int(response.headers["X-RateLimit-Reset"]) > time.time()
    assert seen == [(3, 2), (3, 1), (3, 0)]
    refused = await api.get("/api/memory/search", params={"q": "x"})
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 3600
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    # Other routes count against the tier bucket, not the search class; the account's set-up
    # (``createApiKey`` over GraphQL) already took one request of it: one budget, both edges.
    stats = await api.get("/api/memory/stats")
    assert stats.status_code == 200
    assert _headers(stats) == (5, 3)


async def test_memorykit_tiers_from_settings(anon: Rest, alice: Account, bob: Account) -> None:
    free = anon.as_(alice.jwt)
    for remaining in (3, 2, 1, 0):  # createApiKey (GraphQL, at set-up) took the first
        ok = await free.get("/v1/memory/statistics")
        assert _headers(ok) == (5, remaining)
    refused = await free.get("/v1/memory/statistics")
    assert refused.status_code == 429
    body = refused.json()
    assert body["error"] == "RATE_LIMITED"
    assert body["message"]
    assert "Retry-After" in refused.headers
    # Bob is premium by settings (MEMORIA_USER_TIERS), whatever his stored tier.
    premium = await anon.as_(bob.jwt).get("/v1/memory/statistics")
    assert _headers(premium) == (9, 7)


async def test_open_routes_count_per_address(anon: Rest) -> None:
    response = await anon.get("/v1/memory/health")
    assert response.status_code == 200
    assert response.headers["X-RateLimit-Limit"] == "10000"
    failed_auth = await anon.as_("not-a-token").get("/v1/memory/statistics")
    assert failed_auth.status_code == 401
    assert "X-RateLimit-Remaining" in failed_auth.headers


async def test_free_tier_conversation_quota_writes_nothing(
    rest_server: RunningServer, anon: Rest, alice: Account
) -> None:
    api = anon.as_(alice.api_key)
    for title in ("one", "two"):
        assert (await api.post("/v1/conversations", json={"title": title})).status_code == 201
    refused = await api.post("/v1/conversations", json={"title": "three"})
    assert refused.status_code == 403
    assert refused.json()["error"] == "FORBIDDEN"
    assert refused.json()["details"]["quota"] == "conversations"
    chat_api = await api.post("/chat/conversations", json={"user_id": alice.user_id, "title": "x"})
    assert chat_api.status_code == 403
    async with rest_server.runtime.db.engine.connect() as conn:
        count = (await conn.execute(select(func.count()).select_from(conversations))).scalar_one()
    assert count == 2


async def test_method_not_allowed_carries_rate_headers(anon: Rest, alice: Account) -> None:
    for token in (alice.jwt, None):
        response = await anon.as_(token).delete("/v1/memory/statistics")
        assert response.status_code == 405
        assert response.headers["Allow"] == "GET"
        assert response.json()["error"] == "METHOD_NOT_ALLOWED"
        assert int(response.headers["X-RateLimit-Reset"]) > time.time()
        assert "X-RateLimit-Limit" in response.headers
        assert "X-RateLimit-Remaining" in response.headers
    sentech = await anon.get("/fields/create-memory-field")
    assert sentech.status_code == 405
    assert sentech.json() == {"error": "Method GET not allowed"}
    assert "X-RateLimit-Limit" in sentech.headers
