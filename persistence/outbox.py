"""The webhook outbox writer: a ``Database.before_commit`` hook.

It runs inside the transaction that made the change, so a delivery row exists exactly when
the change committed — never for a rolled-back change, never missing for a committed one.
"""

from __future__ import annotations

from collections import OrderedDict

from sqlalchemy import select

from domain.entities import new_id
from domain.events import DomainEvent
from domain.webhooks import WEBHOOK_EVENTS, DeliveryStatus
from persistence.session import Transaction
from persistence.sqlite_driver import BatchingTransaction
from persistence.tables_ext import webhook_deliveries, webhooks

# Ids of events a delivery row was written for, until the commit listener asks (bounded: a
# rolled-back transaction's ids are never asked for and age out).
_WITH_DELIVERIES: OrderedDict[str, None] = OrderedDict()
_REMEMBERED = 10_000


def wrote_deliveries(event: DomainEvent) -> bool:
    """Whether :func:`write_outbox` wrote a delivery for ``event`` (asked once, after its
    commit): the webhook worker is woken only then, not for every message of every user."""
    return _WITH_DELIVERIES.pop(event.id, False) is None


async def write_outbox(tx: Transaction, events: list[DomainEvent]) -> None:
    relevant = [e for e in events if e.name in WEBHOOK_EVENTS]
    if not relevant:
        return
    users = {e.user_id for e in relevant}
    stmt = select(webhooks.c.id, webhooks.c.user_id, webhooks.c.events).where(
        webhooks.c.user_id.in_(users), webhooks.c.active.is_(True)
    )
    # Nothing this transaction wrote is read here: on SQLite the turn's queued inserts stay
    # queued and the write lock untaken (see persistence/sqlite_driver.py).
    if isinstance(tx, BatchingTransaction):
        subscriptions = list(await tx.read_beside_writes(stmt, tables=(webhooks.name,)))
    else:
        subscriptions = list(await tx.read(stmt))
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
