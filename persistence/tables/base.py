"""The metadata every table belongs to, and the column shapes the tables share."""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, MetaData, String

metadata = MetaData()

ID = 36  # a UUID's text length


def owner_column() -> Column[str]:
    """The ``user_id`` of a row that belongs to one user, deleted with that user."""
    return Column("user_id", String(ID), ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
