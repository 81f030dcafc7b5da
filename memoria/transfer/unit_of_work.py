"""The unit of work an import writes through: the server's own (same repositories, same
SQLite write lock and batching, same commit), plus whole-row access to the tables an export
copies, which the domain's repositories do not offer (they mint ids and sequence numbers;
an import keeps the exported ones)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, bindparam, func, select, tuple_

from persistence.database import SqlUnitOfWork
from persistence.index_journal import IndexJournal
from persistence.session import Transaction, upsert
from persistence.tables.memories import memories, memory_fields


class TableRows:
    """Rows copied as they are, on the unit of work's transaction. Memories also go into the
    unit of work's journal, like any other write: its commit announces them to every
    process's in-memory copies (PostgreSQL mode, persistence/memory_changes.py), so servers
    running beside an import find what it added."""

    def __init__(self, tx: Transaction, journal: IndexJournal) -> None:
        self._tx = tx
        self._journal = journal

    async def existing_ids(self, table: Table, ids: Sequence[str]) -> set[str]:
        if not ids:
            return set()
        stmt = select(table.c.id).where(table.c.id.in_(bindparam("ids", expanding=True)))
        return {row.id for row in await self._tx.read(stmt, {"ids": list(ids)})}

    async def existing_keys(
        self, table: Table, keys: Sequence[tuple[Any, ...]]
    ) -> set[tuple[Any, ...]]:
        """Which of ``keys`` (primary-key values, in the key's column order) are there."""
        columns = list(table.primary_key.columns)
        if len(columns) == 1:
            return {(found,) for found in await self.existing_ids(table, [k[0] for k in keys])}
        if not keys:
            return set()
        stmt = select(*columns).where(tuple_(*columns).in_(list(keys)))
        return {tuple(row) for row in await self._tx.read(stmt)}

    async def insert(self, table: Table, rows: Sequence[dict[str, Any]]) -> None:
        """Insert ``rows``; a row whose id exists already is left alone (a concurrent import
        of the same file, or a row that arrived since ``existing_ids`` looked)."""
        if rows:
            await self._tx.write(upsert(self._tx, table).on_conflict_do_nothing(), list(rows))
        if table is memories:
            vectors = [r for r in rows if r.get("embedding") is not None]
            self._journal.upserts.extend((r["field_id"], r["id"], r["embedding"]) for r in vectors)
            self._journal.texts.extend((r["field_id"], r["id"], r["content"]) for r in rows)

    async def raise_turn_counters(self, field_id: str) -> None:
        """Make the field's turn and session counters at least its highest numbers, so turns
        added after an import follow the imported ones."""
        c = memories.c
        top = (
            await self._tx.read(
                select(
                    func.max(c.turn_seq).label("turn"), func.max(c.turn_session).label("session")
                ).where(c.field_id == field_id)
            )
        ).one()
        counters = (
            await self._tx.read(
                select(memory_fields.c.turn_seq_next, memory_fields.c.session_seq_next).where(
                    memory_fields.c.id == field_id
                )
            )
        ).one()
        turn = max(int(top.turn or 0), int(counters.turn_seq_next))
        session = max(int(top.session or 0), int(counters.session_seq_next))
        if (turn, session) != (counters.turn_seq_next, counters.session_seq_next):
            await self._tx.write(
                memory_fields.update()
                .where(memory_fields.c.id == field_id)
                .values(turn_seq_next=turn, session_seq_next=session)
            )


class TransferUnitOfWork(SqlUnitOfWork):
    """``SqlUnitOfWork`` with ``rows``: whole-row reads and writes on the same transaction."""

    rows: TableRows

    async def __aenter__(self) -> TransferUnitOfWork:
        await super().__aenter__()
        assert self._tx is not None  # opened by the base class just now
        self.rows = TableRows(self._tx, self._journal)
        return self
