"""SQLAlchemy's aiosqlite adapter, with one thread round trip per statement instead of four.

aiosqlite runs each sqlite3 call on the connection's own thread and hands the result back
to the event loop. SQLAlchemy's adapter makes a separate call to open a cursor, to execute,
to fetch the rows and to close the cursor, and one more for a ``rollback`` whenever a
connection goes back to the pool (even after a commit, even after only reading). Each of
those round trips costs two thread switches, a GIL hand-off and an event-loop wake-up, and
under load it waits behind everything else the loop has to do. A chat turn ran ~150 of them;
while its writes held SQLite's single write lock, other turns queued behind those waits.

Here a statement is one call on the driver thread (cursor, execute, fetch all rows, close),
and the connection remembers whether sqlite3 has a transaction open, reported by that same
call, so a ``commit``/``rollback`` with nothing to end costs nothing. Everything else is
SQLAlchemy's adapter unchanged; the engine gets it through ``create_async_engine(module=)``.
"""

from __future__ import annotations

import collections
import sqlite3
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

_Outcome = tuple[Any, list[Any], int, Any, bool]  # description, rows, rowcount, lastrowid, in tx


def _run(conn: sqlite3.Connection, operation: str, parameters: Any, many: bool) -> _Outcome:
    """On the driver thread: the whole statement, rows included."""
    cursor = conn.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, rows, cursor.rowcount, cursor.lastrowid, conn.in_transaction
    finally:
        cursor.close()


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """A buffered cursor whose statements run in one driver-thread call."""

    __slots__ = ("_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: OneTripConnection) -> None:
        # No aiosqlite cursor is opened here (that was a round trip of its own).
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._soft_closed_memoized = EMPTY_DICT
        self._rows: collections.deque[Any] = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: Any = None

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> Any:
        return self._lastrowid

    @property
    def arraysize(self) -> int:
        return 1

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        return None  # rows are always fetched whole

    async def _async_soft_close(self) -> None:
        return None  # nothing is open on the driver thread between calls

    def close(self) -> None:
        self._rows.clear()

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        try:
            return await_(self._call(operation, parameters, many=False))
        except Exception as error:  # noqa: BLE001  # mapped to DBAPI errors by the adapter
            self._adapt_connection._handle_exception(error)

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        try:
            return await_(self._call(operation, seq_of_parameters, many=True))
        except Exception as error:  # noqa: BLE001  # mapped to DBAPI errors by the adapter
            self._adapt_connection._handle_exception(error)

    async def _call(self, operation: Any, parameters: Any, *, many: bool) -> None:
        adapt = self._adapt_connection
        async with adapt._execute_mutex:
            driver: aiosqlite.Connection = self._connection  # type: ignore[assignment]
            # ``_execute`` is how every aiosqlite method reaches its thread.
            outcome: _Outcome = await driver._execute(
                _run, driver._conn, operation, parameters, many
            )
        self._description, rows, self._rowcount, self._lastrowid, in_tx = outcome
        self._rows = collections.deque(rows)
        assert isinstance(adapt, OneTripConnection)
        adapt.in_transaction = in_tx


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ("in_transaction",)

    _cursor_cls = OneTripCursor

    def __init__(self, dbapi: Any, connection: Any) -> None:
        super().__init__(dbapi, connection)
        # As reported by sqlite3 after the last statement (pysqlite opens a transaction
        # implicitly before the first write; reads alone open none).
        self.in_transaction = False

    def commit(self) -> None:
        if self.in_transaction:
            super().commit()
            self.in_transaction = False

    def rollback(self) -> None:
        if self.in_transaction:
            try:
                super().rollback()
            finally:
                # If even the rollback failed, the pool discards the connection.
                self.in_transaction = False


class OneTripDbapi(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        adapted = super().connect(*arg, **kw)
        return OneTripConnection(self, adapted._connection)


def one_trip_dbapi() -> OneTripDbapi:
    return OneTripDbapi(aiosqlite, sqlite3)
