"""Memory fields, memories, their vectors and full text, and the queries search runs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from domain.entities import (
    Memory,
    MemoryChange,
    MemoryField,
)

Vector = Sequence[float]


class Embedder(Protocol):
    """Turns text into unit-length vectors. ``dimension`` is read off the model, not assumed."""

    @property
    def name(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    async def embed(self, texts: Sequence[str]) -> Sequence[Vector]: ...

    async def embed_query(self, text: str) -> Vector:
        """One search query's vector, comparable with ``embed``'s (the same model). Latency
        matters here, not throughput: an adapter may take a faster path of the same model."""
        ...


class MemoryFieldRepository(Protocol):
    async def add(self, field: MemoryField) -> None: ...

    async def get(self, field_id: str, *, user_id: str) -> MemoryField | None: ...

    async def by_name(self, name: str, *, user_id: str) -> MemoryField | None: ...

    async def get_many(self, field_ids: Sequence[str], *, user_id: str) -> list[MemoryField]: ...

    async def list(self, *, user_id: str) -> list[MemoryField]: ...


class MemoryRepository(Protocol):
    async def add(self, memory: Memory, embedding: Vector) -> None: ...

    async def add_many(self, items: Sequence[tuple[Memory, Vector]]) -> set[str]:
        """Store the batch; returns the ids of the fields where its conversation turns were
        not simply appended (a turn stored earlier comes after the batch's first turn)."""
        ...

    async def update(self, memory: Memory, embedding: Vector | None) -> None: ...

    async def delete(self, memory: Memory) -> None: ...

    async def get(self, memory_id: str, *, user_id: str) -> Memory | None: ...

    async def get_many(self, memory_ids: Sequence[str], *, user_id: str) -> list[Memory]: ...

    async def count(self, *, user_id: str, field_id: str | None = None) -> int: ...


class MemoryHistoryRepository(Protocol):
    async def add(self, change: MemoryChange) -> None: ...

    async def add_many(self, changes: Sequence[MemoryChange]) -> None: ...

    async def list(self, memory_id: str, *, user_id: str) -> list[MemoryChange]: ...


class VectorIndex(Protocol):
    """Nearest neighbours by cosine over one field's memory vectors.

    ``allowed`` restricts the search to those memory ids *inside* the index search, so
    filtering never empties a top-k. Writes reach the index through the memory repository
    and become visible when the unit of work commits.
    """

    async def search(
        self,
        *,
        field_id: str,
        vector: Vector,
        k: int,
        allowed: Sequence[str] | None = None,
    ) -> list[tuple[str, float]]: ...

    async def nearest(
        self, *, field_id: str, vectors: Sequence[Vector], k: int
    ) -> list[list[tuple[str, float]]]:
        """Unfiltered top-``k`` for each of several vectors (near-duplicate checks)."""
        ...


class LexicalIndex(Protocol):
    """Keyword search over one field's memory texts (SQLite FTS5 BM25 / PostgreSQL
    full-text). ``terms`` are already-normalised content words, matched with OR, a long word
    also by its family (allergies: allergic, allergy; the stemmers keep those apart). A score is
    the share of the query's evidence the memory carries, in [0, 1]: its IDF-weighted match
    of the terms (IDF within the field where the field is small enough to count) over what
    a memory holding every term would score, so it is comparable across queries and fields.
    ``allowed`` filters inside the search, as for :class:`VectorIndex`."""

    async def search(
        self,
        *,
        field_id: str,
        terms: Sequence[str],
        k: int,
        allowed: Sequence[str] | None = None,
    ) -> list[tuple[str, float]]: ...


@dataclass(frozen=True, slots=True)
class StoredText:
    """A memory's text as the re-embedder walks it (:meth:`MaintenanceRepository.page`).
    ``cursor`` is where the walk goes on after this memory (opaque to the domain)."""

    memory_id: str
    user_id: str
    content: str
    content_hash: str
    occurred_at: datetime
    is_turn: bool
    cursor: str


@dataclass(frozen=True, slots=True)
class SearchContext:
    """What a search reads about its best candidates (:meth:`MemoryQuery.search_context`):
    memories by id, the turns around each anchor (as ``turns_around`` gives them) and the
    session number of each turn asked about (as ``sessions`` gives them)."""

    memories: dict[str, Memory]
    around: dict[str, list[tuple[str, datetime]]]
    sessions: dict[str, int]


class MemoryQuery(Protocol):
    """Filtered candidate selection for search; implemented in SQL by persistence."""

    async def candidate_ids(
        self,
        *,
        field_id: str,
        user_id: str,
        sources: Sequence[str] | None,
        tags: Sequence[str] | None,
        occurred_from: datetime | None,
        occurred_to: datetime | None,
        metadata: dict[str, object] | None = None,
    ) -> list[str]: ...

    async def sessions(
        self, *, field_id: str, user_id: str, memory_ids: Sequence[str]
    ) -> dict[str, int]:
        """The session number of each conversation turn among ``memory_ids`` in the field
        (numbered when stored: :mod:`domain.sessions`); other ids are left out. One
        primary-key read."""
        ...

    async def turn_before(
        self, *, field_id: str, user_id: str, at: datetime, memory_id: str | None = None
    ) -> tuple[datetime, Vector] | None:
        """The time and stored vector of the field's conversation turn just before a place
        in turn order: the last turn at or before ``at`` (where a turn written now at ``at``
        goes), or with ``memory_id`` the turn just before that one. None when there is no
        such turn. One index seek (:mod:`domain.turn_vectors` blends it in)."""
        ...

    async def turns_around(
        self,
        *,
        field_id: str,
        user_id: str,
        memory_ids: Sequence[str],
        steps: int,
        max_span_seconds: float,
    ) -> dict[str, list[tuple[str, datetime]]]:
        """For each conversation turn (episode or message) among ``memory_ids``, the turns of
        the same field around it in turn order (``occurred_at``, then the order they were
        stored), itself included: up to ``steps`` on each side, none further than
        ``max_span_seconds`` from it. Ids that are not turns of that field are left out. One
        round trip after the anchor lookup, each side one index seek reading at most
        ``steps`` entries: the cost does not grow with the field."""
        ...

    async def search_context(
        self,
        *,
        field_id: str,
        user_id: str,
        load: Sequence[str],
        anchors: Sequence[str],
        steps: int,
        max_span_seconds: float,
        session_of: Sequence[str],
    ) -> SearchContext:
        """In one go: the user's memories among ``load`` (as ``MemoryRepository.get_many``),
        :meth:`turns_around` of ``anchors`` and :meth:`sessions` of ``session_of``: one
        round trip where the store allows it."""
        ...

    async def short_term_ids(
        self, *, field_id: str, user_id: str, occurred_before: datetime, min_importance: float
    ) -> list[str]:
        """Short-term memories old and important enough to be promoted to long-term."""
        ...


class MaintenanceRepository(Protocol):
    """Background work across all users (re-embedding fields whose vectors came from another
    embedder, promotion sweeps). Only background workers use it, never a request."""

    async def fields_after(self, *, after_id: str, limit: int) -> list[MemoryField]:
        """Every user's fields in id order, a page at a time."""
        ...

    async def stale_fields(self, *, embedder: str, limit: int) -> list[MemoryField]: ...

    async def page(self, *, field_id: str, after: str, limit: int) -> list[StoredText]:
        """The field's memories after the cursor ``after`` ("" for the first page), in turn
        order (``occurred_at``, then the order turns were stored, then id), so each
        conversation turn comes after the turn before it."""
        ...

    async def set_embeddings(self, rows: Sequence[tuple[str, str, Vector]]) -> None:
        """Store each (id, content_hash, vector) where the memory still has that content
        hash: a memory edited meanwhile already carries a vector of its new text."""
        ...

    async def set_field_embedder(self, field_id: str, *, embedder: str, dimension: int) -> None: ...
