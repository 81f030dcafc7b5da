"""Tables of conversations, their messages and attachments, and uploaded attachment bytes."""

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
    LargeBinary,
    String,
    Table,
    Text,
)

from persistence.tables.base import ID, metadata
from persistence.types import UTCDateTime

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


blobs = Table(
    "blobs",
    metadata,
    Column("user_id", String(ID), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("sha256", String(64), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)
