"""The schema's custom scalars in Python: ``DateTime`` and ``JSON``."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeAlias

JsonValue: TypeAlias = Any
"""A ``JSON`` scalar: whatever ``json.loads`` gives (an object, list, string, number...)."""


def parse_datetime(value: Any) -> datetime:
    """A ``DateTime`` from the server (ISO 8601, with its UTC offset)."""
    return datetime.fromisoformat(str(value))


def format_datetime(value: datetime) -> str:
    """A ``DateTime`` for the server; give an aware datetime, a naive one is read as UTC."""
    return value.isoformat()
