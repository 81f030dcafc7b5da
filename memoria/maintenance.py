"""Background maintenance of the memory store.

- Start-up work for the embedder: learn its dimension, make sure PostgreSQL has an HNSW
  index for it, and move every field whose vectors came from another embedder onto it (see
  :mod:`domain.services.reembed`). Each page commits on its own, so requests are never held
  behind a whole field, and a crash loses at most one page of work.
- A periodic promotion sweep: short-term memories that stayed important move to the
  long-term layer (policy in ``MemoryService.promote``), one field per transaction.

Every process of a PostgreSQL deployment runs both. A process re-embeds a field only while
it holds the field's advisory lock (a session lock on a connection of its own, released
when that connection ends: a process that dies mid-field frees it, and the others, which
keep looking while stale fields are held elsewhere, take it over). A sweep promotes a field
only under its transaction-scoped advisory lock, so two sweeps never work on one field at
once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from domain.entities import Actor, MemoryField, Role
from domain.ports import Embedder
from domain.services.memories import MemoryService
from domain.services.reembed import ReembedService
from persistence.database import Database
from persistence.pgvector_index import ensure_hnsw_index
from persistence.repositories.jobs import session_lock

log = logging.getLogger("memoria.reembed")


async def prepare_embedder(embedder: Embedder, db: Database) -> bool:
    """Detect a remote embedder's dimension and index it, or load a local model, so the first
    request does not wait for either; False if the embedder is unreachable."""
    detect = getattr(embedder, "detect", None)
    load = getattr(embedder, "load", None)
    try:
        if detect is not None:
            await detect()
        if load is not None:
            await load()
        dimension = embedder.dimension
    except Exception as exc:  # noqa: BLE001  # whatever the endpoint does, the server starts
        log.warning("embedder %s not ready yet: %s", embedder.name, exc)
        return False
    if not db.is_sqlite:
        await ensure_hnsw_index(db.engine, dimension)
    return True


REEMBED_LOCK = "reembed-field"
PROMOTION_LOCK = "promote-field"
_STALE_BATCH = 100


class ReembedWorker:
    """Runs at start-up until no stale field is left (fields only go stale when the
    configured embedder changes, which takes a restart). While fields are held by other
    processes it looks again every ``wait_seconds``, so a field whose process died is not
    left behind."""

    def __init__(
        self,
        *,
        db: Database,
        embedder: Embedder,
        retry_seconds: float = 30.0,
        wait_seconds: float = 5.0,
    ) -> None:
        self._db = db
        self._embedder = embedder
        self._service = ReembedService(embedder=embedder)
        self._retry = retry_seconds
        self._wait = wait_seconds
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
                done, held = await self.run_pass()
            except asyncio.CancelledError:
                raise
            except Exception:  # a failing page is retried later; the field stays lexical
                log.exception("re-embedding failed; retrying in %.0f s", self._retry)
                await asyncio.sleep(self._retry)
                continue
            if not done and not held:
                return
            if not done:
                await asyncio.sleep(self._wait)  # the rest is another process's, for now

    async def run_pass(self) -> tuple[int, int]:
        """Re-embed the stale fields no other process holds: (fields done, fields held)."""
        async with self._db.unit_of_work() as uow:
            stale = await self._service.stale_fields(uow=uow, limit=_STALE_BATCH)
        done = held = 0
        for field in stale:
            async with session_lock(self._db.engine, REEMBED_LOCK, field.id) as mine:
                if not mine:
                    held += 1
                elif await self._field(field):
                    done += 1
        return done, held

    async def _field(self, field: MemoryField) -> bool:
        async with self._db.unit_of_work() as uow:
            if not await self._service.is_stale(uow=uow, field=field):
                return False  # moved over by another process since it was listed
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
                    if not await uow.jobs.try_lock(PROMOTION_LOCK, field.id):
                        continue  # another process is promoting this field right now
                    moved += await self._memories.promote(uow=uow, actor=owner, field_id=field.id)
                    await uow.commit()
            after = fields[-1].id
