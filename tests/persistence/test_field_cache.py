"""Per-field facts kept between searches (persistence/field_cache.py): how long they are kept,
and, on the real PostgreSQL, the keyword ranking's field size, kept for a large field, gone
after this process's next write to it, the scores the same either way."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from engine_support import Engine, engine
from sqlalchemy import text

from domain.memory_drafts import MemoryDraft
from persistence.field_cache import FieldCache, changed_fields_payload, fields_named
from persistence.pg_lexical_index import SIZE_KEPT_FROM, PgLexicalIndex

__all__ = ["engine"]  # the fixture, used by name


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_value_is_kept_until_it_expires_or_is_forgotten() -> None:
    clock = Clock()
    cache = FieldCache[int](ttl=10.0, clock=clock)
    cache.put("a", 1)
    cache.put("b", 2)
    clock.now += 9.9
    assert (cache.get("a"), cache.get("b")) == (1, 2)
    cache.forget(["a", "unknown"])
    assert (cache.get("a"), cache.get("b")) == (None, 2)
    clock.now += 0.1
    assert cache.get("b") is None


def test_a_changed_fields_notification_names_them_or_every_field() -> None:
    assert fields_named(changed_fields_payload({"b", "a"})) == ["a", "b"]
    many = {str(uuid.uuid4()) for _ in range(400)}  # past NOTIFY's 8000-byte payload
    assert len(changed_fields_payload(many)) < 8000
    assert fields_named(changed_fields_payload(many)) is None
    assert fields_named("not json") is None
    assert fields_named('{"a": 1}') is None


@pytest.fixture
def database_url(pg_server: Any) -> str:
    """PostgreSQL only: SQLite's keyword index keeps its own counts (FieldSizes)."""
    return str(pg_server.url(pg_server.create_database()))


async def _scores(engine: Engine, terms: list[str]) -> list[tuple[str, float]]:
    async with engine.runtime.deps.uow_factory() as uow:
        return await uow.lexical.search(field_id=engine.field_id, terms=terms, k=1000)


async def _size(engine: Engine) -> int:
    async with engine.runtime.db.engine.connect() as conn:
        query = text("SELECT count(*) FROM memories WHERE field_id = :f")
        return int((await conn.execute(query, {"f": engine.field_id})).scalar_one())


async def test_a_large_fields_size_is_kept_until_this_process_writes_to_it(
    engine: Engine,
) -> None:
    sizes = engine.runtime.db.field_rows
    topics = ["garden", "kitchen", "bicycle", "piano", "harbour"]
    # Words of their own, so that no note is a near-duplicate of another (merged on add).
    notes = [
        MemoryDraft(f"the {topics[i % 5]} {uuid.uuid4().hex[:8]} {uuid.uuid4().hex[:8]}")
        for i in range(SIZE_KEPT_FROM + 20)
    ]
    await engine.add(*notes[:500])  # a batch holds at most 1,000
    await engine.add(*notes[500:])
    counted = await _scores(engine, ["piano", "harbour"])
    stored = await _size(engine)
    assert stored >= SIZE_KEPT_FROM
    assert sizes.get(engine.field_id) == stored
    assert await _scores(engine, ["piano", "harbour"]) == counted  # from the kept size
    await engine.add(MemoryDraft("The piano tuner came on Tuesday"))
    assert sizes.get(engine.field_id) is None
    recounted = await _scores(engine, ["piano", "harbour"])
    assert sizes.get(engine.field_id) == stored + 1
    assert len(recounted) == len(counted) + 1


async def test_a_small_fields_size_is_counted_by_every_search(engine: Engine) -> None:
    await engine.add(MemoryDraft("The piano is in the hall"), MemoryDraft("A bicycle shed"))
    assert await _scores(engine, ["piano"])
    assert engine.runtime.db.field_rows.get(engine.field_id) is None


async def test_a_field_past_the_count_cap_is_weighed_by_its_exact_size(engine: Engine) -> None:
    """Counted up to a cap of 50, a 200-memory field in which "garden" is in 60 memories
    gives that word ln(140.5 / 60.5) ~ 0.84, as an uncapped count does, not the ~0 of a
    count stopped at 50 for both the field and the word."""
    notes = [
        MemoryDraft(
            f"{'the garden' if i < 60 else 'a kitchen'} {uuid.uuid4().hex[:8]}"
            + (" with a piano" if i % 20 == 0 else "")
        )
        for i in range(200)
    ]
    await engine.add(*notes)
    stored = await _size(engine)
    async with engine.runtime.deps.uow_factory() as uow:
        capped = PgLexicalIndex(uow._tx, cap=50)
        uncapped = PgLexicalIndex(uow._tx, cap=10_000)
        terms = ["garden", "piano"]
        past_cap = await capped.search(field_id=engine.field_id, terms=terms, k=300)
        exact = await uncapped.search(field_id=engine.field_id, terms=terms, k=300)
    assert stored > 50
    assert past_cap == exact
    # A garden note without the piano covers garden's share of the two weights: well above 0.
    gardens = {score for _, score in exact if 0.0 < score < 0.99}
    assert min(gardens) > 0.2, gardens
