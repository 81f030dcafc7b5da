"""Small rendering helpers shared by the families."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(value: datetime | None) -> str | None:
    """RFC 3339 in UTC with a ``Z``, as the documents write timestamps."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
