"""Request budgets read from the environment: rate limits, tiers, quotas, sign-in throttling
and request-size limits (all settings, never constants). The policy itself, and how GraphQL
and REST apply it alike, is described in ``domain/rate_policy.py``.

Tiers and defaults (self-hosting needs no setting at all):

``MEMORIA_DEFAULT_TIER``
    Tier stored on every new account: ``unlimited`` (default: no per-minute tier budget and
    no quotas), ``free``, ``standard`` or ``premium``. An unknown name refuses to start.
    ``memoria user set-tier`` changes one account later.
``MEMORIA_USER_TIERS``
    ``"alice=premium,bob=standard"``: tiers by username, winning over the stored tier.
``MEMORIA_RATE_LIMIT_FREE|STANDARD|PREMIUM|UNLIMITED``
    Requests per window for a tier (defaults 10, 100, 1000, none); ``none`` or ``off`` means
    no tier budget. Administrators are never counted, whatever their tier.
``MEMORIA_RATE_LIMIT_CHAT|MEMORY_SEARCH|SYNC``
    Route-class budgets per user and window (60, 120, 10), on for every tier: chat turns
    (``sendMessage``, each ``chat`` subscription, the chat routes), memory searches
    (``searchMemories``, ``context``, the search routes), sync triggers.
``MEMORIA_RATE_LIMIT_ANONYMOUS``
    Requests per window and client address without a valid credential (60).
``MEMORIA_RATE_LIMIT_WINDOW_SECONDS``
    The window of all the budgets above (60).
``MEMORIA_RATE_LIMITS=off``
    Counts nothing (the headers still report the budgets).
``MEMORIA_QUOTA_FREE_CONVERSATIONS|MESSAGES|STORAGE_MB``
    The free tier's quotas (5, 1000, 10).

Sign-in throttling (every tier, administrators included):

``MEMORIA_LOGIN_MAX_FAILURES``
    Failed password or TOTP attempts per account and window (10); then every attempt for
    that account is refused with RATE_LIMITED until the window ends. ``0`` turns it off.
``MEMORIA_LOGIN_MAX_FAILURES_PER_ADDRESS``
    The same per client address, whichever accounts it tries (50). ``0`` turns it off.
``MEMORIA_LOGIN_WINDOW_SECONDS``
    Their window (900, at most 86400).

Request sizes: ``MEMORIA_MAX_REQUEST_BYTES`` (1 MiB), ``MEMORIA_MAX_UPLOAD_BYTES`` (10 MiB).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from domain.entities import Tier
from domain.rate_policy import MB, LoginPolicy, RateLimitPolicy, TierQuota

_NO_BUDGET = ("none", "off", "unlimited")
_TIER_NAMES = ", ".join(t.value for t in Tier)


class RateLimitSettingsError(ValueError):
    pass


def _int(source: Mapping[str, str], name: str, default: int) -> int:
    raw = source.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise RateLimitSettingsError(f"{name} must be a whole number, not {raw!r}") from None
    if value < 0:
        raise RateLimitSettingsError(f"{name} must not be negative")
    return value


def _budget(source: Mapping[str, str], name: str, default: int | None) -> int | None:
    """A tier budget: a whole number, or ``none``/``off`` for no tier budget."""
    raw = (source.get(name) or "").strip()
    if raw.lower() in _NO_BUDGET:
        return None
    return _int(source, name, 0) if raw else default


def _tier(raw: str, name: str) -> Tier:
    try:
        return Tier(raw.strip().lower())
    except ValueError:
        raise RateLimitSettingsError(
            f"{name}: unknown tier {raw.strip()!r} (one of {_TIER_NAMES})"
        ) from None


def parse_user_tiers(raw: str) -> dict[str, Tier]:
    tiers: dict[str, Tier] = {}
    for item in raw.split(","):
        if not item.strip():
            continue
        name, _, tier = item.partition("=")
        tiers[name.strip()] = _tier(tier, "MEMORIA_USER_TIERS")
    return tiers


def login_policy_from_env(source: Mapping[str, str]) -> LoginPolicy:
    base = LoginPolicy()
    window = _int(source, "MEMORIA_LOGIN_WINDOW_SECONDS", base.window_seconds)
    if not 1 <= window <= 86_400:
        raise RateLimitSettingsError("MEMORIA_LOGIN_WINDOW_SECONDS must be 1 to 86400")
    return LoginPolicy(
        max_failures_per_account=_int(
            source, "MEMORIA_LOGIN_MAX_FAILURES", base.max_failures_per_account
        ),
        max_failures_per_address=_int(
            source, "MEMORIA_LOGIN_MAX_FAILURES_PER_ADDRESS", base.max_failures_per_address
        ),
        window_seconds=window,
    )


def rate_limit_policy_from_env(source: Mapping[str, str]) -> RateLimitPolicy:
    base = RateLimitPolicy()
    tiers = {
        tier: _budget(source, f"MEMORIA_RATE_LIMIT_{tier.value.upper()}", limit)
        for tier, limit in base.tier_limits.items()
    }
    classes = {
        name: _int(source, f"MEMORIA_RATE_LIMIT_{name.upper()}", limit)
        for name, limit in base.class_limits.items()
    }
    free = base.quota_for(Tier.FREE)
    quotas = dict(base.quotas)
    quotas[Tier.FREE] = TierQuota(
        conversations=_int(source, "MEMORIA_QUOTA_FREE_CONVERSATIONS", free.conversations or 0),
        messages=_int(source, "MEMORIA_QUOTA_FREE_MESSAGES", free.messages or 0),
        storage_bytes=_int(source, "MEMORIA_QUOTA_FREE_STORAGE_MB", (free.storage_bytes or 0) // MB)
        * MB,
    )
    window = _int(source, "MEMORIA_RATE_LIMIT_WINDOW_SECONDS", base.window_seconds)
    if window < 1:
        raise RateLimitSettingsError("MEMORIA_RATE_LIMIT_WINDOW_SECONDS must be at least 1")
    default_tier = source.get("MEMORIA_DEFAULT_TIER", "").strip()
    return replace(
        base,
        window_seconds=window,
        tier_limits=tiers,
        class_limits=classes,
        anonymous_limit=_int(source, "MEMORIA_RATE_LIMIT_ANONYMOUS", base.anonymous_limit),
        user_tiers=parse_user_tiers(source.get("MEMORIA_USER_TIERS", "")),
        quotas=quotas,
        default_tier=_tier(default_tier, "MEMORIA_DEFAULT_TIER")
        if default_tier
        else base.default_tier,
        login=login_policy_from_env(source),
        enabled=source.get("MEMORIA_RATE_LIMITS", "on").strip().lower()
        not in ("0", "off", "false"),
    )


def request_limit_values_from_env(source: Mapping[str, str]) -> dict[str, object]:
    """The request-budget ``Settings`` fields, for ``Settings.from_env``."""
    return {
        "rate_limits": rate_limit_policy_from_env(source),
        "max_request_bytes": _int(source, "MEMORIA_MAX_REQUEST_BYTES", 1024 * 1024),
        "max_upload_bytes": _int(source, "MEMORIA_MAX_UPLOAD_BYTES", 10 * MB),
    }
