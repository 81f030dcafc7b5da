"""pgvector search for PostgreSQL mode: vectors live in the memory rows themselves."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sqlalchemy import Float, bindparam, select

from domain.ports import Vector
from persistence.session import Transaction
from persistence.tables import memories
from persistence.types import Embedding


class PgVectorIndex:
    """Runs on the unit of work's own transaction, so it sees that transaction's writes."""

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def search(
        self,
        *,
        field_id: str,
        vector: Vector,
        k: int,
        allowed: Sequence[str] | None = None,
    ) -> list[tuple[str, float]]:
        query = np.asarray(vector, dtype=np.float32)
        distance = memories.c.embedding.op("<=>", return_type=Float())(
            bindparam("query_vector", query, type_=Embedding())
        )
        stmt = select(memories.c.id, (1 - distance).label("score")).where(
            memories.c.field_id == field_id
        )
        if allowed is not None:
            stmt = stmt.where(memories.c.id.in_(list(allowed)))
        rows = await self._tx.read(stmt.order_by(distance).limit(k))
        return [(row.id, float(row.score)) for row in rows]
