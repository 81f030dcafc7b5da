"""Per-user rate limiting: one bucket per request, budgets from :class:`RateLimitPolicy`."""

from __future__ import annotations

from dataclasses import dataclass

from domain.clock import Clock
from domain.entities import Actor, Tier
from domain.errors import RateLimited
from domain.ports import UnitOfWork
from domain.rate_policy import RateLimitCounter, RateLimitPolicy


@dataclass(frozen=True, slots=True)
class RateDecision:
    """What the ``X-RateLimit-*`` headers report. ``reset_at`` is epoch seconds."""

    limit: int
    remaining: int
    reset_at: int
    retry_after: int


class RequestRateLimited(RateLimited):
    """A refused request, carrying the decision so edges can still send the headers."""

    def __init__(self, decision: RateDecision) -> None:
        super().__init__(
            f"Too many requests: the limit is {decision.limit} per window; "
            f"retry after {decision.retry_after} s",
            retry_after=decision.retry_after,
            limit=decision.limit,
        )
        self.decision = decision


class RateLimitService:
    def __init__(self, *, counter: RateLimitCounter, policy: RateLimitPolicy, clock: Clock) -> None:
        self._counter = counter
        self._policy = policy
        self._clock = clock

    @property
    def policy(self) -> RateLimitPolicy:
        return self._policy

    async def tier_of(self, *, uow: UnitOfWork, actor: Actor) -> Tier:
        """The stored tier, unless settings name this user; admins are never throttled."""
        user = await uow.users.get(actor.user_id)
        if user is None:
            return Tier.FREE
        override = self._policy.user_tiers.get(user.username)
        if override is not None:
            return override
        return Tier.UNLIMITED if actor.is_admin else user.tier

    async def check(
        self,
        *,
        uow: UnitOfWork,
        actor: Actor | None,
        route_class: str | None,
        client: str,
    ) -> RateDecision:
        """Count this request and return the headers, or raise :class:`RequestRateLimited`."""
        tier = await self.tier_of(uow=uow, actor=actor) if actor is not None else None
        bucket, limit = self._policy.limit_for(tier=tier, route_class=route_class)
        window = self._policy.window_seconds
        now = self._clock.now().timestamp()
        start = int(now // window) * window
        reset_at = start + window
        retry_after = max(1, int(reset_at - now + 0.999))
        if not self._policy.enabled:
            return RateDecision(limit=limit, remaining=limit, reset_at=reset_at, retry_after=0)
        who = f"user:{actor.user_id}" if actor is not None else f"ip:{client}"
        count = await self._counter.hit(
            f"{who}:{bucket}", window_start=start, window_seconds=window
        )
        decision = RateDecision(
            limit=limit,
            remaining=max(0, limit - count),
            reset_at=reset_at,
            retry_after=retry_after,
        )
        if count > limit:
            raise RequestRateLimited(decision)
        return decision
