"""Root fields of patterns, statistics, webhooks and data sources."""

from __future__ import annotations

import base64
import binascii
from typing import Any, TypeVar

import strawberry
from strawberry.types import Info

from domain.errors import BadUserInput, ProviderUnavailable
from graph.types.common import JSON, PageInfo, ctx, decode_cursor, encode_cursor
from graph.types.ext import (
    ConnectSourcePayload,
    DataSource,
    NewWebhook,
    Pattern,
    PatternChange,
    PatternConnection,
    PatternEdge,
    Stats,
    SyncRun,
    Webhook,
)

T = TypeVar("T")


def _need(service: T | None) -> T:
    if service is None:
        raise ProviderUnavailable("this capability is not configured on this server")
    return service


@strawberry.type
class ExtQuery:
    @strawberry.field
    async def patterns(
        self, info: Info[Any, Any], first: int = 20, after: str | None = None
    ) -> PatternConnection:
        scope = ctx(info)
        items, more, total = await _need(scope.deps.patterns).page(
            uow=await scope.uow(),
            actor=await scope.actor(),
            first=first,
            after=decode_cursor("pattern", after),
        )
        edges = [
            PatternEdge(cursor=encode_cursor("pattern", p.id), node=Pattern.of(p)) for p in items
        ]
        return PatternConnection(
            edges=edges,
            page_info=PageInfo(has_next_page=more, end_cursor=edges[-1].cursor if edges else None),
            total_count=total,
        )

    @strawberry.field
    async def pattern(self, info: Info[Any, Any], id: strawberry.ID) -> Pattern | None:
        scope = ctx(info)
        found = await (await scope.uow()).patterns.get(
            str(id), user_id=(await scope.actor()).user_id
        )
        return Pattern.of(found) if found else None

    @strawberry.field
    async def pattern_history(self, info: Info[Any, Any], id: strawberry.ID) -> list[PatternChange]:
        scope = ctx(info)
        changes = await _need(scope.deps.patterns).history(
            uow=await scope.uow(), actor=await scope.actor(), pattern_id=str(id)
        )
        return [PatternChange.of(c) for c in changes]

    @strawberry.field
    async def stats(self, info: Info[Any, Any]) -> Stats:
        scope = ctx(info)
        found = await _need(scope.deps.stats).get(uow=await scope.uow(), actor=await scope.actor())
        return Stats.of(found)

    @strawberry.field
    async def webhooks(self, info: Info[Any, Any]) -> list[Webhook]:
        scope = ctx(info)
        found = await _need(scope.deps.webhooks).list(
            uow=await scope.uow(), actor=await scope.actor()
        )
        return [Webhook.of(w) for w in found]

    @strawberry.field
    async def sources(self, info: Info[Any, Any]) -> list[DataSource]:
        scope = ctx(info)
        found = await _need(scope.deps.sources).list(
            uow=await scope.uow(), actor=await scope.actor()
        )
        return [DataSource.of(s) for s in found]

    @strawberry.field
    async def source(self, info: Info[Any, Any], id: strawberry.ID) -> DataSource | None:
        scope = ctx(info)
        found = await (await scope.uow()).sources.get(
            str(id), user_id=(await scope.actor()).user_id
        )
        return DataSource.of(found) if found else None

    @strawberry.field
    async def sync_run(self, info: Info[Any, Any], id: strawberry.ID) -> SyncRun:
        scope = ctx(info)
        run = await _need(scope.deps.sources).sync_run(
            uow=await scope.uow(), actor=await scope.actor(), run_id=str(id)
        )
        return SyncRun.of(run)


@strawberry.type
class ExtMutation:
    @strawberry.mutation
    async def delete_pattern(self, info: Info[Any, Any], id: strawberry.ID) -> bool:
        scope = ctx(info)
        return await _need(scope.deps.patterns).delete(
            uow=await scope.uow(), actor=await scope.actor(), pattern_id=str(id)
        )

    @strawberry.mutation
    async def create_webhook(self, info: Info[Any, Any], url: str, events: list[str]) -> NewWebhook:
        scope = ctx(info)
        webhook, secret = await _need(scope.deps.webhooks).subscribe(
            uow=await scope.uow(), actor=await scope.actor(), url=url, events=events
        )
        return NewWebhook(webhook=Webhook.of(webhook), secret=secret)

    @strawberry.mutation
    async def delete_webhook(self, info: Info[Any, Any], id: strawberry.ID) -> bool:
        scope = ctx(info)
        return await _need(scope.deps.webhooks).delete(
            uow=await scope.uow(), actor=await scope.actor(), webhook_id=str(id)
        )

    @strawberry.mutation
    async def rotate_webhook_secret(self, info: Info[Any, Any], id: strawberry.ID) -> NewWebhook:
        scope = ctx(info)
        webhook, secret = await _need(scope.deps.webhooks).rotate_secret(
            uow=await scope.uow(), actor=await scope.actor(), webhook_id=str(id)
        )
        return NewWebhook(webhook=Webhook.of(webhook), secret=secret)

    @strawberry.mutation
    async def connect_source(
        self,
        info: Info[Any, Any],
        type: str,
        config: JSON | None = None,
        name: str | None = None,
    ) -> ConnectSourcePayload:
        scope = ctx(info)
        if config is not None and not isinstance(config, dict):
            raise BadUserInput("config must be an object", details={"field": "config"})
        source, oauth_url = await _need(scope.deps.sources).create(
            uow=await scope.uow(), actor=await scope.actor(), kind=type, config=config, name=name
        )
        return ConnectSourcePayload(source=DataSource.of(source), oauth_url=oauth_url)

    @strawberry.mutation(name="completeSourceOAuth")
    async def complete_source_oauth(
        self, info: Info[Any, Any], code: str, state: str
    ) -> DataSource:
        """The OAuth callback as a mutation (the signed state names the user)."""
        scope = ctx(info)
        source = await _need(scope.deps.sources).complete_oauth(
            uow=await scope.uow(), state=state, code=code
        )
        return DataSource.of(source)

    @strawberry.mutation
    async def upload_source_file(
        self, info: Info[Any, Any], source_id: strawberry.ID, name: str, content_base64: str
    ) -> bool:
        scope = ctx(info)
        try:
            data = base64.b64decode(content_base64, validate=True)
        except (binascii.Error, ValueError):
            raise BadUserInput(
                "contentBase64 is not base64", details={"field": "contentBase64"}
            ) from None
        await _need(scope.deps.sources).upload_file(
            uow=await scope.uow(),
            actor=await scope.actor(),
            source_id=str(source_id),
            name=name,
            data=data,
        )
        return True

    @strawberry.mutation
    async def sync_source(self, info: Info[Any, Any], id: strawberry.ID) -> SyncRun:
        scope = ctx(info)
        run = await _need(scope.deps.sources).request_sync(
            uow=await scope.uow(), actor=await scope.actor(), source_id=str(id)
        )
        return SyncRun.of(run)

    @strawberry.mutation
    async def delete_source(self, info: Info[Any, Any], id: strawberry.ID) -> bool:
        scope = ctx(info)
        return await _need(scope.deps.sources).delete(
            uow=await scope.uow(), actor=await scope.actor(), source_id=str(id)
        )
