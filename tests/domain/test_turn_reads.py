"""A search reads the turns around its hits and their sessions only in a field that has
held conversation turns: a field of facts spends nothing on them."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from domain.entities import Memory, MemoryField, MemoryKind, MemoryLayer
from domain.ports import UnitOfWork
from domain.ports.memories import SearchContext
from domain.retrieval.engine import HybridRetriever
from domain.retrieval.query_analysis import analyze
from domain.retrieval.settings import RetrievalSettings, SearchFilter

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
HITS = [("a", 0.9), ("b", 0.7), ("c", 0.5)]


def _memory(memory_id: str) -> Memory:
    return Memory(
        id=memory_id,
        user_id="u",
        field_id="f",
        content=f"the kettle note {memory_id}",
        kind=MemoryKind.FACT,
        source="test",
        layer=MemoryLayer.LONG_TERM,
        importance=0.5,
        tags=[],
        metadata={},
        occurred_at=NOW,
        created_at=NOW,
        updated_at=NOW,
        content_hash=memory_id,
    )


@dataclass
class _Retriever:
    async def search(self, **_: Any) -> list[tuple[str, float]]:
        return HITS


@dataclass
class _Memories:
    async def get_many(self, ids: Sequence[str], *, user_id: str) -> list[Memory]:
        return [_memory(i) for i in ids]


@dataclass
class _Query:
    asked: list[tuple[list[str], list[str]]] = field(default_factory=list)

    async def search_context(
        self, *, load: Sequence[str], anchors: Sequence[str], session_of: Sequence[str], **_: Any
    ) -> SearchContext:
        self.asked.append((list(anchors), list(session_of)))
        return SearchContext(memories={i: _memory(i) for i in load}, around={}, sessions={})


@dataclass
class _UoW:
    vectors: _Retriever
    lexical: _Retriever
    memories: _Memories
    memory_query: _Query


@pytest.mark.parametrize("has_turns", [False, True])
def test_turn_context_is_read_only_in_a_field_that_has_held_turns(has_turns: bool) -> None:
    query = _Query()
    uow = _UoW(_Retriever(), _Retriever(), _Memories(), query)
    memory_field = MemoryField(
        id="f", user_id="u", name="notes", embedder="e", dimension=1, created_at=NOW
    )
    memory_field.has_turns = has_turns
    hits = asyncio.run(
        HybridRetriever(RetrievalSettings()).search(
            uow=cast(UnitOfWork, uow),
            user_id="u",
            fields=[memory_field],
            analysis=analyze("where is the kettle note?", now=NOW),
            vector=[0.0],
            flt=SearchFilter(),
            top_k=3,
        )
    )
    assert [h.memory.id for h in hits] == ["a", "b", "c"]
    assert len(query.asked) == 1  # feedback reads the best hits either way
    anchors, session_of = query.asked[0]
    assert bool(anchors) is has_turns
    assert bool(session_of) is has_turns
