"""Limits settings: self-hosting defaults, an operator's plans, sign-in throttling, and a
refusal to start on a value that names no tier."""

from __future__ import annotations

import pytest

from domain.entities import Tier
from memoria.settings import Settings, SettingsError


def test_defaults_suit_a_self_hosted_server() -> None:
    policy = Settings.from_env({}).rate_limits
    assert policy.default_tier is Tier.UNLIMITED
    assert policy.tier_limits[Tier.UNLIMITED] is None
    assert (policy.tier_limits[Tier.FREE], policy.tier_limits[Tier.PREMIUM]) == (10, 1000)
    assert dict(policy.class_limits) == {"chat": 60, "memory_search": 120, "sync": 10}
    login = policy.login
    assert (login.max_failures_per_account, login.window_seconds) == (10, 900)


def test_an_operator_selling_plans() -> None:
    policy = Settings.from_env(
        {
            "MEMORIA_DEFAULT_TIER": " Free ",
            "MEMORIA_RATE_LIMIT_STANDARD": "none",
            "MEMORIA_RATE_LIMIT_UNLIMITED": "5000",
            "MEMORIA_LOGIN_MAX_FAILURES": "5",
            "MEMORIA_LOGIN_MAX_FAILURES_PER_ADDRESS": "0",
            "MEMORIA_LOGIN_WINDOW_SECONDS": "3600",
        }
    ).rate_limits
    assert policy.default_tier is Tier.FREE
    assert policy.tier_limits[Tier.STANDARD] is None
    assert policy.tier_limits[Tier.UNLIMITED] == 5000
    assert (policy.login.max_failures_per_account, policy.login.max_failures_per_address) == (5, 0)
    assert policy.login.window_seconds == 3600


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("MEMORIA_DEFAULT_TIER", "gold", "unknown tier 'gold'"),
        ("MEMORIA_USER_TIERS", "alice=platinum", "unknown tier 'platinum'"),
        ("MEMORIA_LOGIN_WINDOW_SECONDS", "0", "MEMORIA_LOGIN_WINDOW_SECONDS"),
        ("MEMORIA_LOGIN_MAX_FAILURES", "many", "MEMORIA_LOGIN_MAX_FAILURES"),
        ("MEMORIA_RATE_LIMIT_FREE", "-1", "must not be negative"),
    ],
)
def test_bad_values_are_refused(name: str, value: str, message: str) -> None:
    # SettingsError is what makes ``memoria serve`` (and every command) refuse to start.
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({name: value})
