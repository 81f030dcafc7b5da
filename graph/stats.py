"""Root field of per-user statistics."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from graph.types.common import ctx
from graph.types.stats import Stats


@strawberry.type
class StatsQuery:
    @strawberry.field
    async def stats(self, info: Info[Any, Any]) -> Stats:
        scope = ctx(info)
        found = await scope.deps.stats.get(uow=await scope.uow(), actor=await scope.actor())
        return Stats.of(found)
