"""Request budgets read from the environment: rate limits, tiers, quotas and request-size
limits (all settings, never constants).

``MEMORIA_RATE_LIMIT_FREE|STANDARD|PREMIUM|UNLIMITED`` (requests per window),
``MEMORIA_RATE_LIMIT_CHAT|MEMORY_SEARCH|SYNC`` (Senua route classes),
``MEMORIA_RATE_LIMIT_ANONYMOUS``, ``MEMORIA_RATE_LIMIT_WINDOW_SECONDS``,
``MEMORIA_RATE_LIMITS=off``, ``MEMORIA_USER_TIERS="alice=premium,bob=standard"``,
``MEMORIA_QUOTA_FREE_CONVERSATIONS|MESSAGES|STORAGE_MB``,
``MEMORIA_MAX_REQUEST_BYTES``, ``MEMORIA_MAX_UPLOAD_BYTES``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from domain.entities import Tier
from domain.rate_policy import MB, RateLimitPolicy, TierQuota


class RateLimitSettingsError(ValueError):
    pass


def _int(source: Mapping[str, str], name: str, default: int) -> int:
    raw = source.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = int(raw)
    if value < 0:
        raise RateLimitSettingsError(f"{name} must not be negative")
    return value


def parse_user_tiers(raw: str) -> dict[str, Tier]:
    tiers: dict[str, Tier] = {}
    for item in raw.split(","):
        if not item.strip():
            continue
        name, _, tier = item.partition("=")
        try:
            tiers[name.strip()] = Tier(tier.strip().lower())
        except ValueError:
            raise RateLimitSettingsError(f"MEMORIA_USER_TIERS: unknown tier {tier!r}") from None
    return tiers


def rate_limit_policy_from_env(source: Mapping[str, str]) -> RateLimitPolicy:
    base = RateLimitPolicy()
    tiers = {
        tier: _int(source, f"MEMORIA_RATE_LIMIT_{tier.value.upper()}", limit)
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
    return replace(
        base,
        window_seconds=window,
        tier_limits=tiers,
        class_limits=classes,
        anonymous_limit=_int(source, "MEMORIA_RATE_LIMIT_ANONYMOUS", base.anonymous_limit),
        user_tiers=parse_user_tiers(source.get("MEMORIA_USER_TIERS", "")),
        quotas=quotas,
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
