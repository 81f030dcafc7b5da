"""Statistics of one user's store (GraphQL ``stats``, Senua and MemoryKit REST)."""

from __future__ import annotations

from domain.entities import Actor
from domain.ports import UnitOfWork
from domain.stats import Stats


class StatsService:
    async def get(self, *, uow: UnitOfWork, actor: Actor) -> Stats:
        """Counted from the store on every call, so deletes show at once."""
        return await uow.stats.stats(user_id=actor.user_id)
