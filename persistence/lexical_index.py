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


# Words this long also match by their first letters (all but the last three, at least
# five): the stemmers leave allergic/allergies or injured/injury apart ("allerg", "allergi").
FAMILY_MIN_LENGTH = 7


def _family(word: str) -> str | None:
    if len(word) < FAMILY_MIN_LENGTH or not word.isalpha():
        return None
    return word[: max(5, len(word) - 3)]


def fts5_term(word: str) -> str:
    """The FTS5 query of one word: the word (stemmed by the table's tokenizer) or, for a
    long word, any word of its family."""
    family = _family(word)
    return f'("{word}" OR "{family}" *)' if family else f'"{word}"'


def tsquery_term(word: str) -> str:
    """The PostgreSQL ``to_tsquery`` of one word, with its family as for :func:`fts5_term`."""
    family = _family(word)
    return f"({word} | {family}:*)" if family else word


def _safe(terms: Sequence[str]) -> list[str]:
    return [t for t in dict.fromkeys(terms) if _SAFE_TERM.match(t)][:MAX_TERMS]


# Field-local IDF is estimated only for fields up to this size; the counts it needs are
# bounded by it (and by the postings the ranking query reads anyway).
LOCAL_IDF_MAX_FIELD = 20_000
# Table-wide document counts beyond this change an IDF by little and cost a long scan.
OVERALL_COUNT_CAP = 20_000
# Documents of the field matching one query term (``{i}`` is the term's placeholder index).
_LOCAL_COUNT = (
    "(SELECT count(*) FROM (SELECT 1 FROM memories_fts "
    "CROSS JOIN memories AS m ON m.rowid = memories_fts.rowid "
    "WHERE memories_fts MATCH :q{i} AND m.field_id = :field_id LIMIT :cap))"
)
_OVERALL_COUNT = (
    "(SELECT count(*) FROM (SELECT 1 FROM memories_fts WHERE memories_fts MATCH :q{i} "
    "LIMIT :overall_cap))"
)


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


class SqliteLexicalIndex:
    """FTS5 ``MATCH`` of the OR of the terms: the best ``k`` by ``bm25()``, scored by
    IDF-weighted coverage of the terms (the IDFs of the terms a memory holds over the sum for
    all terms), as :class:`PgLexicalIndex` scores them.

    FTS5's own statistics (IDF, average length) are over the whole table, i.e. every
    tenant's memories: ``bm25()`` only picks the ``k`` candidates and orders equal coverage.
    The IDFs of the score are the field's own for fields up to ``LOCAL_IDF_MAX_FIELD``
    memories (a user's own name is rare across all tenants but in half of that user's
    memories), so no other tenant's data moves a score; counting needs one extra round trip,
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

    async def _idf(self, field_id: str, words: list[str], field_size: int) -> dict[str, float]:
        """Each term's IDF within the field, from its document count there. A field over
        ``LOCAL_IDF_MAX_FIELD`` memories takes table-wide counts instead (capped): counting
        its terms' documents in the field would read long postings for nothing."""
        local_counts = field_size <= LOCAL_IDF_MAX_FIELD
        params: dict[str, object] = {
            "field_id": field_id,
            "cap": LOCAL_IDF_MAX_FIELD + 1,
            "overall_cap": OVERALL_COUNT_CAP,
        }
        parts = ["SELECT '' AS term, (SELECT max(rowid) FROM memories) AS documents"]
        for i, word in enumerate(words):
            params[f"w{i}"], params[f"q{i}"] = word, fts5_term(word)
            # Only placeholder names are interpolated; values are bound.
            count = _LOCAL_COUNT if local_counts else _OVERALL_COUNT
            parts.append(f"SELECT :w{i}, {count.format(i=i)}")
        rows = list(await self._tx.read(text(" UNION ALL ".join(parts)), params))
        total = field_size if local_counts else max(int(rows[0].documents or 0), 1)
        return {r.term: _idf(total, int(r.documents)) for r in rows[1:]}

    async def _matched_terms(self, words: list[str], rowids: list[int]) -> dict[int, set[str]]:
        """Which of ``words`` each of ``rowids`` contains: one statement, each term's MATCH
        restricted to the rows found."""
        params: dict[str, object] = {"rows": json.dumps(rowids)}
        parts = []
        for i, word in enumerate(words):
            params[f"w{i}"], params[f"q{i}"] = word, fts5_term(word)
            parts.append(
                # Only placeholder names are interpolated; values are bound.
                # The term's rows become one ephemeral index the found rows probe: a MATCH
                # with ``rowid IN (...)`` instead probed per posting (18 ms a term at 20k).
                f"SELECT :w{i} AS term, value AS rowid FROM json_each(:rows) "  # noqa: S608
                f"WHERE value IN (SELECT rowid FROM memories_fts WHERE memories_fts MATCH :q{i})"
            )
        found: dict[int, set[str]] = {}
        for row in await self._tx.read(text(" UNION ALL ".join(parts)), params):
            found.setdefault(int(row.rowid), set()).add(row.term)
        return found

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
        idf = await self._idf(field_id, words, field_size)
        match = " OR ".join(fts5_term(w) for w in words)
        params: dict[str, object] = {"match": match, "field_id": field_id, "k": k}
        restrict = ""
        if allowed is not None:
            # One JSON parameter, however many ids: no bound-variable limit.
            restrict = "AND m.id IN (SELECT value FROM json_each(:allowed))"
            params["allowed"] = json.dumps(list(allowed))
        stmt = text(
            f"""SELECT m.id AS id, m.rowid AS rowid, bm25(memories_fts) AS rank
            FROM memories_fts JOIN memories AS m ON m.rowid = memories_fts.rowid
            WHERE memories_fts MATCH :match AND m.field_id = :field_id {restrict}
            ORDER BY rank LIMIT :k"""  # noqa: S608  # `restrict` is a constant, values are bound
        )
        rows = list(await self._tx.read(stmt, params))
        if not rows:
            return []
        matched = await self._matched_terms(words, [int(r.rowid) for r in rows])
        whole = sum(idf.values()) or 1.0
        scored = [
            (row.id, sum(idf[w] for w in matched.get(int(row.rowid), ())) / whole, i)
            for i, row in enumerate(rows)
        ]
        # Coverage first; BM25's order (term frequency, length) among equal coverage.
        scored.sort(key=lambda s: (-s[1], s[2]))
        return [(memory_id, min(1.0, share)) for memory_id, share, _ in scored]


