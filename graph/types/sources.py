"""GraphQL types of data sources and their sync runs."""

from __future__ import annotations

from datetime import datetime
from typing import cast

import strawberry

from domain.sources import DataSource as DataSourceEntity
from domain.sources import SyncRun as SyncRunEntity
from graph.types.common import JSON


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
