"""Memories: add (one or a batch), update with history, delete, history and search."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from domain.clock import Clock
from domain.entities import (
    Actor,
    ChangeKind,
    Memory,
    MemoryChange,
    MemoryField,
    MemoryHit,
    MemoryKind,
    MemoryLayer,
    new_id,
)
from domain.errors import BadUserInput, NotFound
from domain.events import MEMORY_CREATED, MEMORY_DELETED, MEMORY_UPDATED, DomainEvent
from domain.policy import Limits, check_tags, check_top_k, require_text
from domain.ports import Embedder, UnitOfWork
from domain.search import MemoryDraft, MemoryPatchInput, SearchFilter
from domain.services.importance import score_importance


def memory_event(name: str, memory: Memory, *, at: datetime) -> DomainEvent:
    return DomainEvent(
        name=name,
        user_id=memory.user_id,
        at=at,
        payload={
            "id": memory.id,
            "field_id": memory.field_id,
            "content": memory.content,
            "source": memory.source,
            "layer": memory.layer.value,
            "tags": list(memory.tags),
            "metadata": dict(memory.metadata),
            "occurred_at": memory.occurred_at.isoformat(),
        },
    )


def content_hash(content: str) -> str:
    return hashlib.sha256(" ".join(content.lower().split()).encode()).hexdigest()


class MemoryService:
    def __init__(self, *, embedder: Embedder, clock: Clock, limits: Limits) -> None:
        self._embedder = embedder
        self._clock = clock
        self._limits = limits

    async def _field(self, uow: UnitOfWork, actor: Actor, field_id: str) -> MemoryField:
        field = await uow.fields.get(field_id, user_id=actor.user_id)
        if field is None:
            raise NotFound("Memory field not found")
        return field

    def _build(self, actor: Actor, field: MemoryField, draft: MemoryDraft) -> Memory:
        content = require_text(
            draft.content, name="content", max_chars=self._limits.max_content_chars
        )
        try:
            kind = MemoryKind(draft.kind)
        except ValueError:
            raise BadUserInput(f"unknown memory kind {draft.kind!r}") from None
        source = (draft.source or "api").strip().lower()[:64] or "api"
        now = self._clock.now()
        return Memory(
            id=new_id(),
            user_id=actor.user_id,
            field_id=field.id,
            content=content,
            kind=kind,
            source=source,
            layer=MemoryLayer.SHORT_TERM if kind is MemoryKind.MESSAGE else MemoryLayer.LONG_TERM,
            importance=score_importance(content),
            tags=check_tags(draft.tags, limits=self._limits),
            metadata=dict(draft.metadata or {}),
            occurred_at=draft.occurred_at or now,
            created_at=now,
            updated_at=now,
            content_hash=content_hash(content),
        )

    def _change(
        self, actor: Actor, memory: Memory, kind: ChangeKind, old: str | None, new: str | None
    ) -> MemoryChange:
        return MemoryChange(
            id=new_id(),
            memory_id=memory.id,
            user_id=memory.user_id,
            change=kind,
            old_content=old,
            new_content=new,
            actor=actor.user_id,
            at=self._clock.now(),
        )

    async def add(
        self, *, uow: UnitOfWork, actor: Actor, field_id: str, draft: MemoryDraft
    ) -> Memory:
        return (await self.add_many(uow=uow, actor=actor, field_id=field_id, drafts=[draft]))[0]

    async def add_many(
        self, *, uow: UnitOfWork, actor: Actor, field_id: str, drafts: Sequence[MemoryDraft]
    ) -> list[Memory]:
        """Validate everything first, embed in one batch, then write: all or nothing."""
        if not drafts:
            raise BadUserInput("at least one memory is required", details={"field": "inputs"})
        if len(drafts) > self._limits.max_batch:
            raise BadUserInput(f"at most {self._limits.max_batch} memories per batch")
        field = await self._field(uow, actor, field_id)
        memories = [self._build(actor, field, draft) for draft in drafts]
        vectors = await self._embedder.embed([m.content for m in memories])
        await uow.memories.add_many(list(zip(memories, vectors, strict=True)))
        await uow.history.add_many(
            [self._change(actor, m, ChangeKind.ADD, None, m.content) for m in memories]
        )
        for memory in memories:
            uow.record(memory_event(MEMORY_CREATED, memory, at=memory.created_at))
        return memories

    async def get(self, *, uow: UnitOfWork, actor: Actor, memory_id: str) -> Memory:
        memory = await uow.memories.get(memory_id, user_id=actor.user_id)
        if memory is None:
            raise NotFound("Memory not found")
        return memory

    async def update(
        self, *, uow: UnitOfWork, actor: Actor, memory_id: str, patch: MemoryPatchInput
    ) -> Memory:
        memory = await self.get(uow=uow, actor=actor, memory_id=memory_id)
        changes: dict[str, object] = {"updated_at": self._clock.now()}
        vector = None
        if patch.content is not None:
            content = require_text(
                patch.content, name="content", max_chars=self._limits.max_content_chars
            )
            changes.update(content=content, content_hash=content_hash(content))
            if content != memory.content:
                vector = (await self._embedder.embed([content]))[0]
        if patch.tags is not None:
            changes["tags"] = check_tags(patch.tags, limits=self._limits)
        if patch.metadata is not None:
            changes["metadata"] = dict(patch.metadata)
        if patch.occurred_at is not None:
            changes["occurred_at"] = patch.occurred_at
        if patch.importance is not None:
            if not 0.0 <= patch.importance <= 1.0:
                raise BadUserInput("importance must be between 0 and 1")
            changes["importance"] = patch.importance
        updated = replace(memory, **changes)  # type: ignore[arg-type]  # keys are Memory fields
        await uow.memories.update(updated, vector)
        await uow.history.add(
            self._change(actor, updated, ChangeKind.UPDATE, memory.content, updated.content)
        )
        uow.record(memory_event(MEMORY_UPDATED, updated, at=updated.updated_at))
        return updated

    async def delete(self, *, uow: UnitOfWork, actor: Actor, memory_id: str) -> bool:
        memory = await self.get(uow=uow, actor=actor, memory_id=memory_id)
        await uow.memories.delete(memory)
        await uow.history.add(self._change(actor, memory, ChangeKind.DELETE, memory.content, None))
        uow.record(memory_event(MEMORY_DELETED, memory, at=self._clock.now()))
        return True

    async def history(self, *, uow: UnitOfWork, actor: Actor, memory_id: str) -> list[MemoryChange]:
        changes = await uow.history.list(memory_id, user_id=actor.user_id)
        if not changes:
            raise NotFound("Memory not found")
        return changes

    async def search(
        self,
        *,
        uow: UnitOfWork,
        actor: Actor,
        field_ids: Sequence[str],
        query: str,
        top_k: int = 10,
        filter: SearchFilter | None = None,
    ) -> list[MemoryHit]:
        text = require_text(query, name="query", max_chars=self._limits.max_content_chars)
        check_top_k(top_k, limits=self._limits)
        fields = await uow.fields.get_many(field_ids, user_id=actor.user_id)
        if len(fields) != len(set(field_ids)):
            raise NotFound("Memory field not found")
        flt = filter or SearchFilter()
        vector = (await self._embedder.embed([text]))[0]
        scored: dict[str, float] = {}
        for field in fields:
            allowed = None
            if not flt.is_empty:
                allowed = await uow.memory_query.candidate_ids(
                    field_id=field.id,
                    user_id=actor.user_id,
                    sources=flt.sources,
                    tags=flt.tags,
                    occurred_from=flt.occurred_from,
                    occurred_to=flt.occurred_to,
                    metadata=flt.metadata,
                )
                if not allowed:
                    continue
            hits = await uow.vectors.search(
                field_id=field.id, vector=vector, k=top_k, allowed=allowed
            )
            scored.update(hits)
        memories = await uow.memories.get_many(list(scored), user_id=actor.user_id)
        results = [MemoryHit(memory=m, score=scored[m.id]) for m in memories]
        results.sort(key=lambda hit: hit.score, reverse=True)
        return results[:top_k]
