"""Root fields of procedural memory: patterns, their history, deleting one."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from graph.types.common import PageInfo, ctx, decode_cursor, encode_cursor
from graph.types.patterns import Pattern, PatternChange, PatternConnection, PatternEdge


@strawberry.type
class PatternQuery:
    @strawberry.field
    async def patterns(
        self, info: Info[Any, Any], first: int = 20, after: str | None = None
    ) -> PatternConnection:
        scope = ctx(info)
        items, more, total = await scope.deps.patterns.page(
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
        changes = await scope.deps.patterns.history(
            uow=await scope.uow(), actor=await scope.actor(), pattern_id=str(id)
        )
        return [PatternChange.of(c) for c in changes]


@strawberry.type
class PatternMutation:
    @strawberry.mutation
    async def delete_pattern(self, info: Info[Any, Any], id: strawberry.ID) -> bool:
        scope = ctx(info)
        return await scope.deps.patterns.delete(
            uow=await scope.uow(), actor=await scope.actor(), pattern_id=str(id)
        )
