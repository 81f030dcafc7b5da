"""Procedural memory: detected patterns, their history and the requests they were learned from."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from domain.patterns import Pattern, PatternChange, RequestObservation


class PatternRepository(Protocol):
    async def add(self, pattern: Pattern) -> None: ...

    async def update(self, pattern: Pattern) -> None: ...

    async def delete(self, pattern_id: str, *, user_id: str) -> bool: ...

    async def get(self, pattern_id: str, *, user_id: str) -> Pattern | None: ...

    async def active(self, *, user_id: str) -> list[Pattern]: ...

    async def page(
        self, *, user_id: str, first: int, after: str | None
    ) -> tuple[list[Pattern], bool, int]: ...

    async def slice(
        self, *, user_id: str, offset: int, limit: int
    ) -> tuple[list[Pattern], int]: ...

    async def add_change(self, change: PatternChange) -> None: ...

    async def history(self, pattern_id: str, *, user_id: str) -> list[PatternChange]: ...

    async def mark_used(
        self, pattern_ids: Sequence[str], *, user_id: str, at: datetime
    ) -> None: ...

    async def observe(self, observation: RequestObservation) -> None: ...

    async def recent_observations(
        self, *, user_id: str, limit: int
    ) -> list[RequestObservation]: ...
