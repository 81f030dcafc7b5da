"""A field's vectors read from the database into its in-process FAISS index
(:class:`~persistence.faiss_index.FaissStore`): the whole field, the rows a saved index
file may lack, or the rows other processes changed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.ports import Vector
from persistence.faiss_field import FieldIndex
from persistence.tables.memories import memories

log = logging.getLogger("memoria.faiss")

# Rows stamped this long before a save may have committed after it: re-applied on load.
CATCH_UP_MARGIN = timedelta(minutes=10)
_CHUNK = 20_000


class VectorRows:
    """Reads vectors through ``engine``; ``vectors`` is the vector column as read
    (PostgreSQL: pgvector's binary form, see ``persistence.types.SentVector``). Rows of
    another dimension than the index's (a field being re-embedded) are skipped: they are
    not searched by vector until the field switches over, and its index is rebuilt then."""

    def __init__(self, engine: AsyncEngine, vectors: ColumnElement[Any]) -> None:
        self._engine = engine
        self._vectors = vectors.label("embedding")

    @property
    def column(self) -> ColumnElement[Any]:
        """The vector column as read here (labelled ``embedding``), for a caller that reads
        vectors beside other columns in one statement."""
        return self._vectors

    async def _stream(self, stmt: Any) -> AsyncIterator[list[Any]]:
        async with self._engine.connect() as conn:
            result = await conn.stream(stmt)
            async for chunk in result.partitions(_CHUNK):
                yield list(chunk)

    async def _add(self, index: FieldIndex, stmt: Any) -> None:
        async for rows in self._stream(stmt):
            kept = [r for r in rows if len(r.embedding) == index.dimension]
            if not kept:
                continue
            matrix = np.vstack([np.asarray(r.embedding, dtype=np.float32) for r in kept])
            await asyncio.to_thread(index.upsert, [r.id for r in kept], matrix)

    async def fill(self, index: FieldIndex, field_id: str) -> None:
        """Every vector of the field."""
        c = memories.c
        await self._add(index, select(c.id, self._vectors).where(c.field_id == field_id))

    async def catch_up(self, index: FieldIndex, field_id: str, *, saved_at: datetime) -> None:
        """Bring an index saved at ``saved_at`` up to the database: rows changed since
        shortly before are applied again, and if the counts still differ (a crash between
        commit and save, a delete) ids are reconciled one by one."""
        c = memories.c
        since = saved_at - CATCH_UP_MARGIN
        changed = select(c.id, self._vectors).where(c.field_id == field_id, c.updated_at >= since)
        await self._add(index, changed)
        async with self._engine.connect() as conn:
            count = select(func.count()).select_from(memories).where(c.field_id == field_id)
            if int((await conn.execute(count)).scalar_one()) == index.size:
                return
        db_ids: set[str] = set()
        async for rows in self._stream(select(c.id).where(c.field_id == field_id)):
            db_ids.update(r.id for r in rows)
        gone = [m for m in index.ids.values() if m not in db_ids]
        if gone:
            await asyncio.to_thread(index.delete, gone)
        missing = list(db_ids - set(index.ids.values()))
        for start in range(0, len(missing), _CHUNK):
            part = missing[start : start + _CHUNK]
            await self._add(index, select(c.id, self._vectors).where(c.id.in_(part)))
        log.info("vector index of field %s reconciled: -%d +%d", field_id, len(gone), len(missing))

    async def read(self, field_id: str, memory_ids: list[str], dimension: int) -> dict[str, Vector]:
        """The vectors of those of ``memory_ids`` the field holds now, at ``dimension``."""
        found: dict[str, Vector] = {}
        c = memories.c
        for start in range(0, len(memory_ids), _CHUNK):
            part = memory_ids[start : start + _CHUNK]
            stmt = select(c.id, self._vectors).where(c.field_id == field_id, c.id.in_(part))
            async for rows in self._stream(stmt):
                found.update((r.id, r.embedding) for r in rows if len(r.embedding) == dimension)
        return found
