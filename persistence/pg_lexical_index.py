"""Lexical (keyword) search in PostgreSQL mode: full-text over a generated ``tsvector``
column with a GIN index (migration 0002), ranked by field-local IDF coverage as in embedded
mode (:mod:`persistence.lexical_index`)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Executable, TextClause, text
from sqlalchemy.engine import Result

from persistence.field_cache import FieldCache
from persistence.lexical_index import LOCAL_IDF_MAX_FIELD, MAX_TERMS, safe_terms, tsquery_term
from persistence.session import BesideReads, Transaction

# PostgreSQL keeps the size of a field this large between searches (see PgLexicalIndex).
SIZE_KEPT_FROM = 1_000

_PG_FIELD_SIZE = (
    "(SELECT count(*) FROM (SELECT 1 FROM memories WHERE field_id = :field_id LIMIT :cap) AS f)"
)
_PG_EXACT_SIZE = text("SELECT count(*) FROM memories WHERE field_id = :field_id")


@functools.lru_cache(maxsize=4 * MAX_TERMS)
def _pg_statement(terms: int, *, restricted: bool, sized: bool) -> TextClause:
    """:class:`PgLexicalIndex`'s statement for ``terms`` terms.

    ``sized``: the field's size is known (the ``:n`` parameter), and so a term's count among
    the matches may exceed the cap; otherwise the statement counts the field (up to the cap)
    and returns the count beside each row, to be kept.

    Without a restriction, a term's count in the field is counted among the rows that match
    any term, which the ranking reads anyway: separate counts read each term's rows again
    (a third of the statement at 20k LoCoMo turns). With one, the counts stay the field's
    (separate capped counts), as the scores must not depend on which ids were allowed.

    The weights are MATERIALIZED and read through scalar subqueries: computed once, and
    only when a row needs them (a query that matches nothing counts nothing). Inlined, the
    planner copied every count into each of its references and ran the numeric logarithms
    per matching row (18 ms instead of 6 at 4k turns)."""
    # The f-strings below interpolate term indexes and constant SQL only; values are bound.
    ids = range(terms)
    holds = ", ".join(f"m.content_tsv @@ q{i} AS h{i}" for i in ids)
    queries = ", ".join(f"to_tsquery('english', :w{i}) AS q{i}" for i in ids)
    if restricted:
        restrict = "AND m.id = ANY(CAST(:allowed AS varchar[]))"
        counts = ", ".join(
            f"(SELECT count(*) FROM (SELECT 1 FROM memories WHERE field_id = :field_id "  # noqa: S608
            f"AND content_tsv @@ to_tsquery('english', :w{i}) LIMIT :cap) AS c{i}) AS d{i}"
            for i in ids
        )
    else:
        restrict = ""
        # Unsized, the field's count stops at the cap: a term's must not pass it.
        counted = (
            "count(*) FILTER (WHERE h{i})" if sized else "least(count(*) FILTER (WHERE h{i}), :cap)"
        )
        counts = ", ".join(f"{counted.format(i=i)} AS d{i}" for i in ids)
        counts += " FROM hits"
    weights = ", ".join(
        f"CAST(greatest(1e-6, ln((s.n - s.d{i} + 0.5) / (s.d{i} + 0.5))) AS float8) AS i{i}"
        for i in ids
    )
    matched = " + ".join(
        f"CASE WHEN h.h{i} THEN (SELECT i{i} FROM w) ELSE 0 END"  # noqa: S608
        for i in ids
    )
    whole = " + ".join(f"i{i}" for i in ids)
    size = "CAST(:n AS bigint)" if sized else _PG_FIELD_SIZE
    return text(
        f"""WITH hits AS MATERIALIZED (
            SELECT m.id AS id, ts_rank(m.content_tsv, q, 1) AS rank, {holds}
            FROM memories AS m, to_tsquery('english', :q) AS q, {queries}
            WHERE m.field_id = :field_id AND m.content_tsv @@ q {restrict}),
        s AS MATERIALIZED (SELECT {size} AS n, {counts}),
        w AS MATERIALIZED (SELECT {weights} FROM s)
        SELECT h.id AS id, ({matched}) / (SELECT {whole} FROM w) AS coverage,
            (SELECT n FROM s) AS n
        FROM hits AS h
        ORDER BY coverage DESC, h.rank DESC, h.id
        LIMIT :k"""  # noqa: S608
    )


class PgLexicalIndex:
    """``content_tsv @@ to_tsquery(t1 | t2 ...)`` (the english configuration stems and drops
    stopwords), scored by IDF-weighted coverage of the terms: the sum of the IDFs of the
    terms a memory matches over the sum for all terms, IDF counted within the field (its
    size, and each term's count among the matches; a restricted search counts each term
    separately, up to ``cap``); ``ts_rank`` with length normalisation breaks ties.
    ``ts_rank`` alone has no IDF: a common word weighed as much as a rare one. One statement.

    The statement counts the field up to ``cap`` (``LOCAL_IDF_MAX_FIELD``). A field that
    reaches it is counted exactly once more and searched again with that size: a term found
    in 10,000 of a 100,000-memory field weighs ln(9) ~ 2.2, where counts capped at 20,000
    gave it ~0.

    ``sizes``: fields' sizes as counted here, kept for a field of at least
    ``SIZE_KEPT_FROM`` memories (:class:`~persistence.field_cache.FieldCache`; counting
    20,000 took ~5 ms of each search): an IDF then moves with another process's writes only
    when the size expires, by what a few memories change of a thousand or more. A smaller
    field is counted by every search, for less than a fifth of a millisecond."""

    def __init__(
        self,
        tx: Transaction,
        sizes: FieldCache[int] | None = None,
        *,
        cap: int = LOCAL_IDF_MAX_FIELD,
        beside: BesideReads | None = None,
    ) -> None:
        self._tx = tx
        self._sizes = sizes
        self._cap = cap
        self._beside = beside

    async def _read(self, statement: Executable, params: dict[str, object]) -> Result[Any]:
        # Beside the transaction when it has written nothing: the engine runs this search
        # side by side with the vector search, which holds the transaction's connection.
        if self._beside is not None:
            return await self._beside.read(self._tx, statement, params)
        return await self._tx.read(statement, params)

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
        params: dict[str, object] = {
            "q": " | ".join(tsquery_term(w) for w in words),
            "field_id": field_id,
            "k": k,
            "cap": self._cap,
        }
        for i, word in enumerate(words):
            params[f"w{i}"] = tsquery_term(word)
        if allowed is not None:
            params["allowed"] = list(allowed)
        restricted = allowed is not None
        size = self._sizes.get(field_id) if self._sizes is not None else None
        if size is not None:
            params["n"] = size
        stmt = _pg_statement(len(words), restricted=restricted, sized=size is not None)
        rows = (await self._read(stmt, params)).all()
        if rows and size is None:
            size = int(rows[0].n)
            if size >= self._cap:  # the count stopped at the cap
                size = params["n"] = (await self._read(_PG_EXACT_SIZE, params)).scalar_one()
                stmt = _pg_statement(len(words), restricted=restricted, sized=True)
                rows = (await self._read(stmt, params)).all()
            if self._sizes is not None and size >= SIZE_KEPT_FROM:
                self._sizes.put(field_id, size)
        return [(row.id, min(1.0, float(row.coverage))) for row in rows]
