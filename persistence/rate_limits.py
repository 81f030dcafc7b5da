"""Rate-limit counters: in-process for the embedded (one process) mode, a shared table for
PostgreSQL mode so every server process behind a load balancer sees the same counts."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncEngine

from persistence.tables.rate_limits import rate_limit_counters


class MemoryRateLimitCounter:
    """Fixed-window counts in a dict; windows older than the current one are dropped."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, int], int] = {}
        self._lock = asyncio.Lock()
        self._current_window = 0

    async def hit(self, key: str, *, window_start: int, window_seconds: int) -> int:
        async with self._lock:
            if window_start > self._current_window:
                for stale in [k for k in self._counts if k[1] < window_start]:
                    del self._counts[stale]
                self._current_window = window_start
            count = self._counts.get((key, window_start), 0) + 1
            self._counts[(key, window_start)] = count
            return count


class SqlRateLimitCounter:
    """One upsert per request in its own short transaction (never the request's), so refused
    and failed requests count too. Old windows are pruned now and then."""

    def __init__(self, engine: AsyncEngine, *, prune_every_seconds: float = 60.0) -> None:
        self._engine = engine
        self._prune_every = prune_every_seconds
        self._last_prune = 0.0

    async def hit(self, key: str, *, window_start: int, window_seconds: int) -> int:
        insert = postgresql.insert(rate_limit_counters).values(
            key=key, window_start=window_start, count=1
        )
        stmt = insert.on_conflict_do_update(
            index_elements=[rate_limit_counters.c.key, rate_limit_counters.c.window_start],
            set_={"count": rate_limit_counters.c.count + 1},
        ).returning(rate_limit_counters.c.count)
        async with self._engine.begin() as conn:
            count = int((await conn.execute(stmt)).scalar_one())
            now = time.monotonic()
            if now - self._last_prune > self._prune_every:
                self._last_prune = now
                await conn.execute(
                    delete(rate_limit_counters).where(
                        rate_limit_counters.c.window_start < window_start - window_seconds
                    )
                )
        return count
