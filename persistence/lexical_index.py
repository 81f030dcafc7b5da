"""Lexical (keyword) search: SQLite FTS5 with BM25 in embedded mode, PostgreSQL full-text
(a generated ``tsvector`` column with a GIN index) in PostgreSQL mode.

Both run on the unit of work's own transaction, so they see its uncommitted writes, and
both are kept in sync with ``memories`` by the database itself (FTS5 triggers, a generated
column): there is nothing to rebuild after a crash. Migration 0002 creates them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from sqlalchemy import text

from persistence.session import Transaction

# Terms arrive normalised by the domain; this is the last guard before query syntax.
_SAFE_TERM = re.compile(r"^[^\W_]+$", re.UNICODE)
MAX_TERMS = 32


def _safe(terms: Sequence[str]) -> list[str]:
    return [t for t in dict.fromkeys(terms) if _SAFE_TERM.match(t)][:MAX_TERMS]


class SqliteLexicalIndex:
    """FTS5 ``MATCH`` of the OR of the terms, ranked by ``bm25()`` (negated: higher is better).

    Statistics (IDF, average length) are over the whole table, not one field; ranks within
    a field are what matters and they barely move."""

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def search(
        self,
        *,
        field_id: str,
        terms: Sequence[str],
        k: int,
        allowed: Sequence[str] | None = None,
    ) -> list[tuple[str, float]]:
        words = _safe(terms)
        if not words or k <= 0 or (allowed is not None and not allowed):
            return []
        match = " OR ".join(f'"{w}"' for w in words)
        params: dict[str, object] = {"match": match, "field_id": field_id, "k": k}
        restrict = ""
        if allowed is not None:
            # One JSON parameter, however many ids: no bound-variable limit.
            restrict = "AND m.id IN (SELECT value FROM json_each(:allowed))"
            params["allowed"] = json.dumps(list(allowed))
        stmt = text(
            f"""SELECT m.id AS id, bm25(memories_fts) AS rank
            FROM memories_fts JOIN memories AS m ON m.rowid = memories_fts.rowid
            WHERE memories_fts MATCH :match AND m.field_id = :field_id {restrict}
            ORDER BY rank LIMIT :k"""  # noqa: S608  # `restrict` is a constant, values are bound
        )
        rows = await self._tx.read(stmt, params)
        return [(row.id, -float(row.rank)) for row in rows]


class PgLexicalIndex:
    """``content_tsv @@ to_tsquery(t1 | t2 ...)`` ranked by ``ts_rank`` with length
    normalisation (the english configuration stems and drops stopwords)."""

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def search(
        self,
        *,
        field_id: str,
        terms: Sequence[str],
        k: int,
        allowed: Sequence[str] | None = None,
    ) -> list[tuple[str, float]]:
        words = _safe(terms)
        if not words or k <= 0 or (allowed is not None and not allowed):
            return []
        params: dict[str, object] = {"q": " | ".join(words), "field_id": field_id, "k": k}
        restrict = ""
        if allowed is not None:
            restrict = "AND m.id = ANY(CAST(:allowed AS varchar[]))"
            params["allowed"] = list(allowed)
        stmt = text(
            f"""SELECT m.id AS id, ts_rank(m.content_tsv, q, 1) AS rank
            FROM memories AS m, to_tsquery('english', :q) AS q
            WHERE m.field_id = :field_id AND m.content_tsv @@ q {restrict}
            ORDER BY rank DESC, m.id LIMIT :k"""  # noqa: S608  # `restrict` is a constant
        )
        rows = await self._tx.read(stmt, params)
        return [(row.id, float(row.rank)) for row in rows]
