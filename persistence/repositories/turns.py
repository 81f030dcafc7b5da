"""The turn order of a field's conversation turns: for a search's best hits, the turns just
before and after them, read from the covering partial index ``ix_memories_field_turns`` at a
cost that does not grow with the field."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, Integer, String, bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.selectable import TextualSelect

from persistence.session import Transaction
from persistence.tables.memories import memories
from persistence.types import UTCDateTime

_ANCHORS_BY_IDS = select(
    memories.c.id,
    memories.c.occurred_at,
    memories.c.user_id,
    memories.c.field_id,
    memories.c.turn_seq,
).where(memories.c.id.in_(bindparam("ids", expanding=True)))


async def _anchors(
    tx: Transaction, *, field_id: str, user_id: str, memory_ids: Sequence[str]
) -> dict[str, tuple[datetime, int]]:
    """(occurred_at, turn_seq) of the conversation turns among ``memory_ids`` that are the
    user's and in the field; anything else has no neighbours."""
    if not memory_ids:
        return {}
    return {
        row.id: (row.occurred_at, int(row.turn_seq))
        # Primary key only: see get_many.
        for row in await tx.read(_ANCHORS_BY_IDS, {"ids": list(memory_ids)})
        if row.user_id == user_id and row.field_id == field_id and row.turn_seq is not None
    }


@functools.lru_cache(maxsize=128)
def turns_near_sql(anchors: int) -> str:
    """The SQL of :func:`_turns_near` for ``anchors`` anchors, with named placeholders (SQLite
    and SQLAlchemy alike; persistence/repositories/search_context.py runs it on the raw
    driver connection)."""
    parts: list[str] = []
    for i in range(anchors):
        bounds = {"<": f"AND occurred_at >= :lo{i} ", ">": f"AND occurred_at <= :hi{i} "}
        for op, order in (("<", "DESC"), (">", "ASC")):
            parts.append(
                # Only placeholder names and constant operators are interpolated.
                f"SELECT * FROM (SELECT :a{i} AS anchor, id, occurred_at, turn_seq "  # noqa: S608
                "FROM memories WHERE field_id = :field_id AND turn_seq IS NOT NULL "
                f"AND (occurred_at, turn_seq) {op} (:t{i}, :s{i}) {bounds[op]}"
                f"ORDER BY occurred_at {order}, turn_seq {order} LIMIT :steps) AS w{i}{op == '<'}"
            )
    return " UNION ALL ".join(parts)


@functools.lru_cache(maxsize=128)
def _turns_near_statement(anchors: int) -> TextualSelect:
    """The statement of :func:`_turns_near` for ``anchors`` anchors. Built once per count:
    constructing it (and SQLAlchemy's cache key of its ~5 x ``anchors`` typed parameters)
    cost more than running it."""
    binds = [
        bindparam(k, type_=UTCDateTime())
        for i in range(anchors)
        for k in (f"t{i}", f"lo{i}", f"hi{i}")
    ]
    return (
        text(turns_near_sql(anchors))
        .bindparams(*binds)
        .columns(anchor=String(), id=String(), occurred_at=UTCDateTime(), turn_seq=BigInteger())
    )


async def _turns_near(
    tx: Transaction,
    *,
    field_id: str,
    anchors: dict[str, tuple[datetime, int]],
    steps: int,
    span: timedelta,
) -> list[Any]:
    """Up to ``steps`` turns before and after each anchor in the field's turn order
    ``(occurred_at, turn_seq)``, each side one seek on the covering partial index
    ``ix_memories_field_turns`` that reads at most ``steps`` entries, so the cost does not
    grow with the field. One round trip for all anchors. Plain SQL text: building this with
    Core expressions cost more than running it."""
    params: dict[str, Any] = {"field_id": field_id, "steps": int(steps)}
    for i, (memory_id, (at, seq)) in enumerate(anchors.items()):
        params[f"a{i}"], params[f"t{i}"], params[f"s{i}"] = memory_id, at, seq
        params[f"lo{i}"], params[f"hi{i}"] = at - span, at + span
    return list(await tx.read(_turns_near_statement(len(anchors)), params))


def in_turn_order(
    found: dict[str, list[tuple[str, datetime, int]]],
) -> dict[str, list[tuple[str, datetime]]]:
    """Each anchor's turns, itself included, as (id, occurred_at) in the field's turn order
    ``(occurred_at, turn_seq)``: what ``turns_around`` returns."""
    return {
        anchor: [(m, at) for m, at, _ in sorted(turns, key=lambda t: (t[1], t[2]))]
        for anchor, turns in found.items()
    }


