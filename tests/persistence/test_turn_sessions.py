"""Sessions of turns sent out of order, on both backends: a batch stored before or between
stored turns joins the sessions it closes the silence between, in SQL and in embedded
mode's in-process turn order alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from engine_support import Engine, engine

from domain.memory_drafts import MemoryDraft, MemoryPatchInput

__all__ = ["engine"]  # the fixture, used by name

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def _turns(at: datetime, count: int, who: str = "Sam") -> list[MemoryDraft]:
    return [
        MemoryDraft(f"{who}: line {i}", kind="episode", occurred_at=at + timedelta(minutes=i))
        for i in range(count)
    ]


async def _sessions(engine: Engine, ids: list[str]) -> dict[str, int]:
    """The turns' sessions in SQL; in embedded mode, the kept turn order must agree."""
    async with engine.runtime.deps.uow_factory() as uow:
        found = await uow.memory_query.sessions(
            field_id=engine.field_id, user_id=engine.actor.user_id, memory_ids=ids
        )
    store = engine.runtime.db.turns
    kept = store.get(engine.field_id) if store is not None else None
    if kept is not None:
        assert kept.sessions(ids) == found
    return found


async def _kept_turn_order(engine: Engine) -> None:
    """Embedded mode: build the in-process turn order now, so later writes reach it."""
    store = engine.runtime.db.turns
    if store is not None:
        store.build(engine.field_id)
        await store.settled()
        assert store.get(engine.field_id) is not None


async def test_the_earlier_half_sent_last_joins_the_later_half(engine: Engine) -> None:
    later = await engine.add(*_turns(T0 + 2 * HOUR, 3))
    await _kept_turn_order(engine)
    earlier = await engine.add(*_turns(T0, 3, who="Alex"))
    ids = [m.id for m in [*earlier, *later]]
    sessions = await _sessions(engine, ids)
    assert len(sessions) == len(ids)
    assert set(sessions.values()) == {sessions[later[0].id]}


async def test_a_turn_closing_a_silence_joins_the_sessions_around_it(engine: Engine) -> None:
    morning = await engine.add(*_turns(T0, 2))
    evening = await engine.add(*_turns(T0 + 6 * HOUR, 2))  # 6 h later: another session
    assert len(set((await _sessions(engine, [morning[0].id, evening[0].id])).values())) == 2
    await _kept_turn_order(engine)
    noon = await engine.add(*_turns(T0 + 3 * HOUR, 1, who="Alex"))
    ids = [m.id for m in [*morning, *noon, *evening]]
    assert set((await _sessions(engine, ids)).values()) == {
        (await _sessions(engine, ids))[morning[0].id]
    }


async def test_turns_that_close_no_silence_leave_sessions_apart(engine: Engine) -> None:
    morning = await engine.add(*_turns(T0, 2))
    night = await engine.add(*_turns(T0 + 12 * HOUR, 2))
    late = await engine.add(*_turns(T0 + HOUR, 1, who="Alex"))  # after the morning only
    sessions = await _sessions(engine, [m.id for m in [*morning, *late, *night]])
    assert sessions[late[0].id] == sessions[morning[0].id]
    assert sessions[night[0].id] != sessions[morning[0].id]


async def _bridged(engine: Engine) -> tuple[Any, Any, Any]:
    """Turns at 9:00, 12:00 and 15:00: one session, held together by the noon turn."""
    morning, noon, afternoon = [
        (await engine.add(*_turns(T0 + hours * HOUR, 1)))[0] for hours in (0, 3, 6)
    ]
    ids = [morning.id, noon.id, afternoon.id]
    assert len(set((await _sessions(engine, ids)).values())) == 1
    await _kept_turn_order(engine)
    return morning, noon, afternoon


async def test_deleting_the_turn_that_bridged_a_silence_splits_its_session(
    engine: Engine,
) -> None:
    morning, noon, afternoon = await _bridged(engine)
    await engine.delete(noon.id)
    sessions = await _sessions(engine, [morning.id, afternoon.id])
    assert sessions[morning.id] != sessions[afternoon.id]


async def test_deleting_a_turn_that_bridged_nothing_keeps_the_session(engine: Engine) -> None:
    first = await engine.add(*_turns(T0, 3))
    await _kept_turn_order(engine)
    await engine.delete(first[1].id)
    assert len(set((await _sessions(engine, [first[0].id, first[2].id])).values())) == 1


async def test_a_turn_moved_away_splits_its_session_and_joins_the_one_it_lands_in(
    engine: Engine,
) -> None:
    morning, noon, afternoon = await _bridged(engine)
    evening = (await engine.add(*_turns(T0 + 14 * HOUR, 1)))[0]  # 23:00: a session apart
    await engine.patch(noon.id, MemoryPatchInput(occurred_at=T0 + 12 * HOUR))  # to 21:00
    sessions = await _sessions(engine, [morning.id, noon.id, afternoon.id, evening.id])
    assert sessions[morning.id] != sessions[afternoon.id]  # nothing bridges 9:00-15:00 now
    assert sessions[noon.id] == sessions[evening.id]  # 21:00 is 2 h before 23:00
    assert sessions[noon.id] not in (sessions[morning.id], sessions[afternoon.id])
