"""FAISS vector indexes, one per memory field, in process memory.

Embedded mode searches only these; PostgreSQL mode too while the process hears the other
processes' changes (``persistence/memory_changes.py``), with pgvector otherwise. The
database is the source of truth. Indexes live in memory and, when an index
directory is given, are saved there as files (in the background, atomically) so a restart
does not re-read every vector. On load a saved file is caught up with the database
(``persistence/vector_rows.py``); a missing or unreadable file is rebuilt from it.
Changes of committed transactions arrive through :meth:`FaissStore.apply`; a rolled-back
transaction never reaches the index.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.ports import Vector
from persistence.faiss_field import IVF_THRESHOLD, FieldIndex, needs_upgrade
from persistence.read_write_lock import ReadWriteLock
from persistence.tables.memories import memories
from persistence.vector_rows import VectorRows

log = logging.getLogger("memoria.faiss")

# Below this size a search is cheaper inline than a hop to a worker thread.
_INLINE_SEARCH_MAX = 20_000
SAVE_EVERY_CHANGES = 5_000
SAVE_EVERY_SECONDS = 60.0


class FaissStore:
    """All fields' indexes of one process; shared by every unit of work.

    ``budget``: the vectors kept over all fields (0: no limit). When a field's load takes
    the total past it, the fields searched least recently are dropped (saved first when
    they have a file) and loaded again on their next search."""

    def __init__(
        self,
        engine: AsyncEngine,
        index_dir: Path | None = None,
        *,
        vectors: ColumnElement[Any] | None = None,
        budget: int = 0,
    ) -> None:
        self._dir = index_dir
        self._budget = budget
        # The vector column as read (PostgreSQL: in pgvector's binary form, see SentVector).
        self._rows = VectorRows(engine, vectors if vectors is not None else memories.c.embedding)
        # Other processes' changes to a field still loading (see refresh), and fields whose
        # load under way must not be kept (see drop).
        self._pending: dict[str, tuple[list[str], list[str]]] = {}
        self._redo: set[str] = set()
        # Kept in search order, least recent first (each search moves its field last).
        self._fields: dict[str, FieldIndex] = {}
        self._locks: dict[str, ReadWriteLock] = {}
        self._loading: dict[str, asyncio.Lock] = {}
        self._dirty: dict[str, int] = {}
        self._last_save = time.monotonic()
        self._tasks: set[asyncio.Task[None]] = set()
        self._upgrading: set[str] = set()  # fields whose IVF is being (re)trained

    @property
    def budget(self) -> int:
        return self._budget

    def _lock(self, field_id: str) -> ReadWriteLock:
        return self._locks.setdefault(field_id, ReadWriteLock())

    def _path(self, field_id: str) -> Path | None:
        return None if self._dir is None else self._dir / f"{field_id}.faiss"

    async def _from_file(self, field_id: str, dimension: int) -> FieldIndex | None:
        path = self._path(field_id)
        if path is None or not path.exists():
            return None
        try:
            saved_at = datetime.fromtimestamp(path.stat().st_mtime, UTC)
            index = await asyncio.to_thread(FieldIndex.load, path, dimension)
        except (OSError, ValueError, RuntimeError):
            log.warning("vector index file for field %s unreadable: rebuilding", field_id)
            return None
        await self._rows.catch_up(index, field_id, saved_at=saved_at)
        return index

    async def _load(self, field_id: str, dimension: int) -> FieldIndex:
        found = self._fields.get(field_id)
        if found is not None:
            return found
        async with self._loading.setdefault(field_id, asyncio.Lock()):
            found = self._fields.get(field_id)
            if found is not None:
                return found
            built = await self._from_file(field_id, dimension)
            if built is None:
                built = FieldIndex(dimension)
                await self._rows.fill(built, field_id)
                if built.size >= IVF_THRESHOLD:
                    built = await asyncio.to_thread(built.to_ivf)
                self._dirty[field_id] = built.size
            elif needs_upgrade(built):
                # Saved before its upgrade finished, or when the field was much smaller.
                self._spawn(self._upgrade(field_id))
            self._fields[field_id] = built
            # No await since the line above: a change heard from now on finds the field
            # loaded, and one heard while it loaded is read again here.
            pending = self._pending.pop(field_id, None)
            if field_id in self._redo:
                # Dropped while it loaded: these rows may predate the rewrite. This search
                # has them; the next one loads the field again.
                self._redo.discard(field_id)
                self._fields.pop(field_id, None)
            elif pending is not None:
                await self._read_again(field_id, *pending)
            self._keep_to_budget(keep=field_id)
            return built

    def _keep_to_budget(self, *, keep: str | None = None) -> None:
        if self._budget and sum(ix.size for ix in self._fields.values()) > self._budget:
            self._spawn(self._evict(keep=keep))

    async def _evict(self, *, keep: str | None) -> None:
        """Drop the fields searched least recently until the rest fit the budget (``keep``,
        just loaded, stays; so does a field being loaded or retrained)."""
        total = sum(ix.size for ix in self._fields.values())
        for field_id in list(self._fields):
            if total <= self._budget:
                return
            index = self._fields.get(field_id)
            loading = self._loading.get(field_id)
            if (
                field_id == keep
                or index is None
                or field_id in self._upgrading
                or (loading is not None and loading.locked())
            ):
                continue
            if self._dirty.get(field_id):
                # A file caught up on load needs no save, but a fresh one reads fewer rows.
                await self._save_field(field_id, index)
            async with self._lock(field_id).write():
                if self._fields.get(field_id) is not index:
                    continue  # dropped or swapped meanwhile
                del self._fields[field_id]
                self._dirty.pop(field_id, None)
            total -= index.size
            log.info("vector index of field %s dropped from memory (budget)", field_id)

    @property
    def vector_column(self) -> ColumnElement[Any]:
        """The vector column as this store reads it (see :meth:`refresh`'s ``read``)."""
        return self._rows.column

    async def refresh(
        self,
        field_id: str,
        *,
        upserted: list[str],
        deleted: list[str],
        read: Mapping[str, Any] | None = None,
    ) -> None:
        """Another process committed these changes to the field's memories: its index, if
        loaded here, reads them from the database (the state now, so changes heard in
        order converge on the database's). A field still loading reads them once loaded:
        its rows may have been read before they committed. ``read``: the vectors (as read
        through :attr:`vector_column`) of those of ``upserted`` the field holds, read by
        the caller just now; a loaded index then reads nothing itself."""
        if field_id in self._fields:
            await self._read_again(field_id, upserted, deleted, read)
            return
        loading = self._loading.get(field_id)
        if loading is not None and loading.locked():
            waiting = self._pending.setdefault(field_id, ([], []))
            waiting[0].extend(upserted)
            waiting[1].extend(deleted)

    async def _read_again(
        self,
        field_id: str,
        upserted: list[str],
        deleted: list[str],
        read: Mapping[str, Any] | None = None,
    ) -> None:
        index = self._fields.get(field_id)
        if index is None:
            return
        if read is None:
            found = await self._rows.read(field_id, upserted, index.dimension)
        else:  # rows of another dimension: a field being re-embedded (see VectorRows)
            found = {m: v for m, v in read.items() if len(v) == index.dimension}
        # Gone since, or moved out of the field's vectors: not searchable here any more.
        gone = set(deleted) | {m for m in upserted if m not in found}
        await self.apply(
            [(field_id, m, v) for m, v in found.items()], [(field_id, m) for m in gone]
        )

    async def search(
        self, *, field_id: str, vector: Vector, k: int, allowed: Sequence[str] | None = None
    ) -> list[tuple[str, float]]:
        query = np.asarray(vector, dtype=np.float32)
        return (await self._search(field_id, query.reshape(1, -1), k, allowed))[0]

    async def nearest(
        self, *, field_id: str, vectors: Sequence[Vector], k: int
    ) -> list[list[tuple[str, float]]]:
        if len(vectors) == 0:
            return []
        matrix = np.vstack([np.asarray(v, dtype=np.float32) for v in vectors])
        return await self._search(field_id, matrix, k, None)

    async def _search(
        self, field_id: str, queries: Any, k: int, allowed: Sequence[str] | None
    ) -> list[list[tuple[str, float]]]:
        index = await self._load(field_id, int(queries.shape[1]))
        if field_id in self._fields:  # now the most recently searched
            self._fields[field_id] = self._fields.pop(field_id)
        async with self._lock(field_id).read():
            index = self._fields.get(field_id, index)
            if index.size <= _INLINE_SEARCH_MAX and len(queries) <= 8:
                return index.search_many(queries, k, allowed)
            return await asyncio.to_thread(index.search_many, queries, k, allowed)

    async def apply(
        self, upserts: Sequence[tuple[str, str, Vector]], deletes: Sequence[tuple[str, str]]
    ) -> None:
        """Apply a committed transaction's vector changes to the indexes already loaded."""
        by_field: dict[str, tuple[list[str], list[tuple[str, Vector]]]] = {}
        for field_id, memory_id in deletes:
            by_field.setdefault(field_id, ([], []))[0].append(memory_id)
        for field_id, memory_id, vector in upserts:
            by_field.setdefault(field_id, ([], []))[1].append((memory_id, vector))
        for field_id, (gone, items) in by_field.items():
            index = self._fields.get(field_id)
            if index is None:
                continue  # loaded from the database, with these rows, on first search
            async with self._lock(field_id).write():
                index = self._fields[field_id]
                if gone:
                    index.delete(gone)
                if items:
                    matrix = np.vstack([np.asarray(v, dtype=np.float32) for _, v in items])
                    index.upsert([m for m, _ in items], matrix)
            self._dirty[field_id] = self._dirty.get(field_id, 0) + len(gone) + len(items)
            if needs_upgrade(index):
                self._spawn(self._upgrade(field_id))
        self._maybe_save()
        self._keep_to_budget()

    async def _upgrade(self, field_id: str) -> None:
        """Swap a grown flat index for IVF (or an IVF index for one with more lists); training
        runs off the loop, outside the lock. One upgrade at a time per field."""
        if field_id in self._upgrading:
            return
        async with self._lock(field_id).read():
            current = self._fields[field_id]
            if not needs_upgrade(current):
                return
        self._upgrading.add(field_id)
        try:
            await self._swap_in(field_id, current)
        finally:
            self._upgrading.discard(field_id)

    async def _swap_in(self, field_id: str, current: FieldIndex) -> None:
        built = await asyncio.to_thread(current.to_ivf)
        async with self._lock(field_id).write():
            latest = self._fields[field_id]
            if latest is not current:
                return
            # Changes applied to the flat index while IVF trained: carry them over.
            new_ids = set(current.ids) - set(built.ids)
            stale = set(built.ids) - set(current.ids)
            if stale:
                built.delete([built.ids[k] for k in stale])
            if new_ids:
                keys = np.array(sorted(new_ids), dtype=np.int64)
                built.upsert([current.ids[int(k)] for k in keys], current.vectors(keys))
            self._fields[field_id] = built

    async def settled(self) -> None:
        """Wait for the background work started so far (index upgrades, saves)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def load_soon(self, field_id: str, dimension: int) -> None:
        """Start loading the field's index in the background, unless it is loaded or loading
        (PostgreSQL mode: pgvector answers meanwhile, see persistence/copied_vectors.py)."""
        loading = self._loading.get(field_id)
        if field_id in self._fields or (loading is not None and loading.locked()):
            return
        self._spawn(self._load_logged(field_id, dimension))

    async def _load_logged(self, field_id: str, dimension: int) -> None:
        try:
            await self._load(field_id, dimension)
        except Exception:  # the database answers this field's searches until a load works
            log.exception("vector index of field %s not loaded", field_id)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _maybe_save(self) -> None:
        if self._dir is None or not self._dirty:
            return
        due = time.monotonic() - self._last_save >= SAVE_EVERY_SECONDS
        if due or sum(self._dirty.values()) >= SAVE_EVERY_CHANGES:
            self._last_save = time.monotonic()
            self._spawn(self.save())

    async def save(self) -> None:
        """Write every changed index to its file (readers may continue meanwhile)."""
        if self._dir is None:
            return
        for field_id in [f for f, n in self._dirty.items() if n]:
            index = self._fields.get(field_id)
            if index is not None:
                await self._save_field(field_id, index)

    async def _save_field(self, field_id: str, index: FieldIndex) -> None:
        path = self._path(field_id)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        async with self._lock(field_id).read():
            self._dirty[field_id] = 0
            await asyncio.to_thread(index.save, path)

    async def close(self) -> None:
        for task in list(self._tasks):
            with contextlib.suppress(Exception):
                await task
        await self.save()

    def forget(self, field_id: str) -> None:
        """Drop the field's index (see :meth:`drop`) and its files."""
        self.drop(field_id)
        path = self._path(field_id)
        if path is not None:
            for file in (path, path.with_suffix(".ids")):
                file.unlink(missing_ok=True)

    def drop(self, field_id: str) -> None:
        """The field's rows were rewritten (re-embedded, or changed too many at once to say
        which): its index, and a load of it under way, start over."""
        self._fields.pop(field_id, None)
        self._pending.pop(field_id, None)
        loading = self._loading.get(field_id)
        if loading is not None and loading.locked():
            self._redo.add(field_id)

    def forget_all(self) -> None:
        """Drop every index kept in memory, and loads under way (files stay): changes may
        have been missed."""
        for field_id in [*self._fields, *self._loading]:
            self.drop(field_id)

    def loaded(self, field_id: str) -> FieldIndex | None:
        return self._fields.get(field_id)


class FaissVectorIndex:
    """The ``VectorIndex`` port over the process-wide store (reads committed vectors)."""

    def __init__(self, store: FaissStore) -> None:
        self._store = store

    async def search(
        self, *, field_id: str, vector: Vector, k: int, allowed: Sequence[str] | None = None
    ) -> list[tuple[str, float]]:
        return await self._store.search(field_id=field_id, vector=vector, k=k, allowed=allowed)

    async def nearest(
        self, *, field_id: str, vectors: Sequence[Vector], k: int
    ) -> list[list[tuple[str, float]]]:
        return await self._store.nearest(field_id=field_id, vectors=vectors, k=k)
