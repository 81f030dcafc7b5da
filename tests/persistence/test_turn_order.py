"""Conversation turns on both backends: neighbours and sessions around strong hits, the
turn order when turns share a time, arrive undated or out of order, and the speaker."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from engine_support import Engine, engine

from domain.memory_drafts import MemoryDraft
from domain.ports.memories import SearchContext

__all__ = ["engine"]  # the fixture, used by name


async def test_neighbour_turns_come_along(engine: Engine) -> None:
    start = datetime(2023, 5, 8, 13, 0, tzinfo=UTC)
    turns = [
        "Alex: the weather is lovely today",
        "Sam: did you go to the concert on Friday?",
        "Alex: yes! Coldplay played for three hours",
        "Sam: I need to buy groceries",
    ]
    await engine.add(
        *[
            MemoryDraft(t, kind="episode", occurred_at=start + timedelta(minutes=i))
            for i, t in enumerate(turns)
        ]
    )
    # Without feedback terms, which would find the reply by its own words.
    plain = replace(engine.runtime.deps.memories.retrieval, prf_terms=0)
    hits = await engine.search("concert Friday", top_k=4, settings=plain)
    assert hits[0].memory.content == turns[1]
    # The reply, and two turns away (the default window is 2, each step within the gap);
    # all neighbours of the hit score the same, so their order among themselves is by id.
    by_content = {h.memory.content: h.reason for h in hits}
    assert by_content.get(turns[2]) == "neighbour"
    assert by_content.get(turns[3]) == "neighbour"
    narrow = await engine.search(
        "concert Friday",
        top_k=4,
        settings=replace(plain, neighbour_window=1),
    )
    assert turns[3] not in {h.memory.content for h in narrow}


async def test_turns_around_and_session_boost(engine: Engine) -> None:
    day1 = datetime(2023, 5, 8, 13, 0, tzinfo=UTC)
    day2 = day1 + timedelta(days=3)
    first = [
        "Alex: we adopted a puppy named Biscuit",
        "Sam: how lovely, what breed?",
        "Alex: a beagle, he loves the beach",
    ]
    second = ["Sam: I started pottery classes", "Alex: pottery sounds relaxing"]
    added = await engine.add(
        *[
            MemoryDraft(t, kind="episode", occurred_at=day1 + timedelta(minutes=i))
            for i, t in enumerate(first)
        ],
        *[
            MemoryDraft(t, kind="episode", occurred_at=day2 + timedelta(minutes=i))
            for i, t in enumerate(second)
        ],
        MemoryDraft("Alex likes beagles", kind="fact", occurred_at=day1),
    )
    ids = [m.id for m in added]
    async with engine.runtime.deps.uow_factory() as uow:
        around = await uow.memory_query.turns_around(
            field_id=engine.field_id,
            user_id=engine.actor.user_id,
            memory_ids=[ids[1], ids[5]],  # a turn and a fact (facts are not turns)
            steps=10,
            max_span_seconds=7 * 86400,
        )
        near = await uow.memory_query.turns_around(
            field_id=engine.field_id,
            user_id=engine.actor.user_id,
            memory_ids=[ids[0]],
            steps=1,
            max_span_seconds=3600,
        )
    assert list(around) == [ids[1]]
    assert [m for m, _ in around[ids[1]]] == ids[:5]  # time order, itself included
    assert [m for m, _ in near[ids[0]]] == ids[:2]
    # The puppy session's turns share its best hit's score; the pottery session does not.
    settings = engine.runtime.deps.memories.retrieval
    plain = replace(settings, session_weight=0.0, neighbour_weight=0.0, prf_terms=0)
    boosted = replace(settings, session_weight=0.5, neighbour_weight=0.0, prf_terms=0)
    before = {
        h.memory.id: h.score for h in await engine.search("puppy Biscuit beach", settings=plain)
    }
    after = {
        h.memory.id: h.score for h in await engine.search("puppy Biscuit beach", settings=boosted)
    }
    best = max(before[i] for i in ids[:3] if i in before)
    for memory_id in ids[:3]:
        if before.get(memory_id, 0.0) > 0:
            assert after[memory_id] == pytest.approx(before[memory_id] + 0.5 * best, abs=1e-5)
    for memory_id in ids[3:5]:
        if memory_id in before:
            assert after[memory_id] == pytest.approx(before[memory_id], abs=1e-5)


async def _order(engine: Engine, anchor: str) -> list[str]:
    async with engine.runtime.deps.uow_factory() as uow:
        around = await uow.memory_query.turns_around(
            field_id=engine.field_id,
            user_id=engine.actor.user_id,
            memory_ids=[anchor],
            steps=20,
            max_span_seconds=30 * 86400,
        )
    return [m for m, _ in around[anchor]]


async def test_turn_order_is_insertion_order_within_a_timestamp(engine: Engine) -> None:
    """A client that dates a whole session at once, one that sends no time at all, and
    turns that arrive after later ones: adjacency follows time first, then the order in
    which the turns were added (never the memories' random ids)."""
    session = datetime(2023, 5, 8, 13, 0, tzinfo=UTC)
    one_batch = await engine.add(
        *[
            MemoryDraft(f"A: turn {i} of the session", kind="episode", occurred_at=session)
            for i in range(6)
        ]
    )
    # The same timestamp again, added one call at a time: still insertion order.
    later = [
        (await engine.add(MemoryDraft(f"B: reply {i}", kind="episode", occurred_at=session)))[0]
        for i in range(3)
    ]
    expected = [m.id for m in one_batch] + [m.id for m in later]
    assert await _order(engine, expected[4]) == expected
    # A turn from the day before, added last, goes before them all.
    earlier = await engine.add(
        MemoryDraft("A: yesterday's turn", kind="episode", occurred_at=session - timedelta(days=1))
    )
    assert await _order(engine, expected[0]) == [earlier[0].id, *expected]
    # No timestamps: the batch shares "now", and insertion order decides.
    undated = await engine.add(*[MemoryDraft(f"C: undated {i}", kind="message") for i in range(4)])
    assert (await _order(engine, undated[2].id))[-4:] == [m.id for m in undated]


async def test_neighbours_of_turns_sharing_a_timestamp(engine: Engine) -> None:
    session = datetime(2023, 5, 8, 13, 0, tzinfo=UTC)
    turns = [
        "Alex: the weather is lovely today",
        "Sam: did you go to the concert on Friday?",
        "Alex: yes! Coldplay played for three hours",
        "Sam: I need to buy groceries",
        "Alex: the bakery closes early on Sundays",
    ]
    # Each turn stored with its own vector: only neighbour expansion can reach the reply.
    service = engine.runtime.deps.memories
    service.retrieval = replace(service.retrieval, turn_context_weight=0.0)
    await engine.add(*[MemoryDraft(t, kind="episode", occurred_at=session) for t in turns])
    plain = replace(engine.runtime.deps.memories.retrieval, prf_terms=0, session_weight=0.0)
    hits = await engine.search(
        "concert Friday", top_k=5, settings=replace(plain, neighbour_window=1)
    )
    reasons = {h.memory.content: h.reason for h in hits}
    assert hits[0].memory.content == turns[1]
    assert reasons.get(turns[0]) == "neighbour"
    assert reasons.get(turns[2]) == "neighbour"
    assert turns[4] not in reasons


async def test_speaker_is_stored_and_prefers_the_named_speakers_turns(engine: Engine) -> None:
    session = datetime(2023, 5, 8, 13, 0, tzinfo=UTC)
    added = await engine.add(
        MemoryDraft(
            "I read a novel about lighthouses", kind="episode", occurred_at=session, speaker="Maria"
        ),
        # The same words: only who said them can put Jon's turn first.
        MemoryDraft(
            "I read a novel about lighthouses",
            kind="episode",
            occurred_at=session,
            speaker="  Jon  ",
        ),
    )
    assert [m.speaker for m in added] == ["Maria", "Jon"]
    hits = await engine.search("which novel did Jon read")
    assert hits[0].memory.id == added[1].id
    assert hits[0].memory.speaker == "Jon"
    # Ties go by id, the same way for both questions: only the prior can flip the order.
    hits = await engine.search("which novel did Maria read")
    assert hits[0].memory.id == added[0].id


async def test_search_context_reads_what_the_separate_reads_give(engine: Engine) -> None:
    """One round trip on SQLite (persistence/repositories/search_context.py), separate
    statements on PostgreSQL: the same memories, turn windows and sessions either way."""
    day1 = datetime(2023, 5, 8, 13, 0, tzinfo=UTC)
    day2 = day1 + timedelta(days=3)
    added = await engine.add(
        *[
            MemoryDraft(f"Alex: turn {i} of day one", kind="episode", occurred_at=day1)
            for i in range(4)  # one shared timestamp: the stored order decides
        ],
        *[
            MemoryDraft(
                f"Sam: turn {i} of day two",
                kind="episode",
                occurred_at=day2 + timedelta(minutes=i),
                tags=["later"],
                metadata={"dia_id": f"D2:{i}"},
            )
            for i in range(3)
        ],
        MemoryDraft("Alex likes beagles", kind="fact", occurred_at=day1),
    )
    ids = [m.id for m in added]
    asked = [ids[1], ids[5], ids[7], "no-such-memory"]
    user = engine.actor.user_id
    async with engine.runtime.deps.uow_factory() as uow:
        q = uow.memory_query
        context = await q.search_context(
            field_id=engine.field_id,
            user_id=user,
            load=asked,
            anchors=asked,
            steps=2,
            max_span_seconds=7 * 86400,
            session_of=ids,
        )
        stranger = await q.search_context(
            field_id=engine.field_id,
            user_id="someone-else",
            load=asked,
            anchors=asked,
            steps=2,
            max_span_seconds=7 * 86400,
            session_of=ids,
        )
        loaded = {m.id: m for m in await uow.memories.get_many(asked, user_id=user)}
        around = await q.turns_around(
            field_id=engine.field_id,
            user_id=user,
            memory_ids=asked,
            steps=2,
            max_span_seconds=7 * 86400,
        )
        sessions = await q.sessions(field_id=engine.field_id, user_id=user, memory_ids=ids)
    assert context.memories == loaded
    assert set(loaded) == {ids[1], ids[5], ids[7]}
    assert loaded[ids[5]].tags == ["later"]
    assert loaded[ids[5]].metadata == {"dia_id": "D2:1"}
    assert loaded[ids[5]].occurred_at == day2 + timedelta(minutes=1)
    assert context.around == around
    assert [m for m, _ in around[ids[1]]] == ids[:4]  # two each side, within day one
    assert [m for m, _ in around[ids[5]]] == ids[3:7]  # the window crosses to day one
    assert set(around) == {ids[1], ids[5]}  # the fact and the unknown id are not turns
    assert context.sessions == sessions
    assert len(set(sessions.values())) == 2
    assert ids[7] not in sessions
    assert stranger == SearchContext(memories={}, around={}, sessions={})


async def test_a_field_knows_whether_it_has_held_turns(engine: Engine) -> None:
    deps = engine.runtime.deps

    async def has_turns() -> bool:
        async with deps.uow_factory() as uow:
            found = await uow.fields.get(engine.field_id, user_id=engine.actor.user_id)
        assert found is not None
        return found.has_turns

    await engine.add(MemoryDraft("I live in Porto"))
    assert not await has_turns()
    await engine.add(MemoryDraft("Sam: hello", kind="message"))
    assert await has_turns()
