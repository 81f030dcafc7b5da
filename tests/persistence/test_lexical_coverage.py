"""Lexical scores are IDF-weighted coverage of the query, on both backends: a memory that
holds the question's rare words scores near 1, one that shares a single common word with a
long question scores low, and a tiny field's statistics are its own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import text

from domain.entities import Actor, Role
from domain.memory_drafts import MemoryDraft
from memoria.bootstrap import migrate
from memoria.runtime import build_runtime
from memoria.settings import Settings
from persistence.lexical_index import SCOPE_RATIO
from providers.embedders.hashing import HashingEmbedder


@dataclass
class Five:
    runtime: Any
    field_id: str
    owner: str


@pytest.fixture
async def field(settings: Settings) -> AsyncIterator[Five]:
    runtime = build_runtime(settings, embedder=HashingEmbedder())
    await migrate(runtime.db)
    deps = runtime.deps
    async with deps.uow_factory() as uow:
        result = await deps.auth.register(
            uow=uow, username="lex", email="lex@example.com", password="correct-horse-1"
        )
        actor = Actor(user_id=result.user.id, role=Role.USER, via="jwt")
        created = await deps.fields.create(uow=uow, actor=actor, name="five")
        await deps.memories.add_many(
            uow=uow,
            actor=actor,
            field_id=created.id,
            drafts=[
                MemoryDraft("My sister Lena lives in Porto and works as a nurse."),
                MemoryDraft("I am allergic to peanuts and shellfish."),
                MemoryDraft("The quarterly budget review is on the first Monday of next month."),
                MemoryDraft("Our cat Miso only eats salmon-flavoured food."),
                MemoryDraft("I switched from Vim to Emacs last year and never looked back."),
            ],
        )
        await uow.commit()
    try:
        yield Five(runtime, created.id, actor.user_id)
    finally:
        await runtime.db.dispose()


async def _another_user(five: Five, name: str, drafts: list[MemoryDraft]) -> None:
    """Another user, with one field holding ``drafts``, in the same database."""
    deps = five.runtime.deps
    async with deps.uow_factory() as uow:
        result = await deps.auth.register(
            uow=uow, username=name, email=f"{name}@example.com", password="correct-horse-1"
        )
        actor = Actor(user_id=result.user.id, role=Role.USER, via="jwt")
        theirs = await deps.fields.create(uow=uow, actor=actor, name=name)
        await deps.memories.add_many(uow=uow, actor=actor, field_id=theirs.id, drafts=drafts)
        await uow.commit()


async def _scores(five: Five, terms: list[str]) -> dict[str, float]:
    """Lexical scores by the second word of each memory's content."""
    async with five.runtime.deps.uow_factory() as uow:
        hits = await uow.lexical.search(field_id=five.field_id, terms=terms, k=10)
        rows = await uow.memories.get_many([m for m, _ in hits], user_id=five.owner)
    first = {m.id: m.content.split()[1] for m in rows}
    return {first[m]: s for m, s in hits}


async def test_scores_are_coverage_of_the_query(field: Five) -> None:
    long = await _scores(field, ["foods", "avoid", "allergies", "peanuts"])
    short = await _scores(field, ["food", "avoid"])
    full = await _scores(field, ["salmon", "cat", "miso"])
    assert all(0.0 <= s <= 1.0 for found in (long, short, full) for s in found.values())
    # Every term of the query in one short memory: close to full coverage.
    assert full["cat"] >= 0.7
    # One word of a four-word question ("foods" for the cat, "peanuts" for the allergy):
    # a small share each, whichever memory it is.
    assert set(long) == {"cat", "am"}
    assert max(long.values()) <= 0.5
    # The cat memory, matched on one of two words, covers more of the shorter question.
    assert short["cat"] > long["cat"]


async def test_another_tenants_memories_move_no_score(field: Five) -> None:
    question = ["cat", "food", "allergies", "sister"]
    before = await _scores(field, question)
    await _another_user(
        field, "noisy", [MemoryDraft(f"My cat number {i} likes cat food") for i in range(40)]
    )
    assert await _scores(field, question) == before


async def test_word_families_match_across_forms(field: Five) -> None:
    """The stemmers keep allergic/allergies apart; a long word also matches its family."""
    found = await _scores(field, ["allergies"])
    assert set(found) == {"am"}  # "I am allergic to peanuts and shellfish."
    assert found["am"] == 1.0
    assert set(await _scores(field, ["switching"])) == {"switched"}
    assert await _scores(field, ["allegory"]) == {}  # a different family


async def test_a_small_field_among_many_scores_the_same_and_matches_words_in_text_only(
    field: Five,
) -> None:
    """Once other tenants' memories outnumber the field many times over, SQLite searches the
    field through its own postings (persistence/lexical_index.py, SCOPE_RATIO): the scores
    stay what they were, and a word is matched in memories' text, never in their field's id."""
    queries = [
        ["foods", "avoid", "allergies", "peanuts"],
        ["salmon", "cat", "miso"],
        ["sister", "works", "monday"],
    ]
    alone = [await _scores(field, q) for q in queries]
    await _another_user(
        field,
        "crowd",
        [
            MemoryDraft(f"Note {i}: peanuts, salmon and the cat Miso again, {field.field_id}")
            for i in range(80)
        ],
    )
    async with field.runtime.db.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT count(*) FROM memories"))).scalar_one()
    assert rows >= 5 * SCOPE_RATIO  # the field is searched through its own postings now
    among = [await _scores(field, q) for q in queries]
    assert among == alone
    for part in field.field_id.split("-"):
        assert await _scores(field, [part.lower()]) == {}
