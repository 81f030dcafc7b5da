"""Turns changed in the middle of a conversation, on both backends: whatever order turns
arrive in and however they are rewritten, moved or deleted, every stored turn vector ends up
as if the conversation had been written in order as it now stands."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from engine_support import Engine, engine
from sqlalchemy import select

from domain.memory_drafts import MemoryDraft, MemoryPatchInput
from domain.turn_vectors import FOLLOWING, in_context
from persistence.tables.memories import memories

__all__ = ["engine"]  # the fixture, used by name

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
LINES = [
    "Sam: did you see the match last night?",
    "Alex: no, I was at my sister's in Porto",
    "Sam: how is she doing?",
    "Alex: great, she just adopted a cat called Miso",
    "Sam: lovely, send me a photo",
    "Alex: will do tomorrow",
]


def _turn(i: int, text: str | None = None, *, minutes: int | None = None) -> MemoryDraft:
    at = T0 + timedelta(minutes=i if minutes is None else minutes)
    return MemoryDraft(text or LINES[i], kind="episode", occurred_at=at)


async def _vectors(engine: Engine, ids: list[str]) -> dict[str, list[float]]:
    async with engine.runtime.db.engine.connect() as conn:
        rows = await conn.execute(
            select(memories.c.id, memories.c.embedding).where(memories.c.id.in_(ids))
        )
        return {r.id: np.asarray(r.embedding, dtype=np.float32).tolist() for r in rows}


async def _assert_in_order(engine: Engine, turns: list[tuple[str, str, datetime]]) -> None:
    """``turns``: (memory id, text, time) as the conversation now stands, in turn order."""
    own = await engine.runtime.deps.memories.embedder.embed([text for _, text, _ in turns])
    weight = engine.runtime.deps.memories.retrieval.turn_context_weight
    assert weight > 0.0  # the default blends
    want = in_context(list(own), [at for _, _, at in turns], previous=None, weight=weight)
    got = await _vectors(engine, [memory_id for memory_id, _, _ in turns])
    for (memory_id, text, _), vector in zip(turns, want, strict=True):
        assert got[memory_id] == pytest.approx(list(vector), abs=1e-5), text


def _row(memory: Any, i: int) -> tuple[str, str, datetime]:
    return memory.id, LINES[i], T0 + timedelta(minutes=i)


async def test_a_turn_sent_late_is_blended_into_the_turns_after_it(engine: Engine) -> None:
    assert len(LINES) - 2 <= FOLLOWING + 1  # the turns after the late one are all blended
    early = await engine.add(_turn(0))
    rest = await engine.add(*[_turn(i) for i in range(2, 5)])
    late = await engine.add(_turn(1))
    await _assert_in_order(
        engine,
        [
            _row(early[0], 0),
            _row(late[0], 1),
            *(_row(m, i) for i, m in zip(range(2, 5), rest, strict=True)),
        ],
    )


async def test_a_batch_interleaved_with_stored_turns_is_blended_in_turn_order(
    engine: Engine,
) -> None:
    stored = await engine.add(_turn(0), _turn(2), _turn(4))
    batch = await engine.add(_turn(1), _turn(3), _turn(5))
    order = [stored[0], batch[0], stored[1], batch[1], stored[2], batch[2]]
    await _assert_in_order(engine, [_row(m, i) for i, m in enumerate(order)])


async def test_deleting_a_turn_blends_the_turns_after_it_with_the_turn_before(
    engine: Engine,
) -> None:
    added = await engine.add(*[_turn(i) for i in range(5)])
    await engine.delete(added[1].id)
    await _assert_in_order(engine, [_row(added[i], i) for i in (0, 2, 3, 4)])


async def test_rewriting_a_turn_reaches_the_turns_after_it(engine: Engine) -> None:
    added = await engine.add(*[_turn(i) for i in range(5)])
    text = "Alex: no, I was working late on the quarterly budget review"
    await engine.patch(added[1].id, MemoryPatchInput(content=text))
    rows = [_row(m, i) for i, m in enumerate(added)]
    rows[1] = (added[1].id, text, rows[1][2])
    await _assert_in_order(engine, rows)


@pytest.mark.parametrize(("which", "to"), [(1, 4), (3, 0)], ids=["later", "earlier"])
async def test_moving_a_turn_in_time_blends_both_places_again(
    engine: Engine, which: int, to: int
) -> None:
    # At most FOLLOWING turns after either place: all of them are blended exactly.
    added = await engine.add(*[_turn(i) for i in range(5)])
    moved_to = T0 + timedelta(minutes=to, seconds=30)
    await engine.patch(added[which].id, MemoryPatchInput(occurred_at=moved_to))
    rows = [_row(m, i) for i, m in enumerate(added)]
    rows[which] = (added[which].id, LINES[which], moved_to)
    await _assert_in_order(engine, sorted(rows, key=lambda row: row[2]))


async def test_a_turn_appended_in_order_rewrites_no_stored_vector(engine: Engine) -> None:
    added = await engine.add(*[_turn(i) for i in range(3)])
    before = await _vectors(engine, [m.id for m in added])
    await engine.add(_turn(3))
    assert await _vectors(engine, [m.id for m in added]) == before


async def test_turns_after_a_long_silence_keep_their_own_vectors(engine: Engine) -> None:
    added = await engine.add(_turn(0), _turn(1), _turn(2, minutes=600), _turn(3, minutes=601))
    before = await _vectors(engine, [m.id for m in added[2:]])
    await engine.delete(added[1].id)
    assert await _vectors(engine, [m.id for m in added[2:]]) == before


async def test_turns_further_than_following_keep_within_a_percent(engine: Engine) -> None:
    # The late turn has five turns after it: the first FOLLOWING are blended again exactly,
    # the rest keep vectors that moved by weight^k of the change, k > FOLLOWING.
    lines = [*LINES, "Sam: thanks!"]
    first = await engine.add(MemoryDraft(lines[0], kind="episode", occurred_at=T0))
    rest = await engine.add(
        *[
            MemoryDraft(lines[i], kind="episode", occurred_at=T0 + timedelta(minutes=i))
            for i in range(2, 7)
        ]
    )
    late = await engine.add(_turn(1))
    order = [first[0], late[0], *rest]
    rows = [(m.id, lines[i], T0 + timedelta(minutes=i)) for i, m in enumerate(order)]
    own = await engine.runtime.deps.memories.embedder.embed([text for _, text, _ in rows])
    weight = engine.runtime.deps.memories.retrieval.turn_context_weight
    want = in_context(list(own), [at for *_, at in rows], previous=None, weight=weight)
    got = await _vectors(engine, [m.id for m in order])
    cosines = [float(np.dot(got[m.id], w)) for m, w in zip(order, want, strict=True)]
    assert cosines[: 2 + FOLLOWING] == pytest.approx([1.0] * (2 + FOLLOWING), abs=1e-5)
    assert min(cosines[2 + FOLLOWING :]) > 0.99
