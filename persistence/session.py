"""The shared transaction handle repositories run their statements through."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import Executable
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult, Result
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


class Transaction:
    """Serialises statements on one connection (resolvers run concurrently) and, on SQLite,
    takes the process-wide write lock before the first write so writers never collide."""

    def __init__(self, conn: AsyncConnection, write_lock: asyncio.Lock | None) -> None:
        self.conn = conn
        self._lock = asyncio.Lock()
        self._write_lock = write_lock
        self.holds_write_lock = False
        self.wrote = False  # any write yet: then only this transaction sees everything

    async def read(self, statement: Executable, params: Any = None) -> Result[Any]:
        async with self._lock:
            return await self.conn.execute(statement, params)

    async def write(self, statement: Executable, params: Any = None) -> CursorResult[Any]:
        self.wrote = True
        if self._write_lock is not None and not self.holds_write_lock:
            await self._write_lock.acquire()
            self.holds_write_lock = True
        async with self._lock:
            result = await self.conn.execute(statement, params)
        return result  # type: ignore[return-value,unused-ignore]  # CursorResult for DML; stubs differ by version

    def release(self) -> None:
        if self.holds_write_lock and self._write_lock is not None:
            self._write_lock.release()
            self.holds_write_lock = False


class BesideReads:
    """Connections of their own for reads a read-only transaction can make beside its
    statements (PostgreSQL: a search's keyword statement runs while its vector search does,
    on another backend, instead of after it on the transaction's connection). A pool apart,
    taken only when a connection is free: a request never waits for one, so requests holding
    every connection cannot wait on each other."""

    def __init__(self, engine: AsyncEngine, slots: int) -> None:
        self.engine = engine
        self._free = asyncio.Semaphore(slots)

    async def read(self, tx: Transaction, statement: Executable, params: Any = None) -> Result[Any]:
        """``statement`` on a connection of its own if ``tx`` has written nothing (under READ
        COMMITTED it then sees what ``tx`` would) and one is free; else on ``tx``."""
        if tx.wrote or self._free.locked():
            return await tx.read(statement, params)
        async with self._free, self.engine.connect() as conn:
            result = await conn.execute(statement, params)
            # Rows are read before the connection goes back to the pool.
            rows: Result[Any] = result.freeze()()
            return rows


def upsert(tx: Transaction, table: Any) -> Any:
    """``INSERT ... ON CONFLICT`` in the connection's dialect (both support it)."""
    dialect = tx.conn.dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
