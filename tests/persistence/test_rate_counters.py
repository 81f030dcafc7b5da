"""Rate-limit counters: in-process for SQLite; shared through PostgreSQL across processes
(two engines stand for two server processes)."""

from __future__ import annotations

from conftest import PgServer
from sqlalchemy.ext.asyncio import create_async_engine

from memoria.bootstrap import migrate
from persistence.database import Database
from persistence.rate_limits import MemoryRateLimitCounter, SqlRateLimitCounter


async def test_memory_counter_counts_per_key_and_window() -> None:
    counter = MemoryRateLimitCounter()
    assert [await counter.hit("a", window_start=60, window_seconds=60) for _ in range(3)] == [
        1,
        2,
        3,
    ]
    assert await counter.hit("b", window_start=60, window_seconds=60) == 1
    assert await counter.hit("a", window_start=120, window_seconds=60) == 1  # new window


async def test_postgres_counter_is_shared_between_processes(pg_server: PgServer) -> None:
    url = pg_server.url(pg_server.create_database())
    db = Database(url)
    await migrate(db)
    other = create_async_engine(url)
    try:
        first, second = SqlRateLimitCounter(db.engine), SqlRateLimitCounter(other)
        counts = [
            await first.hit("user:1:tier", window_start=600, window_seconds=60),
            await second.hit("user:1:tier", window_start=600, window_seconds=60),
            await first.hit("user:1:tier", window_start=600, window_seconds=60),
            await second.hit("user:2:tier", window_start=600, window_seconds=60),
        ]
        assert counts == [1, 2, 3, 1]
    finally:
        await other.dispose()
        await db.dispose()
