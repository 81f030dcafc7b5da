"""PostgreSQL mode: every process's in-process search indexes kept in step with the others'.

Each process of a deployment searches its own FAISS copy of a field's vectors
(:class:`~persistence.faiss_index.FaissStore`), loaded from the database on the field's
first search, and, for a field of 200 memories or more, its own keyword postings
(:class:`~persistence.term_store.TermStore`, built in the background while PostgreSQL's
full-text statement answers), and a conversation field's turn order
(:class:`~persistence.turn_store.TurnStore`, the same way). Its own commits reach them
from the unit of work's journal, as in embedded mode. The other processes' commits reach
them here: the writing transaction sends, on ``MEMORIES_CHANGED``, which memories of which
field it added, rewrote or deleted, and which other turns it gave a new place or session
(ids only, in as many notifications as needed; PostgreSQL delivers them at commit, in
commit order); each other process reads those rows again and applies them.

Only while a process listens are its copies trusted: the unit of work searches with pgvector
and the full-text statement otherwise (a process that never listens, or one reconnecting),
and every copy is dropped once listening again, since notifications may have been missed
meanwhile. A search on one process sees another's commit a few milliseconds later: the
notification's trip plus one read or two.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncEngine

from persistence.faiss_index import FaissStore
from persistence.tables.memories import memories
from persistence.term_store import TermStore
from persistence.turn_store import TurnChange, TurnStore

log = logging.getLogger("memoria.memory_feed")


def _turn(memory_id: str, row: tuple[str, datetime, int | None, int | None] | None) -> TurnChange:
    """A named memory's place in the turn order as it stands: a turn, or none (deleted, or
    not a turn)."""
    if row is None or row[2] is None:
        return (memory_id, None, None, None)
    _text, at, seq, session = row
    return (memory_id, at, seq, session)


MEMORIES_CHANGED = "memoria_memories"
# Where PostgreSQL mode searches vectors: each process's copies ("process") or pgvector in
# the database ("database").
VECTOR_SEARCHES = ("process", "database")
# Ids per notification: 36-character UUIDs stay well under PostgreSQL's 8000-byte payload.
_IDS_PER_NOTE = 150
# Past this many changes in one transaction (an import), the other processes drop the
# field's copy and load it again on its next search instead of reading each row.
_READ_AT_MOST = 20_000


def change_notes(
    origin: str,
    upserts: Sequence[tuple[str, str, object]],
    deletes: Sequence[tuple[str, str]],
    dropped: Collection[str] = (),
    turned: Sequence[tuple[str, str]] = (),
) -> list[str]:
    """The ``MEMORIES_CHANGED`` payloads for one transaction's memory changes: per field,
    ``{"o": origin, "f": field, "u": upserted ids, "d": deleted ids, "t": ids of the other
    turns whose place or session changed}`` (``turned``: (field, memory) pairs), or
    ``"x": true`` for "drop the field's copy" (re-embedded, or too many changes to read
    one by one)."""
    changed: dict[str, tuple[list[str], list[str], list[str]]] = {}
    for field_id, memory_id, _vector in upserts:
        changed.setdefault(field_id, ([], [], []))[0].append(memory_id)
    for field_id, memory_id in deletes:
        changed.setdefault(field_id, ([], [], []))[1].append(memory_id)
    for field_id, memory_id in turned:
        changed.setdefault(field_id, ([], [], []))[2].append(memory_id)
    notes: list[str] = []
    crowded = {f for f, ids in changed.items() if sum(map(len, ids)) > _READ_AT_MOST}
    drop = set(dropped) | crowded
    for field_id in sorted(drop):
        notes.append(json.dumps({"o": origin, "f": field_id, "x": True}))
    for field_id, (upserted, deleted, moved) in changed.items():
        if field_id in drop:
            continue
        named = set(upserted) | set(deleted)
        ids = (
            [("u", m) for m in dict.fromkeys(upserted)]
            + [("d", m) for m in deleted]
            + [("t", m) for m in dict.fromkeys(moved) if m not in named]
        )
        for part in _chunks(ids, _IDS_PER_NOTE):
            note: dict[str, object] = {"o": origin, "f": field_id}
            for side in ("u", "d", "t"):
                note[side] = [m for s, m in part if s == side]
            notes.append(json.dumps(note))
    return notes


def _chunks(items: list[tuple[str, str]], size: int) -> Iterator[list[tuple[str, str]]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class MemoryFeed:
    """Applies the other processes' ``MEMORIES_CHANGED`` notes to this process's copies
    (vectors, keyword postings), one note at a time in the order heard (a later note's read
    sees the later state)."""

    def __init__(
        self,
        engine: AsyncEngine,
        store: FaissStore,
        *,
        origin: str,
        terms: TermStore | None = None,
        turns: TurnStore | None = None,
    ) -> None:
        self.origin = origin
        self._engine = engine
        self._store = store
        self._terms = terms
        self._turns = turns
        self._inbox: asyncio.Queue[str] = asyncio.Queue(maxsize=100_000)
        self._task: asyncio.Task[None] | None = None
        # Whether notes are heard now: the process's listener says (see the module
        # docstring); a process without one never searches its copies.
        self.listening: Callable[[], bool] = lambda: False

    def received(self, payload: str) -> None:
        """The listener's callback (runs on the event loop)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._apply_all(), name="memory-feed"
            )
        try:
            self._inbox.put_nowait(payload)
        except asyncio.QueueFull:
            log.warning("memory feed: inbox full, dropping every copy to load them again")
            self._forget_all()

    async def _apply_all(self) -> None:
        while True:
            payload = await self._inbox.get()
            try:
                await self._apply(payload)
            except Exception:  # a note that cannot be applied: start the copies over
                log.exception("memory feed: a change could not be applied; dropping copies")
                self._forget_all()
            finally:
                self._inbox.task_done()

    async def _apply(self, payload: str) -> None:
        note = json.loads(payload)
        if not isinstance(note, dict) or note.get("o") == self.origin:
            return  # this process's own commit: applied from its journal already
        field_id = str(note.get("f"))
        if note.get("x"):
            self._store.drop(field_id)
            for store in (self._terms, self._turns):
                if store is not None:
                    store.forget(field_id)
            return
        upserted = [str(m) for m in note.get("u", [])]
        deleted = [str(m) for m in note.get("d", [])]
        moved = [str(m) for m in note.get("t", [])]
        texts = self._terms is not None and self._terms.tracks(field_id)
        turns = self._turns is not None and self._turns.tracks(field_id)
        if not (texts or turns):
            if upserted or deleted:
                await self._store.refresh(field_id, upserted=upserted, deleted=deleted)
            return
        # One read for all: the named rows as they stand now, their vectors too when the
        # field's index is loaded here. Applied now, or replayed onto the copies being
        # built (FieldStore.apply; a loading vector index reads its own once loaded).
        vectors = bool(upserted) and self._store.loaded(field_id) is not None
        rows, read = await self._rows(
            field_id, upserted + moved if turns else upserted, vectors=vectors
        )
        if upserted or deleted:
            await self._store.refresh(
                field_id,
                upserted=upserted,
                deleted=deleted,
                read={m: read[m] for m in upserted if m in read} if vectors else None,
            )
        if texts and self._terms is not None:
            kept = [(field_id, m, rows[m][0]) for m in upserted if m in rows]
            gone = [(field_id, m) for m in deleted + [m for m in upserted if m not in rows]]
            self._terms.apply_texts(kept, gone)
        if turns and self._turns is not None:
            named = upserted + deleted + moved
            self._turns.apply([(field_id, _turn(m, rows.get(m))) for m in named])

    async def _rows(
        self, field_id: str, memory_ids: list[str], *, vectors: bool
    ) -> tuple[dict[str, tuple[str, datetime, int | None, int | None]], dict[str, Any]]:
        """The text, time, turn sequence and session of those of ``memory_ids`` the field
        holds now; and their vectors (as the vector store reads them) if asked for."""
        if not memory_ids:
            return {}, {}
        c = memories.c
        columns: list[ColumnElement[Any]] = [
            c.id,
            c.content,
            c.occurred_at,
            c.turn_seq,
            c.turn_session,
        ]
        if vectors:
            columns.append(self._store.vector_column)
        stmt = select(*columns).where(c.field_id == field_id, c.id.in_(memory_ids))
        rows: dict[str, tuple[str, datetime, int | None, int | None]] = {}
        read: dict[str, Any] = {}
        async with self._engine.connect() as conn:
            for row in await conn.execute(stmt):
                rows[row.id] = (row.content, row.occurred_at, row.turn_seq, row.turn_session)
                if vectors and row.embedding is not None:
                    read[row.id] = row.embedding
        return rows, read

    def _forget_all(self) -> None:
        self._store.forget_all()
        for store in (self._terms, self._turns):
            if store is not None:
                store.forget_all()

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
