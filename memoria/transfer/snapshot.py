"""A read-only view of the whole database as of one moment, for an export to be consistent
(no memory without its field) while the server keeps writing."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncConnection

from persistence.database import Database


@contextlib.asynccontextmanager
async def snapshot(db: Database) -> AsyncIterator[AsyncConnection]:
    """A connection inside one read transaction. PostgreSQL: REPEATABLE READ, so every
    statement sees the same snapshot. SQLite: an explicit ``BEGIN`` (the driver opens no
    transaction for reads), so WAL keeps the snapshot of the first read for all later ones
    without blocking the writer."""
    async with db.engine.connect() as conn:
        if db.is_sqlite:
            await conn.exec_driver_sql("BEGIN")
        else:
            conn = await conn.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
        try:
            yield conn
        finally:
            await conn.rollback()
