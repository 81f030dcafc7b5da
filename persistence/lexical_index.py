"""Lexical (keyword) search: SQLite FTS5 with BM25 in embedded mode, PostgreSQL full-text
(a generated ``tsvector`` column with a GIN index) in PostgreSQL mode
(:mod:`persistence.pg_lexical_index`).

Both run on the unit of work's own transaction, so they see its uncommitted writes, and
both are kept in sync with ``memories`` by the database itself (FTS5 triggers, a generated
column): there is nothing to rebuild after a crash. Migration 0002 creates them; 0009 adds
each memory's field id to the FTS5 index, beside its text.
"""

from __future__ import annotations

import functools
import json
import re
import sqlite3
from collections.abc import Sequence
from typing import Any

from sqlalchemy import TextClause, text

from persistence.session import Transaction
from persistence.sqlite_driver import BatchingTransaction
from persistence.term_index import family, idf
from persistence.term_store import TermStore

# Terms arrive normalised by the domain; this is the last guard before query syntax.
_SAFE_TERM = re.compile(r"^[^\W_]+$", re.UNICODE)
MAX_TERMS = 32


def fts5_term(word: str) -> str:
    """The FTS5 query of one word: the word (stemmed by the table's tokenizer) or, for a
    long word, any word of its family."""
    prefix = family(word)
    return f'("{word}" OR "{prefix}" *)' if prefix else f'"{word}"'


# A field this many times smaller than the table is searched through its own postings.
SCOPE_RATIO = 8
_ID_PARTS = re.compile(r"[0-9A-Za-z]+")


def field_phrase(field_id: str) -> str | None:
    """The FTS5 phrase of a field's id in the index's ``field_id`` column (migration 0009):
    its letter-and-digit runs, as the tokenizer splits them."""
    parts = _ID_PARTS.findall(field_id)
    return '{field_id} : "' + " ".join(parts) + '"' if parts else None


def fts5_query(words: Sequence[str], scope: str | None) -> str:
    """The FTS5 query of any of ``words`` in a memory's text, within the field whose
    :func:`field_phrase` is ``scope`` when given."""
    anywhere = "{content} : (" + " OR ".join(fts5_term(w) for w in words) + ")"
    return f"{scope} AND {anywhere}" if scope else anywhere


def tsquery_term(word: str) -> str:
    """The PostgreSQL ``to_tsquery`` of one word, with its family as for :func:`fts5_term`."""
    prefix = family(word)
    return f"({word} | {prefix}:*)" if prefix else word


def safe_terms(terms: Sequence[str]) -> list[str]:
    return [t for t in dict.fromkeys(terms) if _SAFE_TERM.match(t)][:MAX_TERMS]


# Field-local IDF is estimated only for fields up to this size; the counts it needs are
# bounded by it (and by the postings the ranking query reads anyway).
LOCAL_IDF_MAX_FIELD = 20_000
# Table-wide document counts beyond this change an IDF by little and cost a long scan.
OVERALL_COUNT_CAP = 20_000
# Documents of the field matching one term (``{i}`` is the placeholder index of a term whose
# count is not known yet): through the rows, or, scoped, the field's own postings.
_LOCAL_COUNT = (
    "(SELECT count(*) FROM (SELECT 1 FROM memories_fts "
    "CROSS JOIN memories AS m ON m.rowid = memories_fts.rowid "
    "WHERE memories_fts MATCH :cq{i} AND m.field_id = :field_id LIMIT :cap))"
)
_SCOPED_COUNT = (
    "(SELECT count(*) FROM (SELECT 1 FROM memories_fts WHERE memories_fts MATCH :cq{i} LIMIT :cap))"
)
_OVERALL_COUNT = (
    "(SELECT count(*) FROM (SELECT 1 FROM memories_fts WHERE memories_fts MATCH :cq{i} "
    "LIMIT :overall_cap))"
)
# Term document counts kept per database; past this many the cache starts over (a count
# costs one bounded scan to take again).
MAX_CACHED_COUNTS = 50_000

