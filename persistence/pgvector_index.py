"""pgvector search for PostgreSQL mode: vectors live in the memory rows themselves.

The embedding column has no fixed dimension, so the HNSW index is a partial expression
index per dimension (``embedding::vector(D)`` where ``vector_dims(embedding) = D``, made by
migration 0002 for 384 and by :func:`ensure_hnsw_index` for others). Queries use the same
expression so the planner can choose it, and iterative index scans (pgvector >= 0.8) keep
scanning until enough rows pass the field and filter conditions, so a top-k is not emptied
by filtering.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sqlalchemy import Float, String, any_, bindparam, cast, func, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.ports import Vector
from persistence.session import Transaction
from persistence.tables.memories import memories

EF_SEARCH = 100


async def ensure_hnsw_index(engine: AsyncEngine, dimension: int) -> None:
    """Create the HNSW index for one dimension if missing (idempotent, autocommit)."""
    dimension = int(dimension)
    if not 0 < dimension <= 2000:  # pgvector's HNSW limit for `vector`
        return
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(
            text(
                f"CREATE INDEX IF NOT EXISTS ix_memories_hnsw_{dimension} ON memories "
                f"USING hnsw ((embedding::vector({dimension})) vector_cosine_ops) "
                f"WHERE vector_dims(embedding) = {dimension}"
            )
        )


class PgVectorIndex:
    """Runs on the unit of work's own transaction, so it sees that transaction's writes."""

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx
        self._tuned = False

    async def _tune(self) -> None:
        if not self._tuned:
            # SET LOCAL: only this transaction, so pooled connections are not changed.
            await self._tx.read(text("SET LOCAL hnsw.iterative_scan = relaxed_order"))
            await self._tx.read(text(f"SET LOCAL hnsw.ef_search = {EF_SEARCH}"))
            self._tuned = True

    async def search(
        self,
        *,
        field_id: str,
        vector: Vector,
        k: int,
        allowed: Sequence[str] | None = None,
    ) -> list[tuple[str, float]]:
        if allowed is not None and not allowed:
            return []
        # Imported here: pgvector is the `postgres` extra, and SQLite mode imports this module.
        from pgvector.sqlalchemy import Vector as PgVector

        await self._tune()
        query = np.asarray(vector, dtype=np.float32)
        dimension = int(query.shape[0])
        typed = cast(memories.c.embedding, PgVector(dimension))
        distance = typed.op("<=>", return_type=Float())(
            bindparam("query_vector", query, type_=PgVector(dimension))
        )
        stmt = select(memories.c.id, (1 - distance).label("score")).where(
            memories.c.field_id == field_id,
            func.vector_dims(memories.c.embedding) == dimension,
        )
        if allowed is not None:
            # One array parameter, however many ids (asyncpg caps bound parameters at 32k).
            ids = bindparam("allowed_ids", list(allowed), type_=ARRAY(String()))
            stmt = stmt.where(memories.c.id == any_(ids))
        # relaxed_order may return rows slightly out of order: sort the final k exactly.
        rows = await self._tx.read(stmt.order_by(distance).limit(k))
        hits = [(row.id, float(row.score)) for row in rows]
        hits.sort(key=lambda hit: -hit[1])
        return hits

    async def nearest(
        self, *, field_id: str, vectors: Sequence[Vector], k: int
    ) -> list[list[tuple[str, float]]]:
        return [await self.search(field_id=field_id, vector=v, k=k) for v in vectors]
