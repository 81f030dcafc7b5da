"""Per-user statistics."""

from __future__ import annotations

from typing import Protocol

from domain.stats import Stats


class StatsQuery(Protocol):
    async def stats(self, *, user_id: str) -> Stats: ...
