"""Tables of accounts: users, API keys (hashed) and TOTP enrolment with its replay state."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    String,
    Table,
    Text,
    func,
)

from persistence.tables.base import ID, metadata
from persistence.types import UTCDateTime

users = Table(
    "users",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("email", String(254), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("role", String(16), nullable=False),
    Column("tier", String(16), nullable=False),
    Column("balance_micros", BigInteger, nullable=False, default=0),
    Column("mfa_secret", Text),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime, nullable=False),
)
# Usernames are matched ignoring case (registration, sign-in, operator commands): migration 0010.
Index("ix_users_username_lower", func.lower(users.c.username))


api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("user_id", String(ID), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("prefix", String(32), nullable=False),
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("scopes", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime),
    Column("revoked_at", UTCDateTime),
    Index("ix_api_keys_user", "user_id"),
)


user_mfa = Table(
    "user_mfa",
    metadata,
    Column("user_id", String(ID), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("pending_secret", Text),
    Column("last_used_step", BigInteger),
    Column("updated_at", UTCDateTime, nullable=False),
)
