"""Data sources, what each has already imported, uploaded files, and sync runs."""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select

from domain.sources import (
    DataSource,
    ItemRecord,
    SourceFile,
    SourceKind,
    SourceStatus,
    SyncRun,
    SyncStatus,
)
from persistence.session import Transaction
from persistence.tables.sources import data_sources, source_files, source_items, source_syncs


def _source(row: Any) -> DataSource:
    return DataSource(
        id=row.id,
        user_id=row.user_id,
        kind=SourceKind(row.kind),
        name=row.name,
        status=SourceStatus(row.status),
        config=dict(row.config or {}),
        credentials_encrypted=row.credentials_encrypted,
        cursor=dict(row.cursor or {}),
        field_id=row.field_id,
        item_count=row.item_count,
        created_at=row.created_at,
        last_sync_at=row.last_sync_at,
        last_error=row.last_error,
    )


def _source_values(s: DataSource) -> dict[str, Any]:
    return {
        "user_id": s.user_id,
        "kind": s.kind.value,
        "name": s.name,
        "status": s.status.value,
        "config": s.config,
        "credentials_encrypted": s.credentials_encrypted,
        "cursor": s.cursor,
        "field_id": s.field_id,
        "item_count": s.item_count,
        "created_at": s.created_at,
        "last_sync_at": s.last_sync_at,
        "last_error": s.last_error,
    }


def _run(row: Any) -> SyncRun:
    return SyncRun(
        id=row.id,
        source_id=row.source_id,
        user_id=row.user_id,
        status=SyncStatus(row.status),
        requested_at=row.requested_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        items_added=row.items_added,
        items_updated=row.items_updated,
        items_skipped=row.items_skipped,
        error=row.error,
        lease_until=row.lease_until,
    )


def _run_values(r: SyncRun) -> dict[str, Any]:
    return {
        "source_id": r.source_id,
        "user_id": r.user_id,
        "status": r.status.value,
        "requested_at": r.requested_at,
        "started_at": r.started_at,
        "finished_at": r.finished_at,
        "lease_until": r.lease_until,
        "items_added": r.items_added,
        "items_updated": r.items_updated,
        "items_skipped": r.items_skipped,
        "error": r.error,
    }


class SqlSourceRepository:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def add(self, source: DataSource) -> None:
        await self._tx.write(data_sources.insert().values(id=source.id, **_source_values(source)))

    async def get(self, source_id: str, *, user_id: str) -> DataSource | None:
        stmt = select(data_sources).where(
            data_sources.c.id == source_id, data_sources.c.user_id == user_id
        )
        row = (await self._tx.read(stmt)).first()
        return _source(row) if row else None

    async def list(self, *, user_id: str) -> list[DataSource]:
        stmt = (
            select(data_sources)
            .where(data_sources.c.user_id == user_id)
            .order_by(data_sources.c.created_at, data_sources.c.id)
        )
        return [_source(r) for r in await self._tx.read(stmt)]

    async def update(self, source: DataSource) -> None:
        await self._tx.write(
            data_sources.update()
            .where(data_sources.c.id == source.id, data_sources.c.user_id == source.user_id)
            .values(**_source_values(source))
        )

    async def delete(self, source_id: str, *, user_id: str) -> bool:
        for table in (source_items, source_files, source_syncs):
            await self._tx.write(
                table.delete().where(table.c.source_id == source_id, table.c.user_id == user_id)
            )
        result = await self._tx.write(
            data_sources.delete().where(
                data_sources.c.id == source_id, data_sources.c.user_id == user_id
            )
        )
        return bool(result.rowcount)

    async def item(self, source_id: str, external_id: str) -> ItemRecord | None:
        stmt = select(source_items).where(
            source_items.c.source_id == source_id, source_items.c.external_id == external_id
        )
        row = (await self._tx.read(stmt)).first()
        if row is None:
            return None
        return ItemRecord(
            source_id=row.source_id,
            external_id=row.external_id,
            version=row.version,
            memory_ids=list(row.memory_ids or []),
        )

    async def put_item(self, record: ItemRecord, *, user_id: str, at: datetime) -> None:
        values = {"version": record.version, "memory_ids": record.memory_ids, "updated_at": at}
        result = await self._tx.write(
            source_items.update()
            .where(
                source_items.c.source_id == record.source_id,
                source_items.c.external_id == record.external_id,
            )
            .values(**values)
        )
        if not result.rowcount:
            await self._tx.write(
                source_items.insert().values(
                    source_id=record.source_id,
                    external_id=record.external_id,
                    user_id=user_id,
                    **values,
                )
            )

    async def add_file(self, file: SourceFile) -> None:
        # Uploading a file of the same name again replaces it (the sync then re-imports it).
        await self._tx.write(
            source_files.delete().where(
                source_files.c.source_id == file.source_id, source_files.c.name == file.name
            )
        )
        await self._tx.write(
            source_files.insert().values(
                id=file.id,
                source_id=file.source_id,
                user_id=file.user_id,
                name=file.name,
                data=file.data,
                sha256=file.sha256,
                uploaded_at=file.uploaded_at,
            )
        )

    async def files(self, source_id: str, *, user_id: str) -> builtins.list[SourceFile]:
        stmt = (
            select(source_files)
            .where(source_files.c.source_id == source_id, source_files.c.user_id == user_id)
            .order_by(source_files.c.name)
        )
        return [
            SourceFile(
                id=r.id,
                source_id=r.source_id,
                user_id=r.user_id,
                name=r.name,
                data=bytes(r.data),
                sha256=r.sha256,
                uploaded_at=r.uploaded_at,
            )
            for r in await self._tx.read(stmt)
        ]

    async def add_sync(self, run: SyncRun) -> None:
        await self._tx.write(source_syncs.insert().values(id=run.id, **_run_values(run)))

    async def update_sync(self, run: SyncRun) -> None:
        await self._tx.write(
            source_syncs.update().where(source_syncs.c.id == run.id).values(**_run_values(run))
        )

    async def get_sync(self, run_id: str, *, user_id: str) -> SyncRun | None:
        stmt = select(source_syncs).where(
            source_syncs.c.id == run_id, source_syncs.c.user_id == user_id
        )
        row = (await self._tx.read(stmt)).first()
        return _run(row) if row else None

    async def syncs_since(self, *, user_id: str, since: datetime) -> int:
        stmt = (
            select(func.count())
            .select_from(source_syncs)
            .where(source_syncs.c.user_id == user_id, source_syncs.c.requested_at >= since)
        )
        return int((await self._tx.read(stmt)).scalar_one())

    async def claim_sync(self, *, now: datetime, lease_until: datetime) -> SyncRun | None:
        s = source_syncs
        stmt = (
            select(s)
            .where(
                or_(
                    s.c.status == SyncStatus.QUEUED.value,
                    and_(s.c.status == SyncStatus.RUNNING.value, s.c.lease_until < now),
                )
            )
            .order_by(s.c.requested_at)
            .limit(1)
        )
        if self._tx.conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
            row = (await self._tx.read(stmt)).first()
        else:
            row = (await self._tx.write(stmt)).first()
        if row is None:
            return None
        run = _run(row)
        run.status = SyncStatus.RUNNING
        run.started_at = run.started_at or now
        run.lease_until = lease_until
        await self.update_sync(run)
        return run
