"""SQL side of background maintenance: re-embedding fields (see domain.services.reembed)
and walking every user's fields for promotion sweeps."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import BigInteger, String, bindparam, func, select, tuple_

from domain.entities import MemoryField
from domain.ports import Vector
from domain.ports.memories import StoredText
from persistence.index_journal import IndexJournal
from persistence.repositories.fields import field_of_row
from persistence.session import Transaction
from persistence.tables.memories import memories, memory_fields
from persistence.types import UTCDateTime

# The re-embedder's walk: turn order (memories that are not turns sort first among equal
# times), so a turn is re-embedded after the turn before it and can lean on its new vector.
_SEQ = func.coalesce(memories.c.turn_seq, -1)
_WALK_ORDER = tuple_(memories.c.occurred_at, _SEQ, memories.c.id)
_PAGE_COLUMNS = [
    *(memories.c.id, memories.c.user_id, memories.c.content, memories.c.content_hash),
    *(memories.c.occurred_at, memories.c.turn_seq, _SEQ.label("seq")),
]


class SqlMaintenanceRepository:
    def __init__(self, tx: Transaction, journal: IndexJournal) -> None:
        self._tx = tx
        self._journal = journal

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

    async def page(self, *, field_id: str, after: str, limit: int) -> list[StoredText]:
        c = memories.c
        stmt = select(*_PAGE_COLUMNS).where(c.field_id == field_id)
        if after:
            at, seq, memory_id = after.split("|", 2)
            stmt = stmt.where(
                tuple_(
                    bindparam("at", datetime.fromisoformat(at), type_=UTCDateTime()),
                    bindparam("seq", int(seq), type_=BigInteger()),
                    bindparam("memory_id", memory_id, type_=String()),
                )
                < _WALK_ORDER
            )
        stmt = stmt.order_by(*_WALK_ORDER.clauses).limit(limit)
        return [
            StoredText(
                memory_id=r.id,
                user_id=r.user_id,
                content=r.content,
                content_hash=r.content_hash,
                occurred_at=r.occurred_at,
                is_turn=r.turn_seq is not None,
                cursor=f"{r.occurred_at.isoformat()}|{r.seq}|{r.id}",
            )
            for r in await self._tx.read(stmt)
        ]

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
        self._journal.dropped.add(field_id)  # every process's index of it starts over
        await self._tx.write(
            memory_fields.update()
            .where(memory_fields.c.id == field_id)
            .values(embedder=embedder, dimension=dimension)
        )
