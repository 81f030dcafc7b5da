"""Two runtimes on one real PostgreSQL database, as two processes of a deployment would have
them, each listening for the other's notifications (for the cross-process tests here)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from conftest import PgServer

from memoria.bootstrap import migrate
from memoria.runtime import Runtime, build_runtime
from memoria.settings import Settings
from persistence.event_fanout import PgEventFanout
from providers.embedders.hashing import HashingEmbedder


def pg_settings(pg_server: PgServer, tmp_path: Path, **changes: Any) -> Settings:
    """Test settings on a fresh database of ``pg_server``."""
    return Settings(
        data_dir=tmp_path / "data",
        database_url=pg_server.url(pg_server.create_database()),
        environment="test",
        embedder="hashing",
        fast_password_hashing=True,
        **changes,
    ).validated()


def fanout(runtime: Runtime) -> PgEventFanout:
    assert runtime.fanout is not None
    return runtime.fanout


@contextlib.asynccontextmanager
async def listening(*runtimes: Runtime) -> AsyncIterator[None]:
    """The runtimes' listeners started, and heard from, until the block ends; then closed
    with their databases."""
    try:
        for runtime in runtimes:
            fanout(runtime).start()
            await asyncio.wait_for(fanout(runtime).listening.wait(), 5)
        yield
    finally:
        for runtime in runtimes:
            await fanout(runtime).aclose()
            await runtime.db.dispose()


async def migrated_pair(settings: Settings, embedder: HashingEmbedder) -> tuple[Runtime, Runtime]:
    """Two runtimes on ``settings``' database, migrated once."""
    a = build_runtime(settings, embedder=embedder)
    b = build_runtime(settings, embedder=embedder)
    await asyncio.wait_for(migrate(a.db), 60)
    return a, b
