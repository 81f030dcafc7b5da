"""PostgreSQL keyword search that skips the rows of its commonest terms (MaxScore,
persistence/pg_lexical_index.py): the same ranking as reading every row, on the real
PostgreSQL, whether the skip holds or falls back."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from engine_support import Engine, engine
from sqlalchemy import event

from domain.memory_drafts import MemoryDraft
from persistence.pg_lexical_index import SIZE_KEPT_FROM, skippable

__all__ = ["engine"]  # the fixture, used by name


def test_the_commonest_terms_are_skipped_while_they_weigh_less_than_any_other() -> None:
    known = {"note": 900, "garden": 300, "piano": 40, "violin": 5}
    # "note" (IDF ~0) and "garden" (~0.8) together weigh less than "piano" (~3.2): both
    # skipped; "piano" is too rare to skip.
    assert skippable(["note", "garden", "piano"], known, size=1000, k=10) == (0, 1)
    assert skippable(["garden", "note"], known, size=1000, k=10) == (1,)
    # Skipping "garden" too would leave "violin" alone to fill the best 10: it cannot.
    assert skippable(["note", "garden", "violin"], known, size=1000, k=10) == (0,)
    # Too rare for the depth asked: reading them is cheap anyway.
    assert skippable(["note", "piano"], known, size=1000, k=500) == ()
    # Unknown counts are never skipped, and one term is always read.
    assert skippable(["note", "kettle"], known, size=1000, k=10) == (0,)
    assert skippable(["note"], known, size=1000, k=10) == ()


@pytest.fixture
def database_url(pg_server: Any) -> str:
    """PostgreSQL only: embedded mode ranks keywords from its own postings."""
    return str(pg_server.url(pg_server.create_database()))


def recorded(engine: Engine) -> list[str]:
    """The statements the runtime sends from now on, on the unit of work's connections and
    beside them (a search reads beside its transaction when it has written nothing)."""
    statements: list[str] = []
    db = engine.runtime.db
    for reader in (db.engine, db.beside.engine if db.beside is not None else None):
        if reader is not None:
            event.listen(
                reader.sync_engine,
                "before_cursor_execute",
                lambda _conn, _cursor, statement, *_: statements.append(statement),
            )
    return statements


async def test_skipping_common_terms_ranks_as_reading_every_row(engine: Engine) -> None:
    topics = ["garden", "kitchen", "bicycle", "piano", "harbour"]
    # Every note holds "note"; a fifth hold each topic; "violin" is rare. Words of their
    # own keep notes from being merged as near-duplicates.
    notes = [
        MemoryDraft(
            f"note {topics[i % 5]} {'violin ' if i % 97 == 0 else ''}"
            f"{uuid.uuid4().hex[:8]} {uuid.uuid4().hex[:8]}"
        )
        for i in range(SIZE_KEPT_FROM + 100)
    ]
    await engine.add(*notes[:550])  # a batch holds at most 1,000
    await engine.add(*notes[550:])
    db = engine.runtime.db
    statements = recorded(engine)

    async def search(terms: list[str], k: int) -> list[tuple[str, float]]:
        async with engine.runtime.deps.uow_factory() as uow:
            return await uow.lexical.search(field_id=engine.field_id, terms=terms, k=k)

    for terms, k in ((["note", "piano", "violin"], 40), (["note", "violin"], 30)):
        # The first search counts the field, the second the terms; the third may skip.
        first = await search(terms, k)
        assert await search(terms, k) == first
        statements.clear()
        assert await search(terms, k) == first
        assert len(first) == k
        statements[:] = [s for s in statements if "ts_rank" in s]  # the keyword statements
        pruned = [s for s in statements if "AS qe" in s]
        if "piano" in terms:
            # "note" skipped ("piano" is not: "violin" alone cannot fill 40): 220 notes
            # hold "piano" or "violin", enough for 40.
            assert pruned
            assert len(statements) == 1
        else:
            # Only 12 notes hold "violin": the best 30 need notes holding only "note", and
            # nothing can be skipped.
            assert not pruned
            assert len(statements) == 1
    counts = db.term_counts
    assert counts.get(engine.field_id) is not None
    counts.forget([engine.field_id])
    expected = await search(["garden", "kitchen"], 40)
    # Only a count of "garden" known, and it says "garden" is rarer than "kitchen" (a count
    # from before many writes): it is skipped, and the rows of "kitchen" are read. A note
    # holding only "garden" may then score above all of them, so the search reads every
    # row after all (and counts "garden" again).
    counts.put(engine.field_id, {"garden": 100})
    statements.clear()
    assert await search(["garden", "kitchen"], 40) == expected
    assert ["AS qe" in s for s in statements if "ts_rank" in s] == [True, False]
    assert counts.get(engine.field_id) is not None
    await engine.add(MemoryDraft("note garden the last one"))
    assert engine.runtime.db.term_counts.get(engine.field_id) is None  # this process wrote


async def test_a_search_that_matches_nothing_still_counts_a_large_field_once(
    engine: Engine,
) -> None:
    notes = [
        MemoryDraft(f"note {uuid.uuid4().hex[:8]} {uuid.uuid4().hex[:8]}")
        for _ in range(SIZE_KEPT_FROM + 10)
    ]
    added = await engine.add(*notes[:600]) + await engine.add(*notes[600:])
    stored = len({memory.id for memory in added})  # near-duplicates merge
    assert stored >= SIZE_KEPT_FROM
    db = engine.runtime.db
    statements = recorded(engine)

    async def search(terms: list[str]) -> list[tuple[str, float]]:
        async with engine.runtime.deps.uow_factory() as uow:
            return await uow.lexical.search(field_id=engine.field_id, terms=terms, k=20)

    assert await search(["kettle"]) == []
    # The miss still brought the field's size back, and it is kept: the next miss does
    # not count the field again (before, every miss counted up to 20,000 rows).
    assert db.field_rows.get(engine.field_id) == stored
    statements.clear()
    assert await search(["teapot"]) == []
    keyword = [s for s in statements if "ts_rank" in s]
    assert len(keyword) == 1
    assert "SELECT count(*) FROM (SELECT 1 FROM memories" not in keyword[0]
    assert len(await search(["note"])) == 20
