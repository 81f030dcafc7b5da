"""Tables of the REST compatibility features: shared rate-limit counters (PostgreSQL mode),
TOTP enrolment and replay state, and uploaded attachment bytes."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Integer, LargeBinary, String, Table, Text

from persistence.tables import ID, metadata
from persistence.types import UTCDateTime

rate_limit_counters = Table(
    "rate_limit_counters",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("window_start", BigInteger, primary_key=True),
    Column("count", Integer, nullable=False),
)

user_mfa = Table(
    "user_mfa",
    metadata,
    Column("user_id", String(ID), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("pending_secret", Text),
    Column("last_used_step", BigInteger),
    Column("updated_at", UTCDateTime, nullable=False),
)

blobs = Table(
    "blobs",
    metadata,
    Column("user_id", String(ID), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("sha256", String(64), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)
