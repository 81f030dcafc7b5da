"""What a user holds that tier quotas count (conversations, messages, stored bytes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class QuotaUsage:
    conversations: int = 0
    messages: int = 0
    storage_bytes: int = 0


class UsageReader(Protocol):
    """Counts over one user's rows (reached through the unit of work as ``uow.usage``)."""

    async def quota_usage(self, *, user_id: str) -> QuotaUsage: ...
