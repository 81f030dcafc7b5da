"""The webhook outbox writer: a ``Database.before_commit`` hook.

It runs inside the transaction that made the change, so a delivery row exists exactly when
the change committed — never for a rolled-back change, never missing for a committed one.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from sqlalchemy import select

from domain.entities import new_id
from domain.events import DomainEvent
from domain.webhooks import WEBHOOK_EVENTS, DeliveryStatus
from persistence.session import Transaction
from persistence.sqlite_driver import BatchingTransaction
from persistence.tables.webhooks import webhook_deliveries, webhooks

# Ids of events a delivery row was written for, until the commit listener asks (bounded: a
# rolled-back transaction's ids are never asked for and age out).
_WITH_DELIVERIES: OrderedDict[str, None] = OrderedDict()
_REMEMBERED = 10_000


def wrote_deliveries(event: DomainEvent) -> bool:
    """Whether :func:`write_outbox` wrote a delivery for ``event`` (asked once, after its
    commit): the webhook worker is woken only then, not for every message of every user."""
    return _WITH_DELIVERIES.pop(event.id, False) is None


class SubscriptionCache:
    """Active webhook subscriptions per user, for embedded mode (SQLite, one process: the
    FAISS indexes already assume it). Two reads per chat turn (user message, reply) found
    nothing for almost every user. From the first write to ``webhooks`` (or ``users``, or a
    table a statement does not name) until that transaction ends, the cache is bypassed,
    and it is emptied when it ends; a read that such a write overtook is not kept
    (``generation``)."""

    def __init__(self) -> None:
        self.generation = 0
        self._by_user: dict[str, list[Any]] = {}
        self._writers: set[int] = set()  # ids of the transactions writing those tables

    @property
    def usable(self) -> bool:
        return not self._writers

    def writing(self, tx: object, table: str) -> None:
        if table in (webhooks.name, "users", "?"):
            self._writers.add(id(tx))
            self._invalidate()

    def ended(self, tx: object) -> None:
        if id(tx) in self._writers:
            self._writers.discard(id(tx))
            self._invalidate()

    def _invalidate(self) -> None:
        self.generation += 1
        self._by_user.clear()


_CACHED_USERS = 100_000


async def _subscriptions(tx: Transaction, users: set[str]) -> list[Any]:
    def stmt(wanted: set[str]) -> Any:
        return select(webhooks.c.id, webhooks.c.user_id, webhooks.c.events).where(
            webhooks.c.user_id.in_(wanted), webhooks.c.active.is_(True)
        )

    if not isinstance(tx, BatchingTransaction):
        return list(await tx.read(stmt(users)))
    cache = tx.caches
    if not isinstance(cache, SubscriptionCache) or not cache.usable:
        # Nothing this transaction wrote is read here: on SQLite the turn's queued inserts
        # stay queued and the write lock untaken (see persistence/sqlite_driver.py).
        return list(await tx.read_beside_writes(stmt(users), tables=(webhooks.name,)))
    missing = {u for u in users if u not in cache._by_user}
    if missing:
        generation = cache.generation
        found = list(await tx.read_beside_writes(stmt(missing), tables=(webhooks.name,)))
        if generation == cache.generation:
            if len(cache._by_user) >= _CACHED_USERS:
                cache._by_user.clear()
            for user in missing:
                cache._by_user[user] = [hook for hook in found if hook.user_id == user]
        else:
            return [h for u in users if u not in missing for h in cache._by_user.get(u, [])] + found
    return [hook for user in users for hook in cache._by_user.get(user, [])]


async def write_outbox(tx: Transaction, events: list[DomainEvent]) -> None:
    relevant = [e for e in events if e.name in WEBHOOK_EVENTS]
    if not relevant:
        return
    users = {e.user_id for e in relevant}
    subscriptions = await _subscriptions(tx, users)
    rows = [
        {
            "id": new_id(),
            "webhook_id": hook.id,
            "user_id": event.user_id,
            "event_id": event.id,
            "event": event.name,
            "payload": event.payload,
            "status": DeliveryStatus.PENDING.value,
            "attempts": 0,
            "next_attempt_at": event.at,
            "created_at": event.at,
        }
        for event in relevant
        for hook in subscriptions
        if hook.user_id == event.user_id and event.name in (hook.events or [])
    ]
    if rows:
        await tx.write(webhook_deliveries.insert(), rows)
        for row in rows:
            _WITH_DELIVERIES[row["event_id"]] = None
        while len(_WITH_DELIVERIES) > _REMEMBERED:
            _WITH_DELIVERIES.popitem(last=False)