class PgLexicalIndex:
    """``content_tsv @@ to_tsquery(t1 | t2 ...)`` (the english configuration stems and drops
    stopwords), scored by IDF-weighted coverage of the terms: the sum of the IDFs of the
    terms a memory matches over the sum for all terms, IDF counted within the field (counts
    capped at ``LOCAL_IDF_MAX_FIELD``); ``ts_rank`` with length normalisation breaks ties.
    ``ts_rank`` alone has no IDF: a common word weighed as much as a rare one. One statement."""

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
        params: dict[str, object] = {
            "q": " | ".join(tsquery_term(w) for w in words),
            "field_id": field_id,
            "k": k,
            "cap": LOCAL_IDF_MAX_FIELD,
        }
        counts, matched, idf = [], [], []
        for i, word in enumerate(words):
            params[f"w{i}"] = tsquery_term(word)
            counts.append(
                # Only placeholder names are interpolated; values are bound.
                f"(SELECT count(*) FROM (SELECT 1 FROM memories WHERE field_id = :field_id "  # noqa: S608
                f"AND content_tsv @@ to_tsquery('english', :w{i}) LIMIT :cap) AS c{i}) AS d{i}"
            )
            idf.append(f"greatest(1e-6, ln((s.n - s.d{i} + 0.5) / (s.d{i} + 0.5)))")
            matched.append(
                f"CASE WHEN m.content_tsv @@ to_tsquery('english', :w{i}) THEN {idf[-1]} ELSE 0 END"
            )
        restrict = ""
        if allowed is not None:
            restrict = "AND m.id = ANY(CAST(:allowed AS varchar[]))"
            params["allowed"] = list(allowed)
        stmt = text(
            f"""WITH s AS (SELECT (SELECT count(*) FROM (SELECT 1 FROM memories
                WHERE field_id = :field_id LIMIT :cap) AS f) AS n, {", ".join(counts)})
            SELECT m.id AS id, ({" + ".join(matched)}) / ({" + ".join(idf)}) AS coverage
            FROM memories AS m, s, to_tsquery('english', :q) AS q
            WHERE m.field_id = :field_id AND m.content_tsv @@ q {restrict}
            ORDER BY coverage DESC, ts_rank(m.content_tsv, q, 1) DESC, m.id
            LIMIT :k"""  # noqa: S608  # only placeholder names and constants are interpolated
        )
        rows = await self._tx.read(stmt, params)
        return [(row.id, min(1.0, float(row.coverage))) for row in rows]
