"""Lexical (keyword) search: SQLite FTS5 with BM25 in embedded mode, PostgreSQL full-text
(a generated ``tsvector`` column with a GIN index) in PostgreSQL mode.

Both run on the unit of work's own transaction, so they see its uncommitted writes, and
both are kept in sync with ``memories`` by the database itself (FTS5 triggers, a generated
column): there is nothing to rebuild after a crash. Migration 0002 creates them.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence

from sqlalchemy import text

from persistence.session import Transaction
from persistence.sqlite_driver import BatchingTransaction

# Terms arrive normalised by the domain; this is the last guard before query syntax.
_SAFE_TERM = re.compile(r"^[^\W_]+$", re.UNICODE)
MAX_TERMS = 32


def _safe(terms: Sequence[str]) -> list[str]:
    return [t for t in dict.fromkeys(terms) if _SAFE_TERM.match(t)][:MAX_TERMS]


# Field-local IDF is estimated only for fields up to this size; the counts it needs are
# bounded by it (and by the postings the ranking query reads anyway).
LOCAL_IDF_MAX_FIELD = 20_000
MAX_REPEAT = 3


class FieldSizes:
    """Field sizes as counted for the local-IDF decision, shared by a database's units of
    work. Counting a large field is the bounded scan ``LIMIT LOCAL_IDF_MAX_FIELD + 1`` (~1.7 ms
    at the cap, more than the ranking query itself), so a count is kept until a transaction
    that wrote ``memories`` commits or rolls back (``clear``). A count taken while such a
    transaction ended is not kept (the generation moved on)."""

    def __init__(self) -> None:
        self._sizes: dict[str, int] = {}
        self.generation = 0

    def get(self, field_id: str) -> int | None:
        return self._sizes.get(field_id)

    def put(self, field_id: str, size: int, *, generation: int) -> None:
        if generation == self.generation:
            self._sizes[field_id] = size

    def clear(self) -> None:
        self.generation += 1
        self._sizes.clear()


def _idf(total: float, df: float) -> float:
    """FTS5's BM25 IDF, clamped as FTS5 clamps it."""
    return max(1e-6, math.log((total - df + 0.5) / (df + 0.5)))


def local_idf_repeats(
    field_size: int, total: int, counts: Sequence[tuple[str, int, int]]
) -> list[str]:
    """Terms repeated by how much more (or less) they say inside the field than in the whole
    table: FTS5's ``bm25()`` sums one IDF per query phrase, so a term given ``r`` times
    weighs ``r`` x its table-wide IDF. ``r`` = 2 x IDF(field) / IDF(table), rounded, 0..3.

    ``counts`` is (term, documents in the field, documents in the table). A user's own name
    is rare across all tenants but in half of that user's memories: with table-wide
    statistics it would dominate every query that names it."""
    words: list[str] = []
    for term, local, overall in counts:
        if local <= 0:
            continue  # matches nothing in this field
        ratio = _idf(field_size, local) / _idf(max(total, overall), overall)
        words += [term] * max(0, min(MAX_REPEAT, round(2 * ratio)))
    return words


class SqliteLexicalIndex:
    """FTS5 ``MATCH`` of the OR of the terms, ranked by ``bm25()`` (negated: higher is better).

    FTS5's statistics (IDF, average length) are over the whole table, i.e. every tenant's
    memories. For fields up to ``LOCAL_IDF_MAX_FIELD`` memories the IDF is made field-local
    by repeating terms (:func:`local_idf_repeats`); counting needs one extra round trip,
    bounded by the postings the ranking query reads anyway."""

    def __init__(self, tx: Transaction, sizes: FieldSizes | None = None) -> None:
        self._tx = tx
        self._sizes = sizes or FieldSizes()

    async def _field_size(self, field_id: str) -> int:
        # Only a transaction that tracks what it writes (persistence/sqlite_driver.py) and has
        # written nothing yet may share counts: its own uncommitted rows are its alone.
        shared = isinstance(self._tx, BatchingTransaction) and not self._tx.written_tables
        known = self._sizes.get(field_id) if shared else None
        if known is not None:
            return known
        generation = self._sizes.generation
        size = text(
            "SELECT count(*) AS local FROM (SELECT 1 FROM memories "
            "WHERE field_id = :field_id LIMIT :cap)"
        )
        params = {"field_id": field_id, "cap": LOCAL_IDF_MAX_FIELD + 1}
        counted = int((await self._tx.read(size, params)).scalar_one())
        if shared:
            self._sizes.put(field_id, counted, generation=generation)
        return counted

    async def _weighted(self, field_id: str, words: list[str], field_size: int) -> list[str]:
        params: dict[str, object] = {"field_id": field_id, "cap": LOCAL_IDF_MAX_FIELD + 1}
        # A large field keeps table-wide IDF: counting its terms' documents would read long
        # postings for nothing.
        if field_size > LOCAL_IDF_MAX_FIELD:
            return words
        parts = ["SELECT '' AS term, 0 AS local, (SELECT max(rowid) FROM memories) AS overall"]
        for i, word in enumerate(words):
            params[f"w{i}"], params[f"q{i}"] = word, f'"{word}"'
            parts.append(
                # Only placeholder names are interpolated; values are bound.
                f"SELECT :w{i}, (SELECT count(*) FROM (SELECT 1 FROM memories_fts "  # noqa: S608
                "CROSS JOIN memories AS m ON m.rowid = memories_fts.rowid "
                f"WHERE memories_fts MATCH :q{i} AND m.field_id = :field_id LIMIT :cap)), "
                f"(SELECT count(*) FROM memories_fts WHERE memories_fts MATCH :q{i})"
            )
        rows = list(await self._tx.read(text(" UNION ALL ".join(parts)), params))
        head, counts = rows[0], rows[1:]
        total = int(head.overall or 0)
        weighted = local_idf_repeats(
            field_size, total, [(r.term, int(r.local), int(r.overall)) for r in counts]
        )
        return weighted or words

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
        field_size = await self._field_size(field_id)
        if field_size == 0:
            return []  # an empty field (e.g. a default one nothing was extracted into yet)
        weighted = await self._weighted(field_id, words, field_size)
        match = " OR ".join(f'"{w}"' for w in weighted)
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
