"""PostgreSQL mode: every process's in-process vector indexes kept in step with the others'.

Each process of a deployment searches its own FAISS copy of a field's vectors
(:class:`~persistence.faiss_index.FaissStore`), loaded from the database on the field's
first search. Its own commits reach it from the unit of work's journal, as in embedded
mode. The other processes' commits reach it here: the writing transaction sends, on
``VECTORS_CHANGED``, which memories of which field it added, rewrote or deleted (ids only,
in as many notifications as needed; PostgreSQL delivers them at commit, in commit order);
each other process reads those rows' vectors again and applies them.

Only while a process listens are its copies trusted: the unit of work searches with
pgvector otherwise (a process that never listens, or one reconnecting), and every copy is
dropped once listening again, since notifications may have been missed meanwhile. A
search on one process sees another's commit a few milliseconds later: the notification's
trip plus one read.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Collection, Iterator, Sequence

from persistence.faiss_index import FaissStore

log = logging.getLogger("memoria.vectors")

VECTORS_CHANGED = "memoria_vectors"
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
) -> list[str]:
    """The ``VECTORS_CHANGED`` payloads for one transaction's vector changes: per field,
    ``{"o": origin, "f": field, "u": upserted ids, "d": deleted ids}``, or ``"x": true``
    for "drop the field's copy" (re-embedded, or too many changes to read one by one)."""
    changed: dict[str, tuple[list[str], list[str]]] = {}
    for field_id, memory_id, _vector in upserts:
        changed.setdefault(field_id, ([], []))[0].append(memory_id)
    for field_id, memory_id in deletes:
        changed.setdefault(field_id, ([], []))[1].append(memory_id)
    notes: list[str] = []
    drop = set(dropped) | {f for f, (u, d) in changed.items() if len(u) + len(d) > _READ_AT_MOST}
    for field_id in sorted(drop):
        notes.append(json.dumps({"o": origin, "f": field_id, "x": True}))
    for field_id, (upserted, deleted) in changed.items():
        if field_id in drop:
            continue
        ids = [("u", m) for m in dict.fromkeys(upserted)] + [("d", m) for m in deleted]
        for part in _chunks(ids, _IDS_PER_NOTE):
            note: dict[str, object] = {"o": origin, "f": field_id}
            note["u"] = [m for side, m in part if side == "u"]
            note["d"] = [m for side, m in part if side == "d"]
            notes.append(json.dumps(note))
    return notes


def _chunks(items: list[tuple[str, str]], size: int) -> Iterator[list[tuple[str, str]]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class VectorFeed:
    """Applies the other processes' ``VECTORS_CHANGED`` notes to this process's store,
    one note at a time in the order heard (a later note's read sees the later state)."""

    def __init__(self, store: FaissStore, *, origin: str) -> None:
        self.origin = origin
        self._store = store
        self._inbox: asyncio.Queue[str] = asyncio.Queue(maxsize=100_000)
        self._task: asyncio.Task[None] | None = None
        # Whether notes are heard now: the process's listener says (see the module
        # docstring); a process without one never searches its copies.
        self.listening: Callable[[], bool] = lambda: False

    def received(self, payload: str) -> None:
        """The listener's callback (runs on the event loop)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._apply_all(), name="vector-feed"
            )
        try:
            self._inbox.put_nowait(payload)
        except asyncio.QueueFull:
            log.warning("vector feed: inbox full, dropping every copy to load them again")
            self._store.forget_all()

    async def settled(self) -> None:
        """Wait until every note heard so far is applied."""
        await self._inbox.join()

    async def _apply_all(self) -> None:
        while True:
            payload = await self._inbox.get()
            try:
                await self._apply(payload)
            except Exception:  # a note that cannot be applied: start the copies over
                log.exception("vector feed: a change could not be applied; dropping copies")
                self._store.forget_all()
            finally:
                self._inbox.task_done()

    async def _apply(self, payload: str) -> None:
        note = json.loads(payload)
        if not isinstance(note, dict) or note.get("o") == self.origin:
            return  # this process's own commit: applied from its journal already
        field_id = str(note.get("f"))
        if note.get("x"):
            self._store.forget(field_id)
            return
        upserted = [str(m) for m in note.get("u", [])]
        deleted = [str(m) for m in note.get("d", [])]
        await self._store.refresh(field_id, upserted=upserted, deleted=deleted)

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
