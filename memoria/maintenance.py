"""Background maintenance of the memory store.

- Start-up work for the embedder: learn its dimension, make sure PostgreSQL has an HNSW
  index for it, and move every field whose vectors came from another embedder onto it (see
  :mod:`domain.services.reembed`). Each page commits on its own, so requests are never held
  behind a whole field, and a crash loses at most one page of work.
- A periodic promotion sweep: short-term memories that stayed important move to the
  long-term layer (policy in ``MemoryService.promote``), one field per transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from domain.entities import Actor, Role
from domain.ports import Embedder
from domain.services.memories import MemoryService
from domain.services.reembed import ReembedService
from persistence.database import Database
from persistence.pgvector_index import ensure_hnsw_index

log = logging.getLogger("memoria.reembed")


async def prepare_embedder(embedder: Embedder, db: Database) -> bool:
    """Detect a remote embedder's dimension and index it; False if it is unreachable."""
    detect = getattr(embedder, "detect", None)
    try:
        if detect is not None:
            await detect()
        dimension = embedder.dimension
    except Exception as exc:  # noqa: BLE001  # whatever the endpoint does, the server starts
        log.warning("embedder %s not ready yet: %s", embedder.name, exc)
        return False
    if not db.is_sqlite:
        await ensure_hnsw_index(db.engine, dimension)
    return True


class ReembedWorker:
    """Runs once at start-up until no stale field is left (fields only go stale when the
    configured embedder changes, which takes a restart)."""

    def __init__(self, *, db: Database, embedder: Embedder, retry_seconds: float = 30.0) -> None:
        self._db = db
        self._embedder = embedder
        self._service = ReembedService(embedder=embedder)
        self._retry = retry_seconds
        self._task: asyncio.Task[None] | None = None
        self.fields_done = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="memoria-reembed")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            if await prepare_embedder(self._embedder, self._db):
                break
            await asyncio.sleep(self._retry)
        while True:
            try:
                if not await self._one_field():
                    return
            except asyncio.CancelledError:
                raise
            except Exception:  # a failing page is retried later; the field stays lexical
                log.exception("re-embedding failed; retrying in %.0f s", self._retry)
                await asyncio.sleep(self._retry)

    async def _one_field(self) -> bool:
        async with self._db.unit_of_work() as uow:
            field = await self._service.next_field(uow=uow)
        if field is None:
            return False
        log.info("re-embedding field %s (%s -> %s)", field.id, field.embedder, self._embedder.name)
        cursor: str | None = ""
        total = 0
        while cursor is not None:
            async with self._db.unit_of_work() as uow:
                step = await self._service.step(uow=uow, field_id=field.id, after=cursor)
                await uow.commit()
            cursor, total = step.cursor, total + step.embedded
        if self._db.faiss is not None:
            self._db.faiss.forget(field.id)  # rebuilt from the new vectors on its next search
        self.fields_done += 1
        log.info("field %s re-embedded: %d memories", field.id, total)
        return True


class PromotionSweeper:
    """Every ``interval`` seconds, runs the promotion policy over every user's fields."""

    def __init__(self, *, db: Database, memories: MemoryService, interval: float) -> None:
        self._db = db
        self._memories = memories
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="memoria-promotion")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:  # the next sweep tries again; requests are unaffected
                log.exception("promotion sweep failed")

    async def sweep(self) -> int:
        """One pass over all fields; returns how many memories moved to long-term."""
        moved, after = 0, ""
        while True:
            async with self._db.unit_of_work() as uow:
                fields = await uow.maintenance.fields_after(after_id=after, limit=100)
            if not fields:
                return moved
            for field in fields:
                owner = Actor(user_id=field.user_id, role=Role.USER, via="system")
                async with self._db.unit_of_work() as uow:
                    moved += await self._memories.promote(uow=uow, actor=owner, field_id=field.id)
                    await uow.commit()
            after = fields[-1].id
