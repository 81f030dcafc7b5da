"""A search's reads about its best candidates, on SQLite in one driver-thread call.

After fusion a search reads the best candidates' memories (feedback, the speaker prior, the
results), the turns around the best hits and the sessions of the best 200. As SQLAlchemy
statements these were five round trips to the driver thread, each a hand-off and an
event-loop wake-up, plus SQLAlchemy's statement and row processing (most of their cost: the
statements themselves take ~1 ms together at 20k turns). Here one function runs them all on
the sqlite3 connection (:meth:`BatchingTransaction.call`) and returns plain values.
PostgreSQL keeps the separate statements (``SqlMemoryRepository``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from domain.entities import Memory, MemoryKind, MemoryLayer
from domain.ports.memories import SearchContext
from persistence.repositories.turns import in_turn_order, turns_near_sql
from persistence.sqlite_driver import BatchingTransaction
from persistence.tables.memories import memories

_FIELDS = [c.name for c in memories.c if c.name != "embedding"]
_ROWS = (
    f"SELECT {', '.join(_FIELDS)} FROM memories "  # noqa: S608  # column names only
    "WHERE id IN (SELECT value FROM json_each(?))"
)
_TURNS = (
    "SELECT id, user_id, field_id, occurred_at, turn_seq, turn_session FROM memories "
    "WHERE id IN (SELECT value FROM json_each(?))"
)
_AT = {name: i for i, name in enumerate(_FIELDS)}


def _when(value: str) -> datetime:
    """A UTCDateTime column as SQLAlchemy stores it on SQLite (naive UTC text). Parsed with
    its zone appended: a quarter of the cost of ``.replace(tzinfo=UTC)`` afterwards, the
    same value (tzinfo is ``UTC``)."""
    return datetime.fromisoformat(value + "+00:00")


def _stored(value: datetime) -> str:
    """``value`` as SQLAlchemy binds a UTCDateTime on SQLite (what the column holds)."""
    v = value.astimezone(UTC)
    return (
        f"{v.year:04d}-{v.month:02d}-{v.day:02d} "
        f"{v.hour:02d}:{v.minute:02d}:{v.second:02d}.{v.microsecond:06d}"
    )


def _json(value: str | None) -> Any:
    if value == "[]":  # most tags and metadata: no parsing
        return []
    if value == "{}":
        return {}
    return None if value is None else json.loads(value)


_KINDS = {kind.value: kind for kind in MemoryKind}
_LAYERS = {layer.value: layer for layer in MemoryLayer}


def _memory(row: tuple[Any, ...]) -> Memory:
    """A memory from a plain ``_ROWS`` row, as ``persistence.repositories.memories._memory``
    makes it from SQLAlchemy's."""
    a = _AT
    expires = row[a["expires_at"]]
    return Memory(
        id=row[a["id"]],
        user_id=row[a["user_id"]],
        field_id=row[a["field_id"]],
        content=row[a["content"]],
        kind=_KINDS.get(row[a["kind"]]) or MemoryKind(row[a["kind"]]),
        source=row[a["source"]],
        layer=_LAYERS.get(row[a["layer"]]) or MemoryLayer(row[a["layer"]]),
        importance=row[a["importance"]],
        tags=list(_json(row[a["tags"]]) or []),
        metadata=dict(_json(row[a["metadata"]]) or {}),
        occurred_at=_when(row[a["occurred_at"]]),
        created_at=_when(row[a["created_at"]]),
        updated_at=_when(row[a["updated_at"]]),
        content_hash=row[a["content_hash"]],
        expires_at=_when(expires) if expires is not None else None,
        superseded_by=row[a["superseded_by"]],
        speaker=row[a["speaker"]],
    )


_Raw = tuple[list[Any], list[Any], list[Any]]


def _read(
    conn: sqlite3.Connection,
    field_id: str,
    user_id: str,
    load: list[str],
    anchors: list[str],
    steps: int,
    span: timedelta,
    session_of: list[str],
) -> _Raw:
    """On the driver thread: the turn columns of ``anchors`` and ``session_of``, the turns
    around the anchors, and the rows of ``load``."""
    asked = list(dict.fromkeys([*anchors, *session_of]))
    turns = conn.execute(_TURNS, (json.dumps(asked),)).fetchall() if asked else []
    near: list[Any] = []
    wanted = set(anchors)
    placed = [
        (m, at, seq)
        for m, user, field, at, seq, _ in turns
        if m in wanted and user == user_id and field == field_id and seq is not None
    ]
    if placed and steps > 0:
        params: dict[str, Any] = {"field_id": field_id, "steps": steps}
        for i, (memory_id, at, seq) in enumerate(placed):
            when = _when(at)
            params[f"a{i}"], params[f"t{i}"], params[f"s{i}"] = memory_id, _stored(when), seq
            params[f"lo{i}"], params[f"hi{i}"] = _stored(when - span), _stored(when + span)
        near = conn.execute(turns_near_sql(len(placed)), params).fetchall()
    rows = conn.execute(_ROWS, (json.dumps(list(load)),)).fetchall() if load else []
    return turns, near, rows


def _rows(conn: sqlite3.Connection, ids: list[str]) -> list[Any]:
    return conn.execute(_ROWS, (json.dumps(ids),)).fetchall()


async def memories_by_id(
    tx: BatchingTransaction, memory_ids: Sequence[str], *, user_id: str
) -> list[Memory]:
    """``SqlMemoryRepository.get_many`` on SQLite: one driver-thread call, no SQLAlchemy
    row processing (the speaker prior's and the results' reads of a search)."""
    rows = await tx.call(_rows, list(memory_ids))
    user = _AT["user_id"]
    return [_memory(row) for row in rows if row[user] == user_id]


async def search_context(
    tx: BatchingTransaction,
    *,
    field_id: str,
    user_id: str,
    load: Sequence[str],
    anchors: Sequence[str],
    steps: int,
    max_span_seconds: float,
    session_of: Sequence[str],
) -> SearchContext:
    """:meth:`domain.ports.MemoryQuery.search_context` in one round trip (see the module
    docstring); the results equal ``get_many``, ``turns_around`` and ``sessions``'."""
    span = timedelta(seconds=max_span_seconds)
    turns, near, rows = await tx.call(
        _read, field_id, user_id, list(load), list(anchors), int(steps), span, list(session_of)
    )
    mine = {t[0]: t for t in turns if t[1] == user_id and t[2] == field_id}
    found: dict[str, list[tuple[str, datetime, int]]] = {}
    for memory_id in anchors:
        turn = mine.get(memory_id)
        if turn is not None and turn[4] is not None:
            found[memory_id] = [(memory_id, _when(turn[3]), int(turn[4]))]
    for anchor, memory_id, at, seq in near:
        found[anchor].append((memory_id, _when(at), int(seq)))
    around = in_turn_order(found)
    sessions = {}
    for memory_id in session_of:
        turn = mine.get(memory_id)
        if turn is not None and turn[5] is not None:
            sessions[memory_id] = int(turn[5])
    user = _AT["user_id"]
    loaded = {row[0]: _memory(row) for row in rows if row[user] == user_id}
    return SearchContext(memories=loaded, around=around, sessions=sessions)
