"""REST test helpers: a small client, user set-up through GraphQL, and a settings tweak that
keeps contract tests clear of the (deliberately low) default free-tier rate limit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest

from domain.entities import Tier
from domain.rate_policy import RateLimitPolicy
from memoria.app import build_app
from memoria.settings import Settings
from providers.embedders.hashing import HashingEmbedder

ADMIN_PASSWORD = "admin-password-123"


def roomy(settings: Settings, **policy: Any) -> Settings:
    """Settings whose tier/class budgets are large unless a test sets them."""
    base = RateLimitPolicy(
        tier_limits={tier: 10_000 for tier in Tier},
        class_limits={"chat": 10_000, "memory_search": 10_000, "sync": 10_000},
        anonymous_limit=10_000,
    )
    return settings.with_(rate_limits=replace(base, **policy))


def loopback(settings: Settings) -> Settings:
    """Settings whose outbound policy lets 127.0.0.1 through (explicitly, as an operator
    would list a local Ollama), where the fake LLM and embedding servers listen."""
    allowed = (*settings.integrations.allowed_private_hosts, "127.0.0.1")
    return settings.with_(
        integrations=replace(settings.integrations, allowed_private_hosts=allowed)
    )


class Rest:
    """httpx with a bearer token; every call opens a fresh connection like a real client."""

    def __init__(self, base_url: str, token: str | None = None) -> None:
        self.base_url = base_url
        self.token = token

    def as_(self, token: str | None) -> Rest:
        return Rest(self.base_url, token)

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if self.token and "Authorization" not in headers:
            headers["Authorization"] = f"Bearer {self.token}"
        async with httpx.AsyncClient(base_url=self.base_url, timeout=30) as http:
            return await http.request(method, path, headers=headers, **kwargs)

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("DELETE", path, **kwargs)


@dataclass
class Account:
    user_id: str
    username: str
    jwt: str
    api_key: str


async def graphql(base_url: str, query: str, variables: dict[str, Any], token: str | None = None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        response = await http.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers
        )
    body = response.json()
    assert not body.get("errors"), body
    return body["data"]


async def new_account(base_url: str, username: str, password: str = "correct-horse-1") -> Account:
    data = await graphql(
        base_url,
        "mutation($i: RegisterInput!) { register(input: $i) { accessToken user { id } } }",
        {"i": {"username": username, "email": f"{username}@example.com", "password": password}},
    )
    jwt = data["register"]["accessToken"]
    key = await graphql(base_url, 'mutation { createApiKey(name: "rest") { key } }', {}, token=jwt)
    return Account(
        user_id=data["register"]["user"]["id"],
        username=username,
        jwt=jwt,
        api_key=key["createApiKey"]["key"],
    )


async def admin_token(base_url: str) -> str:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        response = await http.post(
            "/api/auth/login", json={"username_or_email": "admin", "password": ADMIN_PASSWORD}
        )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


# Fixtures: test modules import them by name (pytest finds fixtures in a module's namespace).


@pytest.fixture
def rest_settings(settings: Settings) -> Settings:
    return roomy(loopback(settings))


@pytest.fixture
async def rest_server(rest_settings: Settings) -> AsyncIterator[Any]:
    from conftest import RunningServer

    running = await RunningServer(build_app(rest_settings, embedder=HashingEmbedder())).start()
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def alice(rest_server: Any) -> Account:
    return await new_account(rest_server.url, "alice")


@pytest.fixture
async def bob(rest_server: Any) -> Account:
    return await new_account(rest_server.url, "bob")


@pytest.fixture
def anon(rest_server: Any) -> Rest:
    return Rest(rest_server.url)
