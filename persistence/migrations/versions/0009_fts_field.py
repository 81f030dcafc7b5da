"""keyword index knows each memory's field: a search of a small field among many reads
only that field's postings

Revision ID: 0009
Revises: 0008
"""
from alembic import op


revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_DROP = [
    "DROP TRIGGER IF EXISTS memories_fts_au",
    "DROP TRIGGER IF EXISTS memories_fts_ad",
    "DROP TRIGGER IF EXISTS memories_fts_ai",
    "DROP TABLE IF EXISTS memories_fts",
]


def _create(columns: list[str]) -> list[str]:
    """The external-content FTS5 table over ``columns`` of memories and its triggers (see
    0002), rebuilt from the rows."""
    names = ", ".join(columns)
    new = ", ".join(f"new.{c}" for c in columns)
    old = ", ".join(f"old.{c}" for c in columns)
    return [
        f"""CREATE VIRTUAL TABLE memories_fts USING fts5(
            {names}, content='memories', content_rowid='rowid',
            tokenize='porter unicode61 remove_diacritics 2')""",
        f"""CREATE TRIGGER memories_fts_ai AFTER INSERT ON memories BEGIN
            INSERT INTO memories_fts(rowid, {names}) VALUES (new.rowid, {new});
        END""",
        f"""CREATE TRIGGER memories_fts_ad AFTER DELETE ON memories BEGIN
            INSERT INTO memories_fts(memories_fts, rowid, {names})
            VALUES ('delete', old.rowid, {old});
        END""",
        f"""CREATE TRIGGER memories_fts_au AFTER UPDATE OF {names} ON memories BEGIN
            INSERT INTO memories_fts(memories_fts, rowid, {names})
            VALUES ('delete', old.rowid, {old});
            INSERT INTO memories_fts(rowid, {names}) VALUES (new.rowid, {new});
        END""",
        "INSERT INTO memories_fts(memories_fts) VALUES ('rebuild')",
    ]


def upgrade() -> None:
    # PostgreSQL's full-text column needs nothing: its statement filters by field itself.
    if op.get_bind().dialect.name == "postgresql":
        return
    # The field id, tokenized, is a phrase a search ANDs with its words (see
    # persistence/lexical_index.py); the words themselves are matched in `content` only.
    for statement in [*_DROP, *_create(["content", "field_id"])]:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        return
    for statement in [*_DROP, *_create(["content"])]:
        op.execute(statement)
