"""The in-process vector indexes' memory budget (persistence/faiss_index.py): past it, the
fields searched least recently leave memory, and come back, right, when searched again."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from domain.entities import Actor, Role
from domain.memory_drafts import MemoryDraft
from memoria.bootstrap import migrate
from memoria.runtime import Runtime, build_runtime
from memoria.settings import Settings
from persistence.faiss_index import FaissStore
from providers.embedders.hashing import HashingEmbedder

EMBEDDER = HashingEmbedder()
PER_FIELD = 30


@dataclass
class Fields:
    runtime: Runtime
    store: FaissStore
    ids: dict[str, str]  # name -> field id

    async def nearest(self, name: str, text: str) -> list[str]:
        (vector,) = await EMBEDDER.embed([text])
        hits = await self.store.search(field_id=self.ids[name], vector=vector, k=3)
        return [memory_id for memory_id, _ in hits]

    def loaded(self) -> set[str]:
        return {name for name, f in self.ids.items() if self.store.loaded(f) is not None}


@pytest.fixture
async def fields(settings: Settings) -> AsyncIterator[Fields]:
    # Room for two fields of 30 vectors, not three.
    budgeted = dataclasses.replace(settings, vector_index_entries=2 * PER_FIELD + 10)
    runtime = build_runtime(budgeted.validated(), embedder=EMBEDDER)
    await migrate(runtime.db)
    deps = runtime.deps
    ids: dict[str, str] = {}
    async with deps.uow_factory() as uow:
        result = await deps.auth.register(
            uow=uow, username="alice", email="alice@example.com", password="correct-horse-1"
        )
        actor = Actor(user_id=result.user.id, role=Role.USER, via="jwt")
        for name in ("garden", "kitchen", "harbour"):
            field = await deps.fields.create(uow=uow, actor=actor, name=name)
            ids[name] = field.id
            drafts = [
                MemoryDraft(f"{name} note {i}: {word} {i * 7919 % 1000}")
                for i, word in enumerate(["tulips", "basil", "ferries"] * (PER_FIELD // 3))
            ]
            await deps.memories.add_many(uow=uow, actor=actor, field_id=field.id, drafts=drafts)
        await uow.commit()
    assert runtime.db.faiss is not None
    try:
        yield Fields(runtime, runtime.db.faiss, ids)
    finally:
        await runtime.db.dispose()


async def test_the_fields_searched_least_recently_leave_memory_past_the_budget(
    fields: Fields,
) -> None:
    store = fields.store
    first = {name: await fields.nearest(name, f"{name} note 4: basil") for name in fields.ids}
    await store.settled()
    # Three fields of 30 against room for 70: the first searched left when the third loaded.
    assert fields.loaded() == {"kitchen", "harbour"}
    assert await fields.nearest("kitchen", "kitchen note 4: basil") == first["kitchen"]
    # "garden" comes back, right; "harbour", now the least recently searched, leaves.
    assert await fields.nearest("garden", "garden note 4: basil") == first["garden"]
    await store.settled()
    assert fields.loaded() == {"kitchen", "garden"}
    if fields.runtime.db.is_sqlite:
        # Embedded mode saved it before it left: the next load reads the file.
        vectors = fields.runtime.settings.data_dir / "vectors"
        assert (vectors / f"{fields.ids['harbour']}.faiss").exists()
    assert await fields.nearest("harbour", "harbour note 4: basil") == first["harbour"]


async def test_without_a_budget_every_field_stays(settings: Settings) -> None:
    runtime = build_runtime(settings, embedder=EMBEDDER)
    try:
        assert runtime.db.faiss is not None
        assert runtime.db.faiss.budget == 0  # the default: no limit
    finally:
        await runtime.db.dispose()
