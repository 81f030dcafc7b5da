"""Counts over one user's store, computed on demand so they stay right after deletes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Stats:
    total_memories: int
    short_term: int
    long_term: int
    by_source: dict[str, int]
    by_kind: dict[str, int]
    conversation_count: int
    message_count: int
    pattern_count: int
    source_count: int
    last_sync: datetime | None
    by_field: dict[str, int] = field(default_factory=dict)

    @property
    def fact_count(self) -> int:
        return self.by_kind.get("fact", 0)
