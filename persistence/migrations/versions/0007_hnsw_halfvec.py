"""pgvector HNSW indexes over half-precision vectors

Revision ID: 0007
Revises: 0006

Each ``ix_memories_hnsw_<D>`` (384 from 0002, others made by ensure_hnsw_index) is rebuilt
over ``embedding::halfvec(D)``: half the size (112 MB instead of 195 MB at 100k 384-d
memories), so it stays in PostgreSQL's buffer cache, and searches read half the bytes.
Scores are still computed from the full-precision column (persistence/pgvector_index.py).
Rebuilding takes about as long as building (~80 s per 100k memories on 2 cores).
"""

from alembic import op
import sqlalchemy as sa


revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_HNSW = (
    "SELECT indexname FROM pg_indexes "
    "WHERE tablename = 'memories' AND indexname LIKE 'ix_memories_hnsw_%'"
)


def _dimensions() -> list[int]:
    names = [r[0] for r in op.get_bind().execute(sa.text(_HNSW))]
    return sorted(
        {int(n.rsplit("_", 1)[1]) for n in names if n.rsplit("_", 1)[1].isdigit()} | {384}
    )


def _rebuild(vector_type: str, ops: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for d in _dimensions():
        if vector_type == "vector" and d > 2000:  # `vector` HNSW stops at 2000 dimensions
            continue
        op.execute(f"DROP INDEX IF EXISTS ix_memories_hnsw_{d}")
        op.execute(
            f"CREATE INDEX ix_memories_hnsw_{d} ON memories "
            f"USING hnsw ((embedding::{vector_type}({d})) {ops}) "
            f"WHERE vector_dims(embedding) = {d}"
        )


def upgrade() -> None:
    _rebuild("halfvec", "halfvec_cosine_ops")


def downgrade() -> None:
    _rebuild("vector", "vector_cosine_ops")
