"""Background workers of issue 5: webhook delivery, source syncs, pattern learning.

Each is a loop in the server's event loop, started by ``build_app``'s lifespan. Work lives
in the database (outbox rows, queued sync runs), so a restart loses nothing; the loops
poll every ``poll`` seconds and are also woken by an ``after_commit`` listener as soon as
new work commits. Pattern learning is an in-process queue of committed user messages:
cheap, and it never delays the request that stored the message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from domain.entities import Actor, Role
from domain.events import MESSAGE_CREATED, DomainEvent
from domain.ports import UnitOfWorkFactory
from domain.services.pattern_rules import detect, is_request
from domain.services.patterns import PatternService
from domain.services.sources import SYNC_REQUESTED
from domain.webhooks import WEBHOOK_EVENTS
from persistence.outbox import wrote_deliveries

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


class PatternLearner:
    """Feeds committed user messages to :meth:`PatternService.observe_message`."""

    def __init__(self, *, uow_factory: UnitOfWorkFactory, patterns: PatternService) -> None:
        self._uow_factory = uow_factory
        self._patterns = patterns
        self.queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue(maxsize=10_000)

    def offer(self, user_id: str, message_id: str) -> None:
        try:
            self.queue.put_nowait((user_id, message_id))
        except asyncio.QueueFull:
            log.warning("pattern learning queue full; message %s skipped", message_id)

    async def learn(self, user_id: str, message_id: str) -> None:
        async with self._uow_factory() as uow:
            message = await uow.messages.get(message_id, user_id=user_id)
            if message is None:
                return
            actor = Actor(user_id=user_id, role=Role.USER, via="worker")
            await self._patterns.observe_message(uow=uow, actor=actor, message=message)
            await uow.commit()

    async def run(self) -> None:
        while True:
            user_id, message_id = await self.queue.get()
            try:
                await self.learn(user_id, message_id)
            except asyncio.CancelledError:
                raise
            except Exception:  # one bad message must not stop learning from the next
                log.exception("pattern learning failed for message %s", message_id)
            finally:
                self.queue.task_done()


def _may_teach(content: str) -> bool:
    """Whether :meth:`PatternService.observe_message` can learn anything from a user message
    with this text: it looks only at rule detections and requests. Most chat messages have
    neither; skipping them saves a unit of work and a read per turn."""
    return bool(detect(content)) or is_request(content)


class ExtWorkers:
    def __init__(
        self, *, webhooks: WorkLoop, syncs: WorkLoop, learner: PatternLearner, enabled: bool
    ) -> None:
        self.webhooks = webhooks
        self.syncs = syncs
        self.learner = learner
        self.enabled = enabled
        self._tasks: list[asyncio.Task[None]] = []

    async def on_commit(self, events: list[DomainEvent]) -> None:
        for event in events:
            # Only when the outbox wrote a delivery for it (most users have no webhook; the
            # worker's poll still catches anything else).
            if event.name in WEBHOOK_EVENTS and wrote_deliveries(event):
                self.webhooks.wake()
            if event.name == SYNC_REQUESTED:
                self.syncs.wake()
            if (
                event.name == MESSAGE_CREATED
                and event.payload.get("role") == "user"
                and _may_teach(str(event.payload.get("content") or ""))
            ):
                self.learner.offer(event.user_id, str(event.payload["id"]))

    def start(self) -> None:
        if not self.enabled or self._tasks:
            return
        self._tasks = [
            asyncio.create_task(self.webhooks.run(), name="memoria-webhooks"),
            asyncio.create_task(self.syncs.run(), name="memoria-syncs"),
            asyncio.create_task(self.learner.run(), name="memoria-patterns"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
