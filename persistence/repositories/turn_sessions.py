"""Conversation turns' places and sessions: numbered as turns are stored, and kept as if
turns had arrived in order: joined when turns are stored before or between stored ones,
split when a turn that bridged a silence is deleted or moved.

Turns are numbered in turn order and into sessions as they come (:func:`number_turns`,
:func:`domain.sessions.number_sessions`). A batch sent out of order (the earlier half of a
conversation after the later one) may close the silence between sessions, or fall just
before one: those sessions are then one, as if the turns had come in order
(:func:`domain.sessions.joined_sessions`), relabelled in the same transaction.
A turn deleted or moved away may leave a silence longer than the gap inside its session:
the part after it becomes a session of its own (:func:`split_session`), and a moved turn
joins the session at its new place (:func:`place_moved`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import BigInteger, ColumnElement, bindparam, select, tuple_

from domain.entities import Memory
from domain.sessions import SESSION_GAP, joined_sessions, number_sessions
from domain.turn_vectors import TURN_KINDS
from persistence.session import Transaction
from persistence.tables.memories import memories, memory_fields
from persistence.turn_store import TurnChange
from persistence.types import UTCDateTime

# The field's last turn at or before a time, in turn order (a seek on ix_memories_field_turns).
_TURN_BEFORE = (
    select(memories.c.occurred_at, memories.c.turn_session)
    .where(
        memories.c.field_id == bindparam("field_id"),
        memories.c.turn_seq.is_not(None),
        memories.c.occurred_at <= bindparam("at", type_=UTCDateTime()),
    )
    .order_by(memories.c.occurred_at.desc(), memories.c.turn_seq.desc())
    .limit(1)
)
# A turn stored before the batch (a lower sequence number) that comes after the batch's
# first turn in turn order: without one, the batch was appended and joins nothing.
_STORED_AFTER = (
    select(memories.c.id)
    .where(
        memories.c.field_id == bindparam("field_id"),
        memories.c.turn_seq.is_not(None),
        memories.c.turn_seq < bindparam("seq", type_=BigInteger()),
        memories.c.occurred_at > bindparam("at", type_=UTCDateTime()),
    )
    .limit(1)
)
_TURNS_BETWEEN = (
    select(memories.c.occurred_at, memories.c.turn_session)
    .where(
        memories.c.field_id == bindparam("field_id"),
        memories.c.turn_seq.is_not(None),
        memories.c.occurred_at >= bindparam("lo", type_=UTCDateTime()),
        memories.c.occurred_at <= bindparam("hi", type_=UTCDateTime()),
    )
    .order_by(memories.c.occurred_at, memories.c.turn_seq)
)


# Placed: per field, where a batch of turns went (earliest and latest time, first sequence
# number, first new session label), for join_sessions.
Placed = dict[str, tuple[datetime, datetime, int, int]]


async def number_turns(
    tx: Transaction, batch: Sequence[Memory]
) -> tuple[dict[str, tuple[int, int]], Placed]:
    """(turn_seq, turn_session) for the conversation turns in ``batch``. Sequence numbers
    follow the batch's order; sessions follow time (:func:`number_sessions`), continuing
    the session of the field's turn just before the batch. The numbers come from the
    field's counter row, whose ``UPDATE`` also serialises concurrent writers of one field
    on PostgreSQL (SQLite has one writer). Also where the batch went, per field."""
    by_field: dict[str, list[Memory]] = {}
    for memory in batch:
        if memory.kind in TURN_KINDS:
            by_field.setdefault(memory.field_id, []).append(memory)
    found: dict[str, tuple[int, int]] = {}
    placed: Placed = {}
    for field_id, turns in by_field.items():
        counters = (
            await tx.write(
                memory_fields.update()
                .where(memory_fields.c.id == field_id)
                .values(turn_seq_next=memory_fields.c.turn_seq_next + len(turns))
                .returning(memory_fields.c.turn_seq_next, memory_fields.c.session_seq_next)
            )
        ).one()
        first_seq = int(counters.turn_seq_next) - len(turns) + 1
        in_time = sorted(range(len(turns)), key=lambda i: turns[i].occurred_at)
        earliest = turns[in_time[0]].occurred_at
        before = (await tx.read(_TURN_BEFORE, {"field_id": field_id, "at": earliest})).first()
        numbers, following = number_sessions(
            [turns[i].occurred_at for i in in_time],
            before=(before.occurred_at, int(before.turn_session)) if before else None,
            next_session=int(counters.session_seq_next) + 1,
        )
        if following - 1 != int(counters.session_seq_next):
            await tx.write(
                memory_fields.update()
                .where(memory_fields.c.id == field_id)
                .values(session_seq_next=following - 1)
            )
        for i, session in zip(in_time, numbers, strict=True):
            found[turns[i].id] = (first_seq + i, session)
        latest = turns[in_time[-1]].occurred_at
        placed[field_id] = (earliest, latest, first_seq, int(counters.session_seq_next) + 1)
    return found, placed


async def _relabel(
    tx: Transaction, field_id: str, label: int, *where: ColumnElement[bool]
) -> list[tuple[str, TurnChange]]:
    """Give the field's turns matching ``where`` the session ``label``; returns them as
    changes for the in-process turn orders."""
    result = await tx.write(
        memories.update()
        .where(memories.c.field_id == field_id, *where)
        .values(turn_session=label)
        .returning(memories.c.id, memories.c.occurred_at, memories.c.turn_seq)
    )
    return [(field_id, (r.id, r.occurred_at, int(r.turn_seq), label)) for r in result]


async def join_sessions(
    tx: Transaction,
    *,
    field_id: str,
    earliest: datetime,
    latest: datetime,
    first_seq: int,
    fresh_from: int,
) -> tuple[bool, list[tuple[str, TurnChange]]]:
    """After a batch of turns (times ``earliest`` … ``latest``, sequence numbers from
    ``first_seq``, new session labels from ``fresh_from``) was written to ``field_id``:
    relabel the sessions it joined. Returns whether the batch was simply appended (no turn
    stored earlier comes after its first turn) and the relabelled turns as changes for the
    in-process turn orders. One read when the batch was appended."""
    params = {"field_id": field_id, "seq": first_seq, "at": earliest}
    if (await tx.read(_STORED_AFTER, params)).first() is None:
        return True, []
    window = {"field_id": field_id, "lo": earliest - SESSION_GAP, "hi": latest + SESSION_GAP}
    rows = (await tx.read(_TURNS_BETWEEN, window)).all()
    relabel = joined_sessions(
        [(r.occurred_at, int(r.turn_session)) for r in rows if r.turn_session is not None],
        fresh_from=fresh_from,
    )
    changes: list[tuple[str, TurnChange]] = []
    for old, new in relabel.items():
        changes += await _relabel(tx, field_id, new, memories.c.turn_session == old)
    return False, changes


_PLACE = select(memories.c.occurred_at, memories.c.turn_seq).where(
    memories.c.id == bindparam("id"),
    memories.c.field_id == bindparam("field_id"),
    memories.c.user_id == bindparam("user_id"),
    memories.c.turn_seq.is_not(None),
)
_HERE = tuple_(memories.c.occurred_at, memories.c.turn_seq)
_AT = tuple_(bindparam("at", type_=UTCDateTime()), bindparam("seq", type_=BigInteger()))
_NEIGHBOUR = select(memories.c.occurred_at, memories.c.turn_seq, memories.c.turn_session).where(
    memories.c.field_id == bindparam("field_id"), memories.c.turn_seq.is_not(None)
)
_BEFORE = _NEIGHBOUR.where(_HERE < _AT).order_by(
    memories.c.occurred_at.desc(), memories.c.turn_seq.desc()
)
_AFTER = _NEIGHBOUR.where(_AT < _HERE).order_by(memories.c.occurred_at, memories.c.turn_seq)


async def turn_place(
    tx: Transaction, memory_id: str, *, field_id: str, user_id: str
) -> tuple[datetime, int] | None:
    """Where a stored turn of the user's field is in turn order (time, sequence number);
    None for a memory that is not one."""
    params = {"id": memory_id, "field_id": field_id, "user_id": user_id}
    row = (await tx.read(_PLACE, params)).first()
    return None if row is None else (row.occurred_at, int(row.turn_seq))


async def _fresh_label(tx: Transaction, field_id: str) -> int:
    counters = await tx.write(
        memory_fields.update()
        .where(memory_fields.c.id == field_id)
        .values(session_seq_next=memory_fields.c.session_seq_next + 1)
        .returning(memory_fields.c.session_seq_next)
    )
    return int(counters.scalar_one())


async def split_session(
    tx: Transaction, *, field_id: str, place: tuple[datetime, int]
) -> list[tuple[str, TurnChange]]:
    """After the turn at ``place`` left it (deleted, or moved in time): if the turns on
    either side of the place share a session but now lie more than ``SESSION_GAP`` apart,
    the later part becomes a session of its own, as if the turn had never been there."""
    at = {"field_id": field_id, "at": place[0], "seq": place[1]}
    before = (await tx.read(_BEFORE.limit(1), at)).first()
    after = (await tx.read(_AFTER.limit(1), at)).first()
    if (
        before is None
        or after is None
        or before.turn_session is None
        or before.turn_session != after.turn_session
        or after.occurred_at - before.occurred_at <= SESSION_GAP
    ):
        return []
    label = await _fresh_label(tx, field_id)
    later = tuple_(
        bindparam("b_at", before.occurred_at, type_=UTCDateTime()),
        bindparam("b_seq", int(before.turn_seq), type_=BigInteger()),
    )
    return await _relabel(
        tx, field_id, label, memories.c.turn_session == before.turn_session, later < _HERE
    )


async def place_moved(
    tx: Transaction, *, field_id: str, memory_id: str, at: datetime
) -> list[tuple[str, TurnChange]]:
    """A turn moved in time to ``at`` joins the session of the turns within
    ``SESSION_GAP`` of its new place, or else starts one."""
    label = await _fresh_label(tx, field_id)
    changes = await _relabel(tx, field_id, label, memories.c.id == memory_id)
    # Every stored turn after it counts (the moved turn keeps its old sequence number).
    _appended, joined = await join_sessions(
        tx, field_id=field_id, earliest=at, latest=at, first_seq=2**62, fresh_from=label
    )
    return changes + joined