async def turns_around(
    tx: Transaction,
    *,
    field_id: str,
    user_id: str,
    memory_ids: Sequence[str],
    steps: int,
    max_span_seconds: float,
) -> dict[str, list[tuple[str, datetime]]]:
    if tx.conn.dialect.name == "postgresql":
        around, _ = await pg_turn_context(
            tx,
            field_id=field_id,
            user_id=user_id,
            anchors=memory_ids,
            steps=steps,
            max_span_seconds=max_span_seconds,
            session_of=[],
        )
        return around
    anchors = await _anchors(tx, field_id=field_id, user_id=user_id, memory_ids=memory_ids)
    if not anchors or steps <= 0:
        return {m: [(m, at)] for m, (at, _) in anchors.items()}
    rows = await _turns_near(
        tx,
        field_id=field_id,
        anchors=anchors,
        steps=steps,
        span=timedelta(seconds=max_span_seconds),
    )
    found: dict[str, list[tuple[str, datetime, int]]] = {
        m: [(m, at, seq)] for m, (at, seq) in anchors.items()
    }
    for row in rows:
        found[row.anchor].append((row.id, row.occurred_at, int(row.turn_seq)))
    return in_turn_order(found)


# PostgreSQL: the turn columns of a search's anchors and session candidates and the turns
# around the anchors in one statement (three round trips before). The SQLite text of
# ``turns_near_sql``, with 60 subqueries for 30 anchors, took PostgreSQL ~8-12 ms to plan
# for ~0.3 ms of work (20k turns); here each anchor's two seeks are a lateral subquery.
# ``part`` 0 rows are the turns asked about, part 1 rows the neighbours of ``anchor``.
_PG_TURN_CONTEXT = (
    text(
        """WITH t AS MATERIALIZED (
            SELECT id, user_id, field_id, occurred_at, turn_seq, turn_session FROM memories
            WHERE id = ANY(CAST(:ids AS varchar[])))
        SELECT 0 AS part, NULL AS anchor, id, user_id, field_id, occurred_at, turn_seq,
            turn_session
        FROM t
        UNION ALL
        SELECT 1, a.id, w.id, NULL, NULL, w.occurred_at, w.turn_seq, NULL
        FROM t AS a CROSS JOIN LATERAL (
            (SELECT id, occurred_at, turn_seq FROM memories
            WHERE field_id = :field_id AND turn_seq IS NOT NULL
            AND (occurred_at, turn_seq) < (a.occurred_at, a.turn_seq)
            AND occurred_at >= a.occurred_at - make_interval(secs => :span)
            ORDER BY occurred_at DESC, turn_seq DESC LIMIT :steps)
            UNION ALL
            (SELECT id, occurred_at, turn_seq FROM memories
            WHERE field_id = :field_id AND turn_seq IS NOT NULL
            AND (occurred_at, turn_seq) > (a.occurred_at, a.turn_seq)
            AND occurred_at <= a.occurred_at + make_interval(secs => :span)
            ORDER BY occurred_at ASC, turn_seq ASC LIMIT :steps)
        ) AS w
        WHERE a.id = ANY(CAST(:anchors AS varchar[])) AND a.user_id = :user_id
            AND a.field_id = :field_id AND a.turn_seq IS NOT NULL"""
    )
    .bindparams(
        bindparam("ids", type_=ARRAY(String())), bindparam("anchors", type_=ARRAY(String()))
    )
    .columns(
        part=Integer(),
        anchor=String(),
        id=String(),
        user_id=String(),
        field_id=String(),
        occurred_at=UTCDateTime(),
        turn_seq=BigInteger(),
        turn_session=BigInteger(),
    )
)


async def pg_turn_context(
    tx: Transaction,
    *,
    field_id: str,
    user_id: str,
    anchors: Sequence[str],
    steps: int,
    max_span_seconds: float,
    session_of: Sequence[str],
) -> tuple[dict[str, list[tuple[str, datetime]]], dict[str, int]]:
    """``turns_around`` of ``anchors`` and ``sessions`` of ``session_of`` on PostgreSQL, in
    one round trip; the results equal theirs."""
    asked = list(dict.fromkeys([*anchors, *session_of]))
    if not asked:
        return {}, {}
    rows = await tx.read(
        _PG_TURN_CONTEXT,
        {
            "ids": asked,
            "anchors": list(anchors) if steps > 0 else [],
            "field_id": field_id,
            "user_id": user_id,
            "steps": int(steps),
            "span": float(max_span_seconds),
        },
    )
    mine: dict[str, Any] = {}
    near: list[Any] = []
    for row in rows:
        if row.part == 1:
            near.append(row)
        elif row.user_id == user_id and row.field_id == field_id:
            mine[row.id] = row
    found: dict[str, list[tuple[str, datetime, int]]] = {}
    for memory_id in anchors:
        turn = mine.get(memory_id)
        if turn is not None and turn.turn_seq is not None:
            found[memory_id] = [(memory_id, turn.occurred_at, int(turn.turn_seq))]
    for row in near:
        found[row.anchor].append((row.id, row.occurred_at, int(row.turn_seq)))
    around = in_turn_order(found)
    sessions = {
        memory_id: int(mine[memory_id].turn_session)
        for memory_id in session_of
        if memory_id in mine and mine[memory_id].turn_session is not None
    }
    return around, sessions
