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

**Deferred inserts, one round trip per write transaction.** SQLite has one writer, and the
process-wide write lock (``Database.write_lock``) is held from a transaction's first write to
its COMMIT. With every statement a round trip through a busy event loop, a chat turn held it
across four awaits (~35 ms each under load) and turns queued behind it. Now the lock is taken
here, by the driver, only around the call that opens the write transaction, and a connection
in ``defer_inserts`` mode (set by the unit of work around plain INSERTs, whose results nobody
reads: no RETURNING, rowcount -1 as DB-API allows) queues them instead of running them. The
queue runs on the driver thread together with the next statement that needs a result, or
with COMMIT: a turn's ``INSERT, INSERT, COMMIT`` is one call, and the lock is held for that
one call. A statement marked ``independent`` (a read of tables the queue does not write, e.g.
the webhook outbox's subscription lookup) runs without flushing the queue. Errors of queued
inserts (constraint violations) surface at that later statement or at COMMIT, as
DB-API errors like any other.
"""

from __future__ import annotations

import asyncio
import collections
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

import aiosqlite
from sqlalchemy import Executable
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.engine import CursorResult, Result
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

from persistence.session import Transaction

_Outcome = tuple[Any, list[Any], int, Any, bool]  # description, rows, rowcount, lastrowid, in tx
_Statement = tuple[str, Any, bool]  # operation, parameters, executemany
_T = TypeVar("_T")


def _execute(cursor: sqlite3.Cursor, operation: str, parameters: Any, many: bool) -> None:
    if many:
        cursor.executemany(operation, parameters)
    elif parameters is None:
        cursor.execute(operation)
    else:
        cursor.execute(operation, parameters)


def _run(
    conn: sqlite3.Connection,
    pending: list[_Statement],
    statement: _Statement | None,
    commit: bool,
) -> _Outcome:
    """On the driver thread: the queued inserts, then the statement (rows included) or the
    COMMIT, in one call."""
    cursor = conn.cursor()
    try:
        for queued in pending:
            _execute(cursor, *queued)
        description, rows, rowcount, lastrowid = None, [], -1, None
        if statement is not None:
            _execute(cursor, *statement)
            description = cursor.description
            rows = cursor.fetchall() if description else []
            rowcount, lastrowid = cursor.rowcount, cursor.lastrowid
        if commit:
            conn.commit()
        return description, rows, rowcount, lastrowid, conn.in_transaction
    except BaseException:
        if commit:  # a failed COMMIT (or queued insert before it) ends the transaction
            conn.rollback()
        raise
    finally:
        cursor.close()


def _call_with(
    conn: sqlite3.Connection,
    pending: list[_Statement],
    function: Callable[..., _T],
    args: tuple[Any, ...],
) -> tuple[_T, bool]:
    """On the driver thread: the queued inserts, then ``function(conn, *args)``."""
    if pending:
        cursor = conn.cursor()
        try:
            for queued in pending:
                _execute(cursor, *queued)
        finally:
            cursor.close()
    return function(conn, *args), conn.in_transaction


_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")  # pysqlite opens a transaction before these


def _opens_write(operation: str) -> bool:
    return operation.lstrip()[:7].upper().startswith(_WRITES)


def _deferrable(operation: str) -> bool:
    head = operation.lstrip()
    return head[:6].upper() == "INSERT" and "RETURNING" not in head.upper()


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
        assert isinstance(adapt, OneTripConnection)
        if adapt.defer_inserts and _deferrable(operation):
            adapt.pending.append((operation, parameters, many))
            self._description, self._rowcount, self._lastrowid = None, -1, None
            self._rows = collections.deque()
            return
        independent, adapt.independent = adapt.independent, False
        pending: list[_Statement] = []
        if not independent:
            pending, adapt.pending = adapt.pending, []
            if pending or _opens_write(operation):
                await adapt.take_write_lock()
        outcome = await adapt.run(pending, (operation, parameters, many), commit=False)
        self._description, rows, self._rowcount, self._lastrowid, _ = outcome
        self._rows = collections.deque(rows)


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = (
        "defer_inserts",
        "holds_write_lock",
        "in_transaction",
        "independent",
        "pending",
        "write_lock",
    )

    _cursor_cls = OneTripCursor  # type: ignore[assignment]  # SQLAlchemy's stubs name the base class only

    def __init__(self, dbapi: Any, connection: Any, write_lock: asyncio.Lock | None = None) -> None:
        super().__init__(dbapi, connection)
        self.write_lock = write_lock
        # As reported by sqlite3 after the last statement (pysqlite opens a transaction
        # implicitly before the first write; reads alone open none).
        self.in_transaction = False
        self.holds_write_lock = False
        self.defer_inserts = False  # queue plain INSERTs (see the module docstring)
        self.independent = False  # the next statement does not need the queue flushed
        self.pending: list[_Statement] = []

    async def take_write_lock(self) -> None:
        if self.write_lock is not None and not self.holds_write_lock and not self.in_transaction:
            await self.write_lock.acquire()
            self.holds_write_lock = True

    def _release_write_lock(self) -> None:
        if self.holds_write_lock:
            self.holds_write_lock = False
            assert self.write_lock is not None
            self.write_lock.release()

    async def run(
        self, pending: list[_Statement], statement: _Statement | None, *, commit: bool
    ) -> _Outcome:
        driver: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        try:
            async with self._execute_mutex:
                # ``_execute`` is how every aiosqlite method reaches its thread.
                outcome: _Outcome = await driver._execute(  # type: ignore[no-untyped-call]  # aiosqlite's private entry point is unannotated
                    _run, driver._conn, pending, statement, commit
                )
        except BaseException:
            if commit:  # rolled back on the driver thread (see _run)
                self.in_transaction = False
                self._release_write_lock()
            else:  # unknown how far it got: let the rollback that follows really roll back
                self.in_transaction = self.in_transaction or bool(pending) or self.holds_write_lock
            raise
        self.in_transaction = outcome[4]
        if not self.in_transaction and not commit:
            self._release_write_lock()  # e.g. a statement that failed before writing
        return outcome

    async def call(self, function: Callable[..., _T], *args: Any) -> _T:
        """``function(connection, *args)`` on the driver thread, in one round trip, after
        the queued inserts (a read that must see them); for reads only."""
        pending, self.pending = self.pending, []
        if pending:
            await self.take_write_lock()
        driver: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        try:
            async with self._execute_mutex:
                result, in_transaction = await driver._execute(  # type: ignore[no-untyped-call]  # aiosqlite's private entry point is unannotated
                    _call_with, driver._conn, pending, function, args
                )
        except BaseException:
            # Unknown how far the queue got: let the rollback that follows really roll back.
            self.in_transaction = self.in_transaction or bool(pending) or self.holds_write_lock
            raise
        self.in_transaction = in_transaction
        if not self.in_transaction:
            self._release_write_lock()
        return result  # type: ignore[no-any-return]  # aiosqlite returns Any

    def commit(self) -> None:
        pending, self.pending = self.pending, []
        if not (pending or self.in_transaction):
            self._release_write_lock()
            return
        try:
            await_(self._commit(pending))
        except Exception as error:  # noqa: BLE001  # mapped to DBAPI errors by the adapter
            self._handle_exception(error)

    async def _commit(self, pending: list[_Statement]) -> None:
        if pending:
            await self.take_write_lock()
        await self.run(pending, None, commit=True)
        self._release_write_lock()

    def rollback(self) -> None:
        self.pending = []
        if self.in_transaction:
            try:
                super().rollback()
            finally:
                # If even the rollback failed, the pool discards the connection.
                self.in_transaction = False
                self._release_write_lock()
        else:
            self._release_write_lock()

    def close(self) -> None:
        self.pending = []
        try:
            super().close()
        finally:
            self.in_transaction = False
            self._release_write_lock()


class OneTripDbapi(AsyncAdapt_aiosqlite_dbapi):
    def __init__(self, *args: Any, write_lock: asyncio.Lock | None = None) -> None:
        super().__init__(*args)
        self.write_lock = write_lock

    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        adapted = super().connect(*arg, **kw)
        return OneTripConnection(self, adapted._connection, self.write_lock)


def one_trip_dbapi(write_lock: asyncio.Lock | None = None) -> OneTripDbapi:
    """The adapter; with ``write_lock``, every write transaction holds it from its first
    write (or its flushed queue) to COMMIT/ROLLBACK: SQLite's one writer, serialised
    in-process so writers never meet ``SQLITE_BUSY``."""
    return OneTripDbapi(aiosqlite, sqlite3, write_lock=write_lock)


def _table_of(statement: Executable) -> str:
    """The table a write names, "?" when unknown. A claim run as a write (a worker's
    ``SELECT`` that must hold the write lock) is named by its one FROM table: as "?" it
    counted as a write to any table, and every worker poll dropped every table cache."""
    table = getattr(statement, "table", None)
    if table is None:
        froms = getattr(statement, "get_final_froms", None)
        found = froms() if callable(froms) else []
        table = found[0] if len(found) == 1 else None
    return str(getattr(table, "name", "?"))


class BatchingTransaction(Transaction):
    """A unit of work's transaction on this adapter: its plain INSERTs are queued on the
    connection (see the module docstring) and the write lock is the driver's business."""

    def __init__(self, conn: AsyncConnection, driver: OneTripConnection) -> None:
        super().__init__(conn, None)
        self._driver = driver
        # Names of the tables written ("?" for a statement without one): caches of table
        # contents (the webhook outbox's) are dropped when such a transaction commits.
        self.written_tables: set[str] = set()
        self.caches: Any = None  # set by the unit of work (persistence/database.py)

    @property
    def wrote_memories(self) -> bool:
        """Whether this transaction wrote memories (or ran a textual statement, which may
        have): caches of committed memories do not hold its rows."""
        return bool(self.written_tables & {"memories", "?"})

    async def write(self, statement: Executable, params: Any = None) -> CursorResult[Any]:
        self.wrote = True
        table = _table_of(statement)
        if table not in self.written_tables:
            self.written_tables.add(table)
            if self.caches is not None:
                self.caches.writing(self, table)
        async with self._lock:
            self._driver.defer_inserts = True
            try:
                result = await self.conn.execute(statement, params)
            finally:
                self._driver.defer_inserts = False
        return result  # type: ignore[return-value,unused-ignore]  # CursorResult for DML; stubs differ by version

    async def call(self, function: Callable[..., _T], *args: Any) -> _T:
        """Run ``function(sqlite3_connection, *args)`` on the driver thread, inside this
        transaction (after its queued inserts), in one round trip: a read made of several
        statements (a search's) costs one hand-off instead of one per statement, and no
        SQLAlchemy statement or row processing. ``function`` must only read, and gets plain
        sqlite3 values (DATETIME columns as text)."""
        async with self._lock:
            return await self._driver.call(function, *args)

    async def read_beside_writes(
        self, statement: Executable, *, tables: tuple[str, ...], params: Any = None
    ) -> Result[Any]:
        """A read of ``tables`` only: unless an insert into one of them is queued, it runs at
        once, without the queued inserts (so without taking the write lock)."""
        prefixes = tuple(f"INSERT INTO {name} " for name in tables)
        if any(op.lstrip().startswith(prefixes) for op, _, _ in self._driver.pending):
            return await self.read(statement, params)
        async with self._lock:
            self._driver.independent = True
            try:
                return await self.conn.execute(statement, params)
            finally:
                self._driver.independent = False


async def batching_transaction(conn: AsyncConnection) -> BatchingTransaction | None:
    """A :class:`BatchingTransaction` if ``conn`` runs on this adapter, else None."""
    raw = await conn.get_raw_connection()
    driver = raw.dbapi_connection
    return BatchingTransaction(conn, driver) if isinstance(driver, OneTripConnection) else None
