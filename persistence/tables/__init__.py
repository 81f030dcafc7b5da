"""The relational schema (SQLAlchemy Core), one module per aggregate. Alembic migrations
create and evolve it; importing this package registers every table on ``base.metadata``."""

from persistence.tables import (
    accounts,
    conversations,
    jobs,
    llm,
    memories,
    patterns,
    rate_limits,
    sources,
    webhooks,
)
from persistence.tables.base import metadata

__all__ = [
    "accounts",
    "conversations",
    "jobs",
    "llm",
    "memories",
    "metadata",
    "patterns",
    "rate_limits",
    "sources",
    "webhooks",
]
