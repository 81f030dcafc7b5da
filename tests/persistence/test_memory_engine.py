"""The memory engine through the domain services on both backends: hybrid hits with
reasons, lexical index kept in sync (update, delete, rollback), time cues, neighbour
expansion, near-duplicate updates with history, layers and promotion."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.entities import Actor, MemoryLayer, Role
from domain.memory_drafts import MemoryDraft, MemoryPatchInput
from domain.retrieval.settings import SearchFilter
from memoria.bootstrap import migrate
from memoria.runtime import build_runtime
from memoria.settings import Settings
from providers.embedders.hashing import HashingEmbedder


@dataclass
class Engine:
    runtime: Any
    actor: Actor
    field_id: str

    async def add(self, *drafts: MemoryDraft) -> list[Any]:
        deps = self.runtime.deps
        async with deps.uow_factory() as uow:
            added = await deps.memories.add_many(
                uow=uow, actor=self.actor, field_id=self.field_id, drafts=list(drafts)
            )
            await uow.commit()
        return list(added)

    async def search(self, query: str, top_k: int = 10, **kwargs: Any) -> list[Any]:
        deps = self.runtime.deps
        async with deps.uow_factory() as uow:
            return list(
                await deps.memories.search(
                    uow=uow,
                    actor=self.actor,
                    field_ids=[self.field_id],
                    query=query,
                    top_k=top_k,
                    **kwargs,
                )
            )

    async def lexical(self, word: str) -> list[str]:
        async with self.runtime.deps.uow_factory() as uow:
            hits = await uow.lexical.search(field_id=self.field_id, terms=[word], k=10)
        return [memory_id for memory_id, _ in hits]


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[Engine]:
    runtime = build_runtime(settings, embedder=HashingEmbedder())
    await migrate(runtime.db)
    deps = runtime.deps
    async with deps.uow_factory() as uow:
        result = await deps.auth.register(
            uow=uow, username="alice", email="alice@example.com", password="correct-horse-1"
        )
        actor = Actor(user_id=result.user.id, role=Role.USER, via="jwt")
        field = await deps.fields.create(uow=uow, actor=actor, name="notes")
        await uow.commit()
    try:
        yield Engine(runtime, actor, field.id)
    finally:
        await runtime.db.dispose()


async def test_hits_carry_score_and_reason(engine: Engine) -> None:
    await engine.add(
        MemoryDraft("My sister Anna lives in Lisbon"),
        MemoryDraft("The zebra at the zoo is called Stripes"),
        MemoryDraft("I prefer green tea in the morning"),
    )
    hits = await engine.search("zebra zoo")
    assert hits[0].memory.content == "The zebra at the zoo is called Stripes"
    assert hits[0].reason == "both"
    assert hits[0].score > 0
    lexical_only = await engine.search(
        "zebra", settings=replace(engine.runtime.deps.memories.retrieval, mode="lexical")
    )
    assert [(h.memory.content, h.reason) for h in lexical_only] == [
        ("The zebra at the zoo is called Stripes", "lexical")
    ]
    dense_only = await engine.search(
        "zebra",
        settings=replace(
            engine.runtime.deps.memories.retrieval, mode="dense", neighbour_weight=0.0
        ),
    )
    assert {h.reason for h in dense_only} == {"dense"}


async def test_lexical_index_follows_updates_deletes_and_rollbacks(engine: Engine) -> None:
    [memory] = await engine.add(MemoryDraft("We adopted a parrot named Kiwi"))
    assert await engine.lexical("parrot") == [memory.id]
    assert await engine.lexical("parrots") == [memory.id]  # stemmed on both backends
    deps = engine.runtime.deps
    async with deps.uow_factory() as uow:
        await deps.memories.update(
            uow=uow,
            actor=engine.actor,
            memory_id=memory.id,
            patch=MemoryPatchInput(content="We adopted a tortoise named Kiwi"),
        )
        await uow.commit()
    assert await engine.lexical("parrot") == []
    assert await engine.lexical("tortoise") == [memory.id]
    async with deps.uow_factory() as uow:  # never committed: nothing may remain
        await deps.memories.add(
            uow=uow,
            actor=engine.actor,
            field_id=engine.field_id,
            draft=MemoryDraft("A hamster called Biscuit"),
        )
    assert await engine.lexical("hamster") == []
    async with deps.uow_factory() as uow:
        await deps.memories.delete(uow=uow, actor=engine.actor, memory_id=memory.id)
        await uow.commit()
    assert await engine.lexical("tortoise") == []
    assert await engine.search("tortoise Kiwi") == []


async def test_filters_apply_inside_both_retrievers(engine: Engine) -> None:
    await engine.add(
        *[
            MemoryDraft(f"garden note {i}", source="slack" if i % 7 == 0 else "email")
            for i in range(30)
        ]
    )
    hits = await engine.search("garden note", top_k=5, filter=SearchFilter(sources=["slack"]))
    assert len(hits) == 5
    assert {h.memory.source for h in hits} == {"slack"}


async def test_time_cues_rank_by_occurred_at(engine: Engine) -> None:
    await engine.add(
        MemoryDraft("I started a new job as a baker", occurred_at=datetime(2019, 3, 1, tzinfo=UTC)),
        MemoryDraft("I started a new job as a pilot", occurred_at=datetime(2023, 9, 1, tzinfo=UTC)),
        MemoryDraft("I started a new job as a nurse", occurred_at=datetime(2021, 5, 1, tzinfo=UTC)),
    )
    latest = await engine.search("What is my latest new job?")
    assert latest[0].memory.content.endswith("pilot")
    first = await engine.search("What was my first new job?")
    assert first[0].memory.content.endswith("baker")
    dated = await engine.search("Which new job did I start in May 2021?")
    assert dated[0].memory.content.endswith("nurse")


async def test_when_questions_prefer_memories_that_state_a_time(engine: Engine) -> None:
    said = datetime(2023, 5, 8, 13, 0, tzinfo=UTC)
    undated = "Sam adopted a grey cat named Pixel"
    dated = "Sam adopted a grey cat named Pixel last week"
    await engine.add(
        MemoryDraft(undated, kind="fact", occurred_at=said),
        MemoryDraft(dated, kind="fact", occurred_at=said + timedelta(days=1)),
    )
    # Two memories: keywords at full weight (a field this small would mute them), so the
    # cue is what decides.
    settings = replace(engine.runtime.deps.memories.retrieval, lexical_trusted_size=1)
    plain = replace(settings, when_weight=0.0, prf_terms=0)
    cued = replace(settings, when_weight=0.5, prf_terms=0)
    query = "When did Sam adopt Pixel the grey cat?"
    before = {h.memory.content: h.score for h in await engine.search(query, settings=plain)}
    after = {h.memory.content: h.score for h in await engine.search(query, settings=cued)}
    assert after[dated] == pytest.approx(before[dated] * 1.5, rel=1e-4)
    assert after[undated] == pytest.approx(before[undated], rel=1e-4)
    assert next(iter(after)) == dated
    # Not a "when" question: no time cue.
    what = "What did Sam adopt?"
    assert {h.memory.content: h.score for h in await engine.search(what, settings=cued)} == {
        h.memory.content: h.score for h in await engine.search(what, settings=plain)
    }


async def test_feedback_reorders_found_hits_and_adds_none(engine: Engine) -> None:
    texts = [
        "Alex: pottery, clay, kiln",
        "Alex: pottery with clay in the kiln today",
        "Alex: pottery class, a clay bowl, kiln fired",
        "Sam: pottery is a relaxing hobby for weekends with friends and family at home",
        "Sam: football practice ran late",
    ]
    await engine.add(*[MemoryDraft(t, kind="fact") for t in texts])
    settings = engine.runtime.deps.memories.retrieval
    plain = await engine.search("pottery", settings=replace(settings, prf_terms=0))
    fed = await engine.search("pottery", settings=replace(settings, prf_terms=10))
    before = {h.memory.content: h.score for h in plain}
    after = {h.memory.content: h.score for h in fed}
    assert set(after) == set(before)  # feedback brings in nothing new
    assert [h.memory.content for h in plain][:3] == texts[:3]
    # The three best hits share "alex", "clay" and "kiln": they gain (the best prf_weight);
    # the fourth pottery memory has none of their words and keeps its score.
    gains = [after[t] - before[t] for t in texts[:3]]
    assert max(gains) == pytest.approx(settings.prf_weight, abs=1e-5)
    assert min(gains) > 0.0
    assert after[texts[3]] == pytest.approx(before[texts[3]], abs=1e-5)


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


async def test_near_duplicate_fact_updates_with_history(engine: Engine) -> None:
    [first] = await engine.add(MemoryDraft("I live in Berlin with my cat", tags=["home"]))
    [again] = await engine.add(
        MemoryDraft("I live in Berlin with my cat!", tags=["city"], metadata={"k": 1})
    )
    assert again.id == first.id
    assert again.content == "I live in Berlin with my cat!"
    assert again.tags == ["home", "city"]
    assert again.layer is MemoryLayer.LONG_TERM
    assert again.importance > first.importance
    deps = engine.runtime.deps
    async with deps.uow_factory() as uow:
        assert await uow.memories.count(user_id=engine.actor.user_id, field_id=engine.field_id) == 1
        history = await deps.memories.history(uow=uow, actor=engine.actor, memory_id=first.id)
    assert [(c.change.value, c.old_content) for c in history] == [
        ("ADD", None),
        ("UPDATE", "I live in Berlin with my cat"),
    ]
    # Events are not facts: the same words said twice are two memories.
    said = await engine.add(
        MemoryDraft("thanks so much!", kind="episode"),
        MemoryDraft("thanks so much!", kind="episode"),
    )
    assert said[0].id != said[1].id


async def test_layers_and_promotion(engine: Engine) -> None:
    old = datetime.now(UTC) - timedelta(days=30)
    chat, fact = await engine.add(
        MemoryDraft(
            "we talked about the weekend plans and the hiking trip", kind="episode", occurred_at=old
        ),
        MemoryDraft("My passport number expires in 2031", kind="fact"),
    )
    assert chat.layer is MemoryLayer.SHORT_TERM
    assert fact.layer is MemoryLayer.LONG_TERM
    deps = engine.runtime.deps
    async with deps.uow_factory() as uow:
        moved = await deps.memories.promote(
            uow=uow, actor=engine.actor, field_id=engine.field_id, min_importance=0.0
        )
        await uow.commit()
    assert moved == 1
    async with deps.uow_factory() as uow:
        again = await deps.memories.get(uow=uow, actor=engine.actor, memory_id=chat.id)
    assert again.layer is MemoryLayer.LONG_TERM


async def test_field_sizes_for_local_idf_follow_committed_writes(engine: Engine) -> None:
    """SQLite keeps a field's size (for the local-IDF decision) between searches; a commit
    that wrote memories drops it, and a transaction's own uncommitted rows are never shared."""
    db = engine.runtime.db
    await engine.add(*(MemoryDraft(f"note {i} about the garden") for i in range(3)))
    assert len(await engine.lexical("garden")) == 3
    if not db.is_sqlite:  # PostgreSQL's ranking needs no field size: nothing is kept
        assert db.field_sizes.get(engine.field_id) is None
        return
    assert db.field_sizes.get(engine.field_id) == 3
    await engine.add(MemoryDraft("the garden shed is blue"), MemoryDraft("garden hoses"))
    assert db.field_sizes.get(engine.field_id) is None  # the commit dropped it
    assert len(await engine.lexical("garden")) == 5
    assert db.field_sizes.get(engine.field_id) == 5
    deps = engine.runtime.deps
    async with deps.uow_factory() as uow:
        await deps.memories.add_many(
            uow=uow,
            actor=engine.actor,
            field_id=engine.field_id,
            drafts=[MemoryDraft("a garden gnome, not committed")],
        )
        own = await uow.lexical.search(field_id=engine.field_id, terms=["garden"], k=10)
        assert len(own) == 6  # sees its own row
        assert db.field_sizes.get(engine.field_id) == 5  # but did not share its count
    # Rolled back: nothing changed, the next count is taken afresh.
    assert len(await engine.lexical("garden")) == 5
    assert db.field_sizes.get(engine.field_id) == 5


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
        MemoryDraft(
            "I read a novel about lighthouses too",
            kind="episode",
            occurred_at=session,
            speaker="  Jon  ",
        ),
    )
    assert [m.speaker for m in added] == ["Maria", "Jon"]
    hits = await engine.search("which novel did Jon read")
    assert hits[0].memory.id == added[1].id
    assert hits[0].memory.speaker == "Jon"
