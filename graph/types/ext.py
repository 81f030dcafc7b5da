"""GraphQL types of patterns, statistics, webhooks and data sources."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import strawberry
from strawberry.types import Info

from domain.patterns import Pattern as PatternEntity
from domain.patterns import PatternChange as PatternChangeEntity
from domain.sources import DataSource as DataSourceEntity
from domain.sources import SyncRun as SyncRunEntity
from domain.stats import Stats as StatsEntity
from domain.webhooks import DeliveryAttempt as DeliveryAttemptEntity
from domain.webhooks import Webhook as WebhookEntity
from domain.webhooks import WebhookDelivery as WebhookDeliveryEntity
from graph.types.common import JSON, PageInfo, ctx


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
        assert scope.deps.patterns is not None
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


@strawberry.type
class CountEntry:
    key: str
    count: int


def _entries(counts: dict[str, int]) -> list[CountEntry]:
    return [CountEntry(key=k, count=v) for k, v in sorted(counts.items())]


@strawberry.type
class Stats:
    total_memories: int
    short_term: int
    long_term: int
    by_source: list[CountEntry]
    by_kind: list[CountEntry]
    by_field: list[CountEntry]
    conversation_count: int
    message_count: int
    fact_count: int
    pattern_count: int
    source_count: int
    last_sync: datetime | None

    @classmethod
    def of(cls, s: StatsEntity) -> Stats:
        return cls(
            total_memories=s.total_memories,
            short_term=s.short_term,
            long_term=s.long_term,
            by_source=_entries(s.by_source),
            by_kind=_entries(s.by_kind),
            by_field=_entries(s.by_field),
            conversation_count=s.conversation_count,
            message_count=s.message_count,
            fact_count=s.fact_count,
            pattern_count=s.pattern_count,
            source_count=s.source_count,
            last_sync=s.last_sync,
        )


@strawberry.type
class DeliveryAttempt:
    attempt: int
    status_code: int | None
    latency_ms: float
    error: str | None
    at: datetime

    @classmethod
    def of(cls, a: DeliveryAttemptEntity) -> DeliveryAttempt:
        return cls(
            attempt=a.attempt,
            status_code=a.status_code,
            latency_ms=a.latency_ms,
            error=a.error,
            at=a.at,
        )


@strawberry.type
class WebhookDelivery:
    id: strawberry.ID
    event_id: str
    event: str
    status: str  # pending | delivered | dead
    attempts: int
    last_status: int | None
    last_error: str | None
    next_attempt_at: datetime
    created_at: datetime
    delivered_at: datetime | None

    @strawberry.field
    async def attempt_log(self, info: Info[Any, Any]) -> list[DeliveryAttempt]:
        scope = ctx(info)
        assert scope.deps.webhooks is not None
        found = await scope.deps.webhooks.attempts(
            uow=await scope.uow(), actor=await scope.actor(), delivery_id=str(self.id)
        )
        return [DeliveryAttempt.of(a) for a in found]

    @classmethod
    def of(cls, d: WebhookDeliveryEntity) -> WebhookDelivery:
        return cls(
            id=strawberry.ID(d.id),
            event_id=d.event_id,
            event=d.event,
            status=d.status.value,
            attempts=d.attempts,
            last_status=d.last_status,
            last_error=d.last_error,
            next_attempt_at=d.next_attempt_at,
            created_at=d.created_at,
            delivered_at=d.delivered_at,
        )


@strawberry.type
class Webhook:
    id: strawberry.ID
    url: str
    events: list[str]
    created_at: datetime

    @strawberry.field
    async def deliveries(self, info: Info[Any, Any], limit: int = 50) -> list[WebhookDelivery]:
        scope = ctx(info)
        assert scope.deps.webhooks is not None
        found = await scope.deps.webhooks.deliveries(
            uow=await scope.uow(), actor=await scope.actor(), webhook_id=str(self.id), limit=limit
        )
        return [WebhookDelivery.of(d) for d in found]

    @classmethod
    def of(cls, w: WebhookEntity) -> Webhook:
        return cls(id=strawberry.ID(w.id), url=w.url, events=w.events, created_at=w.created_at)


@strawberry.type
class NewWebhook:
    """``secret`` signs deliveries; it is shown only here, once."""

    webhook: Webhook
    secret: str


@strawberry.type
class DataSource:
    id: strawberry.ID
    type: str
    name: str
    status: str
    config: JSON
    item_count: int
    last_sync: datetime | None
    last_error: str | None
    created_at: datetime

    @classmethod
    def of(cls, s: DataSourceEntity) -> DataSource:
        return cls(
            id=strawberry.ID(s.id),
            type=s.kind.value,
            name=s.name,
            status=s.status.value,
            config=cast(JSON, s.config),
            item_count=s.item_count,
            last_sync=s.last_sync_at,
            last_error=s.last_error,
            created_at=s.created_at,
        )


@strawberry.type
class ConnectSourcePayload:
    source: DataSource
    oauth_url: str | None


@strawberry.type
class SyncRun:
    id: strawberry.ID
    source_id: strawberry.ID
    status: str  # queued | running | succeeded | failed
    items_added: int
    items_updated: int
    items_skipped: int
    error: str | None
    requested_at: datetime
    finished_at: datetime | None

    @classmethod
    def of(cls, r: SyncRunEntity) -> SyncRun:
        return cls(
            id=strawberry.ID(r.id),
            source_id=strawberry.ID(r.source_id),
            status=r.status.value,
            items_added=r.items_added,
            items_updated=r.items_updated,
            items_skipped=r.items_skipped,
            error=r.error,
            requested_at=r.requested_at,
            finished_at=r.finished_at,
        )
