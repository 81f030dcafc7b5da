"""Turn vectors in context on both backends: what the service stores for conversation turns
written in one batch, one at a time, after a silence, and when a turn is rewritten."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from engine_support import Engine, engine
from sqlalchemy import select

from domain.memory_drafts import MemoryDraft, MemoryPatchInput
from domain.services.reembed import ReembedService
from domain.turn_vectors import in_context
from persistence.tables.memories import memories
from providers.embedders.hashing import HashingEmbedder

__all__ = ["engine"]  # the fixture, used by name

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


async def _stored(engine: Engine, memory_id: str) -> np.ndarray[Any, Any]:
    async with engine.runtime.db.engine.connect() as conn:
        value = (
            await conn.execute(select(memories.c.embedding).where(memories.c.id == memory_id))
        ).scalar_one()
    return np.asarray(value, dtype=np.float32)


async def _own(engine: Engine, *texts: str) -> list[list[float]]:
    vectors = await engine.runtime.deps.memories.embedder.embed(list(texts))
    return [[float(x) for x in v] for v in vectors]


def _weight(engine: Engine) -> float:
    weight = float(engine.runtime.deps.memories.retrieval.turn_context_weight)
    assert weight > 0.0  # the default blends
    return weight


async def test_turns_are_stored_leaning_toward_the_turn_before(engine: Engine) -> None:
    texts = ["Sam: what did you paint?", "Alex: a sunset over the lake", "Sam: lovely"]
    batch = await engine.add(*[MemoryDraft(t, kind="episode", occurred_at=T0) for t in texts])
    # One more turn of the session, sent alone a minute later: it leans on the stored turn.
    later = await engine.add(
        MemoryDraft("Alex: thanks!", kind="message", occurred_at=T0 + timedelta(minutes=1))
    )
    fact = await engine.add(MemoryDraft("I live in Porto", occurred_at=T0))
    own = await _own(engine, *texts, "Alex: thanks!", "I live in Porto")
    want = in_context(
        own[:4], [T0, T0, T0, T0 + timedelta(minutes=1)], previous=None, weight=_weight(engine)
    )
    for memory, vector in zip([*batch, *later], want, strict=True):
        assert (await _stored(engine, memory.id)).tolist() == pytest.approx(list(vector), abs=1e-6)
    assert (await _stored(engine, batch[0].id)).tolist() == pytest.approx(own[0], abs=1e-6)
    assert (await _stored(engine, fact[0].id)).tolist() == pytest.approx(own[4], abs=1e-6)


async def test_a_turn_after_a_long_silence_is_stored_as_it_is(engine: Engine) -> None:
    await engine.add(MemoryDraft("Sam: good night", kind="episode", occurred_at=T0))
    morning = await engine.add(
        MemoryDraft("Sam: good morning", kind="episode", occurred_at=T0 + timedelta(hours=9))
    )
    own = await _own(engine, "Sam: good morning")
    assert (await _stored(engine, morning[0].id)).tolist() == pytest.approx(own[0], abs=1e-6)


async def test_a_rewritten_turn_leans_toward_the_turn_before_it(engine: Engine) -> None:
    texts = ["Sam: where were you?", "Alex: at the gym", "Sam: again?"]
    added = await engine.add(*[MemoryDraft(t, kind="episode", occurred_at=T0) for t in texts])
    first = await _stored(engine, added[0].id)
    deps = engine.runtime.deps
    async with deps.uow_factory() as uow:
        await deps.memories.update(
            uow=uow,
            actor=engine.actor,
            memory_id=added[1].id,
            patch=MemoryPatchInput(content="Alex: at the climbing wall"),
        )
        await uow.commit()
    own = await _own(engine, "Alex: at the climbing wall")
    # Blended with the turn before it in turn order, not with the field's last turn.
    want = in_context(own, [T0], previous=(T0, first.tolist()), weight=_weight(engine))[0]
    assert (await _stored(engine, added[1].id)).tolist() == pytest.approx(list(want), abs=1e-6)


async def test_the_turn_before_is_found_in_turn_order(engine: Engine) -> None:
    added = await engine.add(
        *[MemoryDraft(f"A: turn {i}", kind="episode", occurred_at=T0) for i in range(3)]
    )
    await engine.add(MemoryDraft("a fact, not a turn", occurred_at=T0 + timedelta(minutes=5)))
    async with engine.runtime.deps.uow_factory() as uow:
        query = uow.memory_query
        keys = {"field_id": engine.field_id, "user_id": engine.actor.user_id}
        last = await query.turn_before(at=T0 + timedelta(hours=1), **keys)
        middle = await query.turn_before(at=T0, memory_id=added[2].id, **keys)
        first = await query.turn_before(at=T0, memory_id=added[0].id, **keys)
        earlier = await query.turn_before(at=T0 - timedelta(seconds=1), **keys)
        other_user = await query.turn_before(
            at=T0 + timedelta(hours=1), field_id=engine.field_id, user_id="someone-else"
        )
    assert last is not None
    assert middle is not None
    assert last[0] == T0
    assert np.asarray(last[1]).tolist() == (await _stored(engine, added[2].id)).tolist()
    assert np.asarray(middle[1]).tolist() == (await _stored(engine, added[1].id)).tolist()
    assert first is None
    assert earlier is None
    assert other_user is None


async def test_re_embedding_walks_turn_order_and_blends_turns_as_written(engine: Engine) -> None:
    # Out of id order on purpose: the walk must follow time and the order turns were stored.
    texts = [f"{who}: line {i} about the lake" for i, who in enumerate("ABABA")]
    first = await engine.add(*[MemoryDraft(t, kind="episode", occurred_at=T0) for t in texts[:3]])
    fact = await engine.add(MemoryDraft("a fact among the turns", occurred_at=T0))
    rest = await engine.add(
        *[MemoryDraft(t, kind="episode", occurred_at=T0 + timedelta(minutes=1)) for t in texts[3:]]
    )
    turns = [*first, *rest]
    other = HashingEmbedder(dimension=64)  # another embedder: the field is now stale
    service = ReembedService(embedder=other, page_size=2)  # turns split across pages
    deps = engine.runtime.deps
    cursor: str | None = ""
    while cursor is not None:
        async with deps.uow_factory() as uow:
            step = await service.step(uow=uow, field_id=engine.field_id, after=cursor)
            await uow.commit()
        cursor = step.cursor
    own = [[float(x) for x in v] for v in await other.embed([*texts, "a fact among the turns"])]
    times = [T0, T0, T0, T0 + timedelta(minutes=1), T0 + timedelta(minutes=1)]
    want = in_context(own[:5], times, previous=None, weight=_weight(engine))
    for memory, vector in zip(turns, want, strict=True):
        got = (await _stored(engine, memory.id)).tolist()
        assert got == pytest.approx(list(vector), abs=1e-6)
    assert (await _stored(engine, fact[0].id)).tolist() == pytest.approx(own[5], abs=1e-6)
