"""Tables of procedural memory: patterns, their history, and observed requests."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from persistence.tables.base import ID, metadata, owner_column
from persistence.types import UTCDateTime

patterns = Table(
    "patterns",
    metadata,
    Column("id", String(ID), primary_key=True),
    owner_column(),
    Column("kind", String(32), nullable=False),
    Column("slot", String(200), nullable=False),
    Column("value", Text, nullable=False),
    Column("polarity", Integer, nullable=False),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("triggers", JSON, nullable=False),
    Column("evidence", JSON, nullable=False),
    Column("confidence", Float, nullable=False),
    Column("usage_count", Integer, nullable=False, default=0),
    Column("last_used", UTCDateTime),
    Column("status", String(16), nullable=False),
    Column("vector", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_patterns_user_status", "user_id", "status", "created_at"),
)


pattern_history = Table(
    "pattern_history",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("pattern_id", String(ID), nullable=False),  # kept after the pattern is deleted
    owner_column(),
    Column("change", String(16), nullable=False),
    Column("old_description", Text),
    Column("new_description", Text),
    Column("message_id", String(ID)),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_pattern_history_pattern", "pattern_id", "at"),
)


pattern_observations = Table(
    "pattern_observations",
    metadata,
    Column("id", String(ID), primary_key=True),
    owner_column(),
    Column("message_id", String(ID), nullable=False),
    Column("text", Text, nullable=False),
    Column("vector", JSON, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_pattern_observations_user_at", "user_id", "at"),
)
