"""The relational schema (SQLAlchemy Core). Alembic migrations create and evolve it."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from persistence.types import Embedding, UTCDateTime

metadata = MetaData()

ID = 36

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

memory_fields = Table(
    "memory_fields",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("user_id", String(ID), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("embedder", String(200), nullable=False),
    Column("dimension", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("user_id", "name", name="uq_memory_fields_user_name"),
)

memories = Table(
    "memories",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("user_id", String(ID), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column(
        "field_id", String(ID), ForeignKey("memory_fields.id", ondelete="CASCADE"), nullable=False
    ),
    Column("content", Text, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("source", String(64), nullable=False),
    Column("layer", String(16), nullable=False),
    Column("importance", Float, nullable=False),
    Column("tags", JSON, nullable=False),
    Column("metadata", JSON, nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("expires_at", UTCDateTime),
    Column("superseded_by", String(ID)),
    Column("embedding", Embedding),
    Index("ix_memories_field_occurred", "field_id", "occurred_at"),
    Index("ix_memories_user", "user_id"),
    Index("ix_memories_field_hash", "field_id", "content_hash"),
)

memory_history = Table(
    "memory_history",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("memory_id", String(ID), nullable=False),
    Column("user_id", String(ID), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("change", String(16), nullable=False),
    Column("old_content", Text),
    Column("new_content", Text),
    Column("actor", String(ID), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_memory_history_memory", "memory_id", "at"),
)

conversations = Table(
    "conversations",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("user_id", String(ID), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("tags", JSON, nullable=False),
    Column("field_id", String(ID), ForeignKey("memory_fields.id", ondelete="SET NULL")),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_activity_at", UTCDateTime, nullable=False),
    Column("message_count", Integer, nullable=False, default=0),
    Index("ix_conversations_user_created", "user_id", "created_at", "id"),
)

messages = Table(
    "messages",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column(
        "conversation_id",
        String(ID),
        ForeignKey("conversations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("user_id", String(ID), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("role", String(16), nullable=False),
    Column("content", Text, nullable=False),
    Column("tags", JSON, nullable=False),
    Column("importance", Float, nullable=False),
    Column("model", String(200)),
    Column("prompt_tokens", Integer, nullable=False, default=0),
    Column("completion_tokens", Integer, nullable=False, default=0),
    Column("incomplete", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_messages_conversation_created", "conversation_id", "created_at", "id"),
)

attachments = Table(
    "attachments",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("message_id", String(ID), ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
    Column("conversation_id", String(ID), nullable=False),
    Column("user_id", String(ID), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("file_type", String(100), nullable=False),
    Column("file_path", Text),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64)),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_attachments_conversation", "conversation_id"),
)
