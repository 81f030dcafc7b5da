"""Rate-limit policy and service, with a fixed clock and an in-memory counter."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.entities import Actor, Role, Tier
from domain.rate_policy import LoginPolicy, RateLimitPolicy
from domain.services.login_throttle import LoginThrottle, LoginThrottled
from domain.services.rate_limits import RateDecision, RateLimitService, RequestRateLimited
from persistence.rate_limits import MemoryRateLimitCounter


class FixedClock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


def test_policy_picks_one_bucket() -> None:
    policy = RateLimitPolicy()
    assert policy.limit_for(tier=None, route_class="chat") == ("anonymous", 60)
    assert policy.limit_for(tier=Tier.FREE, route_class="chat") == ("chat", 60)
    assert policy.limit_for(tier=Tier.FREE, route_class="memory_search") == ("memory_search", 120)
    assert policy.limit_for(tier=Tier.FREE, route_class=None) == ("tier", 10)
    assert policy.limit_for(tier=Tier.STANDARD, route_class=None) == ("tier", 100)
    assert policy.limit_for(tier=Tier.PREMIUM, route_class="sync") == ("sync", 10)
    assert policy.quota_for(Tier.FREE).conversations == 5


def test_self_hosting_defaults_have_no_tier_budget_and_no_quota() -> None:
    policy = RateLimitPolicy()
    assert policy.default_tier is Tier.UNLIMITED
    assert policy.limit_for(tier=Tier.UNLIMITED, route_class=None) == ("tier", None)
    assert policy.quota_for(Tier.UNLIMITED).unlimited
    # The route classes stay on for every tier.
    assert policy.limit_for(tier=Tier.UNLIMITED, route_class="chat") == ("chat", 60)


async def test_anonymous_budget_per_address_and_reset() -> None:
    clock = FixedClock(datetime(2026, 1, 1, 12, 0, 10, tzinfo=UTC))
    service = RateLimitService(
        counter=MemoryRateLimitCounter(),
        policy=RateLimitPolicy(anonymous_limit=2),
        clock=clock,
    )

    async def check(client: str) -> RateDecision:
        decision = await service.check(uow=None, actor=None, route_class=None, client=client)
        assert decision is not None  # anonymous requests always have a budget
        return decision

    first = await check("1.2.3.4")
    assert (first.limit, first.remaining) == (2, 1)
    assert first.reset_at == int(datetime(2026, 1, 1, 12, 1, tzinfo=UTC).timestamp())
    await check("1.2.3.4")
    with pytest.raises(RequestRateLimited) as refused:
        await check("1.2.3.4")
    assert refused.value.retry_after == 50
    assert (await check("5.6.7.8")).remaining == 1
    clock.at = datetime(2026, 1, 1, 12, 1, 0, tzinfo=UTC)
    assert (await check("1.2.3.4")).remaining == 1


async def test_unbudgeted_requests_and_admins_are_not_counted() -> None:
    clock = FixedClock(datetime(2026, 1, 1, 12, 0, 10, tzinfo=UTC))
    policy = RateLimitPolicy(class_limits={"chat": 1})
    service = RateLimitService(counter=MemoryRateLimitCounter(), policy=policy, clock=clock)
    admin = Actor(user_id="root", role=Role.ADMIN, via="jwt")
    for _ in range(3):
        decision = await service.check(uow=None, actor=admin, route_class="chat", client="x")
        assert decision is None


def test_login_throttle_locks_an_account_until_the_window_ends() -> None:
    clock = FixedClock(datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC))
    throttle = LoginThrottle(
        policy=LoginPolicy(
            max_failures_per_account=2, max_failures_per_address=5, window_seconds=900
        ),
        clock=clock,
    )
    throttle.guard(account="Alice", client="1.2.3.4")
    throttle.failed(account="Alice", client="1.2.3.4")
    throttle.failed(account=" alice ", client="1.2.3.4")  # one account, however typed
    with pytest.raises(LoginThrottled) as locked:
        throttle.guard(account="alice")
    assert locked.value.code == "RATE_LIMITED"
    assert locked.value.retry_after == 900
    assert locked.value.details["scope"] == "account"
    throttle.guard(account="bob", client="1.2.3.4")  # the address has 2 of its 5
    clock.at = datetime(2026, 1, 1, 12, 15, 0, tzinfo=UTC)
    throttle.guard(account="alice")  # a new window


def test_login_throttle_per_address_and_bounded_memory() -> None:
    clock = FixedClock(datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC))
    throttle = LoginThrottle(
        policy=LoginPolicy(max_failures_per_account=0, max_failures_per_address=3),
        clock=clock,
        max_keys=10,
    )
    for name in ("a", "b", "c"):
        throttle.failed(account=name, client="10.0.0.1")
    with pytest.raises(LoginThrottled) as locked:
        throttle.guard(account="d", client="10.0.0.1")
    assert locked.value.details["scope"] == "address"
    throttle.guard(account="a", client="10.0.0.2")  # per-account checking is off (0)
    for i in range(50):
        throttle.failed(client=f"192.0.2.{i}")
    assert throttle.tracked <= 10
