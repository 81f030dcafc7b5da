"""Embedded mode's in-process keyword indexes: one :class:`~persistence.term_index.FieldTerms`
per large memory field, shared by every unit of work of the process.

The database stays the source of truth (FTS5 is kept in sync by triggers and answers
whatever this store cannot). An index is built in the background from the field's rows the
first time a search finds the field large enough (``BUILD_FROM``); until it is ready, and for
a transaction that has written memories itself, searches go to FTS5. Changes of committed
transactions arrive through :meth:`TermStore.apply`, as the vector index's do; those that
commit while an index is being built are kept and replayed onto it, so it misses nothing
that committed after the rows were read. Nothing is saved: a restart rebuilds on demand
(~25 µs a memory, off the event loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from persistence.tables.memories import memories
from persistence.term_index import FieldTerms

log = logging.getLogger("memoria.terms")

# Fields this large are searched from memory: below it FTS5 ranks every match in a few
# milliseconds, and an index per small field would cost memory for little.
BUILD_FROM = 200
# An index whose removed memories outnumber its live ones is built again.
_REBUILD_WASTE = 1.0
_LOAD_CHUNK = 20_000


class TermStore:
    """All large fields' keyword indexes of one process (embedded mode only: another
    process's writes would never reach them). ``build_from``: the smallest field indexed."""

    def __init__(self, engine: AsyncEngine, *, build_from: int = BUILD_FROM) -> None:
        self._engine = engine
        self.build_from = build_from
        self._fields: dict[str, FieldTerms] = {}
        # Fields being built -> (memory id, text or None for a removal) committed meanwhile.
        self._pending: dict[str, list[tuple[str, str | None]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def get(self, field_id: str) -> FieldTerms | None:
        """The field's index if it is ready, else None (search FTS5 instead)."""
        return self._fields.get(field_id)

    def build(self, field_id: str) -> None:
        """Start building the field's index in the background, unless it is under way."""
        if field_id in self._pending:
            return
        # Changes committed from now on are kept for the new index: the rows it reads are
        # those committed before its read began, at the earliest after this point.
        self._pending[field_id] = []
        task = asyncio.get_running_loop().create_task(self._build(field_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _build(self, field_id: str) -> None:
        pending = self._pending[field_id]
        terms = FieldTerms()
        try:
            c = memories.c
            stmt = select(c.id, c.content).where(c.field_id == field_id)
            async with self._engine.connect() as conn:
                result = await conn.stream(stmt)
                async for chunk in result.partitions(_LOAD_CHUNK):
                    rows = [(r.id, r.content) for r in chunk]
                    await asyncio.to_thread(terms.add_many, rows)
        except Exception:
            log.exception("keyword index of field %s not built: FTS5 answers", field_id)
            if self._pending.get(field_id) is pending:
                del self._pending[field_id]
            return
        if self._pending.get(field_id) is not pending:
            return  # forgotten meanwhile: these rows may predate a rewrite
        del self._pending[field_id]
        for memory_id, text in pending:
            if text is None:
                terms.remove(memory_id)
            else:
                terms.add(memory_id, text)
        self._fields[field_id] = terms
        log.info("keyword index of field %s built: %d memories", field_id, len(terms))

    def apply(
        self, upserts: Sequence[tuple[str, str, str]], deletes: Sequence[tuple[str, str]]
    ) -> None:
        """A committed transaction's memory texts ((field, memory, text)) and removals."""
        changes = [(f, m, None) for f, m in deletes] + list(upserts)
        for field_id, memory_id, text in changes:
            try:
                self._change(field_id, memory_id, text)
            except Exception:
                # The transaction has committed: a field whose postings could not follow it
                # is dropped, and built again from the database on its next search.
                log.exception("keyword index of field %s dropped", field_id)
                self.forget(field_id)

    def _change(self, field_id: str, memory_id: str, text: str | None) -> None:
        pending = self._pending.get(field_id)
        if pending is not None:
            pending.append((memory_id, text))
        terms = self._fields.get(field_id)
        if terms is None:
            return  # not loaded: read from the database, with this change, when built
        if text is None:
            terms.remove(memory_id)
            if terms.waste > _REBUILD_WASTE * max(len(terms), self.build_from):
                self.build(field_id)  # the old index serves until the new one is ready
        else:
            terms.add(memory_id, text)

    def forget(self, field_id: str) -> None:
        """Drop the field's index (its rows were rewritten outside the units of work)."""
        self._fields.pop(field_id, None)
        self._pending.pop(field_id, None)

    async def settled(self) -> None:
        """Wait for the builds started so far."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
