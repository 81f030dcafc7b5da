"""Tables of webhooks and their delivery outbox with every attempt."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from persistence.tables.base import ID, metadata, owner_column
from persistence.types import UTCDateTime

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", String(ID), primary_key=True),
    owner_column(),
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
    owner_column(),
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
    owner_column(),
    Column("attempt", Integer, nullable=False),
    Column("status_code", Integer),
    Column("latency_ms", Float, nullable=False),
    Column("error", Text),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_webhook_attempts_delivery", "delivery_id", "attempt"),
)
