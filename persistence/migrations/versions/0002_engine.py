"""memory engine: lexical indexes (SQLite FTS5, PostgreSQL tsvector) and pgvector HNSW

Revision ID: 0002
Revises: 0001
"""
from alembic import op


revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# HNSW indexes need a fixed dimension, but the embedding column has none (fields may use
# different embedders): one partial expression index per common dimension. Others are made
# on demand by persistence.pgvector_index.ensure_hnsw_index.
HNSW_DIMENSIONS = (384,)

SQLITE_UP = [
    # External-content FTS5 over memories: the text is stored once, in memories. Porter
    # stemming so "painting" matches "paint"; bm25() ranks.
    """CREATE VIRTUAL TABLE memories_fts USING fts5(
        content, content='memories', content_rowid='rowid',
        tokenize='porter unicode61 remove_diacritics 2')""",
    # Triggers keep it in the same transaction as the row: a crash cannot split them.
    """CREATE TRIGGER memories_fts_ai AFTER INSERT ON memories BEGIN
        INSERT INTO memories_fts(rowid, content) VALUES (new.rowid, new.content);
    END""",
    """CREATE TRIGGER memories_fts_ad AFTER DELETE ON memories BEGIN
        INSERT INTO memories_fts(memories_fts, rowid, content)
        VALUES ('delete', old.rowid, old.content);
    END""",
    """CREATE TRIGGER memories_fts_au AFTER UPDATE OF content ON memories BEGIN
        INSERT INTO memories_fts(memories_fts, rowid, content)
        VALUES ('delete', old.rowid, old.content);
        INSERT INTO memories_fts(rowid, content) VALUES (new.rowid, new.content);
    END""",
    "INSERT INTO memories_fts(memories_fts) VALUES ('rebuild')",
]

SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS memories_fts_au",
    "DROP TRIGGER IF EXISTS memories_fts_ad",
    "DROP TRIGGER IF EXISTS memories_fts_ai",
    "DROP TABLE IF EXISTS memories_fts",
]


def _hnsw(dimension: int) -> str:
    return (
        f"CREATE INDEX IF NOT EXISTS ix_memories_hnsw_{dimension} ON memories "
        f"USING hnsw ((embedding::vector({dimension})) vector_cosine_ops) "
        f"WHERE vector_dims(embedding) = {dimension}"
    )


POSTGRES_UP = [
    "ALTER TABLE memories ADD COLUMN content_tsv tsvector "
    "GENERATED ALWAYS AS (to_tsvector('english', content)) STORED",
    "CREATE INDEX ix_memories_content_tsv ON memories USING gin (content_tsv)",
    *[_hnsw(d) for d in HNSW_DIMENSIONS],
]

POSTGRES_DOWN = [
    *[f"DROP INDEX IF EXISTS ix_memories_hnsw_{d}" for d in HNSW_DIMENSIONS],
    "DROP INDEX IF EXISTS ix_memories_content_tsv",
    "ALTER TABLE memories DROP COLUMN IF EXISTS content_tsv",
]


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in POSTGRES_UP if postgres else SQLITE_UP:
        op.execute(statement)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in POSTGRES_DOWN if postgres else SQLITE_DOWN:
        op.execute(statement)
