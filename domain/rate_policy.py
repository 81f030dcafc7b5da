"""Request-rate limits and tier quotas, as policy the settings fill in (never constants).

Two families of limit exist in the documents: *route classes* with a fixed budget per user
(Senua: chat 60/min, memory search 120/min, sync 10/min) and *tiers* whose budget depends on
the user's plan (MemoryKit: free 10, standard 100, premium 1,000 per minute). A request is
counted in exactly one bucket: its route class if that class has a budget, else the user's
tier bucket. Anonymous requests (login, health, docs) are counted per client address.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from domain.entities import Tier

CHAT = "chat"
MEMORY_SEARCH = "memory_search"
SYNC = "sync"

MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class TierQuota:
    """Lifetime totals a tier may hold; ``None`` means unlimited."""

    conversations: int | None = None
    messages: int | None = None
    storage_bytes: int | None = None


def _tier_limits() -> dict[Tier, int]:
    return {Tier.FREE: 10, Tier.STANDARD: 100, Tier.PREMIUM: 1000, Tier.UNLIMITED: 100_000}


def _class_limits() -> dict[str, int]:
    return {CHAT: 60, MEMORY_SEARCH: 120, SYNC: 10}


def _quotas() -> dict[Tier, TierQuota]:
    return {
        Tier.FREE: TierQuota(conversations=5, messages=1000, storage_bytes=10 * MB),
        Tier.STANDARD: TierQuota(storage_bytes=1024 * MB),
        Tier.PREMIUM: TierQuota(),
        Tier.UNLIMITED: TierQuota(),
    }


@dataclass(frozen=True, slots=True)
class RateLimitPolicy:
    """Budgets per fixed window. ``user_tiers`` overrides the stored tier by username."""

    window_seconds: int = 60
    tier_limits: Mapping[Tier, int] = field(default_factory=_tier_limits)
    class_limits: Mapping[str, int] = field(default_factory=_class_limits)
    anonymous_limit: int = 60
    user_tiers: Mapping[str, Tier] = field(default_factory=dict)
    quotas: Mapping[Tier, TierQuota] = field(default_factory=_quotas)
    enabled: bool = True

    def limit_for(self, *, tier: Tier | None, route_class: str | None) -> tuple[str, int]:
        """The bucket name and its budget for one request."""
        if tier is None:
            return "anonymous", self.anonymous_limit
        if route_class is not None and route_class in self.class_limits:
            return route_class, self.class_limits[route_class]
        return "tier", self.tier_limits.get(tier, self.tier_limits[Tier.FREE])

    def quota_for(self, tier: Tier) -> TierQuota:
        return self.quotas.get(tier, TierQuota())


class RateLimitCounter(Protocol):
    """Counts hits per key and fixed window. Shared between processes in PostgreSQL mode.

    ``hit`` adds one and returns the count *including* this hit; it runs outside the request's
    unit of work so refused and failed requests still count.
    """

    async def hit(self, key: str, *, window_start: int, window_seconds: int) -> int: ...
