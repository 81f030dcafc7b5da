"""Webhook subscriptions: subscribe, list, delete, rotate the signing secret.

Deliveries are not made here: persistence writes one outbox row per (event, subscribed
webhook) inside the transaction that recorded the event, and
:class:`domain.services.webhook_dispatch.WebhookDispatcher` sends them in the background.
"""

from __future__ import annotations

import builtins
import secrets
from urllib.parse import urlsplit

from domain.clock import Clock
from domain.entities import Actor, new_id
from domain.errors import BadUserInput, NotFound
from domain.ports import SecretCipher, UnitOfWork, UrlGuard
from domain.webhooks import WEBHOOK_EVENTS, DeliveryAttempt, Webhook, WebhookDelivery

MAX_URL_CHARS = 2_000


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def check_events(events: list[str] | None) -> list[str]:
    wanted = [e.strip() for e in events or [] if e and e.strip()]
    if not wanted:
        raise BadUserInput("events must name at least one event", details={"field": "events"})
    if "*" in wanted:
        return list(WEBHOOK_EVENTS)
    unknown = sorted(set(wanted) - set(WEBHOOK_EVENTS))
    if unknown:
        raise BadUserInput(
            f"unknown events: {', '.join(unknown)}; known: {', '.join(WEBHOOK_EVENTS)}",
            details={"field": "events"},
        )
    return list(dict.fromkeys(wanted))


def check_url(url: str | None) -> str:
    value = (url or "").strip()
    if not value:
        raise BadUserInput("url is required", details={"field": "url"})
    if len(value) > MAX_URL_CHARS:
        raise BadUserInput("url is too long", details={"field": "url"})
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadUserInput("url must be an http(s) URL with a host", details={"field": "url"})
    if parts.username or parts.password:
        raise BadUserInput("url must not carry credentials", details={"field": "url"})
    return value


class WebhookService:
    def __init__(
        self, *, cipher: SecretCipher, url_guard: UrlGuard, clock: Clock, max_per_user: int = 25
    ) -> None:
        self._cipher = cipher
        self._guard = url_guard
        self._clock = clock
        self._max = max_per_user

    async def subscribe(
        self, *, uow: UnitOfWork, actor: Actor, url: str, events: list[str]
    ) -> tuple[Webhook, str]:
        """Returns the webhook and its secret, which is shown this once."""
        target = check_url(url)
        wanted = check_events(events)
        await self._guard.check(target)
        if len(await uow.webhooks.list(user_id=actor.user_id)) >= self._max:
            raise BadUserInput(f"at most {self._max} webhooks per user")
        secret = new_secret()
        webhook = Webhook(
            id=new_id(),
            user_id=actor.user_id,
            url=target,
            events=wanted,
            secret_encrypted=self._cipher.encrypt(secret),
            created_at=self._clock.now(),
        )
        await uow.webhooks.add(webhook)
        return webhook, secret

    async def list(self, *, uow: UnitOfWork, actor: Actor) -> list[Webhook]:
        return await uow.webhooks.list(user_id=actor.user_id)

    async def get(self, *, uow: UnitOfWork, actor: Actor, webhook_id: str) -> Webhook:
        webhook = await uow.webhooks.get(webhook_id, user_id=actor.user_id)
        if webhook is None:
            raise NotFound("Webhook not found")
        return webhook

    async def delete(self, *, uow: UnitOfWork, actor: Actor, webhook_id: str) -> bool:
        if not await uow.webhooks.delete(webhook_id, user_id=actor.user_id):
            raise NotFound("Webhook not found")
        return True

    async def rotate_secret(
        self, *, uow: UnitOfWork, actor: Actor, webhook_id: str
    ) -> tuple[Webhook, str]:
        """A new secret signs every delivery sent from now on, retries included."""
        webhook = await self.get(uow=uow, actor=actor, webhook_id=webhook_id)
        secret = new_secret()
        webhook.secret_encrypted = self._cipher.encrypt(secret)
        await uow.webhooks.set_secret(
            webhook.id, user_id=actor.user_id, secret_encrypted=webhook.secret_encrypted
        )
        return webhook, secret

    async def deliveries(
        self, *, uow: UnitOfWork, actor: Actor, webhook_id: str, limit: int = 50
    ) -> builtins.list[WebhookDelivery]:
        await self.get(uow=uow, actor=actor, webhook_id=webhook_id)
        return await uow.webhooks.deliveries(
            webhook_id, user_id=actor.user_id, limit=max(1, min(limit, 200))
        )

    async def attempts(
        self, *, uow: UnitOfWork, actor: Actor, delivery_id: str
    ) -> builtins.list[DeliveryAttempt]:
        return await uow.webhooks.attempts(delivery_id, user_id=actor.user_id)
