"""A user, a field and the runtime's services on a real database, for the memory-engine
tests of this folder (``engine`` is a fixture: import it into the test module)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from domain.entities import Actor, Role
from domain.memory_drafts import MemoryDraft, MemoryPatchInput
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
        async with self.runtime.deps.uow_factory() as uow:
            added = await self.add_within(uow, *drafts)
            await uow.commit()
        return added

    async def add_within(self, uow: Any, *drafts: MemoryDraft) -> list[Any]:
        """Add ``drafts`` in ``uow``, left to the caller to commit (or not)."""
        return list(
            await self.runtime.deps.memories.add_many(
                uow=uow, actor=self.actor, field_id=self.field_id, drafts=list(drafts)
            )
        )

    async def patch(self, memory_id: str, patch: MemoryPatchInput) -> None:
        """Update one memory, as ``updateMemory`` does, and commit."""
        deps = self.runtime.deps
        async with deps.uow_factory() as uow:
            await deps.memories.update(uow=uow, actor=self.actor, memory_id=memory_id, patch=patch)
            await uow.commit()

    async def delete(self, memory_id: str) -> None:
        """Delete one memory, as ``deleteMemory`` does, and commit."""
        deps = self.runtime.deps
        async with deps.uow_factory() as uow:
            await deps.memories.delete(uow=uow, actor=self.actor, memory_id=memory_id)
            await uow.commit()

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
