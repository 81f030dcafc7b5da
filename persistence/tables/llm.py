"""Tables of the chat capability: LLM providers, models, users' own keys, usage records."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from persistence.tables.base import ID, metadata
from persistence.types import UTCDateTime

llm_providers = Table(
    "llm_providers",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("kind", String(32), nullable=False),
    Column("api_endpoint", Text),
    Column("api_key_encrypted", Text),  # Fernet token; the clear key is never stored
    Column("enabled", Boolean, nullable=False, default=True),
    Column("created_at", UTCDateTime, nullable=False),
)


llm_models = Table(
    "llm_models",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column(
        "provider_id",
        String(ID),
        ForeignKey("llm_providers.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", String(200), nullable=False, unique=True),
    Column("context_window", Integer, nullable=False),
    Column("input_price_micros_per_m", BigInteger, nullable=False),
    Column("output_price_micros_per_m", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)


user_llm_configs = Table(
    "user_llm_configs",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("user_id", String(ID), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column(
        "provider_id",
        String(ID),
        ForeignKey("llm_providers.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("api_key_encrypted", Text, nullable=False),
    Column("key_hint", String(8), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("user_id", "provider_id", name="uq_user_llm_configs_user_provider"),
)


usage_records = Table(
    "usage_records",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("user_id", String(ID), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    # No foreign keys: usage is an account record that outlives deleted conversations.
    Column("conversation_id", String(ID), nullable=False),
    Column("message_id", String(ID), nullable=False),
    Column("model", String(200), nullable=False),
    Column("prompt_tokens", Integer, nullable=False),
    Column("completion_tokens", Integer, nullable=False),
    Column("cost_micros", BigInteger, nullable=False),
    Column("incomplete", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_usage_records_user_created", "user_id", "created_at"),
)
