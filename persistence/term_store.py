"""In-process keyword indexes: one :class:`~persistence.term_index.FieldTerms` per large
memory field (see :mod:`persistence.field_store` for how they are built and kept).

The database's own full-text index (FTS5, PostgreSQL's ``content_tsv``) answers whatever this
store cannot. A field's postings are built the first time a search finds the field large
enough (``BUILD_FROM``), at ~20 µs a memory: on the SQLite driver thread in embedded mode;
in PostgreSQL mode from rows streamed to the loop, tokenised on a worker thread (only in a
process that hears the other processes' writes, see persistence/memory_changes.py).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from persistence.field_store import DEFAULT_BUDGET, FieldStore
from persistence.tables.memories import memories
from persistence.term_index import FieldTerms

# Fields this large are searched from memory: below it FTS5 ranks every match in a few
# milliseconds, and an index per small field would cost memory for little.
BUILD_FROM = 200
# An index whose removed memories outnumber its live ones is built again.
_REBUILD_WASTE = 1.0
_LOAD_CHUNK = 20_000

# (memory id, its text, or None for a removal)
TermChange = tuple[str, str | None]


class TermStore(FieldStore[FieldTerms, TermChange]):
    """All large fields' keyword indexes of one process. ``build_from``: the smallest field
    indexed."""

    what = "keyword index"

    def __init__(
        self, engine: AsyncEngine, *, build_from: int = BUILD_FROM, budget: int = DEFAULT_BUDGET
    ) -> None:
        super().__init__(engine, budget=budget)
        self.build_from = build_from

    async def _load(self, field_id: str) -> FieldTerms:
        if self._engine.dialect.name == "sqlite":
            return await super()._load(field_id)
        terms = FieldTerms()
        stmt = select(memories.c.id, memories.c.content).where(memories.c.field_id == field_id)
        async with self._engine.connect() as conn:
            result = await conn.stream(stmt)
            async for chunk in result.partitions(_LOAD_CHUNK):
                rows = [(r.id, r.content) for r in chunk]
                await asyncio.to_thread(terms.add_many, rows)
        return terms

    def _read(self, conn: sqlite3.Connection, field_id: str) -> FieldTerms:
        terms = FieldTerms()
        rows = conn.execute("SELECT id, content FROM memories WHERE field_id = ?", (field_id,))
        while chunk := rows.fetchmany(_LOAD_CHUNK):
            terms.add_many(chunk)
        return terms

    def _change(self, field_id: str, index: FieldTerms, change: TermChange) -> None:
        memory_id, text = change
        if text is not None:
            index.add(memory_id, text)
            return
        index.remove(memory_id)
        if index.waste > _REBUILD_WASTE * max(len(index), self.build_from):
            self.build(field_id)  # the old index serves until the new one is ready

    def apply_texts(
        self, upserts: Sequence[tuple[str, str, str]], deletes: Sequence[tuple[str, str]]
    ) -> None:
        """A committed transaction's memory texts ((field, memory, text)) and removals."""
        changes: list[tuple[str, TermChange]] = [(f, (m, None)) for f, m in deletes]
        changes.extend((f, (m, text)) for f, m, text in upserts)
        self.apply(changes)
