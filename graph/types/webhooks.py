"""GraphQL types of webhook subscriptions and their deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.types import Info

from domain.webhooks import DeliveryAttempt as DeliveryAttemptEntity
from domain.webhooks import Webhook as WebhookEntity
from domain.webhooks import WebhookDelivery as WebhookDeliveryEntity
from graph.types.common import ctx


@strawberry.type
class DeliveryAttempt:
    attempt: int
    status_code: int | None
    latency_ms: float
    error: str | None
    at: datetime

    @classmethod
    def of(cls, a: DeliveryAttemptEntity) -> DeliveryAttempt:
        return cls(
            attempt=a.attempt,
            status_code=a.status_code,
            latency_ms=a.latency_ms,
            error=a.error,
            at=a.at,
        )


@strawberry.type
class WebhookDelivery:
    id: strawberry.ID
    event_id: str
    event: str
    status: str  # pending | delivered | dead
    attempts: int
    last_status: int | None
    last_error: str | None
    next_attempt_at: datetime
    created_at: datetime
    delivered_at: datetime | None

    @strawberry.field
    async def attempt_log(self, info: Info[Any, Any]) -> list[DeliveryAttempt]:
        scope = ctx(info)
        found = await scope.deps.webhooks.attempts(
            uow=await scope.uow(), actor=await scope.actor(), delivery_id=str(self.id)
        )
        return [DeliveryAttempt.of(a) for a in found]

    @classmethod
    def of(cls, d: WebhookDeliveryEntity) -> WebhookDelivery:
        return cls(
            id=strawberry.ID(d.id),
            event_id=d.event_id,
            event=d.event,
            status=d.status.value,
            attempts=d.attempts,
            last_status=d.last_status,
            last_error=d.last_error,
            next_attempt_at=d.next_attempt_at,
            created_at=d.created_at,
            delivered_at=d.delivered_at,
        )


@strawberry.type
class Webhook:
    id: strawberry.ID
    url: str
    events: list[str]
    created_at: datetime

    @strawberry.field
    async def deliveries(self, info: Info[Any, Any], limit: int = 50) -> list[WebhookDelivery]:
        scope = ctx(info)
        found = await scope.deps.webhooks.deliveries(
            uow=await scope.uow(), actor=await scope.actor(), webhook_id=str(self.id), limit=limit
        )
        return [WebhookDelivery.of(d) for d in found]

    @classmethod
    def of(cls, w: WebhookEntity) -> Webhook:
        return cls(id=strawberry.ID(w.id), url=w.url, events=w.events, created_at=w.created_at)


@strawberry.type
class NewWebhook:
    """``secret`` signs deliveries; it is shown only here, once."""

    webhook: Webhook
    secret: str
