"""Tables of memory fields, memories (with their vectors) and each memory's change history."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from persistence.tables.base import ID, metadata
from persistence.types import Embedding, UTCDateTime

memory_fields = Table(
    "memory_fields",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("user_id", String(ID), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("embedder", String(200), nullable=False),
    Column("dimension", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    # The last turn sequence number handed out in this field (see memories.turn_seq).
    Column("turn_seq_next", BigInteger, nullable=False, server_default="0"),
    # The last session number handed out in this field (see memories.turn_session).
    Column("session_seq_next", BigInteger, nullable=False, server_default="0"),
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
    # Conversation turns (episodes, messages) only: their insertion order in the field, which
    # orders turns that share an occurred_at (a client dating a whole session at once).
    Column("turn_seq", BigInteger),
    # The turn's conversation session in the field, numbered when stored (domain.sessions).
    Column("turn_session", BigInteger),
    Column("speaker", String(200)),
    Index("ix_memories_field_occurred", "field_id", "occurred_at"),
    # Covering index of the turn order: expansion reads neighbours from it alone.
    Index(
        "ix_memories_field_turns",
        "field_id",
        "occurred_at",
        "turn_seq",
        "id",
        sqlite_where=text("turn_seq IS NOT NULL"),
        postgresql_where=text("turn_seq IS NOT NULL"),
    ),
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
