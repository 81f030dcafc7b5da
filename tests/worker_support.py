"""Helpers for tests of background work (patterns, webhooks, sources): a server with fast
workers, a webhook receiver on loopback, and polling until background work is done."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
from conftest import RunningServer
from fake_cloud import FakeCloud
from rest_helpers import roomy
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from memoria.app import build_app
from memoria.integration_settings import IntegrationSettings, OAuthProviderSettings
from memoria.settings import Settings
from providers.embedders.hashing import HashingEmbedder

T = TypeVar("T")

FAST = IntegrationSettings(
    allow_private_urls=True,  # receivers and fake services live on 127.0.0.1
    webhook_retry_base_seconds=0.05,
    webhook_retry_cap_seconds=0.2,
    webhook_timeout_seconds=5.0,
    worker_poll_seconds=0.05,
    connector_max_retry_wait_seconds=1.0,
)


def fast_settings(settings: Settings, **integrations: Any) -> Settings:
    """Fast workers, loopback allowed, and REST budgets out of the way of the tests."""
    return roomy(settings).with_(integrations=dataclasses.replace(FAST, **integrations))


@pytest.fixture
async def worker_server(settings: Settings) -> AsyncIterator[RunningServer]:
    app = build_app(fast_settings(settings), embedder=HashingEmbedder())
    running = await RunningServer(app).start()
    try:
        yield running
    finally:
        await running.stop()


async def start_app(settings: Settings) -> RunningServer:
    return await RunningServer(build_app(settings, embedder=HashingEmbedder())).start()


async def eventually(
    probe: Callable[[], Awaitable[T]], *, accept: Callable[[T], bool] = bool, within: float = 20.0
) -> T:
    """Poll ``probe`` until ``accept`` holds (background work has no completion signal)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        value = await probe()
        if accept(value):
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {within}s; last value: {value!r}")
        await asyncio.sleep(0.05)


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    status: int


@dataclass
class Receiver:
    """A webhook receiver: answers with ``statuses`` in turn (then 200), records everything,
    and can hold requests open until ``release`` is set (a slow receiver)."""

    statuses: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    hold: bool = False
    release: asyncio.Event = field(default_factory=asyncio.Event)
    waiting: int = 0

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            body = await request.body()
            if self.hold:
                self.waiting += 1
                await self.release.wait()
            status = self.statuses.pop(0) if self.statuses else 200
            self.received.append(Received(dict(request.headers), body, status))
            return JSONResponse({"ok": status < 300}, status_code=status)

        return Starlette(routes=[Route("/hook", hook, methods=["POST"])])

    def ok(self) -> list[Received]:
        return [r for r in self.received if r.status < 300]


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    target = Receiver()
    running = await RunningServer(target.app()).start()
    try:
        yield target, f"{running.url}/hook"
    finally:
        target.release.set()
        await running.stop()


@pytest.fixture
async def cloud() -> AsyncIterator[tuple[FakeCloud, str]]:
    fake = FakeCloud()
    running = await RunningServer(fake.app()).start()
    try:
        yield fake, running.url
    finally:
        await running.stop()


@pytest.fixture
async def cloud_app(
    settings: Settings, cloud: tuple[FakeCloud, str]
) -> AsyncIterator[RunningServer]:
    _, url = cloud
    oauth = OAuthProviderSettings(
        client_id="cid",
        client_secret="csecret",
        authorize_url=f"{url}/oauth/authorize",
        token_url=f"{url}/oauth/token",
        scopes="repo",
    )
    integrations = dataclasses.replace(
        FAST,
        api_urls={"github": f"{url}/github", "slack": f"{url}/slack", "notion": f"{url}/notion"},
        oauth={"github": oauth, "slack": oauth, "notion": oauth},
    )
    running = await start_app(roomy(settings).with_(integrations=integrations))
    try:
        yield running
    finally:
        await running.stop()
