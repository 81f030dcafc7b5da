"""Embedded mode's in-process turn order: one :class:`~persistence.turn_index.FieldTurns` per
memory field that holds conversation turns and has been searched (see
:mod:`persistence.field_store` for how they are built and kept). Until a field's is ready,
the covering partial index ``ix_memories_field_turns`` answers in SQL."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import datetime

from sqlalchemy import bindparam, select

from persistence.field_store import FieldStore
from persistence.sqlite_driver import batching_transaction
from persistence.tables.memories import memories, memory_fields
from persistence.turn_index import FieldTurns

_LOAD_CHUNK = 50_000

# (memory id, occurred_at, turn_seq, turn_session): a new turn; with turn_seq None, a turn
# whose time was rewritten; with occurred_at None, a removal.
TurnChange = tuple[str, datetime | None, int | None, int | None]


_c = memories.c
_TURNS = (
    select(_c.id, _c.occurred_at, _c.turn_seq, _c.turn_session)
    .where(_c.field_id == bindparam("f"), _c.turn_seq.is_not(None))
    .order_by(_c.occurred_at, _c.turn_seq)
)
_OWNER = select(memory_fields.c.user_id).where(memory_fields.c.id == bindparam("f"))


def _read_turns(conn: sqlite3.Connection, field_id: str) -> FieldTurns:
    """On the SQLite driver thread: the field's turn order, in one pass over the covering
    index ``ix_memories_field_turns`` (DATETIME columns come as SQLAlchemy's naive UTC text)."""
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


class TurnStore(FieldStore[FieldTurns, TurnChange]):
    """All searched fields' turn orders of one process (embedded mode only)."""

    what = "turn order"

    async def _load(self, field_id: str) -> FieldTurns:
        async with self._engine.connect() as conn:
            tx = await batching_transaction(conn)
            if tx is not None:  # read and ordered on the driver thread: the loop never waits
                return await tx.call(_read_turns, field_id)
            turns = FieldTurns(owner=(await conn.execute(_OWNER, {"f": field_id})).scalar_one())
            result = await conn.stream(_TURNS, {"f": field_id})
            async for chunk in result.partitions(_LOAD_CHUNK):
                rows = [(r.id, r.occurred_at, int(r.turn_seq), r.turn_session) for r in chunk]
                await asyncio.to_thread(turns.load, rows)
        return turns

    def _change(self, field_id: str, index: FieldTurns, change: TurnChange) -> None:
        memory_id, at, seq, session = change
        if at is None:
            index.remove(memory_id)
        elif seq is None:
            index.move(memory_id, at)
        else:
            index.add(memory_id, at, seq, session)
