"""Sign-in failures shared by the processes of one PostgreSQL deployment.

The throttle (domain/services/login_throttle.py) checks its own in-process counts before
every attempt, so each count of the shared table is also announced with
``NOTIFY memoria_login_failures`` (the counter key, its window and count: no login name,
the account part of the key is a hash) and every process's LISTEN connection (the event
fan-out's, persistence/event_fanout.py) raises its counts to it. A process that starts or
reconnects mid-window first reads the window's counts from the table.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.services.login_throttle import SHARED_PREFIX
from persistence.rate_limits import SqlRateLimitCounter
from persistence.tables.rate_limits import rate_limit_counters

log = logging.getLogger("memoria.auth")

CHANNEL = "memoria_login_failures"

Learn = Callable[..., None]  # LoginThrottle.learn_shared(key, *, window_start, count)


class PgLoginFailureCounter:
    """The throttle's shared counter: the request budgets' table, plus an announcement of
    each new count to the other processes."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._counter = SqlRateLimitCounter(engine)

    async def hit(self, key: str, *, window_start: int, window_seconds: int) -> int:
        count = await self._counter.hit(
            key, window_start=window_start, window_seconds=window_seconds
        )
        payload = json.dumps({"k": key, "w": window_start, "n": count})
        async with self._engine.begin() as conn:
            await conn.execute(
                text("SELECT pg_notify(:channel, :payload)"),
                {"channel": CHANNEL, "payload": payload},
            )
        return count


def announced(learn: Learn) -> Callable[[str], None]:
    """A LISTEN callback handing announced counts to ``learn``."""

    def received(payload: str) -> None:
        try:
            note = json.loads(payload)
            learn(str(note["k"]), window_start=int(note["w"]), count=int(note["n"]))
        except (ValueError, KeyError, TypeError):
            log.warning("sign-in throttle: an unreadable failure announcement was ignored")

    return received


def catch_up(
    engine: AsyncEngine, learn: Learn, *, window_seconds: int
) -> Callable[[], Awaitable[None]]:
    """Reads the current window's counts, for a process that was not listening before."""

    async def read() -> None:
        since = int(time.time()) - window_seconds
        stmt = select(rate_limit_counters).where(
            rate_limit_counters.c.key.startswith(SHARED_PREFIX, autoescape=True),
            rate_limit_counters.c.window_start >= since,
        )
        async with engine.connect() as conn:
            rows = list(await conn.execute(stmt))
        for row in rows:
            learn(row.key, window_start=row.window_start, count=row.count)

    return read
