"""Embedded mode's in-process keyword postings on a real SQLite database: built in the
background on a large field's first search (FTS5 answers meanwhile), kept in step with
committed writes, never with rolled-back or uncommitted ones, and giving FTS5's scores."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from engine_support import Engine, engine
from sqlalchemy import text

from domain.entities import Actor, ChangeKind, MemoryChange
from domain.memory_drafts import MemoryDraft
from persistence.term_store import TermStore

__all__ = ["engine"]  # the fixture, used by name

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

_TEXTS = [
    "My sister Lena lives in Porto and works as a nurse.",
    "I am allergic to peanuts and shellfish.",
    "The quarterly budget review is on the first Monday of next month.",
    "Our cat Miso only eats salmon-flavoured food.",
    "I switched from Vim to Emacs last year and never looked back.",
    "Lena's cat is called Pip and she hates the vet.",
    "Porto has the best custard tarts; my sister sends me some every spring.",
]
_QUERIES = [
    ["sister", "porto"],
    ["allergies", "food"],
    ["cat", "vet", "salmon"],
    ["budget", "monday"],
    ["lena"],
    ["emacs", "vim", "editor"],
]


@dataclass
class Field:
    engine: Engine
    store: TermStore

    @property
    def runtime(self) -> Any:
        return self.engine.runtime

    @property
    def actor(self) -> Actor:
        return self.engine.actor

    @property
    def field_id(self) -> str:
        return self.engine.field_id

    async def add(self, *texts: str, commit: bool = True) -> list[str]:
        if commit:
            return [m.id for m in await self.engine.add(*[MemoryDraft(t) for t in texts])]
        async with self.runtime.deps.uow_factory() as uow:  # left without a commit: rolled back
            added = await self.engine.add_within(uow, *[MemoryDraft(t) for t in texts])
        return [m.id for m in added]

    async def lexical(self, terms: list[str]) -> list[tuple[str, float]]:
        async with self.runtime.deps.uow_factory() as uow:
            return await uow.lexical.search(field_id=self.field_id, terms=terms, k=20)


@pytest.fixture
async def field(engine: Engine) -> Field:
    # Every field is large enough here: the store's threshold is its constructor's.
    db = engine.runtime.db
    made = Field(engine, TermStore(db.engine, build_from=1))
    db.terms = made.store
    await made.add(*_TEXTS)
    return made


def _same(a: list[tuple[str, float]], b: list[tuple[str, float]]) -> None:
    assert dict(a).keys() == dict(b).keys()
    for memory_id, score in a:
        assert abs(dict(b)[memory_id] - score) < 1e-9
    # The order may differ only among equal coverage (BM25's statistics differ).
    assert [round(s, 9) for _, s in a] == [round(s, 9) for _, s in b]


async def test_first_search_is_fts5s_and_builds_the_postings(field: Field) -> None:
    assert field.store.get(field.field_id) is None
    by_fts5 = [await field.lexical(q) for q in _QUERIES]
    await field.store.settled()
    assert field.store.get(field.field_id) is not None
    from_memory = [await field.lexical(q) for q in _QUERIES]
    for a, b in zip(by_fts5, from_memory, strict=True):
        assert a  # every query matches something
        _same(a, b)


async def test_committed_writes_reach_the_postings_and_rollbacks_do_not(field: Field) -> None:
    await field.lexical(["cat"])
    await field.store.settled()
    (kept,) = await field.add("The parrot Kiwi whistles the news theme.")
    assert [m for m, _ in await field.lexical(["parrot"])] == [kept]
    await field.add("A parrot that was never stored.", commit=False)
    assert [m for m, _ in await field.lexical(["parrot"])] == [kept]

    deps = field.runtime.deps
    async with deps.uow_factory() as uow:
        await deps.memories.delete(uow=uow, actor=field.actor, memory_id=kept)
        await uow.commit()
    assert await field.lexical(["parrot"]) == []


async def test_a_transaction_sees_its_own_uncommitted_memories(field: Field) -> None:
    await field.lexical(["cat"])
    await field.store.settled()
    deps = field.runtime.deps
    async with deps.uow_factory() as uow:
        (added,) = await field.engine.add_within(uow, MemoryDraft("The heron fishes at the pond."))
        hits = await uow.lexical.search(field_id=field.field_id, terms=["heron"], k=5)
        assert [m for m, _ in hits] == [added.id]  # FTS5, inside the transaction
    assert await field.lexical(["heron"]) == []  # rolled back: in neither index


async def test_writes_committed_while_building_are_not_lost(field: Field) -> None:
    field.store.build(field.field_id)
    (during,) = await field.add("The kayak trip starts at the old mill.")
    await field.store.settled()
    assert field.store.get(field.field_id) is not None
    assert [m for m, _ in await field.lexical(["kayak"])] == [during]
    (after,) = await field.add("Another kayak, a red one.")
    assert {m for m, _ in await field.lexical(["kayak"])} == {during, after}


async def test_an_index_forgotten_while_building_is_not_installed(field: Field) -> None:
    field.store.build(field.field_id)
    field.store.forget(field.field_id)
    await field.store.settled()
    assert field.store.get(field.field_id) is None


async def test_postings_mostly_of_removed_memories_are_built_again(field: Field) -> None:
    await field.lexical(["cat"])
    await field.store.settled()
    first = field.store.get(field.field_id)
    assert first is not None
    extra = await field.add(*[f"Errand number {i}: buy stamps." for i in range(12)])
    deps = field.runtime.deps
    async with deps.uow_factory() as uow:
        for memory_id in extra:
            await deps.memories.delete(uow=uow, actor=field.actor, memory_id=memory_id)
        await uow.commit()
    await field.store.settled()
    rebuilt = field.store.get(field.field_id)
    assert rebuilt is not None
    assert rebuilt is not first
    assert rebuilt.waste == 0
    assert len(rebuilt) == len(_TEXTS)
    assert await field.lexical(["stamps"]) == []


async def test_only_a_transaction_that_wrote_memories_searches_fts5(field: Field) -> None:
    await field.lexical(["cat"])
    await field.store.settled()
    (changed,) = await field.add("A note to be rewritten.")
    # Rewritten behind the postings' back: FTS5 (kept by triggers) sees the new text, the
    # postings do not, so the answer shows which of the two was searched.
    async with field.runtime.db.engine.begin() as conn:
        await conn.execute(
            text("UPDATE memories SET content = 'The zebra crossing.' WHERE id = :id"),
            {"id": changed},
        )
    assert await field.lexical(["zebra"]) == []
    deps = field.runtime.deps
    async with deps.uow_factory() as uow:
        note = MemoryChange(
            id=str(uuid.uuid4()),
            memory_id=changed,
            user_id=field.actor.user_id,
            change=ChangeKind.UPDATE,
            old_content=None,
            new_content=None,
            actor=field.actor.user_id,
            at=datetime.now(UTC),
        )
        await uow.history.add(note)  # another table: the postings still answer
        assert await uow.lexical.search(field_id=field.field_id, terms=["zebra"], k=5) == []
        memory = await uow.memories.get(changed, user_id=field.actor.user_id)
        assert memory is not None
        await uow.memories.update(memory, None)  # a memory written: FTS5 answers
        hits = await uow.lexical.search(field_id=field.field_id, terms=["zebra"], k=5)
        assert [m for m, _ in hits] == [changed]
