"""Conversation turns embedded in context: a turn's stored vector leans toward the turn
before it in its session.

A reply is often meaningless alone ("Yes, twice last year!", "A sunset over the lake"):
the question it answers says what it is about. So a turn's stored vector is its own
embedding plus ``weight`` x the stored vector of the turn just before it in the same
session, made unit length again. Being defined on the previous *stored* vector, the rule is
recursive (the turn before that weighs ``weight``², and so on) and gives the same vectors
whether a session arrives in one batch or turn by turn.

A change in the middle of a conversation (a turn stored before turns already there, a turn
rewritten, moved in time or deleted) changes what the turns after it lean on: the
:data:`FOLLOWING` turns after it are blended again (:func:`blend_again`), from their own
text. The change reaches the k-th turn after it with ``weight``^k, so further turns keep
their vectors (0.3^4: under 1 %). Queries are embedded alone; lexical search reads the
turn's own text.

Measured on LoCoMo's tuning conversations (docs/BENCHMARKS.md): dense retrieval alone
R@10 0.493 -> 0.528, the default hybrid 0.778 -> 0.787, at weight 0.3.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from domain.entities import MemoryKind
from domain.ports.memories import Embedder, MemoryQuery, Vector
from domain.ports.unit_of_work import UnitOfWork
from domain.sessions import SESSION_GAP

# How many turns after a changed one are blended again (see the module's docstring).
FOLLOWING = 3

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


async def turns_after(
    query: MemoryQuery,
    *,
    field_id: str,
    user_id: str,
    memory_id: str,
    count: int = FOLLOWING,
    span: timedelta = FOLLOWING * SESSION_GAP,
) -> list[str]:
    """Up to ``count`` turns of the field after the turn ``memory_id``, in turn order, none
    more than ``span`` after it (a turn further away does not lean on it, even through the
    turns between). Empty when ``memory_id`` is not a turn of the field."""
    around = await query.turns_around(
        field_id=field_id,
        user_id=user_id,
        memory_ids=[memory_id],
        steps=count,
        max_span_seconds=span.total_seconds(),
    )
    order = [m for m, _ in around.get(memory_id, [])]
    return order[order.index(memory_id) + 1 :] if memory_id in order else []


async def blend_again(
    uow: UnitOfWork,
    embedder: Embedder,
    *,
    user_id: str,
    memory_ids: Sequence[str],
    weight: float,
    own: Mapping[str, Vector] | None = None,
) -> None:
    """Store again the vectors of the turns ``memory_ids`` (consecutive, in turn order), each
    leaning on the one before it, the first on the turn stored before it now. Their own
    vectors come from ``own`` or are embedded again from their text (one batch). Turns no
    longer stored are left out."""
    if weight <= 0.0 or not memory_ids:
        return
    found = {m.id: m for m in await uow.memories.get_many(memory_ids, user_id=user_id)}
    chain = [found[i] for i in memory_ids if i in found]
    if not chain:
        return
    vectors = dict(own or {})
    missing = [m for m in chain if m.id not in vectors]
    if missing:
        embedded = await embedder.embed([m.content for m in missing])
        vectors.update((m.id, v) for m, v in zip(missing, embedded, strict=True))
    mixed = await stored_in_context(
        uow.memory_query,
        field_id=chain[0].field_id,
        user_id=user_id,
        own=[vectors[m.id] for m in chain],
        times=[m.occurred_at for m in chain],
        weight=weight,
        place_of=chain[0].id,
    )
    for memory, vector in zip(chain, mixed, strict=True):
        await uow.memories.update(memory, vector)
