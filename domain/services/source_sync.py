"""Runs queued syncs in the background: fetch, chunk into memories, never twice.

A run is claimed with a lease (so a crashed worker's run is picked up again), then each
batch a connector yields is saved in its own transaction together with the cursor after
it: a failure mid-sync keeps what was saved and the next sync resumes from there. An item
already stored with the same ``version`` is skipped; a changed one replaces its memories.
A refused token is refreshed (OAuth refresh grant) and the sync resumes from the last
saved cursor.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from domain.clock import Clock
from domain.entities import Actor, Role
from domain.errors import MemoriaError
from domain.events import SOURCE_SYNCED, DomainEvent
from domain.memory_drafts import MemoryDraft
from domain.ports import SecretCipher, UnitOfWork, UnitOfWorkFactory
from domain.services.memories import MemoryService
from domain.services.sources import parse_expiry, tokens_to_credentials
from domain.services.text_chunks import chunk_text
from domain.sources import (
    Connector,
    DataSource,
    ItemRecord,
    OAuthClient,
    SourceBatch,
    SourceDocument,
    SourceKind,
    SourceStatus,
    SyncRun,
    SyncStatus,
    TextExtractor,
    TokenExpired,
)

log = logging.getLogger("memoria.sources")
MAX_REFRESHES = 3


class SyncFailed(Exception):
    pass


class SourceSyncRunner:
    def __init__(
        self,
        *,
        uow_factory: UnitOfWorkFactory,
        connectors: Mapping[SourceKind, Connector],
        memories: MemoryService,
        cipher: SecretCipher,
        oauth: OAuthClient | None,
        extractor: TextExtractor,
        clock: Clock,
        lease: timedelta = timedelta(minutes=10),
    ) -> None:
        self._uow_factory = uow_factory
        self._connectors = connectors
        self._memories = memories
        self._cipher = cipher
        self._oauth = oauth
        self._extractor = extractor
        self._clock = clock
        self._lease = lease

    async def run_once(self) -> SyncRun | None:
        """Claim and run one queued sync; ``None`` when nothing is queued."""
        now = self._clock.now()
        async with self._uow_factory() as uow:
            run = await uow.sources.claim_sync(now=now, lease_until=now + self._lease)
            source = await uow.sources.get(run.source_id, user_id=run.user_id) if run else None
            if run is not None and source is not None:
                source.status = SourceStatus.SYNCING
                await uow.sources.update(source)
            await uow.commit()
        if run is None:
            return None
        if source is None:  # deleted meanwhile
            run.status, run.error = SyncStatus.FAILED, "source deleted"
            async with self._uow_factory() as uow:
                await uow.sources.update_sync(run)
                await uow.commit()
            return run
        try:
            await self._sync(run, source)
            run.status = SyncStatus.SUCCEEDED
            source.status, source.last_error = SourceStatus.IDLE, None
        except (SyncFailed, MemoriaError) as exc:
            message = exc.message if isinstance(exc, MemoriaError) else str(exc)
            run.status, run.error = SyncStatus.FAILED, message[:500]
            source.status, source.last_error = SourceStatus.ERROR, message[:500]
            log.warning("sync %s of source %s failed: %s", run.id, source.id, message)
        except Exception as exc:  # a connector bug must fail the run, not strand it
            log.exception("sync %s of source %s crashed", run.id, source.id)
            message = f"internal error ({type(exc).__name__})"
            run.status, run.error = SyncStatus.FAILED, message
            source.status, source.last_error = SourceStatus.ERROR, message
        await self._finish(run, source)
        return run

    async def _finish(self, run: SyncRun, source: DataSource) -> None:
        now = self._clock.now()
        run.finished_at = now
        async with self._uow_factory() as uow:
            current = await uow.sources.get(source.id, user_id=source.user_id)
            if current is not None:
                current.status, current.last_error = source.status, source.last_error
                if run.status is SyncStatus.SUCCEEDED:
                    current.last_sync_at = now
                current.credentials_encrypted = source.credentials_encrypted
                await uow.sources.update(current)
                uow.record(
                    DomainEvent(
                        name=SOURCE_SYNCED,
                        user_id=source.user_id,
                        at=now,
                        payload={
                            "source_id": source.id,
                            "type": source.kind.value,
                            "status": run.status.value,
                            "items_added": run.items_added,
                            "items_updated": run.items_updated,
                            "items_skipped": run.items_skipped,
                            "item_count": current.item_count,
                            "error": run.error,
                        },
                    )
                )
            await uow.sources.update_sync(run)
            await uow.commit()

    # ------------------------------------------------------------------ fetching

    def _credentials(self, source: DataSource) -> dict[str, Any]:
        if not source.credentials_encrypted:
            return {}
        try:
            values: dict[str, Any] = json.loads(self._cipher.decrypt(source.credentials_encrypted))
        except ValueError:
            raise SyncFailed("stored credentials cannot be decrypted") from None
        return values

    async def _refresh(self, source: DataSource, credentials: dict[str, Any]) -> dict[str, Any]:
        refresh_token = credentials.get("refresh_token")
        if self._oauth is None or not refresh_token:
            raise SyncFailed("the access token expired and cannot be refreshed; reconnect")
        tokens = await self._oauth.refresh(kind=source.kind, refresh_token=str(refresh_token))
        fresh = tokens_to_credentials(tokens)
        fresh["refresh_token"] = fresh["refresh_token"] or refresh_token
        source.credentials_encrypted = self._cipher.encrypt(json.dumps(fresh))
        async with self._uow_factory() as uow:
            current = await uow.sources.get(source.id, user_id=source.user_id)
            if current is not None:
                current.credentials_encrypted = source.credentials_encrypted
                await uow.sources.update(current)
            await uow.commit()
        return fresh

    async def _sync(self, run: SyncRun, source: DataSource) -> None:
        credentials = self._credentials(source)
        expires = parse_expiry(credentials.get("expires_at"))
        if expires is not None and expires <= self._clock.now() + timedelta(seconds=30):
            credentials = await self._refresh(source, credentials)
        if source.kind is SourceKind.FILES:
            await self._sync_uploads(run, source)
        connector = self._connectors.get(source.kind)
        if connector is None:
            if source.kind is SourceKind.FILES:
                return
            raise SyncFailed(f"no connector for {source.kind.value}")
        if source.kind is SourceKind.FILES and not source.config.get("path"):
            return
        refreshes = 0
        while True:
            try:
                async for batch in connector.fetch(
                    source=source, credentials=credentials, cursor=dict(source.cursor)
                ):
                    await self._save(run, source, batch)
                return
            except TokenExpired:
                refreshes += 1
                if refreshes > MAX_REFRESHES:
                    raise SyncFailed("the token keeps expiring") from None
                credentials = await self._refresh(source, credentials)

    async def _sync_uploads(self, run: SyncRun, source: DataSource) -> None:
        async with self._uow_factory() as uow:
            files = await uow.sources.files(source.id, user_id=source.user_id)
        documents = []
        for file in files:
            text = self._extractor.extract(name=file.name, data=file.data)
            documents.append(
                SourceDocument(
                    external_id=f"upload:{file.name}",
                    title=file.name,
                    text=text,
                    occurred_at=file.uploaded_at,
                    url=None,
                    version=file.sha256,
                    metadata={"file_name": file.name},
                )
            )
        await self._save(run, source, SourceBatch(documents=documents, cursor=dict(source.cursor)))

    # ------------------------------------------------------------------ saving

    async def _save(self, run: SyncRun, source: DataSource, batch: SourceBatch) -> None:
        actor = Actor(user_id=source.user_id, role=Role.USER, via="sync")
        async with self._uow_factory() as uow:
            current = await uow.sources.get(source.id, user_id=source.user_id)
            if current is None:
                raise SyncFailed("source deleted during the sync")
            for document in batch.documents:
                await self._save_document(uow, actor, run, current, document)
            current.cursor = batch.cursor
            source.cursor = batch.cursor
            source.item_count = current.item_count
            await uow.sources.update(current)
            run.lease_until = self._clock.now() + self._lease
            await uow.sources.update_sync(run)
            await uow.commit()

    async def _save_document(
        self, uow: UnitOfWork, actor: Actor, run: SyncRun, source: DataSource, doc: SourceDocument
    ) -> None:
        record = await uow.sources.item(source.id, doc.external_id)
        if record is not None and record.version == doc.version:
            run.items_skipped += 1
            return
        if record is not None:
            for memory_id in record.memory_ids:
                if await uow.memories.get(memory_id, user_id=actor.user_id) is not None:
                    await self._memories.delete(uow=uow, actor=actor, memory_id=memory_id)
        chunks = chunk_text(doc.text) if doc.text.strip() else []
        memory_ids: list[str] = []
        if chunks and source.field_id:
            title = doc.title.strip()
            drafts = [
                MemoryDraft(
                    content=f"{title}\n\n{chunk}"
                    if title and not chunk.startswith(title)
                    else chunk,
                    source=source.kind.value,
                    occurred_at=doc.occurred_at,
                    tags=[source.kind.value],
                    metadata={
                        **doc.metadata,
                        "source_id": source.id,
                        "external_id": doc.external_id,
                        "url": doc.url,
                        "title": title,
                        "chunk": index,
                    },
                    kind="document_chunk",
                )
                for index, chunk in enumerate(chunks)
            ]
            added = await self._memories.add_many(
                uow=uow, actor=actor, field_id=source.field_id, drafts=drafts
            )
            memory_ids = [m.id for m in added]
        await uow.sources.put_item(
            ItemRecord(
                source_id=source.id,
                external_id=doc.external_id,
                version=doc.version,
                memory_ids=memory_ids,
            ),
            user_id=actor.user_id,
            at=self._clock.now(),
        )
        if record is None:
            run.items_added += 1
            source.item_count += 1
        else:
            run.items_updated += 1
