"""conversation turns: a per-field insertion sequence (adjacency of turns that share a
time, or arrive out of order) with a covering index for expansion, session numbers
assigned when turns are stored, and the turn's speaker

Revision ID: 0006
Revises: 0005
"""
from datetime import datetime

from alembic import op
import sqlalchemy as sa

from domain.sessions import number_sessions
from persistence.types import UTCDateTime


revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_TURNS = "turn_seq IS NOT NULL"


def upgrade() -> None:
    op.add_column("memories", sa.Column("turn_seq", sa.BigInteger(), nullable=True))
    op.add_column("memories", sa.Column("turn_session", sa.BigInteger(), nullable=True))
    op.add_column("memories", sa.Column("speaker", sa.String(length=200), nullable=True))
    op.add_column(
        "memory_fields",
        sa.Column("turn_seq_next", sa.BigInteger(), nullable=False, server_default="0"),
    )
    op.add_column(
        "memory_fields",
        sa.Column("session_seq_next", sa.BigInteger(), nullable=False, server_default="0"),
    )
    # Existing turns are numbered in the order they were stored, field by field.
    op.execute(
        "UPDATE memories SET turn_seq = r.n FROM ("
        " SELECT id, row_number() OVER ("
        "  PARTITION BY field_id ORDER BY occurred_at, created_at, id) AS n"
        " FROM memories WHERE kind IN ('episode', 'message')) AS r"
        " WHERE r.id = memories.id"
    )
    op.execute(
        "UPDATE memory_fields SET turn_seq_next = COALESCE("
        "(SELECT MAX(turn_seq) FROM memories WHERE memories.field_id = memory_fields.id), 0)"
    )
    _number_existing_sessions()
    op.create_index(
        "ix_memories_field_turns",
        "memories",
        ["field_id", "occurred_at", "turn_seq", "id"],
        sqlite_where=sa.text(_TURNS),
        postgresql_where=sa.text(_TURNS),
    )


def _number_existing_sessions() -> None:
    """Existing turns get their sessions field by field, in turn order (the same rule as
    at write time: domain.sessions)."""
    bind = op.get_bind()
    turns = sa.table(
        "memories",
        sa.column("id", sa.String()),
        sa.column("field_id", sa.String()),
        sa.column("occurred_at", UTCDateTime()),
        sa.column("turn_seq", sa.BigInteger()),
        sa.column("turn_session", sa.BigInteger()),
    )
    fields = sa.table(
        "memory_fields", sa.column("id", sa.String()), sa.column("session_seq_next", sa.BigInteger())
    )
    rows = bind.execute(
        sa.select(turns.c.id, turns.c.field_id, turns.c.occurred_at)
        .where(turns.c.turn_seq.is_not(None))
        .order_by(turns.c.field_id, turns.c.occurred_at, turns.c.turn_seq)
    ).all()
    by_field: dict[str, list[tuple[str, datetime]]] = {}
    for row in rows:
        by_field.setdefault(row.field_id, []).append((row.id, row.occurred_at))
    for field_id, ordered in by_field.items():
        numbers, following = number_sessions(
            [at for _, at in ordered], before=None, next_session=1
        )
        bind.execute(
            turns.update().where(turns.c.id == sa.bindparam("memory_id")),
            [{"memory_id": m, "turn_session": n} for (m, _), n in zip(ordered, numbers)],
        )
        bind.execute(
            fields.update().where(fields.c.id == field_id).values(session_seq_next=following - 1)
        )


def downgrade() -> None:
    op.drop_index("ix_memories_field_turns", table_name="memories")
    op.drop_column("memory_fields", "session_seq_next")
    op.drop_column("memory_fields", "turn_seq_next")
    op.drop_column("memories", "speaker")
    op.drop_column("memories", "turn_session")
    op.drop_column("memories", "turn_seq")
