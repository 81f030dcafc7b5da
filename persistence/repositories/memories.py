"""Memories, their history, and filtered candidate selection."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, String, any_, bindparam, func, select, tuple_
from sqlalchemy.dialects.postgresql import ARRAY

from domain.entities import ChangeKind, Memory, MemoryChange, MemoryKind, MemoryLayer
from domain.ports import Vector
from domain.ports.memories import SearchContext
from domain.turn_vectors import TURN_KINDS
from persistence.index_journal import IndexJournal
from persistence.repositories import search_context
from persistence.repositories.turn_sessions import (
    join_sessions,
    number_turns,
    place_moved,
    split_session,
    turn_place,
)
from persistence.repositories.turns import pg_turn_context, turns_around
from persistence.session import Transaction
from persistence.sqlite_driver import BatchingTransaction
from persistence.tables.memories import memories, memory_history
from persistence.turn_index import FieldTurns
from persistence.turn_store import TurnStore
from persistence.types import UTCDateTime

_COLUMNS = [c for c in memories.c if c.name != "embedding"]
# Primary key only, filtered in Python: see get_many.
_SESSIONS_BY_IDS = select(
    memories.c.id, memories.c.user_id, memories.c.field_id, memories.c.turn_session
).where(memories.c.id.in_(bindparam("ids", expanding=True)))
# The same seek, for the turn's stored vector (:mod:`domain.turn_vectors`).
_TURN_VECTOR_BEFORE = (
    select(memories.c.occurred_at, memories.c.embedding)
    .where(
        memories.c.field_id == bindparam("field_id"),
        memories.c.user_id == bindparam("user_id"),
        memories.c.turn_seq.is_not(None),
        tuple_(memories.c.occurred_at, memories.c.turn_seq)
        < tuple_(bindparam("at", type_=UTCDateTime()), bindparam("seq", type_=BigInteger())),
    )
    .order_by(memories.c.occurred_at.desc(), memories.c.turn_seq.desc())
    .limit(1)
)
# Built once, with the ids as one expanding parameter: an ``in_()`` of literal ids built a
# bind parameter per id on every call (most of a search's cost of reading its hits).
_BY_IDS = select(*_COLUMNS).where(memories.c.id.in_(bindparam("ids", expanding=True)))
# PostgreSQL: the ids as one text[] parameter instead. One statement text whatever their
# number (an expanding IN is a new prepared statement per count) and one bound value: reading
# the 200 sessions of a search took 0.4 ms of client CPU instead of 1.2-1.4 ms here.
_IDS = bindparam("ids", type_=ARRAY(String()))
_PG_BY_IDS = select(*_COLUMNS).where(memories.c.id == any_(_IDS))
_PG_SESSIONS_BY_IDS = select(
    memories.c.id, memories.c.user_id, memories.c.field_id, memories.c.turn_session
).where(memories.c.id == any_(_IDS))


def _memory(row: Any) -> Memory:
    return Memory(
        id=row.id,
        user_id=row.user_id,
        field_id=row.field_id,
        content=row.content,
        kind=MemoryKind(row.kind),
        source=row.source,
        layer=MemoryLayer(row.layer),
        importance=row.importance,
        tags=list(row.tags or []),
        metadata=dict(row.metadata or {}),
        occurred_at=row.occurred_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        content_hash=row.content_hash,
        expires_at=row.expires_at,
        superseded_by=row.superseded_by,
        speaker=row.speaker,
    )


def _values(memory: Memory) -> dict[str, Any]:
    return {
        "user_id": memory.user_id,
        "field_id": memory.field_id,
        "content": memory.content,
        "kind": memory.kind.value,
        "source": memory.source,
        "layer": memory.layer.value,
        "importance": memory.importance,
        "tags": memory.tags,
        "metadata": memory.metadata,
        "occurred_at": memory.occurred_at,
        "created_at": memory.created_at,
        "updated_at": memory.updated_at,
        "content_hash": memory.content_hash,
        "expires_at": memory.expires_at,
        "superseded_by": memory.superseded_by,
        "speaker": memory.speaker,
    }


class SqlMemoryRepository:
    def __init__(
        self, tx: Transaction, journal: IndexJournal, turns: TurnStore | None = None
    ) -> None:
        self._tx = tx
        self._journal = journal
        self._turns = turns  # the process's turn orders (see persistence/turn_store.py)
        self._postgres = tx.conn.dialect.name == "postgresql"

    async def add(self, memory: Memory, embedding: Vector) -> None:
        await self.add_many([(memory, embedding)])

    async def add_many(self, items: Sequence[tuple[Memory, Vector]]) -> set[str]:
        """One executemany for a batch: far fewer round trips than row-by-row inserts.
        Conversation turns get their place in the field's turn order and their session
        (:func:`~persistence.repositories.turn_sessions.number_turns`)."""
        if not items:
            return set()
        order, placed = await number_turns(self._tx, [m for m, _ in items])
        rows = []
        for m, v in items:
            seq, session = order.get(m.id, (None, None))
            rows.append(
                {"id": m.id, "embedding": v, "turn_seq": seq, "turn_session": session, **_values(m)}
            )
            if seq is not None:
                self._journal.turns.append((m.field_id, (m.id, m.occurred_at, seq, session)))
        await self._tx.write(memories.insert(), rows)
        rearranged: set[str] = set()
        for field_id, (earliest, latest, first_seq, fresh_from) in placed.items():
            appended, joined = await join_sessions(
                self._tx,
                field_id=field_id,
                earliest=earliest,
                latest=latest,
                first_seq=first_seq,
                fresh_from=fresh_from,
            )
            self._journal.turns.extend(joined)
            if not appended:
                rearranged.add(field_id)
        self._journal.upserts.extend((m.field_id, m.id, v) for m, v in items)
        self._journal.texts.extend((m.field_id, m.id, m.content) for m, _ in items)
        return rearranged

    async def update(self, memory: Memory, embedding: Vector | None) -> None:
        # A turn moved in time leaves its session (which may split) and joins one at its new
        # place (persistence/repositories/turn_sessions.py).
        place = await self._place(memory)
        values = _values(memory)
        if embedding is not None:
            values["embedding"] = embedding
            self._journal.upserts.append((memory.field_id, memory.id, embedding))
        self._journal.texts.append((memory.field_id, memory.id, memory.content))
        self._journal.turns.append((memory.field_id, (memory.id, memory.occurred_at, None, None)))
        await self._tx.write(
            memories.update()
            .where(memories.c.id == memory.id, memories.c.user_id == memory.user_id)
            .values(**values)
        )
        if place is not None and place[0] != memory.occurred_at:
            field_id = memory.field_id
            self._journal.turns.extend(
                await split_session(self._tx, field_id=field_id, place=place)
            )
            self._journal.turns.extend(
                await place_moved(
                    self._tx, field_id=field_id, memory_id=memory.id, at=memory.occurred_at
                )
            )

    async def delete(self, memory: Memory) -> None:
        place = await self._place(memory)
        await self._tx.write(
            memories.delete().where(
                memories.c.id == memory.id, memories.c.user_id == memory.user_id
            )
        )
        self._journal.deletes.append((memory.field_id, memory.id))
        self._journal.turns.append((memory.field_id, (memory.id, None, None, None)))
        if place is not None:  # the silence it bridged, if any, splits its session
            self._journal.turns.extend(
                await split_session(self._tx, field_id=memory.field_id, place=place)
            )

    async def get(self, memory_id: str, *, user_id: str) -> Memory | None:
        stmt = select(*_COLUMNS).where(memories.c.id == memory_id, memories.c.user_id == user_id)
        row = (await self._tx.read(stmt)).first()
        return _memory(row) if row else None

    async def get_many(self, memory_ids: Sequence[str], *, user_id: str) -> list[Memory]:
        if not memory_ids:
            return []
        # Only the primary key in SQL: with `user_id = ?` beside it SQLite's planner may scan
        # the user's whole (user_id) index instead. Tenancy is enforced on the rows read.
        if isinstance(self._tx, BatchingTransaction):
            return await search_context.memories_by_id(self._tx, memory_ids, user_id=user_id)
        by_ids = _PG_BY_IDS if self._postgres else _BY_IDS
        rows = await self._tx.read(by_ids, {"ids": list(memory_ids)})
        return [_memory(r) for r in rows if r.user_id == user_id]

    async def count(self, *, user_id: str, field_id: str | None = None) -> int:
        stmt = select(func.count()).select_from(memories).where(memories.c.user_id == user_id)
        if field_id is not None:
            stmt = stmt.where(memories.c.field_id == field_id)
        return int((await self._tx.read(stmt)).scalar_one())

    async def candidate_ids(
        self,
        *,
        field_id: str,
        user_id: str,
        sources: Sequence[str] | None,
        tags: Sequence[str] | None,
        occurred_from: datetime | None,
        occurred_to: datetime | None,
        metadata: dict[str, object] | None = None,
    ) -> list[str]:
        stmt = select(memories.c.id, memories.c.tags, memories.c.metadata).where(
            memories.c.field_id == field_id, memories.c.user_id == user_id
        )
        if sources:
            stmt = stmt.where(memories.c.source.in_([s.lower() for s in sources]))
        if occurred_from is not None:
            stmt = stmt.where(memories.c.occurred_at >= occurred_from)
        if occurred_to is not None:
            stmt = stmt.where(memories.c.occurred_at <= occurred_to)
        wanted_tags = set(tags or [])
        wanted_meta = metadata or {}
        # Tags and metadata are JSON; matching them here, before ranking, keeps top-k full.
        return [
            row.id
            for row in await self._tx.read(stmt)
            if wanted_tags.issubset(row.tags or [])
            and all((row.metadata or {}).get(k) == v for k, v in wanted_meta.items())
        ]

    async def sessions(
        self, *, field_id: str, user_id: str, memory_ids: Sequence[str]
    ) -> dict[str, int]:
        if not memory_ids:
            return {}
        by_ids = _PG_SESSIONS_BY_IDS if self._postgres else _SESSIONS_BY_IDS
        rows = await self._tx.read(by_ids, {"ids": list(memory_ids)})
        return {
            row.id: int(row.turn_session)
            for row in rows
            if row.user_id == user_id and row.field_id == field_id and row.turn_session is not None
        }

    async def _place(self, memory: Memory) -> tuple[datetime, int] | None:
        """Where ``memory`` stands in its field's turn order, if it is a turn."""
        if memory.kind not in TURN_KINDS:
            return None
        return await turn_place(
            self._tx, memory.id, field_id=memory.field_id, user_id=memory.user_id
        )

    async def turn_before(
        self, *, field_id: str, user_id: str, at: datetime, memory_id: str | None = None
    ) -> tuple[datetime, Vector] | None:
        keys = {"field_id": field_id, "user_id": user_id}
        # Past every turn at ``at``: a turn written now goes after those stored before it.
        place: tuple[datetime, int] = (at, 2**62)
        if memory_id is not None:
            found_place = await turn_place(self._tx, memory_id, **keys)
            if found_place is None:
                return None
            place = found_place
        found = (
            await self._tx.read(_TURN_VECTOR_BEFORE, {"at": place[0], "seq": place[1], **keys})
        ).first()
        if found is None or found.embedding is None:
            return None
        return found.occurred_at, found.embedding

    async def turns_around(
        self,
        *,
        field_id: str,
        user_id: str,
        memory_ids: Sequence[str],
        steps: int,
        max_span_seconds: float,
    ) -> dict[str, list[tuple[str, datetime]]]:
        return await turns_around(
            self._tx,
            field_id=field_id,
            user_id=user_id,
            memory_ids=memory_ids,
            steps=steps,
            max_span_seconds=max_span_seconds,
        )

    def _kept_turns(self, field_id: str, *, wrote_memories: bool) -> FieldTurns | None:
        """The field's turn order in process memory, if ready and if this transaction has
        written no memories (its own would be missing); else None, and SQL answers."""
        if self._turns is None or wrote_memories:
            return None
        kept = self._turns.get(field_id)
        if kept is None:
            self._turns.build(field_id)
        return kept

    async def search_context(
        self,
        *,
        field_id: str,
        user_id: str,
        load: Sequence[str],
        anchors: Sequence[str],
        steps: int,
        max_span_seconds: float,
        session_of: Sequence[str],
    ) -> SearchContext:
        if isinstance(self._tx, BatchingTransaction):  # SQLite: one driver-thread call
            wrote = self._tx.wrote_memories
        else:
            wrote = bool(self._journal.changed_fields())
        kept = self._kept_turns(field_id, wrote_memories=wrote) if anchors or session_of else None
        if kept is not None:
            loaded = await self.get_many(load, user_id=user_id)
            if kept.owner != user_id:  # another user's field: none of its turns
                anchors, session_of = [], []
            return SearchContext(
                memories={m.id: m for m in loaded},
                around=kept.around(anchors, steps, timedelta(seconds=max_span_seconds)),
                sessions=kept.sessions(session_of),
            )
        if isinstance(self._tx, BatchingTransaction):
            return await search_context.search_context(
                self._tx,
                field_id=field_id,
                user_id=user_id,
                load=load,
                anchors=anchors,
                steps=steps,
                max_span_seconds=max_span_seconds,
                session_of=session_of,
            )
        loaded = await self.get_many(load, user_id=user_id)
        if self._postgres:
            around, sessions = await pg_turn_context(
                self._tx,
                field_id=field_id,
                user_id=user_id,
                anchors=anchors,
                steps=steps,
                max_span_seconds=max_span_seconds,
                session_of=session_of,
            )
            return SearchContext(
                memories={m.id: m for m in loaded}, around=around, sessions=sessions
            )
        around = await self.turns_around(
            field_id=field_id,
            user_id=user_id,
            memory_ids=anchors,
            steps=steps,
            max_span_seconds=max_span_seconds,
        )
        sessions = await self.sessions(field_id=field_id, user_id=user_id, memory_ids=session_of)
        return SearchContext(memories={m.id: m for m in loaded}, around=around, sessions=sessions)

    async def short_term_ids(
        self, *, field_id: str, user_id: str, occurred_before: datetime, min_importance: float
    ) -> list[str]:
        stmt = select(memories.c.id).where(
            memories.c.field_id == field_id,
            memories.c.user_id == user_id,
            memories.c.layer == MemoryLayer.SHORT_TERM.value,
            memories.c.occurred_at < occurred_before,
            memories.c.importance >= min_importance,
        )
        return [row.id for row in await self._tx.read(stmt)]


def _change(row: Any) -> MemoryChange:
    return MemoryChange(
        id=row.id,
        memory_id=row.memory_id,
        user_id=row.user_id,
        change=ChangeKind(row.change),
        old_content=row.old_content,
        new_content=row.new_content,
        actor=row.actor,
        at=row.at,
    )


class SqlMemoryHistoryRepository:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def add(self, change: MemoryChange) -> None:
        await self.add_many([change])

    async def add_many(self, changes: Sequence[MemoryChange]) -> None:
        if not changes:
            return
        rows = [
            {
                "id": c.id,
                "memory_id": c.memory_id,
                "user_id": c.user_id,
                "change": c.change.value,
                "old_content": c.old_content,
                "new_content": c.new_content,
                "actor": c.actor,
                "at": c.at,
            }
            for c in changes
        ]
        await self._tx.write(memory_history.insert(), rows)

    async def list(self, memory_id: str, *, user_id: str) -> list[MemoryChange]:
        stmt = (
            select(memory_history)
            .where(memory_history.c.memory_id == memory_id, memory_history.c.user_id == user_id)
            .order_by(memory_history.c.at, memory_history.c.id)
        )
        return [_change(r) for r in await self._tx.read(stmt)]
