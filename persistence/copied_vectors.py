"""PostgreSQL mode's vector search over a process's FAISS copies (persistence/memory_changes.py).

A field's copy is loaded on its first search in the process: seconds for 100,000 memories
(read, then the IVF structure trained). No search waits for it: until the copy is there,
pgvector answers, exactly as with ``MEMORIA_VECTOR_SEARCH=database``, and the copy loads in
the background.
"""

from __future__ import annotations

from collections.abc import Sequence

from domain.ports import Vector
from persistence.faiss_index import FaissStore
from persistence.pgvector_index import PgVectorIndex


class CopiedVectorIndex:
    """The ``VectorIndex`` port: the field's FAISS copy once loaded, pgvector until then."""

    def __init__(self, store: FaissStore, database: PgVectorIndex) -> None:
        self._store = store
        self._database = database

    def _copied(self, field_id: str, dimension: int) -> bool:
        if self._store.loaded(field_id) is not None:
            return True
        self._store.load_soon(field_id, dimension)
        return False

    async def search(
        self, *, field_id: str, vector: Vector, k: int, allowed: Sequence[str] | None = None
    ) -> list[tuple[str, float]]:
        index = self._store if self._copied(field_id, len(vector)) else self._database
        return await index.search(field_id=field_id, vector=vector, k=k, allowed=allowed)

    async def nearest(
        self, *, field_id: str, vectors: Sequence[Vector], k: int
    ) -> list[list[tuple[str, float]]]:
        if not vectors:
            return []
        index = self._store if self._copied(field_id, len(vectors[0])) else self._database
        return await index.nearest(field_id=field_id, vectors=vectors, k=k)
