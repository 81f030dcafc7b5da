"""Rebuilding the search indexes from the database, which is their source of truth.

Embedded mode: FAISS files (one per field, a cache, see persistence/faiss_index.py) and the
FTS5 table ``memories_fts``. PostgreSQL: the HNSW and GIN indexes PostgreSQL maintains row
by row; ``REINDEX`` rebuilds them (from scratch, e.g. after a crash on unlogged storage or
heavy churn has degraded HNSW).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from sqlalchemy import select, text

from domain.services.reembed import ReembedService
from persistence.database import Database
from persistence.pgvector_index import ensure_hnsw_index
from persistence.tables.memories import memory_fields

log = logging.getLogger("memoria.reindex")


async def rebuild_vector_index(db: Database, field_id: str) -> None:
    """Embedded mode: drop the field's FAISS index (memory and file), build it again from
    the database now and save it, so the server's first search does not pay for it."""
    store = db.faiss
    if store is None or not db.is_sqlite:
        # PostgreSQL: vectors are indexed inside the rows' table, and the servers' copies
        # follow the import's commits (memoria/transfer/unit_of_work.py).
        return
    async with db.engine.connect() as conn:
        dimension = (
            await conn.execute(
                select(memory_fields.c.dimension).where(memory_fields.c.id == field_id)
            )
        ).scalar_one_or_none()
    store.forget(field_id)
    if dimension is None:
        return  # the field is gone: its file went with forget()
    # Any search loads the index, building it from the database when there is no file.
    await store.nearest(field_id=field_id, vectors=[[0.0] * int(dimension)], k=1)
    await store.settled()
    await store.save()


async def rebuild_lexical_index(db: Database) -> None:
    """FTS5's own ``rebuild`` (re-reads every row) or PostgreSQL's ``REINDEX`` of the
    full-text GIN index and every HNSW index (one per dimension)."""
    if db.is_sqlite:
        async with db.engine.begin() as conn:
            await conn.execute(text("INSERT INTO memories_fts(memories_fts) VALUES ('rebuild')"))
        return
    async with db.engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        names = [
            row.indexname
            for row in await conn.execute(
                text(
                    "SELECT indexname FROM pg_indexes WHERE tablename = 'memories' "
                    "AND (indexname LIKE 'ix_memories_hnsw_%' "
                    "OR indexname = 'ix_memories_content_tsv')"
                )
            )
        ]
        for name in names:
            log.info("REINDEX %s", name)
            # Names come from the catalogue, quoted as identifiers.
            await conn.execute(text(f'REINDEX INDEX "{name}"'))


@contextlib.asynccontextmanager
async def hnsw_deferred(db: Database, dimension: int) -> AsyncIterator[None]:
    """PostgreSQL: without the HNSW index of ``dimension`` for the duration, then with it
    built once from all rows. Maintaining HNSW row by row is what limits a bulk import
    (~150 rows/s on 2 cores at 384 dimensions); a single build afterwards is far cheaper.
    Vector searches meanwhile scan instead. If the process dies before the end, the
    server's start-up (or ``memoria reindex``) creates the index again."""
    if db.is_sqlite:
        yield
        return
    name = f"ix_memories_hnsw_{int(dimension)}"
    async with db.engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f'DROP INDEX IF EXISTS "{name}"'))
    try:
        yield
    finally:
        log.info("building %s", name)
        await ensure_hnsw_index(db.engine, dimension)


async def reembed_field(db: Database, service: ReembedService, field_id: str) -> int:
    """Re-embed every memory of the field with the service's embedder, a page per
    transaction (as the server's start-up re-embedder does); returns how many."""
    cursor: str | None = ""
    total = 0
    while cursor is not None:
        async with db.unit_of_work() as uow:
            step = await service.step(uow=uow, field_id=field_id, after=cursor)
            await uow.commit()
        cursor, total = step.cursor, total + step.embedded
    return total
