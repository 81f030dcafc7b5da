"""PostgreSQL: a read-only search's keyword statement runs on a connection of its own,
beside the vector search on the transaction's (persistence/session.py ``BesideReads``),
with the same results; a transaction that has written reads on its own connection, which
sees its uncommitted memories."""

from __future__ import annotations

from typing import Any

import pytest
from engine_support import Engine, engine
from sqlalchemy import event

from domain.memory_drafts import MemoryDraft
from persistence.pg_lexical_index import PgLexicalIndex

__all__ = ["engine"]  # the fixture, used by name

pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)

_TEXTS = [
    "My sister Lena lives in Porto and works as a nurse.",
    "I am allergic to peanuts and shellfish.",
    "Our cat Miso only eats salmon-flavoured food.",
    "Lena's cat is called Pip and she hates the vet.",
]


def _checkouts(engine: Engine) -> list[Any]:
    beside = engine.runtime.db.beside
    assert beside is not None
    taken: list[Any] = []
    event.listen(beside.engine.sync_engine.pool, "checkout", lambda *args: taken.append(args))
    return taken


async def test_a_read_only_search_reads_keywords_beside_with_the_same_results(
    engine: Engine,
) -> None:
    await engine.add(*[MemoryDraft(t) for t in _TEXTS])
    taken = _checkouts(engine)
    async with engine.runtime.deps.uow_factory() as uow:
        beside = await uow.lexical.search(field_id=engine.field_id, terms=["cat", "vet"], k=10)
        assert len(taken) == 1
        own = await PgLexicalIndex(uow._tx).search(  # the same transaction, nothing beside
            field_id=engine.field_id, terms=["cat", "vet"], k=10
        )
    assert beside == own
    assert len(beside) == 2
    hits = await engine.search("which cat hates the vet?")
    assert hits[0].memory.content == _TEXTS[3]
    assert len(taken) == 2  # the service's search went beside too


async def test_a_transaction_that_wrote_reads_on_its_own_connection(engine: Engine) -> None:
    await engine.add(*[MemoryDraft(t) for t in _TEXTS])
    taken = _checkouts(engine)
    deps = engine.runtime.deps
    async with deps.uow_factory() as uow:
        (own,) = await engine.add_within(uow, MemoryDraft("The heron fishes at the pond."))
        hits = await uow.lexical.search(field_id=engine.field_id, terms=["heron"], k=5)
    assert [m for m, _ in hits] == [own.id]  # uncommitted, seen by its own transaction
    assert taken == []
