"""Root fields of data sources: connect (token or OAuth2), upload files, sync, delete."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import strawberry
from strawberry.types import Info

from domain.errors import BadUserInput
from graph.types.common import JSON, ctx
from graph.types.sources import ConnectSourcePayload, DataSource, SyncRun


@strawberry.type
class SourceQuery:
    @strawberry.field
    async def sources(self, info: Info[Any, Any]) -> list[DataSource]:
        scope = ctx(info)
        found = await scope.deps.sources.list(uow=await scope.uow(), actor=await scope.actor())
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
        run = await scope.deps.sources.sync_run(
            uow=await scope.uow(), actor=await scope.actor(), run_id=str(id)
        )
        return SyncRun.of(run)


@strawberry.type
class SourceMutation:
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
        source, oauth_url = await scope.deps.sources.create(
            uow=await scope.uow(), actor=await scope.actor(), kind=type, config=config, name=name
        )
        return ConnectSourcePayload(source=DataSource.of(source), oauth_url=oauth_url)

    @strawberry.mutation(name="completeSourceOAuth")
    async def complete_source_oauth(
        self, info: Info[Any, Any], code: str, state: str
    ) -> DataSource:
        """The OAuth callback as a mutation (the signed state names the user)."""
        scope = ctx(info)
        source = await scope.deps.sources.complete_oauth(
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
        await scope.deps.sources.upload_file(
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
        run = await scope.deps.sources.request_sync(
            uow=await scope.uow(), actor=await scope.actor(), source_id=str(id)
        )
        return SyncRun.of(run)

    @strawberry.mutation
    async def delete_source(self, info: Info[Any, Any], id: strawberry.ID) -> bool:
        scope = ctx(info)
        return await scope.deps.sources.delete(
            uow=await scope.uow(), actor=await scope.actor(), source_id=str(id)
        )
