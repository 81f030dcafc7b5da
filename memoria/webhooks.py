"""Wiring of webhooks: subscriptions, the outbox dispatcher with its retry policy, the HTTP
sender, and the loop that delivers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from domain.clock import Clock
from domain.events import DomainEvent
from domain.ports import SecretCipher, UnitOfWorkFactory
from domain.services.webhook_dispatch import DeliveryOutcome, RetryPolicy, WebhookDispatcher
from domain.services.webhooks import WebhookService
from domain.webhooks import WEBHOOK_EVENTS
from memoria.integration_settings import IntegrationSettings
from memoria.workers import WorkLoop
from persistence.outbox import wrote_deliveries
from providers.outbound.guard import OutboundGuard
from providers.webhooks.sender import HttpWebhookSender


@dataclass
class WebhookParts:
    service: WebhookService
    dispatcher: WebhookDispatcher
    sender: HttpWebhookSender
    loop: WorkLoop

    def notice(self, event: DomainEvent) -> None:
        # Only when the outbox wrote a delivery for it (most users have no webhook; the
        # loop's poll still catches anything else).
        if event.name in WEBHOOK_EVENTS and wrote_deliveries(event):
            self.loop.wake()


def build_webhooks(
    settings: IntegrationSettings,
    *,
    uow_factory: UnitOfWorkFactory,
    clock: Clock,
    cipher: SecretCipher,
    guard: OutboundGuard,
    on_outcome: Callable[[DeliveryOutcome], None] | None = None,
) -> WebhookParts:
    sender = HttpWebhookSender(guard=guard, timeout=settings.webhook_timeout_seconds)
    dispatcher = WebhookDispatcher(
        uow_factory=uow_factory,
        sender=sender,
        cipher=cipher,
        clock=clock,
        retry=RetryPolicy(
            base=timedelta(seconds=settings.webhook_retry_base_seconds),
            cap=timedelta(seconds=settings.webhook_retry_cap_seconds),
            window=timedelta(seconds=settings.webhook_retry_window_seconds),
        ),
        # A send never outlives its timeout, so a lease of a few timeouts is safe.
        lease=timedelta(seconds=max(30.0, settings.webhook_timeout_seconds * 3)),
        on_outcome=on_outcome,  # counted by the metrics, when they are on
    )

    async def deliver() -> bool:
        return await dispatcher.run_once() > 0

    return WebhookParts(
        service=WebhookService(cipher=cipher, url_guard=guard, clock=clock),
        dispatcher=dispatcher,
        sender=sender,
        loop=WorkLoop("webhooks", deliver, poll=settings.worker_poll_seconds),
    )
