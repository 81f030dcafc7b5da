"""Speaker prior: a question naming a speaker prefers that speaker's own turns."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from domain.entities import Memory, MemoryField, MemoryKind, MemoryLayer
from domain.ports import UnitOfWork
from domain.retrieval.engine import HybridRetriever
from domain.retrieval.query_analysis import analyze
from domain.retrieval.settings import RetrievalSettings, SearchFilter
from domain.retrieval.speakers import named_speakers, speaker_of

NOW = datetime(2024, 6, 15, 12, 0, tzinfo=UTC)


def memory(
    memory_id: str, content: str, *, minute: int = 0, speaker: str | None = None, **metadata: Any
) -> Memory:
    at = NOW + timedelta(minutes=minute)
    return Memory(
        id=memory_id,
        user_id="u",
        field_id="f",
        content=content,
        kind=MemoryKind.EPISODE,
        source="test",
        layer=MemoryLayer.LONG_TERM,
        importance=0.5,
        tags=[],
        metadata=dict(metadata),
        occurred_at=at,
        created_at=at,
        updated_at=at,
        content_hash=memory_id,
        speaker=speaker,
    )


def test_speaker_comes_from_metadata_then_the_leading_label() -> None:
    assert speaker_of(memory("a", "Caroline: I went to a pride parade.")) == "Caroline"
    assert speaker_of(memory("b", "Dr. Mary Smith: take two a day")) == "Dr. Mary Smith"
    assert speaker_of(memory("c", "caroline: lower-case is no label")) is None
    assert speaker_of(memory("d", "We met at 10: it was early")) is None
    assert speaker_of(memory("e", "The plan: Caroline paints")) is None  # not a name label
    assert speaker_of(memory("f", "no label", speaker="Mel")) == "Mel"
    assert speaker_of(memory("g", "Caroline: hi", speaker="  ")) == "Caroline"


def test_named_speakers_only_when_some_but_not_all_are_named() -> None:
    both = {"Caroline", "Melanie"}
    assert named_speakers(["caroline", "paint"], both) == {"Caroline"}
    assert named_speakers(["caroline", "melanie"], both) == set()  # everyone: no one
    assert named_speakers(["paint"], both) == set()
    assert named_speakers(["smith"], {"Dr. Mary Smith", "Bob"}) == set()  # whole name only
    assert named_speakers(["mary", "smith", "dr"], {"Dr. Mary Smith", "Bob"}) == {"Dr. Mary Smith"}
    assert named_speakers(["caroline"], {"Caroline"}) == set()  # a monologue


@dataclass
class _Vectors:
    hits: list[tuple[str, float]]

    async def search(
        self, *, field_id: str, vector: Any, k: int, allowed: Sequence[str] | None
    ) -> list[tuple[str, float]]:
        return self.hits[:k]


@dataclass
class _Lexical:
    hits: list[tuple[str, float]]

    async def search(
        self, *, field_id: str, terms: Sequence[str], k: int, allowed: Sequence[str] | None
    ) -> list[tuple[str, float]]:
        return self.hits[:k]


@dataclass
class _Memories:
    by_id: dict[str, Memory]
    reads: int = 0

    async def get_many(self, ids: Sequence[str], *, user_id: str) -> list[Memory]:
        self.reads += 1
        return [self.by_id[i] for i in ids if i in self.by_id]


@dataclass
class _Turns:
    order: list[Memory]

    async def turns_around(
        self,
        *,
        field_id: str,
        user_id: str,
        memory_ids: Sequence[str],
        steps: int,
        max_span_seconds: float,
    ) -> dict[str, list[tuple[str, datetime]]]:
        at = {m.id: i for i, m in enumerate(self.order)}
        found: dict[str, list[tuple[str, datetime]]] = {}
        for memory_id in memory_ids:
            if memory_id in at:
                i = at[memory_id]
                window = self.order[max(0, i - steps) : i + steps + 1]
                found[memory_id] = [(m.id, m.occurred_at) for m in window]
        return found


@dataclass
class _UoW:
    vectors: _Vectors
    lexical: _Lexical
    memories: _Memories
    memory_query: _Turns


# Turn "m1" by Melanie matches the question best; the answer is Caroline's "c2", a few
# turns later, that matches less well than Melanie's reply "m3" right after "m1".
TURNS = [
    memory("m1", "Melanie: Caroline, what are you reading these days?", minute=0),
    memory("c2", "Caroline: Just finished a fantasy series, loved it.", minute=1),
    memory("m3", "Melanie: Reading is my escape too, Caroline!", minute=2),
    memory("c4", "Caroline: I also started pottery.", minute=3),
]
DENSE = [("m1", 0.80), ("m3", 0.70), ("c2", 0.55), ("c4", 0.30)]
# Lexical scores are shares of the query covered (domain.ports.LexicalIndex).
LEXICAL = [("m1", 0.96), ("m3", 0.72), ("c2", 0.64), ("c4", 0.08)]


def search(question: str, settings: RetrievalSettings) -> tuple[list[str], _Memories]:
    memories = _Memories({m.id: m for m in TURNS})
    uow = _UoW(_Vectors(DENSE), _Lexical(LEXICAL), memories, _Turns(TURNS))
    hits = asyncio.run(
        HybridRetriever(settings).search(
            uow=cast(UnitOfWork, uow),
            user_id="u",
            fields=[cast(MemoryField, _Field())],
            analysis=analyze(question, now=NOW),
            vector=[0.0],
            flt=SearchFilter(),
            top_k=4,
        )
    )
    return [h.memory.id for h in hits], memories


@dataclass
class _Field:
    id: str = "f"
    has_turns: bool = True


# A four-turn field: keywords at full weight, as in a long conversation.
SETTINGS = RetrievalSettings(
    prf_terms=0, neighbour_weight=0.0, session_weight=0.0, lexical_trusted_size=1
)


def test_named_speaker_turns_move_up() -> None:
    question = "What has Caroline been reading?"
    without, _ = search(question, replace(SETTINGS, speaker_weight=0.0))
    with_prior, memories = search(question, replace(SETTINGS, speaker_weight=0.5))
    assert without.index("m3") < without.index("c2")
    assert with_prior.index("c2") < with_prior.index("m3")
    assert set(with_prior) == set(without)  # reordered, nothing added or lost
    assert memories.reads == 1  # the pool is read once, and reused for the result


def test_no_named_speaker_changes_nothing() -> None:
    for question in ("What is everyone reading?", "What do Caroline and Melanie read?"):
        without, _ = search(question, replace(SETTINGS, speaker_weight=0.0))
        with_prior, _ = search(question, replace(SETTINGS, speaker_weight=0.5))
        assert with_prior == without
