"""``X-Memoria-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">``.

Receivers verify with :func:`verify` (or its few lines in any language): recompute the HMAC
over the timestamp, a dot and the raw body with the webhook secret, compare in constant
time, and reject timestamps older than a few minutes to stop replays. De-duplicate on the
``X-Memoria-Event-Id`` header: a retried delivery carries the same id.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Memoria-Signature"
EVENT_ID_HEADER = "X-Memoria-Event-Id"
EVENT_HEADER = "X-Memoria-Event"


def sign(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(secret: str, body: bytes, header: str, *, tolerance: int = 300) -> bool:
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        t = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - t) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("v1", ""))
