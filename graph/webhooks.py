"""Root fields of webhook subscriptions: list, create, delete, rotate the secret."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from graph.types.common import ctx
from graph.types.webhooks import NewWebhook, Webhook


@strawberry.type
class WebhookQuery:
    @strawberry.field
    async def webhooks(self, info: Info[Any, Any]) -> list[Webhook]:
        scope = ctx(info)
        found = await scope.deps.webhooks.list(uow=await scope.uow(), actor=await scope.actor())
        return [Webhook.of(w) for w in found]


@strawberry.type
class WebhookMutation:
    @strawberry.mutation
    async def create_webhook(self, info: Info[Any, Any], url: str, events: list[str]) -> NewWebhook:
        scope = ctx(info)
        webhook, secret = await scope.deps.webhooks.subscribe(
            uow=await scope.uow(), actor=await scope.actor(), url=url, events=events
        )
        return NewWebhook(webhook=Webhook.of(webhook), secret=secret)

    @strawberry.mutation
    async def delete_webhook(self, info: Info[Any, Any], id: strawberry.ID) -> bool:
        scope = ctx(info)
        return await scope.deps.webhooks.delete(
            uow=await scope.uow(), actor=await scope.actor(), webhook_id=str(id)
        )

    @strawberry.mutation
    async def rotate_webhook_secret(self, info: Info[Any, Any], id: strawberry.ID) -> NewWebhook:
        scope = ctx(info)
        webhook, secret = await scope.deps.webhooks.rotate_secret(
            uow=await scope.uow(), actor=await scope.actor(), webhook_id=str(id)
        )
        return NewWebhook(webhook=Webhook.of(webhook), secret=secret)
