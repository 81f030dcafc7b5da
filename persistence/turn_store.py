"""In-process turn order: one :class:`~persistence.turn_index.FieldTurns` per memory field
that holds conversation turns and has been searched (see :mod:`persistence.field_store` for
how they are built and kept). Until a field's is ready, the covering partial index
``ix_memories_field_turns`` answers in SQL. In PostgreSQL mode a process keeps them only
while it hears the other processes' writes, which name every turn they placed, moved,
relabelled or removed (persistence/memory_changes.py)."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import datetime

from sqlalchemy import select

from persistence.field_store import FieldStore
from persistence.tables.memories import memories, memory_fields
from persistence.turn_index import FieldTurns

_LOAD_CHUNK = 20_000

# (memory id, occurred_at, turn_seq, turn_session): a new turn; with turn_seq None, a turn
# whose time was rewritten; with occurred_at None, a removal.
TurnChange = tuple[str, datetime | None, int | None, int | None]


class TurnStore(FieldStore[FieldTurns, TurnChange]):
    """All searched fields' turn orders of one process."""

    what = "turn order"

    async def _load(self, field_id: str) -> FieldTurns:
        if self._engine.dialect.name == "sqlite":
            return await super()._load(field_id)
        c = memories.c
        rows: list[tuple[str, datetime, int, int | None]] = []
        async with self._engine.connect() as conn:
            owner = (
                await conn.execute(
                    select(memory_fields.c.user_id).where(memory_fields.c.id == field_id)
                )
            ).scalar_one()
            stmt = (
                select(c.id, c.occurred_at, c.turn_seq, c.turn_session)
                .where(c.field_id == field_id, c.turn_seq.is_not(None))
                .order_by(c.occurred_at, c.turn_seq)
            )
            result = await conn.stream(stmt)
            async for chunk in result.partitions(_LOAD_CHUNK):
                rows.extend((r.id, r.occurred_at, r.turn_seq, r.turn_session) for r in chunk)
        turns = FieldTurns(owner=owner)
        await asyncio.to_thread(turns.load, rows)
        return turns

    def _read(self, conn: sqlite3.Connection, field_id: str) -> FieldTurns:
        """The field's turn order, in one pass over the covering index
        ``ix_memories_field_turns`` (DATETIME columns come as SQLAlchemy's naive UTC text)."""
        (owner,) = conn.execute(
            "SELECT user_id FROM memory_fields WHERE id = ?", (field_id,)
        ).fetchone()
        turns = FieldTurns(owner=owner)
        rows = conn.execute(
            "SELECT id, occurred_at, turn_seq, turn_session FROM memories "
            "WHERE field_id = ? AND turn_seq IS NOT NULL ORDER BY occurred_at, turn_seq",
            (field_id,),
        )
        turns.load(
            (memory_id, datetime.fromisoformat(at + "+00:00"), seq, session)
            for memory_id, at, seq, session in rows
        )
        return turns

    def _change(self, field_id: str, index: FieldTurns, change: TurnChange) -> None:
        memory_id, at, seq, session = change
        if at is None:
            index.remove(memory_id)
        elif seq is None:
            index.move(memory_id, at)
        else:
            index.add(memory_id, at, seq, session)
