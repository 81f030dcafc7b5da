"""Root query fields."""

from __future__ import annotations

from typing import Annotated, Any

import strawberry
from strawberry.types import Info

from graph.types.common import Health, PageInfo, ctx, decode_cursor, encode_cursor
from graph.types.conversations import Conversation, ConversationConnection, ConversationEdge
from graph.types.memories import Memory, MemoryChange, MemoryField, MemoryFilter, MemoryHit
from graph.types.users import ApiKey, User


@strawberry.type
class Query:
    @strawberry.field
    async def me(self, info: Info[Any, Any]) -> User:
        scope = ctx(info)
        user = await scope.deps.auth.me(uow=await scope.uow(), actor=await scope.actor())
        return User.of(user)

    @strawberry.field
    async def api_keys(self, info: Info[Any, Any]) -> list[ApiKey]:
        scope = ctx(info)
        keys = await scope.deps.auth.list_api_keys(uow=await scope.uow(), actor=await scope.actor())
        return [ApiKey.of(k) for k in keys]

    @strawberry.field
    async def memory_fields(self, info: Info[Any, Any]) -> list[MemoryField]:
        scope = ctx(info)
        fields = await scope.deps.fields.list(uow=await scope.uow(), actor=await scope.actor())
        return [MemoryField.of(f) for f in fields]

    @strawberry.field
    async def memory_field(self, info: Info[Any, Any], id: strawberry.ID) -> MemoryField | None:
        scope = ctx(info)
        field = await scope.deps.fields.get(
            uow=await scope.uow(), actor=await scope.actor(), field_id=str(id)
        )
        return MemoryField.of(field)

    @strawberry.field
    async def memory(self, info: Info[Any, Any], id: strawberry.ID) -> Memory | None:
        scope = ctx(info)
        memory = await scope.deps.memories.get(
            uow=await scope.uow(), actor=await scope.actor(), memory_id=str(id)
        )
        return Memory.of(memory)

    @strawberry.field
    async def memory_history(self, info: Info[Any, Any], id: strawberry.ID) -> list[MemoryChange]:
        scope = ctx(info)
        changes = await scope.deps.memories.history(
            uow=await scope.uow(), actor=await scope.actor(), memory_id=str(id)
        )
        return [MemoryChange.of(c) for c in changes]

    @strawberry.field(
        description=(
            "Hybrid search in one field (fieldId or namespace) or, with neither, in all of "
            "the caller's fields together."
        )
    )
    async def search_memories(
        self,
        info: Info[Any, Any],
        query: str,
        field_id: Annotated[
            strawberry.ID | None,
            strawberry.argument(description="The field to search (or give namespace)."),
        ] = None,
        namespace: Annotated[
            str | None, strawberry.argument(description="A field named so; never created here.")
        ] = None,
        top_k: int = 10,
        filter: MemoryFilter | None = None,
    ) -> list[MemoryHit]:
        scope = ctx(info)
        uow, actor = await scope.uow(), await scope.actor()
        if field_id is not None:
            field_ids = [str(field_id)]
        elif namespace is not None:
            field = await scope.deps.fields.by_namespace(uow=uow, actor=actor, namespace=namespace)
            field_ids = [field.id]
        else:
            field_ids = [f.id for f in await scope.deps.fields.list(uow=uow, actor=actor)]
        hits = await scope.deps.memories.search(
            uow=uow,
            actor=actor,
            field_ids=field_ids,
            query=query,
            top_k=top_k,
            filter=filter.to_filter() if filter else None,
        )
        return [MemoryHit(memory=Memory.of(h.memory), score=h.score, reason=h.reason) for h in hits]

    @strawberry.field
    async def conversations(
        self, info: Info[Any, Any], first: int = 20, after: str | None = None
    ) -> ConversationConnection:
        scope = ctx(info)
        items, more, total = await scope.deps.conversations.page(
            uow=await scope.uow(),
            actor=await scope.actor(),
            first=first,
            after=decode_cursor("conversation", after),
        )
        edges = [
            ConversationEdge(cursor=encode_cursor("conversation", c.id), node=Conversation.of(c))
            for c in items
        ]
        return ConversationConnection(
            edges=edges,
            page_info=PageInfo(has_next_page=more, end_cursor=edges[-1].cursor if edges else None),
            total_count=total,
        )

    @strawberry.field
    async def conversation(self, info: Info[Any, Any], id: strawberry.ID) -> Conversation | None:
        scope = ctx(info)
        found = await scope.deps.conversations.get(
            uow=await scope.uow(), actor=await scope.actor(), conversation_id=str(id)
        )
        return Conversation.of(found)

    @strawberry.field
    async def health(self, info: Info[Any, Any]) -> Health:
        scope = ctx(info)
        report = await scope.deps.health()
        return Health(
            status=str(report["status"]),
            database=str(report["database"]),
            version=scope.deps.version,
        )
