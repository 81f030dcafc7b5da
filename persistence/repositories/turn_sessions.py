"""Sessions joined when conversation turns are stored before or between stored ones.

Turns stored in order are numbered into sessions as they come (``SqlMemoryRepository``'s
``_turn_order``, :func:`domain.sessions.number_sessions`). A batch sent out of order (the
earlier half of a conversation after the later one) may close the silence between
sessions, or fall just before one: those sessions are then one, as if the turns had come
in order (:func:`domain.sessions.joined_sessions`), relabelled in the same transaction.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, bindparam, select

from domain.sessions import SESSION_GAP, joined_sessions
from persistence.session import Transaction
from persistence.tables.memories import memories
from persistence.turn_store import TurnChange
from persistence.types import UTCDateTime

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


async def join_sessions(
    tx: Transaction,
    *,
    field_id: str,
    earliest: datetime,
    latest: datetime,
    first_seq: int,
    fresh_from: int,
) -> list[tuple[str, TurnChange]]:
    """After a batch of turns (times ``earliest`` … ``latest``, sequence numbers from
    ``first_seq``, new session labels from ``fresh_from``) was written to ``field_id``:
    relabel the sessions it joined. Returns the relabelled turns as changes for the
    in-process turn orders. One read when the batch was appended."""
    params = {"field_id": field_id, "seq": first_seq, "at": earliest}
    if (await tx.read(_STORED_AFTER, params)).first() is None:
        return []
    window = {"field_id": field_id, "lo": earliest - SESSION_GAP, "hi": latest + SESSION_GAP}
    rows = (await tx.read(_TURNS_BETWEEN, window)).all()
    relabel = joined_sessions(
        [(r.occurred_at, int(r.turn_session)) for r in rows if r.turn_session is not None],
        fresh_from=fresh_from,
    )
    changes: list[tuple[str, TurnChange]] = []
    for old, new in relabel.items():
        result = await tx.write(
            memories.update()
            .where(memories.c.field_id == field_id, memories.c.turn_session == old)
            .values(turn_session=new)
            .returning(memories.c.id, memories.c.occurred_at, memories.c.turn_seq)
        )
        changes += [(field_id, (r.id, r.occurred_at, int(r.turn_seq), new)) for r in result]
    return changes