# Row kinds of the search statement (its ``part`` column).
_FOUND, _HOLDS, _COUNT, _DOCUMENTS = 0, 1, 2, 3


class FieldSizes:
    """Field sizes and term document counts as counted for the local-IDF statistics, shared
    by a database's units of work. Counting a large field is the bounded scan ``LIMIT
    LOCAL_IDF_MAX_FIELD + 1`` (~1.7 ms at the cap, more than the ranking query itself), and
    counting a term's documents reads its postings, so a count is kept until a transaction
    that wrote ``memories`` commits or rolls back (``clear``). A count taken while such a
    transaction ended is not kept (the generation moved on)."""

    def __init__(self) -> None:
        self._sizes: dict[str, int] = {}
        self._rows: int | None = None  # the table's largest rowid: at least its row count
        # (field id or "" for table-wide counts, term) -> documents holding the term.
        self._terms: dict[tuple[str, str], int] = {}
        self.generation = 0

    def get(self, field_id: str) -> int | None:
        return self._sizes.get(field_id)

    def put(self, field_id: str, size: int, *, generation: int) -> None:
        if generation == self.generation:
            self._sizes[field_id] = size

    @property
    def rows(self) -> int | None:
        return self._rows

    def put_rows(self, rows: int, *, generation: int) -> None:
        if generation == self.generation:
            self._rows = rows

    def term_counts(self, scope: str, terms: Sequence[str]) -> dict[str, int]:
        """The known document counts of ``terms`` in ``scope`` (a field id, or "" for the
        whole table)."""
        found = {}
        for term in terms:
            count = self._terms.get((scope, term))
            if count is not None:
                found[term] = count
        return found

    def put_term_counts(self, scope: str, counts: dict[str, int], *, generation: int) -> None:
        if generation != self.generation:
            return
        if len(self._terms) + len(counts) > MAX_CACHED_COUNTS:
            self._terms.clear()
        self._terms.update(((scope, term), n) for term, n in counts.items())

    def clear(self) -> None:
        self.generation += 1
        self._rows = None
        self._sizes.clear()
        self._terms.clear()


@functools.lru_cache(maxsize=512)
def _search_statement(
    words: int, uncounted: int, local: bool, restricted: bool, scoped: bool = False
) -> TextClause:
    """The whole keyword search as one statement (one round trip to the driver thread): the
    best ``k`` rows by ``bm25()`` (``_FOUND``), which of the ``words`` terms each of them
    holds (``_HOLDS``), the document counts of the ``uncounted`` terms not cached yet
    (``_COUNT``) and, for table-wide counts, the table's size (``_DOCUMENTS``). Its text
    depends only on these numbers, so it is built (and its cache key computed) once.
    ``scoped``: every MATCH holds the field's phrase, so counts need not read the rows."""
    restrict = "AND m.id IN (SELECT value FROM json_each(:allowed))" if restricted else ""
    count = (_SCOPED_COUNT if scoped else _LOCAL_COUNT) if local else _OVERALL_COUNT
    # Only placeholder names and constants are interpolated; values are bound. The first
    # column says what a row is: 0 _FOUND, 1 _HOLDS, 2 _COUNT, 3 _DOCUMENTS.
    parts = [
        "SELECT 0 AS part, id, rowid, NULL AS term, NULL AS n FROM top",
        # The term's rows become one ephemeral index the found rows probe: a MATCH with
        # ``rowid IN (...)`` instead probed per posting (18 ms a term at 20k).
        *(
            f"SELECT 1, NULL, rowid, :w{i}, NULL FROM top WHERE rowid IN "  # noqa: S608
            f"(SELECT rowid FROM memories_fts WHERE memories_fts MATCH :q{i})"
            for i in range(words)
        ),
        *(f"SELECT 2, NULL, NULL, :cw{i}, {count.format(i=i)}" for i in range(uncounted)),
    ]
    if not local:
        parts.append("SELECT 3, NULL, NULL, '', (SELECT max(rowid) FROM memories)")
    # MATERIALIZED: the best rows are ranked once, then read by every part.
    return text(
        f"""WITH top AS MATERIALIZED (
            SELECT m.id AS id, m.rowid AS rowid, bm25(memories_fts, 1.0, 0.0) AS rank
            FROM memories_fts JOIN memories AS m ON m.rowid = memories_fts.rowid
            WHERE memories_fts MATCH :match AND m.field_id = :field_id {restrict}
            ORDER BY rank LIMIT :k)
        """  # noqa: S608
        + " UNION ALL ".join(parts)
    )


