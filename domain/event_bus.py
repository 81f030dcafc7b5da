"""An in-process publish/subscribe bus for committed domain events (GraphQL subscriptions).

Wired as a ``Database.after_commit`` listener, so subscribers only ever see committed
facts. Each subscription has a bounded queue: a subscriber too slow to keep up loses its
oldest events (and is told by ``dropped``) instead of growing memory without bound.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from domain.events import DomainEvent

log = logging.getLogger("memoria.events")

Predicate = Callable[[DomainEvent], bool]


class Subscription:
    def __init__(self, predicate: Predicate, maxsize: int) -> None:
        self.predicate = predicate
        self.queue: asyncio.Queue[DomainEvent] = asyncio.Queue(maxsize)
        self.dropped = 0

    def offer(self, event: DomainEvent) -> None:
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(event)

    def __aiter__(self) -> AsyncIterator[DomainEvent]:
        return self

    async def __anext__(self) -> DomainEvent:
        return await self.queue.get()


class EventBus:
    def __init__(self, *, queue_size: int = 1000) -> None:
        self._subscriptions: dict[str, set[Subscription]] = {}
        self._queue_size = queue_size

    async def publish(self, events: list[DomainEvent]) -> None:
        for event in events:
            for sub in list(self._subscriptions.get(event.user_id, ())):
                try:
                    if sub.predicate(event):
                        sub.offer(event)
                except Exception:  # one bad subscriber must not starve the others
                    log.exception("event subscriber predicate failed")

    @asynccontextmanager
    async def subscribe(self, *, user_id: str, predicate: Predicate) -> AsyncIterator[Subscription]:
        """Events of one user that match ``predicate``, from now until the block exits."""
        sub = Subscription(predicate, self._queue_size)
        self._subscriptions.setdefault(user_id, set()).add(sub)
        try:
            yield sub
        finally:
            subs = self._subscriptions.get(user_id)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subscriptions[user_id]

    def subscribed_users(self) -> set[str]:
        """Users with at least one subscriber here (the cross-process fan-out asks)."""
        return set(self._subscriptions)

    def subscriber_count(self) -> int:
        return sum(len(s) for s in self._subscriptions.values())
