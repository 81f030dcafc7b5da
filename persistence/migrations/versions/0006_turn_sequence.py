"""conversation turns: a per-field insertion sequence (adjacency of turns that share a
time, or arrive out of order) with a covering index for expansion; the turn's speaker

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa


revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_TURNS = "turn_seq IS NOT NULL"


def upgrade() -> None:
    op.add_column("memories", sa.Column("turn_seq", sa.BigInteger(), nullable=True))
    op.add_column("memories", sa.Column("speaker", sa.String(length=200), nullable=True))
    op.add_column(
        "memory_fields",
        sa.Column("turn_seq_next", sa.BigInteger(), nullable=False, server_default="0"),
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
    op.create_index(
        "ix_memories_field_turns",
        "memories",
        ["field_id", "occurred_at", "turn_seq", "id"],
        sqlite_where=sa.text(_TURNS),
        postgresql_where=sa.text(_TURNS),
    )


def downgrade() -> None:
    op.drop_index("ix_memories_field_turns", table_name="memories")
    op.drop_column("memory_fields", "turn_seq_next")
    op.drop_column("memories", "speaker")
    op.drop_column("memories", "turn_seq")
