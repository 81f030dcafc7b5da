"""Rate-limit policy and service, with a fixed clock and an in-memory counter."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.entities import Tier
from domain.rate_policy import RateLimitPolicy
from domain.services.rate_limits import RateLimitService, RequestRateLimited
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


async def test_anonymous_budget_per_address_and_reset() -> None:
    clock = FixedClock(datetime(2026, 1, 1, 12, 0, 10, tzinfo=UTC))
    service = RateLimitService(
        counter=MemoryRateLimitCounter(),
        policy=RateLimitPolicy(anonymous_limit=2),
        clock=clock,
    )
    kwargs = {"uow": None, "actor": None, "route_class": None}
    first = await service.check(client="1.2.3.4", **kwargs)  # type: ignore[arg-type]
    assert (first.limit, first.remaining) == (2, 1)
    assert first.reset_at == int(datetime(2026, 1, 1, 12, 1, tzinfo=UTC).timestamp())
    await service.check(client="1.2.3.4", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(RequestRateLimited) as refused:
        await service.check(client="1.2.3.4", **kwargs)  # type: ignore[arg-type]
    assert refused.value.retry_after == 50
    other = await service.check(client="5.6.7.8", **kwargs)  # type: ignore[arg-type]
    assert other.remaining == 1
    clock.at = datetime(2026, 1, 1, 12, 1, 0, tzinfo=UTC)
    assert (await service.check(client="1.2.3.4", **kwargs)).remaining == 1  # type: ignore[arg-type]
