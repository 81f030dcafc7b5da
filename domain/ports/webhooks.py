"""Webhook subscriptions, their delivery outbox, and the sender that POSTs deliveries."""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Protocol

from domain.webhooks import DeliveryAttempt, SendResult, Webhook, WebhookDelivery


class WebhookRepository(Protocol):
    async def add(self, webhook: Webhook) -> None: ...

    async def get(self, webhook_id: str, *, user_id: str) -> Webhook | None: ...

    async def list(self, *, user_id: str) -> list[Webhook]: ...

    async def delete(self, webhook_id: str, *, user_id: str) -> bool: ...

    async def set_secret(self, webhook_id: str, *, user_id: str, secret_encrypted: str) -> None: ...

    async def deliveries(
        self, webhook_id: str, *, user_id: str, limit: int
    ) -> builtins.list[WebhookDelivery]: ...

    async def attempts(
        self, delivery_id: str, *, user_id: str
    ) -> builtins.list[DeliveryAttempt]: ...

    async def claim_due(
        self, *, now: datetime, lease_until: datetime, limit: int
    ) -> builtins.list[tuple[WebhookDelivery, Webhook]]:
        """Due deliveries of every user (the worker is not a tenant), leased so no other
        worker takes them until ``lease_until``."""

    async def record_attempt(self, delivery: WebhookDelivery, attempt: DeliveryAttempt) -> None:
        """Store ``attempt`` and the delivery's new state (status, attempts, next time)."""


class WebhookSender(Protocol):
    async def send(
        self, *, url: str, secret: str, event_id: str, event: str, body: bytes
    ) -> SendResult: ...
