"""Webhook subscriptions, the delivery outbox and its attempt log."""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any

from sqlalchemy import select

from domain.webhooks import DeliveryAttempt, DeliveryStatus, Webhook, WebhookDelivery
from persistence.session import Transaction
from persistence.tables.webhooks import webhook_attempts, webhook_deliveries, webhooks

PENDING = DeliveryStatus.PENDING.value


def _webhook(row: Any) -> Webhook:
    return Webhook(
        id=row.id,
        user_id=row.user_id,
        url=row.url,
        events=list(row.events or []),
        secret_encrypted=row.secret_encrypted,
        created_at=row.created_at,
        active=row.active,
    )


def _delivery(row: Any) -> WebhookDelivery:
    return WebhookDelivery(
        id=row.id,
        webhook_id=row.webhook_id,
        user_id=row.user_id,
        event_id=row.event_id,
        event=row.event,
        payload=dict(row.payload or {}),
        status=DeliveryStatus(row.status),
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        created_at=row.created_at,
        last_status=row.last_status,
        last_error=row.last_error,
        delivered_at=row.delivered_at,
    )


class SqlWebhookRepository:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def add(self, webhook: Webhook) -> None:
        await self._tx.write(
            webhooks.insert().values(
                id=webhook.id,
                user_id=webhook.user_id,
                url=webhook.url,
                events=webhook.events,
                secret_encrypted=webhook.secret_encrypted,
                active=webhook.active,
                created_at=webhook.created_at,
            )
        )

    async def get(self, webhook_id: str, *, user_id: str) -> Webhook | None:
        stmt = select(webhooks).where(webhooks.c.id == webhook_id, webhooks.c.user_id == user_id)
        row = (await self._tx.read(stmt)).first()
        return _webhook(row) if row else None

    async def list(self, *, user_id: str) -> list[Webhook]:
        stmt = (
            select(webhooks)
            .where(webhooks.c.user_id == user_id)
            .order_by(webhooks.c.created_at, webhooks.c.id)
        )
        return [_webhook(r) for r in await self._tx.read(stmt)]

    async def delete(self, webhook_id: str, *, user_id: str) -> bool:
        # Deliveries go too (ON DELETE CASCADE); SQLite needs foreign_keys=ON, which is set.
        await self._tx.write(
            webhook_deliveries.delete().where(
                webhook_deliveries.c.webhook_id == webhook_id,
                webhook_deliveries.c.user_id == user_id,
            )
        )
        result = await self._tx.write(
            webhooks.delete().where(webhooks.c.id == webhook_id, webhooks.c.user_id == user_id)
        )
        return bool(result.rowcount)

    async def set_secret(self, webhook_id: str, *, user_id: str, secret_encrypted: str) -> None:
        await self._tx.write(
            webhooks.update()
            .where(webhooks.c.id == webhook_id, webhooks.c.user_id == user_id)
            .values(secret_encrypted=secret_encrypted)
        )

    async def deliveries(
        self, webhook_id: str, *, user_id: str, limit: int
    ) -> builtins.list[WebhookDelivery]:
        stmt = (
            select(webhook_deliveries)
            .where(
                webhook_deliveries.c.webhook_id == webhook_id,
                webhook_deliveries.c.user_id == user_id,
            )
            .order_by(webhook_deliveries.c.created_at.desc(), webhook_deliveries.c.id)
            .limit(limit)
        )
        return [_delivery(r) for r in await self._tx.read(stmt)]

    async def attempts(self, delivery_id: str, *, user_id: str) -> builtins.list[DeliveryAttempt]:
        stmt = (
            select(webhook_attempts)
            .where(
                webhook_attempts.c.delivery_id == delivery_id,
                webhook_attempts.c.user_id == user_id,
            )
            .order_by(webhook_attempts.c.attempt)
        )
        return [
            DeliveryAttempt(
                id=r.id,
                delivery_id=r.delivery_id,
                user_id=r.user_id,
                attempt=r.attempt,
                status_code=r.status_code,
                latency_ms=r.latency_ms,
                error=r.error,
                at=r.at,
            )
            for r in await self._tx.read(stmt)
        ]

    async def claim_due(
        self, *, now: datetime, lease_until: datetime, limit: int
    ) -> builtins.list[tuple[WebhookDelivery, Webhook]]:
        d = webhook_deliveries
        stmt = (
            select(d)
            .where(d.c.status == PENDING, d.c.next_attempt_at <= now)
            .order_by(d.c.next_attempt_at)
            .limit(limit)
        )
        if self._tx.conn.dialect.name == "postgresql":
            # Several server processes share the outbox: each takes rows nobody else holds.
            stmt = stmt.with_for_update(skip_locked=True)
            rows = list(await self._tx.read(stmt))
        else:
            rows = list(await self._tx.write(stmt))  # takes the SQLite write lock first
        if not rows:
            return []
        ids = [r.id for r in rows]
        await self._tx.write(d.update().where(d.c.id.in_(ids)).values(next_attempt_at=lease_until))
        hooks = {
            r.id: _webhook(r)
            for r in await self._tx.read(
                select(webhooks).where(webhooks.c.id.in_({r.webhook_id for r in rows}))
            )
        }
        return [(_delivery(r), hooks[r.webhook_id]) for r in rows if r.webhook_id in hooks]

    async def record_attempt(self, delivery: WebhookDelivery, attempt: DeliveryAttempt) -> None:
        d = webhook_deliveries
        result = await self._tx.write(
            d.update()
            .where(d.c.id == delivery.id)
            .values(
                status=delivery.status.value,
                attempts=delivery.attempts,
                next_attempt_at=delivery.next_attempt_at,
                last_status=delivery.last_status,
                last_error=delivery.last_error,
                delivered_at=delivery.delivered_at,
            )
        )
        if not result.rowcount:
            return  # the webhook was deleted while we were sending
        await self._tx.write(
            webhook_attempts.insert().values(
                id=attempt.id,
                delivery_id=attempt.delivery_id,
                user_id=attempt.user_id,
                attempt=attempt.attempt,
                status_code=attempt.status_code,
                latency_ms=attempt.latency_ms,
                error=attempt.error,
                at=attempt.at,
            )
        )
