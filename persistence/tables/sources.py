"""Tables of data sources: their synced items, uploaded files and sync runs."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from persistence.tables.base import ID, metadata, owner_column
from persistence.types import UTCDateTime

data_sources = Table(
    "data_sources",
    metadata,
    Column("id", String(ID), primary_key=True),
    owner_column(),
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
    owner_column(),
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
    owner_column(),
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
    owner_column(),
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
