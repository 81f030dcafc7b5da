"""The shared transaction handle repositories run their statements through."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import Executable
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult, Result
from sqlalchemy.ext.asyncio import AsyncConnection


class Transaction:
    """Serialises statements on one connection (resolvers run concurrently) and, on SQLite,
    takes the process-wide write lock before the first write so writers never collide."""

    def __init__(self, conn: AsyncConnection, write_lock: asyncio.Lock | None) -> None:
        self.conn = conn
        self._lock = asyncio.Lock()
        self._write_lock = write_lock
        self.holds_write_lock = False

    async def read(self, statement: Executable, params: Any = None) -> Result[Any]:
        async with self._lock:
            return await self.conn.execute(statement, params)

    async def write(self, statement: Executable, params: Any = None) -> CursorResult[Any]:
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


def upsert(tx: Transaction, table: Any) -> Any:
    """``INSERT ... ON CONFLICT`` in the connection's dialect (both support it)."""
    dialect = tx.conn.dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
