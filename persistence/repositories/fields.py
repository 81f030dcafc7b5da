"""Memory fields."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, select

from domain.entities import MemoryField
from persistence.session import Transaction
from persistence.tables.memories import memory_fields


def field_of_row(row: Any) -> MemoryField:
    return MemoryField(
        id=row.id,
        user_id=row.user_id,
        name=row.name,
        embedder=row.embedder,
        dimension=row.dimension,
        created_at=row.created_at,
        has_turns=row.turn_seq_next > 0,  # numbers are only ever handed out to turns
    )


# Built once (read by every search and chat turn), the ids one expanding parameter (an in_()
# of literals is rebuilt per call).
_BY_ID = select(memory_fields).where(
    memory_fields.c.id == bindparam("id"), memory_fields.c.user_id == bindparam("user_id")
)
_BY_IDS = select(memory_fields).where(
    memory_fields.c.id.in_(bindparam("ids", expanding=True)),
    memory_fields.c.user_id == bindparam("user_id"),
)


class SqlMemoryFieldRepository:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def add(self, field: MemoryField) -> None:
        await self._tx.write(
            memory_fields.insert().values(
                id=field.id,
                user_id=field.user_id,
                name=field.name,
                embedder=field.embedder,
                dimension=field.dimension,
                created_at=field.created_at,
            )
        )

    async def get(self, field_id: str, *, user_id: str) -> MemoryField | None:
        row = (await self._tx.read(_BY_ID, {"id": field_id, "user_id": user_id})).first()
        return field_of_row(row) if row else None

    async def by_name(self, name: str, *, user_id: str) -> MemoryField | None:
        stmt = select(memory_fields).where(
            memory_fields.c.name == name, memory_fields.c.user_id == user_id
        )
        row = (await self._tx.read(stmt)).first()
        return field_of_row(row) if row else None

    async def list(self, *, user_id: str) -> list[MemoryField]:
        stmt = (
            select(memory_fields)
            .where(memory_fields.c.user_id == user_id)
            .order_by(memory_fields.c.created_at, memory_fields.c.id)
        )
        return [field_of_row(r) for r in await self._tx.read(stmt)]

    async def get_many(
        self, field_ids: Sequence[str], *, user_id: str
    ) -> builtins.list[MemoryField]:  # `list` here is the method above
        if not field_ids:
            return []
        rows = await self._tx.read(_BY_IDS, {"ids": list(field_ids), "user_id": user_id})
        return [field_of_row(r) for r in rows]
