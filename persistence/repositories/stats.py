"""Per-user statistics, counted with GROUP BY queries over the live tables."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, func, select

from domain.stats import Stats
from persistence.session import Transaction
from persistence.tables.conversations import conversations, messages
from persistence.tables.memories import memories
from persistence.tables.patterns import patterns
from persistence.tables.sources import data_sources


class SqlStatsQuery:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def _grouped(self, column: str, user_id: str) -> dict[str, int]:
        col = memories.c[column]
        stmt: Any = select(col, func.count()).where(memories.c.user_id == user_id).group_by(col)
        rows: Any = await self._tx.read(stmt)
        return {str(key): int(count) for key, count in rows}

    async def _count(self, table: Table, user_id: str, *conditions: Any) -> int:
        stmt = select(func.count()).select_from(table).where(table.c.user_id == user_id)
        for condition in conditions:
            stmt = stmt.where(condition)
        return int((await self._tx.read(stmt)).scalar_one())

    async def stats(self, *, user_id: str) -> Stats:
        by_layer = await self._grouped("layer", user_id)
        by_source = await self._grouped("source", user_id)
        by_kind = await self._grouped("kind", user_id)
        by_field = await self._grouped("field_id", user_id)
        last_sync = (
            await self._tx.read(
                select(func.max(data_sources.c.last_sync_at)).where(
                    data_sources.c.user_id == user_id
                )
            )
        ).scalar_one()
        return Stats(
            total_memories=sum(by_layer.values()),
            short_term=by_layer.get("short_term", 0),
            long_term=by_layer.get("long_term", 0),
            by_source=by_source,
            by_kind=by_kind,
            by_field=by_field,
            conversation_count=await self._count(conversations, user_id),
            message_count=await self._count(messages, user_id),
            pattern_count=await self._count(patterns, user_id, patterns.c.status == "active"),
            source_count=await self._count(data_sources, user_id),
            last_sync=last_sync,
        )
