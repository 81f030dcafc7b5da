"""The memory engine through the domain services on both backends: hybrid hits with
reasons, lexical index kept in sync (update, delete, rollback), time cues, feedback,
near-duplicate updates with history, layers and promotion. Turn order and expansion are
in test_turn_order.py."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from engine_support import Engine, engine

from domain.entities import MemoryLayer
from domain.memory_drafts import MemoryDraft, MemoryPatchInput
from domain.retrieval.settings import SearchFilter

__all__ = ["engine"]  # the fixture, used by name


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
    plain = await engine.search(
        "pottery", settings=replace(settings, prf_terms=0, lexical_trusted_size=0)
    )
    fed = await engine.search(
        "pottery", settings=replace(settings, prf_terms=10, lexical_trusted_size=0)
    )
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


async def test_term_counts_for_local_idf_follow_committed_writes(engine: Engine) -> None:
    """SQLite keeps each term's document count in the field between searches (same scores
    from the kept counts); a commit that wrote memories drops them."""
    db = engine.runtime.db
    await engine.add(MemoryDraft("garden party"), MemoryDraft("garden gnome"), MemoryDraft("hats"))
    async with engine.runtime.deps.uow_factory() as uow:
        first = await uow.lexical.search(field_id=engine.field_id, terms=["garden", "gnome"], k=9)
    assert len(first) == 2
    assert first[0][1] == 1.0 > first[1][1]  # both words, then one
    if not db.is_sqlite:  # PostgreSQL counts in its one statement: nothing is kept
        return
    assert db.field_sizes.term_counts(engine.field_id, ["garden", "gnome"]) == {
        "garden": 2,
        "gnome": 1,
    }
    async with engine.runtime.deps.uow_factory() as uow:
        again = await uow.lexical.search(field_id=engine.field_id, terms=["garden", "gnome"], k=9)
    assert again == first
    await engine.add(MemoryDraft("gnome hats"), MemoryDraft("a gnome"))
    assert db.field_sizes.term_counts(engine.field_id, ["garden", "gnome"]) == {}
    assert len(await engine.lexical("gnome")) == 3
    assert db.field_sizes.term_counts(engine.field_id, ["gnome"]) == {"gnome": 3}
