"""Per-user request budgets: one bucket per request (or per GraphQL root field), budgets
from :class:`RateLimitPolicy`. Every edge calls :meth:`RateLimitService.check`."""

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
    """Counts requests against the policy's buckets (see ``domain.rate_policy``)."""

    def __init__(self, *, counter: RateLimitCounter, policy: RateLimitPolicy, clock: Clock) -> None:
        self._counter = counter
        self._policy = policy
        self._clock = clock

    @property
    def policy(self) -> RateLimitPolicy:
        return self._policy

    async def tier_of(self, *, uow: UnitOfWork, actor: Actor) -> Tier:
        """The settings' tier for this username, else the stored one; admins are unlimited."""
        if actor.is_admin:
            return Tier.UNLIMITED
        user = await uow.users.get(actor.user_id)
        if user is None:
            return self._policy.default_tier
        override = self._policy.user_tiers.get(user.username)
        return override if override is not None else user.tier

    async def _bucket(
        self, uow: UnitOfWork | None, actor: Actor | None, route_class: str | None
    ) -> tuple[str, int | None]:
        policy = self._policy
        if actor is None or (route_class is not None and route_class in policy.class_limits):
            # A class budget is the same for every tier: no need to read the user's.
            return policy.limit_for(
                tier=None if actor is None else Tier.UNLIMITED, route_class=route_class
            )
        if uow is None:
            raise ValueError("a unit of work is needed to read the user's tier")
        return policy.limit_for(tier=await self.tier_of(uow=uow, actor=actor), route_class=None)

    async def check(
        self,
        *,
        uow: UnitOfWork | None,
        actor: Actor | None,
        route_class: str | None,
        client: str,
    ) -> RateDecision | None:
        """Count one request; its headers, ``None`` when no budget applies (administrators,
        a tier without a budget), or :class:`RequestRateLimited` past the budget. ``uow``
        is read (the user's tier) only when there is an actor."""
        if actor is not None and actor.is_admin:
            return None  # never throttled out of their own server
        bucket, limit = await self._bucket(uow, actor, route_class)
        if limit is None:
            return None
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
