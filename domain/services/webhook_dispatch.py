"""Sends due outbox rows: the background half of webhooks.

Each round claims a batch of due deliveries with a lease (committed at once, so another
worker or process skips them), sends them concurrently with no transaction open, then
records every attempt and the next try. A crash mid-round loses nothing: the lease lapses
and the rows are claimed again. Receivers may therefore see an event twice; the event id
header lets them de-duplicate.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from domain.clock import Clock
from domain.entities import new_id
from domain.ports import SecretCipher, UnitOfWork, UnitOfWorkFactory, WebhookSender
from domain.webhooks import (
    DeliveryAttempt,
    DeliveryStatus,
    SendResult,
    Webhook,
    WebhookDelivery,
)

log = logging.getLogger("memoria.webhooks")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff from ``base`` doubling up to ``cap``, for ``window`` after the
    event (24 h by default: about 30 attempts), then the delivery is dead."""

    base: timedelta = timedelta(seconds=10)
    cap: timedelta = timedelta(hours=1)
    window: timedelta = timedelta(hours=24)

    def delay(self, attempts: int) -> timedelta:
        seconds = min(
            self.base.total_seconds() * 2 ** max(attempts - 1, 0), self.cap.total_seconds()
        )
        # Jitter spreads retries of many deliveries that failed together; not security.
        return timedelta(seconds=seconds * random.uniform(0.9, 1.1))  # noqa: S311


class DeliveryOutcome(StrEnum):
    """What one attempt came to, for whoever counts them (``on_outcome``)."""

    DELIVERED = "delivered"
    RETRIED = "retried"  # failed; another attempt is scheduled
    FAILED = "failed"  # the receiver answered 410 Gone: no more attempts
    GIVEN_UP = "given_up"  # failed past the retry window


def delivery_body(delivery: WebhookDelivery) -> bytes:
    """The JSON a receiver gets; identical across retries so signatures are reproducible."""
    document = {
        "id": delivery.event_id,
        "type": delivery.event,
        "created_at": delivery.created_at.isoformat(),
        "data": delivery.payload,
    }
    return json.dumps(document, separators=(",", ":"), sort_keys=True, default=str).encode()


class WebhookDispatcher:
    def __init__(
        self,
        *,
        uow_factory: UnitOfWorkFactory,
        sender: WebhookSender,
        cipher: SecretCipher,
        clock: Clock,
        retry: RetryPolicy | None = None,
        lease: timedelta = timedelta(minutes=2),
        batch: int = 50,
        on_outcome: Callable[[DeliveryOutcome], None] | None = None,
    ) -> None:
        self._uow_factory = uow_factory
        self._sender = sender
        self._cipher = cipher
        self._clock = clock
        self._retry = retry or RetryPolicy()
        self._lease = lease
        self._batch = batch
        self._on_outcome = on_outcome

    async def run_once(self) -> int:
        """Send what is due now; returns how many deliveries were attempted."""
        now = self._clock.now()
        async with self._uow_factory() as uow:
            claimed = await uow.webhooks.claim_due(
                now=now, lease_until=now + self._lease, limit=self._batch
            )
            await uow.commit()
        if not claimed:
            return 0
        results = await asyncio.gather(*(self._send(d, w) for d, w in claimed))
        async with self._uow_factory() as uow:
            for (delivery, webhook), result in zip(claimed, results, strict=True):
                await self._record(uow, delivery, webhook, result)
            await uow.commit()
        return len(claimed)

    async def _send(self, delivery: WebhookDelivery, webhook: Webhook) -> SendResult:
        # No URL check here: the sender's transport checks every connection against the
        # outbound policy and connects to the address it checked (a pre-check would resolve
        # the name a second time and still leave a window before the connect).
        try:
            secret = self._cipher.decrypt(webhook.secret_encrypted)
        except ValueError:
            return SendResult(status_code=None, latency_ms=0.0, error="secret unreadable")
        return await self._sender.send(
            url=webhook.url,
            secret=secret,
            event_id=delivery.event_id,
            event=delivery.event,
            body=delivery_body(delivery),
        )

    async def _record(
        self, uow: UnitOfWork, delivery: WebhookDelivery, webhook: Webhook, result: SendResult
    ) -> None:
        now = self._clock.now()
        delivery.attempts += 1
        delivery.last_status = result.status_code
        delivery.last_error = result.error
        if result.ok:
            delivery.status = DeliveryStatus.DELIVERED
            delivery.delivered_at = now
            outcome = DeliveryOutcome.DELIVERED
        elif result.status_code == 410 or now - delivery.created_at >= self._retry.window:
            delivery.status = DeliveryStatus.DEAD  # 410 Gone: the receiver asked us to stop
            gone = result.status_code == 410
            outcome = DeliveryOutcome.FAILED if gone else DeliveryOutcome.GIVEN_UP
        else:
            delivery.status = DeliveryStatus.PENDING
            delivery.next_attempt_at = now + self._retry.delay(delivery.attempts)
            outcome = DeliveryOutcome.RETRIED
        if self._on_outcome is not None:
            self._on_outcome(outcome)
        attempt = DeliveryAttempt(
            id=new_id(),
            delivery_id=delivery.id,
            user_id=delivery.user_id,
            attempt=delivery.attempts,
            status_code=result.status_code,
            latency_ms=round(result.latency_ms, 2),
            error=result.error,
            at=now,
        )
        log.info(
            "webhook %s event %s attempt %d -> %s in %.1f ms%s",
            webhook.id,
            delivery.event_id,
            delivery.attempts,
            result.status_code if result.status_code is not None else "no answer",
            result.latency_ms,
            f" ({result.error})" if result.error else "",
        )
        await uow.webhooks.record_attempt(delivery, attempt)