def _fetch_all(conn: sqlite3.Connection, sql: str, params: dict[str, object]) -> list[Any]:
    return conn.execute(sql, params).fetchall()


class SqliteLexicalIndex:
    """FTS5 ``MATCH`` of the OR of the terms: the best ``k`` by ``bm25()``, scored by
    IDF-weighted coverage of the terms (the IDFs of the terms a memory holds over the sum for
    all terms), as :class:`PgLexicalIndex` scores them.

    FTS5's own statistics (IDF, average length) are over the whole table, i.e. every
    tenant's memories: ``bm25()`` only picks the ``k`` candidates and orders equal coverage.
    The IDFs of the score are the field's own for fields up to ``LOCAL_IDF_MAX_FIELD``
    memories (a user's own name is rare across all tenants but in half of that user's
    memories), so no other tenant's data moves a score. Ranking, the terms each found row
    holds and the counts not cached yet (:class:`FieldSizes`) are one statement.

    Words match memories' text only (``{content} :``). A field at most ``1 / SCOPE_RATIO`` of
    the table ANDs its id's phrase (:func:`field_phrase`) into every MATCH, so FTS5 reads its
    postings only; a larger one matches the whole index and keeps its own rows, which is
    faster when they are most of it. Both give the same rows and scores.

    A field of ``terms.build_from`` memories or more is searched from the process's own postings
    (``terms``, :mod:`persistence.term_store`) once they are built, unless this transaction
    wrote memories (they hold only committed ones): the same scores, computed for every
    match instead of ``bm25()``'s best ``k``, without a statement."""

    def __init__(
        self, tx: Transaction, sizes: FieldSizes | None = None, terms: TermStore | None = None
    ) -> None:
        self._tx = tx
        self._sizes = sizes or FieldSizes()
        self._terms = terms

    @property
    def _sees_committed_memories_only(self) -> bool:
        # A transaction that wrote memories (or ran a textual statement) must search FTS5,
        # which sees its uncommitted rows; one that wrote other tables (a chat turn's
        # message, usage counters) sees what the postings hold.
        tx = self._tx
        return isinstance(tx, BatchingTransaction) and not tx.wrote_memories

    @property
    def _shared(self) -> bool:
        # Only a transaction that tracks what it writes (persistence/sqlite_driver.py) and has
        # written nothing yet may share counts: its own uncommitted rows are its alone.
        return isinstance(self._tx, BatchingTransaction) and not self._tx.written_tables

    async def _field_size(self, field_id: str) -> tuple[int, int]:
        """The field's size (counted up to ``LOCAL_IDF_MAX_FIELD + 1``) and the table's largest
        rowid (no fewer than its rows), kept while no write ends (:class:`FieldSizes`)."""
        shared = self._shared
        known = self._sizes.get(field_id) if shared else None
        rows = self._sizes.rows if shared else None
        if known is not None and rows is not None:
            return known, rows
        generation = self._sizes.generation
        size = text(
            "SELECT (SELECT count(*) FROM (SELECT 1 FROM memories "
            "WHERE field_id = :field_id LIMIT :cap)) AS local, "
            "(SELECT coalesce(max(rowid), 0) FROM memories) AS total"
        )
        params = {"field_id": field_id, "cap": LOCAL_IDF_MAX_FIELD + 1}
        row = (await self._tx.read(size, params)).one()
        counted, total = int(row.local), int(row.total)
        if shared:
            self._sizes.put(field_id, counted, generation=generation)
            self._sizes.put_rows(total, generation=generation)
        return counted, total

    async def search(
        self,
        *,
        field_id: str,
        terms: Sequence[str],
        k: int,
        allowed: Sequence[str] | None = None,
    ) -> list[tuple[str, float]]:
        words = safe_terms(terms)
        if not words or k <= 0 or (allowed is not None and not allowed):
            return []
        committed = self._sees_committed_memories_only
        kept = self._terms.get(field_id) if self._terms is not None and committed else None
        if kept is not None:
            return kept.search(words, k, allowed)
        field_size, table_rows = await self._field_size(field_id)
        if field_size == 0:
            return []  # an empty field (e.g. a default one nothing was extracted into yet)
        if self._terms is not None and field_size >= self._terms.build_from and committed:
            self._terms.build(field_id)  # FTS5 answers until it is ready
        # A field over LOCAL_IDF_MAX_FIELD memories takes table-wide counts instead (capped):
        # counting its terms' documents in the field would read long postings for nothing.
        local = field_size <= LOCAL_IDF_MAX_FIELD
        # A field much smaller than the table (one user's among many) is searched through its
        # own postings: the field's phrase ANDed with the words. Matching the words in the
        # whole table and dropping other fields' rows after cost in proportion to the table
        # (a 419-turn field beside a million memories: ~80 ms instead of ~10). A field that
        # is most of the table is faster the other way.
        scope = field_phrase(field_id) if field_size * SCOPE_RATIO <= table_rows else None
        scope_key = field_id if local else ""
        shared, generation = self._shared, self._sizes.generation
        counts = self._sizes.term_counts(scope_key, words) if shared else {}
        uncounted = [w for w in words if w not in counts]
        params: dict[str, object] = {
            "match": fts5_query(words, scope),
            "field_id": field_id,
            "k": k,
            "cap": LOCAL_IDF_MAX_FIELD + 1,
            "overall_cap": OVERALL_COUNT_CAP,
        }
        for i, word in enumerate(words):
            params[f"w{i}"], params[f"q{i}"] = word, fts5_query([word], scope)
        for i, word in enumerate(uncounted):
            # Table-wide counts are the whole table's, whatever the scope.
            params[f"cw{i}"], params[f"cq{i}"] = word, fts5_query([word], scope if local else None)
        if allowed is not None:
            # One JSON parameter, however many ids: no bound-variable limit.
            params["allowed"] = json.dumps(list(allowed))
        stmt = _search_statement(
            len(words), len(uncounted), local, allowed is not None, scope is not None
        )
        found: list[tuple[str, int]] = []
        holds: list[tuple[int, str]] = []
        counted: dict[str, int] = {}
        documents = 0
        rows: Any  # plain tuples: (part, id, rowid, term, n)
        if isinstance(self._tx, BatchingTransaction):
            # Straight to sqlite3 (the text is sqlite3's own :name syntax): SQLAlchemy's
            # parameter and row processing of ~700 rows cost more than a millisecond.
            rows = await self._tx.call(_fetch_all, stmt.text, params)
        else:
            rows = await self._tx.read(stmt, params)
        for part, memory_id, rowid, term, n in rows:
            if part == _FOUND:
                found.append((memory_id, rowid))
            elif part == _HOLDS:
                holds.append((rowid, term))
            elif part == _COUNT:
                counted[term] = int(n)
            else:
                documents = int(n or 0)
        if shared and counted:
            self._sizes.put_term_counts(scope_key, counted, generation=generation)
        if not found:
            return []
        counts.update(counted)
        total = field_size if local else max(documents, 1)
        weights = {w: idf(total, counts[w]) for w in words}
        coverage = dict.fromkeys([rowid for _, rowid in found], 0.0)
        for rowid, term in holds:
            coverage[rowid] += weights[term]
        whole = sum(weights.values()) or 1.0
        scored = [
            (memory_id, coverage[rowid] / whole, i) for i, (memory_id, rowid) in enumerate(found)
        ]
        # Coverage first; BM25's order (term frequency, length) among equal coverage.
        scored.sort(key=lambda s: (-s[1], s[2]))
        return [(memory_id, min(1.0, share)) for memory_id, share, _ in scored]
