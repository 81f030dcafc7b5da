"""The durable job queue shared by the server processes (see domain/jobs.py)."""

from __future__ import annotations

from sqlalchemy import JSON, Column, Index, Integer, String, Table, Text

from persistence.tables.base import ID, metadata, owner_column
from persistence.types import UTCDateTime

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("kind", String(32), nullable=False),
    owner_column(),
    Column("payload", JSON, nullable=False),  # ids only, never content
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("lease_until", UTCDateTime),  # set while claimed; a lapsed lease is claimable
    Column("available_at", UTCDateTime, nullable=False),  # not claimed before (retry backoff)
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_error", Text),
    Index("ix_jobs_due", "status", "available_at"),
)
