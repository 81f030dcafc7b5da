"""The server's background loops: webhook delivery, source syncs, pattern learning.

Each runs in the server's event loop, started by ``build_app``'s lifespan. Work lives in
the database (outbox rows, queued sync runs), so a restart loses nothing; a loop polls
every ``poll`` seconds and is also woken by an ``after_commit`` listener as soon as new
work commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import Any

from domain.events import DomainEvent

log = logging.getLogger("memoria.workers")


class WorkLoop:
    """Runs ``step`` until it reports no more work, then sleeps until woken or ``poll``."""

    def __init__(self, name: str, step: Callable[[], Awaitable[bool]], *, poll: float) -> None:
        self.name = name
        self._step = step
        self._poll = poll
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()
            try:
                busy = await self._step()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bad round must not kill the worker; it retries next round
                log.exception("%s worker round failed", self.name)
                busy = False
            if busy:
                await asyncio.sleep(0)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll)


class BackgroundWorkers:
    """Starts and stops the loops, and tells each capability about committed events so it
    can wake its loop without waiting for the next poll."""

    def __init__(
        self,
        *,
        loops: Mapping[str, Callable[[], Coroutine[Any, Any, None]]],
        listeners: Sequence[Callable[[DomainEvent], None]],
        enabled: bool,
    ) -> None:
        self._loops = dict(loops)
        self._listeners = list(listeners)
        self.enabled = enabled
        self._tasks: list[asyncio.Task[None]] = []

    async def on_commit(self, events: list[DomainEvent]) -> None:
        for event in events:
            for listener in self._listeners:
                listener(event)

    def start(self) -> None:
        if not self.enabled or self._tasks:
            return
        self._tasks = [
            asyncio.create_task(run(), name=f"memoria-{name}") for name, run in self._loops.items()
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
