"""Shared pieces of the client tests: a SQLite-only override of ``database_url``, a server
that may call loopback providers, the fake LLM, and an admin that adds it."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from conftest import RunningServer
from fake_llm import FakeLLM

from memoria.app import build_app
from memoria.settings import Settings
from memoria_client import AsyncMemoriaClient, ModelInput
from providers.embedders.hashing import HashingEmbedder

ADMIN_PASSWORD = "admin-password-123"  # the `settings` fixture's admin
MODEL = "fake-gpt"


@pytest.fixture(name="database_url")
def sqlite_only(tmp_path: Path) -> str:
    """Overrides the two-backend ``database_url`` where only the client is under test (its
    transport and errors do not depend on the backend): SQLite alone keeps the suite fast."""
    return f"sqlite+aiosqlite:///{tmp_path / 'memoria.db'}"


@pytest.fixture(name="llm_server")
async def llm_server_fixture(settings: Settings) -> AsyncIterator[RunningServer]:
    """The real app, allowed to reach the fake LLM on 127.0.0.1."""
    loopback = dataclasses.replace(settings.integrations, allow_private_urls=True)
    app = build_app(settings.with_(integrations=loopback), embedder=HashingEmbedder())
    running = await RunningServer(app).start()
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture(name="fake_llm")
async def fake_llm_fixture() -> AsyncIterator[tuple[FakeLLM, str]]:
    llm = FakeLLM()
    server = await RunningServer(llm.app()).start()
    try:
        yield llm, server.url
    finally:
        await server.stop()


async def add_fake_provider(server_url: str, llm_url: str) -> None:
    """The admin adds the fake OpenAI-compatible provider with its one model."""
    async with AsyncMemoriaClient(server_url) as admin:
        await admin.login("admin", ADMIN_PASSWORD)
        provider = await admin.create_provider(
            "fake",
            "openai",
            api_endpoint=f"{llm_url}/v1",
            api_key="sk-admin-key-123",
            models=[ModelInput(name=MODEL, context_window=4096)],
        )
        assert [m.name for m in provider.models] == [MODEL]
