"""Conversation turns embedded in context: a turn's stored vector leans toward the turn
before it in its session.

A reply is often meaningless alone ("Yes, twice last year!", "A sunset over the lake"):
the question it answers says what it is about. So a turn's stored vector is its own
embedding plus ``weight`` x the stored vector of the turn just before it in the same
session, made unit length again. Being defined on the previous *stored* vector, the rule is
recursive (the turn before that weighs ``weight``², and so on) and gives the same vectors
whether a session arrives in one batch or turn by turn. Only what came before is used, so
writing a turn never rewrites an older one; a turn stored out of order is not re-blended
into the turns after it. Queries are embedded alone; lexical search reads the turn's own
text.

Measured on LoCoMo's tuning conversations (docs/BENCHMARKS.md): dense retrieval alone
R@10 0.493 -> 0.528, the default hybrid 0.778 -> 0.787, at weight 0.3.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta

from domain.entities import MemoryKind
from domain.ports.memories import MemoryQuery, Vector
from domain.sessions import SESSION_GAP

# Only conversation turns have a turn before them: facts added together are not a dialogue.
TURN_KINDS = frozenset({MemoryKind.EPISODE, MemoryKind.MESSAGE})


def _unit(values: list[float]) -> list[float]:
    norm = math.hypot(*values)
    return values if norm == 0.0 else [x / norm for x in values]


def in_context(
    own: Sequence[Vector],
    times: Sequence[datetime],
    *,
    previous: tuple[datetime, Vector] | None,
    weight: float,
    gap: timedelta = SESSION_GAP,
) -> list[Vector]:
    """The stored vectors of turns in turn order, given their own embeddings ``own`` and
    times ``times``. ``previous``: the time and stored vector of the field's turn just before
    the first of them, if any. A turn more than ``gap`` after the one before it starts a
    session (as :func:`domain.sessions.number_sessions` numbers them) and keeps its own
    vector; so does every turn when ``weight`` is 0, and a turn whose previous vector has
    another dimension (written by another embedder: nothing to blend)."""
    if weight <= 0.0:
        return list(own)
    out: list[Vector] = []
    before = previous
    for vector, at in zip(own, times, strict=True):
        if before is not None and at - before[0] <= gap and len(before[1]) == len(vector):
            pairs = zip(map(float, vector), map(float, before[1]), strict=True)
            mixed = _unit([a + weight * b for a, b in pairs])
        else:
            mixed = list(map(float, vector))
        out.append(mixed)
        before = (at, mixed)
    return out


async def stored_in_context(
    query: MemoryQuery,
    *,
    field_id: str,
    user_id: str,
    own: Sequence[Vector],
    times: Sequence[datetime],
    weight: float,
    place_of: str | None = None,
) -> list[Vector]:
    """:func:`in_context` for turns about to be stored in a field, the first leaning on the
    turn the field holds just before it: the last at or before its time, or with
    ``place_of`` (a stored turn's id) the turn before that one. One read, none at weight 0."""
    if weight <= 0.0 or not own:
        return list(own)
    previous = await query.turn_before(
        field_id=field_id, user_id=user_id, at=times[0], memory_id=place_of
    )
    return in_context(own, times, previous=previous, weight=weight)
