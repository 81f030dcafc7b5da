"""Quota usage per user: conversations, messages and stored bytes, counted in SQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from domain.usage import QuotaUsage
from persistence.session import Transaction
from persistence.tables.conversations import blobs, conversations, messages
from persistence.tables.memories import memories


class SqlUsageReader:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def quota_usage(self, *, user_id: str) -> QuotaUsage:
        def total(table: Any, column: Any) -> Any:
            return (
                select(func.coalesce(func.sum(column), 0))
                .where(table.c.user_id == user_id)
                .scalar_subquery()
            )

        stmt = select(
            select(func.count())
            .select_from(conversations)
            .where(conversations.c.user_id == user_id)
            .scalar_subquery(),
            select(func.count())
            .select_from(messages)
            .where(messages.c.user_id == user_id)
            .scalar_subquery(),
            total(memories, func.length(memories.c.content)),
            total(messages, func.length(messages.c.content)),
            total(blobs, blobs.c.size),
        )
        values = list((await self._tx.read(stmt)).one())
        conversation_count, message_count, *sizes = (int(v) for v in values)
        return QuotaUsage(
            conversations=conversation_count, messages=message_count, storage_bytes=sum(sizes)
        )
