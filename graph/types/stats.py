"""GraphQL types of per-user statistics."""

from __future__ import annotations

from datetime import datetime

import strawberry

from domain.stats import Stats as StatsEntity


@strawberry.type
class CountEntry:
    key: str
    count: int


def _entries(counts: dict[str, int]) -> list[CountEntry]:
    return [CountEntry(key=k, count=v) for k, v in sorted(counts.items())]


@strawberry.type
class Stats:
    total_memories: int
    short_term: int
    long_term: int
    by_source: list[CountEntry]
    by_kind: list[CountEntry]
    by_field: list[CountEntry]
    conversation_count: int
    message_count: int
    fact_count: int
    pattern_count: int
    source_count: int
    last_sync: datetime | None

    @classmethod
    def of(cls, s: StatsEntity) -> Stats:
        return cls(
            total_memories=s.total_memories,
            short_term=s.short_term,
            long_term=s.long_term,
            by_source=_entries(s.by_source),
            by_kind=_entries(s.by_kind),
            by_field=_entries(s.by_field),
            conversation_count=s.conversation_count,
            message_count=s.message_count,
            fact_count=s.fact_count,
            pattern_count=s.pattern_count,
            source_count=s.source_count,
            last_sync=s.last_sync,
        )
