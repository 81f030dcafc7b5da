"""GraphQL types of procedural memory: patterns, their triggers and history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.types import Info

from domain.patterns import Pattern as PatternEntity
from domain.patterns import PatternChange as PatternChangeEntity
from graph.types.common import PageInfo, ctx


@strawberry.type
class PatternTrigger:
    type: str  # keyword | regex | semantic
    pattern: str


@strawberry.type
class PatternChange:
    change: str  # DETECTED | REINFORCED | UPDATED | RETIRED | DELETED
    old_description: str | None
    new_description: str | None
    message_id: strawberry.ID | None
    at: datetime

    @classmethod
    def of(cls, c: PatternChangeEntity) -> PatternChange:
        return cls(
            change=c.change.value,
            old_description=c.old_description,
            new_description=c.new_description,
            message_id=strawberry.ID(c.message_id) if c.message_id else None,
            at=c.at,
        )


@strawberry.type
class Pattern:
    id: strawberry.ID
    name: str
    description: str
    kind: str  # preference | instruction | repeated_request
    triggers: list[PatternTrigger]
    evidence_message_ids: list[strawberry.ID]
    confidence: float
    usage_count: int
    last_used: datetime | None
    status: str
    created_at: datetime
    updated_at: datetime

    @strawberry.field
    async def history(self, info: Info[Any, Any]) -> list[PatternChange]:
        scope = ctx(info)
        changes = await scope.deps.patterns.history(
            uow=await scope.uow(), actor=await scope.actor(), pattern_id=str(self.id)
        )
        return [PatternChange.of(c) for c in changes]

    @classmethod
    def of(cls, p: PatternEntity) -> Pattern:
        return cls(
            id=strawberry.ID(p.id),
            name=p.name,
            description=p.description,
            kind=p.kind.value,
            triggers=[PatternTrigger(type=t.type.value, pattern=t.pattern) for t in p.triggers],
            evidence_message_ids=[strawberry.ID(m) for m in p.evidence],
            confidence=p.confidence,
            usage_count=p.usage_count,
            last_used=p.last_used,
            status=p.status.value,
            created_at=p.created_at,
            updated_at=p.updated_at,
        )


@strawberry.type
class PatternEdge:
    cursor: str
    node: Pattern


@strawberry.type
class PatternConnection:
    edges: list[PatternEdge]
    page_info: PageInfo
    total_count: int
