"""PostgreSQL keeps memory rows whole: vectors inline, not in the TOAST table

Revision ID: 0012
Revises: 0011

A LoCoMo turn's row is ~2.1-2.5 KB with its 384-d vector (1.5 KB), past PostgreSQL's
default 2 KB toast target, so the vector went out of line: reading it cost a TOAST index
lookup and a second page. A field read exactly (persistence/pgvector_index.py) visited ~7
buffers a row; with rows up to 8 KB kept whole, one. A 689-turn field: 4,935 -> 235 buffer
visits, 3.6-6.2 -> 0.8-1.3 ms; LoCoMo's 1,986 searches on PostgreSQL 63-72 -> 47 s
(docs/BENCHMARKS.md). The HNSW path's exact re-score of its 500 candidates reads them the
same way. Longer texts are still compressed and moved out as before.

The setting applies to rows written from now on: rows already stored move inline when they
are rewritten (``VACUUM FULL memories``, which locks the table: docs/DEPLOYMENT.md).
"""

from alembic import op


revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def _toast_target(value: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE memories {value}")


def upgrade() -> None:
    _toast_target("SET (toast_tuple_target = 8160)")


def downgrade() -> None:
    _toast_target("RESET (toast_tuple_target)")
