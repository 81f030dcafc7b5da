"""Embedded mode's in-process indexes of single memory fields (keyword postings, turn
order), shared by every unit of work of the process and kept in step with committed writes.

The database stays the source of truth: whatever a store cannot answer, SQL does. A field's
index is built in the background the first time a search asks for it; until it is ready,
and for a transaction that has written memories itself, searches go to SQL. Changes of
committed transactions arrive through :meth:`FieldStore.apply`; those that commit while an
index is being built are kept and replayed onto it, so it misses nothing that committed
after its rows were read. Nothing is saved: a restart rebuilds on demand, off the event loop.

A store holds at most ``budget`` entries (memories or turns) over all its fields: past it,
the fields searched least recently are dropped and built again when next searched, so a
server with many users' fields does not grow without bound (the field just built is kept,
even alone past the budget; a budget of 0 builds nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Sequence, Sized
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from persistence.sqlite_driver import batching_transaction

log = logging.getLogger("memoria.field_store")

# Entries (a field's memories or turns) one store keeps over all its fields: about 0.3 KB
# of process memory each for keyword postings, 0.2 KB for the turn order.
DEFAULT_BUDGET = 4_000_000


IndexT = TypeVar("IndexT", bound=Sized)
ChangeT = TypeVar("ChangeT")


class FieldStore(Generic[IndexT, ChangeT]):
    """Indexes of fields by id. Subclasses say how an index is read from the database
    (:meth:`_read`, on the SQLite driver thread) and how one committed change applies to
    it (:meth:`_change`).

    Not thread-safe: indexes are changed and read on the event loop's thread only; a new
    one is built off it before anyone can see it."""

    what = "index"  # for the log

    def __init__(self, engine: AsyncEngine, *, budget: int = DEFAULT_BUDGET) -> None:
        self._engine = engine
        self.budget = budget
        # Ready indexes, least recently searched first (dicts keep insertion order).
        self._fields: dict[str, IndexT] = {}
        # Fields being built -> changes committed meanwhile, replayed onto the new index.
        self._pending: dict[str, list[ChangeT]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def _read(self, conn: sqlite3.Connection, field_id: str) -> IndexT:
        """The field's index from its committed rows, on the driver thread."""
        raise NotImplementedError

    async def _load(self, field_id: str) -> IndexT:
        """The field's index, read and built on the SQLite driver thread: the event loop
        never waits for it (for 100k rows its longest stall was 4 ms, against 212 ms with
        the rows streamed to the loop through SQLAlchemy)."""
        async with self._engine.connect() as conn:
            tx = await batching_transaction(conn)
            if tx is None:
                raise RuntimeError("in-process field indexes need embedded mode's SQLite driver")
            return await tx.call(self._read, field_id)

    def _change(self, field_id: str, index: IndexT, change: ChangeT) -> None:
        """Apply one committed change to a field's ready index."""
        raise NotImplementedError

    def get(self, field_id: str) -> IndexT | None:
        """The field's index if it is ready, else None (ask SQL instead)."""
        index = self._fields.pop(field_id, None)
        if index is not None:
            self._fields[field_id] = index  # now the most recently searched
        return index

    def build(self, field_id: str) -> None:
        """Start building the field's index in the background, unless it is under way (or
        the budget is 0: then SQL answers every search)."""
        if field_id in self._pending or self.budget <= 0:
            return
        # Changes committed from now on are kept for the new index: the rows it reads are
        # those committed before its read began, at the earliest after this point.
        self._pending[field_id] = []
        task = asyncio.get_running_loop().create_task(self._build(field_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _build(self, field_id: str) -> None:
        pending = self._pending[field_id]
        try:
            index = await self._load(field_id)
        except Exception:
            log.exception("%s of field %s not built: SQL answers", self.what, field_id)
            if self._pending.get(field_id) is pending:
                del self._pending[field_id]
            return
        if self._pending.get(field_id) is not pending:
            return  # forgotten meanwhile: these rows may predate a rewrite
        del self._pending[field_id]
        self._fields.pop(field_id, None)
        self._fields[field_id] = index
        for change in pending:
            self._change(field_id, index, change)
        log.info("%s of field %s built: %d entries", self.what, field_id, len(index))
        self._keep_within_budget(keep=field_id)

    def _keep_within_budget(self, *, keep: str) -> None:
        total = sum(len(index) for index in self._fields.values())
        for field_id in list(self._fields):
            if total <= self.budget:
                break
            if field_id != keep:
                total -= len(self._fields.pop(field_id))

    def apply(self, changes: Sequence[tuple[str, ChangeT]]) -> None:
        """A committed transaction's changes, as (field id, change)."""
        for field_id, change in changes:
            try:
                pending = self._pending.get(field_id)
                if pending is not None:
                    pending.append(change)
                index = self._fields.get(field_id)
                if index is not None:
                    self._change(field_id, index, change)
            except Exception:
                # The transaction has committed: a field whose index could not follow it is
                # dropped, and built again from the database on its next search.
                log.exception("%s of field %s dropped", self.what, field_id)
                self.forget(field_id)

    def forget(self, field_id: str) -> None:
        """Drop the field's index (its rows were rewritten outside the units of work)."""
        self._fields.pop(field_id, None)
        self._pending.pop(field_id, None)

    def tracks(self, field_id: str) -> bool:
        """Whether the field's index is kept or being built (changes to it matter here)."""
        return field_id in self._fields or field_id in self._pending

    def forget_all(self) -> None:
        """Drop every field's index, and the builds under way (changes may have been missed)."""
        self._fields.clear()
        self._pending.clear()

    async def settled(self) -> None:
        """Wait for the builds started so far."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
