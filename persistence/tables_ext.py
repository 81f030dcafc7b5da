"""Tables of patterns, webhooks (with the delivery outbox) and data sources."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from persistence.tables import ID, metadata
from persistence.types import UTCDateTime


def _owner() -> Column[str]:
    return Column("user_id", String(ID), ForeignKey("users.id", ondelete="CASCADE"), nullable=False)


patterns = Table(
    "patterns",
    metadata,
    Column("id", String(ID), primary_key=True),
    _owner(),
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
    _owner(),
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
    _owner(),
    Column("message_id", String(ID), nullable=False),
    Column("text", Text, nullable=False),
    Column("vector", JSON, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_pattern_observations_user_at", "user_id", "at"),
)

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", String(ID), primary_key=True),
    _owner(),
    Column("url", Text, nullable=False),
    Column("events", JSON, nullable=False),
    Column("secret_encrypted", Text, nullable=False),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_webhooks_user", "user_id"),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("webhook_id", String(ID), ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False),
    _owner(),
    Column("event_id", String(ID), nullable=False),
    Column("event", String(64), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("last_status", Integer),
    Column("last_error", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime),
    UniqueConstraint("webhook_id", "event_id", name="uq_webhook_deliveries_event"),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    Index("ix_webhook_deliveries_webhook", "webhook_id", "created_at"),
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column(
        "delivery_id",
        String(ID),
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"),
        nullable=False,
    ),
    _owner(),
    Column("attempt", Integer, nullable=False),
    Column("status_code", Integer),
    Column("latency_ms", Float, nullable=False),
    Column("error", Text),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_webhook_attempts_delivery", "delivery_id", "attempt"),
)

data_sources = Table(
    "data_sources",
    metadata,
    Column("id", String(ID), primary_key=True),
    _owner(),
    Column("kind", String(32), nullable=False),
    Column("name", String(200), nullable=False),
    Column("status", String(16), nullable=False),
    Column("config", JSON, nullable=False),
    Column("credentials_encrypted", Text),
    Column("cursor", JSON, nullable=False),
    Column("field_id", String(ID), ForeignKey("memory_fields.id", ondelete="SET NULL")),
    Column("item_count", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_sync_at", UTCDateTime),
    Column("last_error", Text),
    Index("ix_data_sources_user", "user_id"),
)

source_items = Table(
    "source_items",
    metadata,
    Column(
        "source_id", String(ID), ForeignKey("data_sources.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("external_id", String(512), primary_key=True),
    _owner(),
    Column("version", String(200), nullable=False),
    Column("memory_ids", JSON, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

source_files = Table(
    "source_files",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column(
        "source_id", String(ID), ForeignKey("data_sources.id", ondelete="CASCADE"), nullable=False
    ),
    _owner(),
    Column("name", String(255), nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("uploaded_at", UTCDateTime, nullable=False),
    UniqueConstraint("source_id", "name", name="uq_source_files_name"),
)

source_syncs = Table(
    "source_syncs",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column(
        "source_id", String(ID), ForeignKey("data_sources.id", ondelete="CASCADE"), nullable=False
    ),
    _owner(),
    Column("status", String(16), nullable=False),
    Column("requested_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
    Column("lease_until", UTCDateTime),
    Column("items_added", Integer, nullable=False, default=0),
    Column("items_updated", Integer, nullable=False, default=0),
    Column("items_skipped", Integer, nullable=False, default=0),
    Column("error", Text),
    Index("ix_source_syncs_user_requested", "user_id", "requested_at"),
    Index("ix_source_syncs_status", "status", "requested_at"),
)
