"""FAISS vector indexes for embedded mode, one per memory field, rebuilt from SQLite.

The database is the source of truth: an index is loaded from the ``memories`` table the
first time a field is searched, and later changes arrive from committed transactions.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

import faiss
import numpy as np
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.ports import Vector
from persistence.tables import memories

# Below this size a search is cheaper inline than a hop to a worker thread.
_INLINE_SEARCH_MAX = 20_000


def faiss_id(memory_id: str) -> int:
    """A stable 63-bit id derived from the memory's UUID (FAISS ids are signed int64)."""
    return uuid.UUID(memory_id).int >> 65


class _FieldIndex:
    def __init__(self, dimension: int) -> None:
        self.index = faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
        self.ids: dict[int, str] = {}

    def upsert(self, memory_ids: Sequence[str], vectors: np.ndarray[Any, Any]) -> None:
        keys = np.fromiter((faiss_id(m) for m in memory_ids), dtype=np.int64, count=len(memory_ids))
        self.index.remove_ids(keys)
        self.index.add_with_ids(vectors, keys)
        self.ids.update(zip(keys.tolist(), memory_ids, strict=True))

    def delete(self, memory_ids: Sequence[str]) -> None:
        keys = np.fromiter((faiss_id(m) for m in memory_ids), dtype=np.int64, count=len(memory_ids))
        self.index.remove_ids(keys)
        for key in keys.tolist():
            self.ids.pop(key, None)

    def search(
        self, vector: np.ndarray[Any, Any], k: int, allowed: Sequence[str] | None
    ) -> list[tuple[str, float]]:
        if self.index.ntotal == 0:
            return []
        params = None
        if allowed is not None:
            keys = np.fromiter((faiss_id(m) for m in allowed), dtype=np.int64, count=len(allowed))
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(keys))
        k = min(k, self.index.ntotal)
        scores, keys_found = self.index.search(vector.reshape(1, -1), k, params=params)
        return [
            (self.ids[int(key)], float(score))
            for score, key in zip(scores[0], keys_found[0], strict=True)
            if key >= 0 and int(key) in self.ids
        ]


class FaissStore:
    """All fields' indexes of one process; shared by every unit of work."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._fields: dict[str, _FieldIndex] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, field_id: str) -> asyncio.Lock:
        return self._locks.setdefault(field_id, asyncio.Lock())

    async def _load(self, field_id: str, dimension: int) -> _FieldIndex:
        found = self._fields.get(field_id)
        if found is not None:
            return found
        async with self._lock(field_id):
            found = self._fields.get(field_id)
            if found is not None:
                return found
            stmt = select(memories.c.id, memories.c.embedding).where(
                memories.c.field_id == field_id
            )
            async with self._engine.connect() as conn:
                rows = list(await conn.execute(stmt))
            built = _FieldIndex(dimension)
            if rows:
                matrix = np.vstack([np.asarray(r.embedding, dtype=np.float32) for r in rows])
                built.upsert([r.id for r in rows], matrix)
            self._fields[field_id] = built
            return built

    async def search(
        self,
        *,
        field_id: str,
        vector: Vector,
        k: int,
        allowed: Sequence[str] | None = None,
    ) -> list[tuple[str, float]]:
        query = np.asarray(vector, dtype=np.float32)
        index = await self._load(field_id, int(query.shape[0]))
        if index.index.ntotal <= _INLINE_SEARCH_MAX:
            return index.search(query, k, allowed)
        return await asyncio.to_thread(index.search, query, k, allowed)

    async def apply(
        self, upserts: Sequence[tuple[str, str, Vector]], deletes: Sequence[tuple[str, str]]
    ) -> None:
        """Apply a committed transaction's vector changes to the indexes already loaded."""
        for field_id, memory_id in deletes:
            index = self._fields.get(field_id)
            if index is not None:
                async with self._lock(field_id):
                    index.delete([memory_id])
        by_field: dict[str, list[tuple[str, Vector]]] = {}
        for field_id, memory_id, vector in upserts:
            by_field.setdefault(field_id, []).append((memory_id, vector))
        for field_id, items in by_field.items():
            index = self._fields.get(field_id)
            if index is None:
                continue  # loaded from the database, with these rows, on first search
            async with self._lock(field_id):
                matrix = np.vstack([np.asarray(v, dtype=np.float32) for _, v in items])
                index.upsert([m for m, _ in items], matrix)

    def forget(self, field_id: str) -> None:
        self._fields.pop(field_id, None)


class FaissVectorIndex:
    """The ``VectorIndex`` port over the process-wide store (reads committed vectors)."""

    def __init__(self, store: FaissStore) -> None:
        self._store = store

    async def search(
        self,
        *,
        field_id: str,
        vector: Vector,
        k: int,
        allowed: Sequence[str] | None = None,
    ) -> list[tuple[str, float]]:
        return await self._store.search(field_id=field_id, vector=vector, k=k, allowed=allowed)
