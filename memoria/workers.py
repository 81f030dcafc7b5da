"""The server's background loops: webhook delivery, source syncs, pattern learning,
memory extraction.

Each runs in the server's event loop, started by ``build_app``'s lifespan. Work lives in
the database (outbox rows, queued sync runs, jobs), claimed with a lease, so a restart
loses nothing and several processes on one PostgreSQL database never do one piece of work
twice at once; a loop polls every ``poll`` seconds and is also woken by an
``after_commit`` listener as soon as new work commits in its own process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from domain.events import DomainEvent

log = logging.getLogger("memoria.workers")


class WorkLoop:
    """Runs ``step`` until it reports no more work, then sleeps until woken or ``poll``."""

    def __init__(self, name: str, step: Callable[[], Awaitable[bool]], *, poll: float) -> None:
        self.name = name
        self._step = step
        self._poll = poll
        self._wake = asyncio.Event()
        self.stopping = False  # set by BackgroundWorkers.stop: finish the round, then return

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while not self.stopping:
            self._wake.clear()
            try:
                busy = await self._step()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bad round must not kill the worker; it retries next round
                log.exception("%s worker round failed", self.name)
                busy = False
            if self.stopping:
                return
            if busy:
                await asyncio.sleep(0)
                continue
            # asyncio.timeout: wait_for can lose a cancellation on Python 3.11 (stop hangs).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll):
                    await self._wake.wait()


class BackgroundWorkers:
    """Starts and stops the loops, and tells each capability about committed events so it
    can wake its loop without waiting for the next poll.

    Stopping lets each loop finish the round it is in (a claimed batch is completed, not
    abandoned to its lease) for up to ``grace`` seconds, then cancels what is left."""

    def __init__(
        self,
        *,
        loops: Sequence[WorkLoop],
        listeners: Sequence[Callable[[DomainEvent], None]],
        enabled: bool,
        grace: float = 10.0,
    ) -> None:
        self._loops = list(loops)
        self._listeners = list(listeners)
        self.enabled = enabled
        self._grace = grace
        self._tasks: list[asyncio.Task[None]] = []

    async def on_commit(self, events: list[DomainEvent]) -> None:
        for event in events:
            for listener in self._listeners:
                listener(event)

    def start(self) -> None:
        if not self.enabled or self._tasks:
            return
        for loop in self._loops:
            loop.stopping = False
        self._tasks = [
            asyncio.create_task(loop.run(), name=f"memoria-{loop.name}") for loop in self._loops
        ]

    async def stop(self) -> None:
        for loop in self._loops:
            loop.stopping = True
            loop.wake()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=self._grace)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
