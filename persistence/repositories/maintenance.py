"""SQL side of background maintenance: re-embedding fields (see domain.services.reembed)
and walking every user's fields for promotion sweeps."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, select

from domain.entities import MemoryField
from domain.ports import Vector
from persistence.repositories.fields import field_of_row
from persistence.session import Transaction
from persistence.tables.memories import memories, memory_fields


class SqlMaintenanceRepository:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def fields_after(self, *, after_id: str, limit: int) -> list[MemoryField]:
        stmt = (
            select(memory_fields)
            .where(memory_fields.c.id > after_id)
            .order_by(memory_fields.c.id)
            .limit(limit)
        )
        return [field_of_row(r) for r in await self._tx.read(stmt)]

    async def stale_fields(self, *, embedder: str, limit: int) -> list[MemoryField]:
        stmt = (
            select(memory_fields)
            .where(memory_fields.c.embedder != embedder)
            .order_by(memory_fields.c.id)
            .limit(limit)
        )
        return [field_of_row(r) for r in await self._tx.read(stmt)]

    async def page(self, *, field_id: str, after_id: str, limit: int) -> list[tuple[str, str, str]]:
        c = memories.c
        stmt = (
            select(c.id, c.content, c.content_hash)
            .where(c.field_id == field_id, c.id > after_id)
            .order_by(c.id)
            .limit(limit)
        )
        return [(r.id, r.content, r.content_hash) for r in await self._tx.read(stmt)]

    async def set_embeddings(self, rows: Sequence[tuple[str, str, Vector]]) -> None:
        if not rows:
            return
        c = memories.c
        # Not journalled for the in-process vector index: the field is not searched by
        # vector until it is switched over, and its index is rebuilt from these rows then.
        stmt = (
            memories.update()
            .where(c.id == bindparam("m_id"), c.content_hash == bindparam("m_hash"))
            .values(embedding=bindparam("m_vector", type_=c.embedding.type))
        )
        await self._tx.write(stmt, [{"m_id": i, "m_hash": h, "m_vector": v} for i, h, v in rows])

    async def set_field_embedder(self, field_id: str, *, embedder: str, dimension: int) -> None:
        await self._tx.write(
            memory_fields.update()
            .where(memory_fields.c.id == field_id)
            .values(embedder=embedder, dimension=dimension)
        )
