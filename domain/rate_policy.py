"""Request-rate limits, sign-in throttling and tier quotas: the one policy every edge
(GraphQL, REST) applies. The settings fill it in; nothing here is a hard-coded budget.

Two families of request budget exist in the documents: *route classes* with a fixed budget
per user (Senua: chat 60/min, memory search 120/min, sync 10/min) and *tiers* whose budget
depends on the user's plan (MemoryKit: free 10, standard 100, premium 1,000 per minute). A
request is counted in exactly one bucket: its route class if that class has a budget, else
the user's tier bucket. A tier whose budget is ``None`` (``unlimited`` by default) has no
tier bucket at all. Anonymous requests (login, health, docs, refused tokens) are counted per
client address. Administrators have no request budget at all.

Self-hosting defaults: new users get ``default_tier`` (``unlimited``: no tier budget, no
quotas), so an app on a private server never meets the per-minute plan budgets; the
route-class budgets stay on. An operator selling plans sets a user's tier (stored on the
user, or ``user_tiers`` from the settings) and the documents' numbers apply.

Sign-in throttling is separate and applies whatever the tier, administrators included:
failed password or TOTP attempts per account and per client address within a window.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from domain.entities import Tier

CHAT = "chat"
MEMORY_SEARCH = "memory_search"
SYNC = "sync"
# Sign-in attempts (login, register, MFA codes): counted in the anonymous bucket per address
# when there is no user, and watched by the sign-in throttle (see ``LoginPolicy``).
LOGIN = "login"

MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class TierQuota:
    """Lifetime totals a tier may hold; ``None`` means unlimited."""

    conversations: int | None = None
    messages: int | None = None
    storage_bytes: int | None = None

    @property
    def unlimited(self) -> bool:
        return self.conversations is None and self.messages is None and self.storage_bytes is None


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    """Failed sign-in attempts allowed per window; ``0`` turns that check off.

    After ``max_failures_per_account`` failures for one account (wrong password or TOTP code)
    every attempt for it is refused until the window ends, a correct password included; the
    same for ``max_failures_per_address`` failures from one client address, whichever
    accounts they named.
    """

    max_failures_per_account: int = 10
    max_failures_per_address: int = 50
    window_seconds: int = 900


def _tier_limits() -> dict[Tier, int | None]:
    return {Tier.FREE: 10, Tier.STANDARD: 100, Tier.PREMIUM: 1000, Tier.UNLIMITED: None}


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
    """Budgets per fixed window. ``user_tiers`` overrides the stored tier by username;
    ``default_tier`` is the tier a new account is stored with."""

    window_seconds: int = 60
    tier_limits: Mapping[Tier, int | None] = field(default_factory=_tier_limits)
    class_limits: Mapping[str, int] = field(default_factory=_class_limits)
    anonymous_limit: int = 60
    user_tiers: Mapping[str, Tier] = field(default_factory=dict)
    quotas: Mapping[Tier, TierQuota] = field(default_factory=_quotas)
    default_tier: Tier = Tier.UNLIMITED
    login: LoginPolicy = field(default_factory=LoginPolicy)
    enabled: bool = True

    def limit_for(self, *, tier: Tier | None, route_class: str | None) -> tuple[str, int | None]:
        """The bucket name and its budget for one request (``None``: not counted)."""
        if tier is None:
            return "anonymous", self.anonymous_limit
        if route_class is not None and route_class in self.class_limits:
            return route_class, self.class_limits[route_class]
        return "tier", self.tier_limits.get(tier, self.tier_limits.get(Tier.FREE))

    def quota_for(self, tier: Tier) -> TierQuota:
        return self.quotas.get(tier, TierQuota())


class RateLimitCounter(Protocol):
    """Counts hits per key and fixed window. Shared between processes in PostgreSQL mode.

    ``hit`` adds one and returns the count *including* this hit; it runs outside the request's
    unit of work so refused and failed requests still count.
    """

    async def hit(self, key: str, *, window_start: int, window_seconds: int) -> int: ...
