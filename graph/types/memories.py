"""Memory fields, memories, hits and history."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any, cast

import strawberry
from strawberry.types import Info

from domain.entities import Memory as MemoryEntity
from domain.entities import MemoryChange as MemoryChangeEntity
from domain.entities import MemoryField as MemoryFieldEntity
from domain.memory_drafts import MemoryDraft, MemoryPatchInput
from domain.retrieval.settings import SearchFilter
from graph.types.common import JSON, ctx


@strawberry.enum
class MemoryKind(Enum):
    FACT = "fact"
    EPISODE = "episode"
    MESSAGE = "message"
    DOCUMENT_CHUNK = "document_chunk"


@strawberry.enum
class MemoryLayer(Enum):
    SHORT_TERM = "short_term"
    LONG_TERM = "long_term"


@strawberry.type
class MemoryField:
    id: strawberry.ID
    name: str
    embedder: str
    dimension: int
    created_at: datetime

    @strawberry.field
    async def memory_count(self, info: Info[Any, Any]) -> int:
        scope = ctx(info)
        actor = await scope.actor()
        return await (await scope.uow()).memories.count(user_id=actor.user_id, field_id=self.id)

    @classmethod
    def of(cls, field: MemoryFieldEntity) -> MemoryField:
        return cls(
            id=strawberry.ID(field.id),
            name=field.name,
            embedder=field.embedder,
            dimension=field.dimension,
            created_at=field.created_at,
        )


@strawberry.type
class Memory:
    id: strawberry.ID
    field_id: strawberry.ID
    content: str
    kind: MemoryKind
    source: str
    layer: MemoryLayer
    importance: float
    tags: list[str]
    metadata: JSON
    occurred_at: datetime
    created_at: datetime
    updated_at: datetime
    speaker: str | None = strawberry.field(
        default=None, description="Who said this conversation turn, when the client said so."
    )

    @strawberry.field
    async def field(self, info: Info[Any, Any]) -> MemoryField | None:
        found = await ctx(info).field_loader.load(str(self.field_id))
        return MemoryField.of(found) if found else None

    @classmethod
    def of(cls, memory: MemoryEntity) -> Memory:
        return cls(
            id=strawberry.ID(memory.id),
            field_id=strawberry.ID(memory.field_id),
            content=memory.content,
            kind=MemoryKind(memory.kind.value),
            source=memory.source,
            layer=MemoryLayer(memory.layer.value),
            importance=memory.importance,
            tags=memory.tags,
            metadata=cast(JSON, memory.metadata),
            occurred_at=memory.occurred_at,
            created_at=memory.created_at,
            updated_at=memory.updated_at,
            speaker=memory.speaker,
        )


@strawberry.type
class MemoryHit:
    memory: Memory
    score: float
    reason: str = strawberry.field(description="Why it matched: dense, lexical or both.")


@strawberry.type
class MemoryChange:
    id: strawberry.ID
    memory_id: strawberry.ID
    change: str
    old_content: str | None
    new_content: str | None
    actor: str
    at: datetime

    @classmethod
    def of(cls, change: MemoryChangeEntity) -> MemoryChange:
        return cls(
            id=strawberry.ID(change.id),
            memory_id=strawberry.ID(change.memory_id),
            change=change.change.value,
            old_content=change.old_content,
            new_content=change.new_content,
            actor=change.actor,
            at=change.at,
        )


@strawberry.input
class MemoryInput:
    content: str
    source: str | None = "api"
    occurred_at: datetime | None = None
    tags: list[str] | None = None
    metadata: JSON | None = None
    kind: MemoryKind | None = strawberry.field(
        default=None,
        description=(
            "EPISODE or MESSAGE for conversation turns: turns are kept in the order they were "
            "added (for turns that share an occurredAt) and searched with their neighbours. "
            "Omitted: a memory with a speaker (or content starting with a 'Name: ' label, "
            "not a note's heading such as 'Note: ') is an EPISODE, anything else a FACT."
        ),
    )
    speaker: str | None = strawberry.field(
        default=None,
        description=(
            "Who said this turn (at most 200 characters). Without it, a leading 'Name: ' "
            "label in the content names the speaker. A question naming a speaker prefers "
            "that speaker's own turns."
        ),
    )

    def to_draft(self) -> MemoryDraft:
        return MemoryDraft(
            content=self.content,
            source=self.source or "api",
            occurred_at=self.occurred_at,
            tags=list(self.tags or []),
            metadata=_json_object(self.metadata),
            kind=self.kind.value if self.kind is not None else None,
            speaker=self.speaker,
        )


@strawberry.input
class MemoryPatch:
    content: str | None = None
    tags: list[str] | None = None
    metadata: JSON | None = None
    occurred_at: datetime | None = None
    importance: float | None = None

    def to_patch(self) -> MemoryPatchInput:
        return MemoryPatchInput(
            content=self.content,
            tags=self.tags,
            metadata=None if self.metadata is None else _json_object(self.metadata),
            occurred_at=self.occurred_at,
            importance=self.importance,
        )


@strawberry.input
class MemoryFilter:
    sources: list[str] | None = None
    tags: list[str] | None = None
    occurred_from: datetime | None = None
    occurred_to: datetime | None = None
    metadata: JSON | None = None

    def to_filter(self) -> SearchFilter:
        return SearchFilter(
            sources=self.sources,
            tags=self.tags,
            occurred_from=self.occurred_from,
            occurred_to=self.occurred_to,
            metadata=_json_object(self.metadata),
        )


def _json_object(value: object) -> dict[str, Any]:
    from domain.errors import BadUserInput

    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadUserInput("metadata must be a JSON object", details={"field": "metadata"})
    return dict(value)
