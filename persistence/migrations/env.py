"""Alembic environment: always handed a live connection by ``persistence.migrate``."""

from __future__ import annotations

from alembic import context

from persistence.tables.base import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
