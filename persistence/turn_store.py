"""Embedded mode's in-process turn order: one :class:`~persistence.turn_index.FieldTurns` per
memory field that holds conversation turns and has been searched (see
:mod:`persistence.field_store` for how they are built and kept). Until a field's is ready,
the covering partial index ``ix_memories_field_turns`` answers in SQL."""

from __future__ import annotations

import asyncio
from datetime import datetime

from sqlalchemy import select

from persistence.field_store import FieldStore
from persistence.tables.memories import memories, memory_fields
from persistence.turn_index import FieldTurns

_LOAD_CHUNK = 50_000

# (memory id, occurred_at, turn_seq, turn_session): a new turn; with turn_seq None, a turn
# whose time was rewritten; with occurred_at None, a removal.
TurnChange = tuple[str, datetime | None, int | None, int | None]


class TurnStore(FieldStore[FieldTurns, TurnChange]):
    """All searched fields' turn orders of one process (embedded mode only)."""

    what = "turn order"

    async def _load(self, field_id: str) -> FieldTurns:
        c = memories.c
        stmt = (
            select(c.id, c.occurred_at, c.turn_seq, c.turn_session)
            .where(c.field_id == field_id, c.turn_seq.is_not(None))
            .order_by(c.occurred_at, c.turn_seq)
        )
        owner = select(memory_fields.c.user_id).where(memory_fields.c.id == field_id)
        async with self._engine.connect() as conn:
            turns = FieldTurns(owner=(await conn.execute(owner)).scalar_one())
            result = await conn.stream(stmt)
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
