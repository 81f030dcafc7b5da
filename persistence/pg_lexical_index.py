"""Lexical (keyword) search in PostgreSQL mode: full-text over a generated ``tsvector``
column with a GIN index (migration 0002), ranked by field-local IDF coverage as in embedded
mode (:mod:`persistence.lexical_index`)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Executable, TextClause, text
from sqlalchemy.engine import Result

from persistence.field_cache import FieldCache
from persistence.lexical_index import LOCAL_IDF_MAX_FIELD, MAX_TERMS, safe_terms, tsquery_term
from persistence.session import BesideReads, Transaction
from persistence.term_index import idf
from persistence.term_store import TermStore

# PostgreSQL keeps the size of a field this large between searches (see PgLexicalIndex).
SIZE_KEPT_FROM = 1_000
# A term held by at least this many times the rows a search asks for may go unread.
SKIP_FROM_DEPTHS = 2
# Words whose document counts a field's entry keeps (~100 bytes each).
MAX_COUNTS_PER_FIELD = 10_000


def skippable(
    words: Sequence[str], known: Mapping[str, int], *, size: int, k: int
) -> tuple[int, ...]:
    """The indexes of the terms of ``words`` whose rows a search for the ``k`` best by IDF
    coverage need not read (MaxScore, as search engines prune with it): the commonest
    terms, each held by at least ``SKIP_FROM_DEPTHS`` x ``k`` of the field's ``size``
    memories (``known``: document counts), as long as their IDFs together stay below the
    IDF of every other term counted, and some term counted and read is held by ``k``
    memories or more. A memory holding only skipped terms then scores below any memory
    holding another term, so when ``k`` memories hold another term, the best ``k`` are
    among them; :meth:`PgLexicalIndex.search` checks that and otherwise reads
    every row. At least one term is always read."""
    weights = {w: idf(size, known[w]) for w in words if w in known}
    common = sorted(
        (w for w in weights if known[w] >= SKIP_FROM_DEPTHS * k), key=lambda w: (weights[w], w)
    )
    chosen: set[str] = set()
    below = 0.0
    for word in common:
        if len(chosen) + 1 >= len(words):
            break
        rest = [w for w in weights if w != word and w not in chosen]
        if rest and below + weights[word] >= min(weights[w] for w in rest):
            break
        if rest and max(known[w] for w in rest) < k:
            break  # the terms read would not fill the k best: every row is read after all
        chosen.add(word)
        below += weights[word]
    return tuple(i for i, w in enumerate(words) if w in chosen)


_PG_FIELD_SIZE = (
    "(SELECT count(*) FROM (SELECT 1 FROM memories WHERE field_id = :field_id LIMIT :cap) AS f)"
)
_PG_EXACT_SIZE = text("SELECT count(*) FROM memories WHERE field_id = :field_id")


@functools.lru_cache(maxsize=16 * MAX_TERMS)
def _pg_statement(
    terms: int, *, restricted: bool, sized: bool, skipped: tuple[int, ...] = ()
) -> TextClause:
    """:class:`PgLexicalIndex`'s statement for ``terms`` terms.

    ``skipped``: indexes of terms whose rows are not read (sized and unrestricted only): the
    statement reads the rows matching the other terms (the ``:qe`` query), and takes the
    skipped terms' counts from the ``:d{i}`` parameters (see :func:`skippable`).

    ``sized``: the field's size is known (the ``:n`` parameter), and so a term's count among
    the matches may exceed the cap; otherwise the statement counts the field (up to the cap)
    and returns the count beside each row, to be kept (when nothing matches, in one row
    without an id).

    Without a restriction, a term's count in the field is counted among the rows that match
    any term, which the ranking reads anyway: separate counts read each term's rows again
    (a third of the statement at 20k LoCoMo turns). With one, the counts stay the field's
    (separate capped counts), as the scores must not depend on which ids were allowed.

    The weights are MATERIALIZED and read through scalar subqueries: computed once, and
    only when a row needs them (a query that matches nothing counts no term). Inlined, the
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
        counts = ", ".join(
            f"CAST(:d{i} AS bigint) AS d{i}" if i in skipped else f"{counted.format(i=i)} AS d{i}"
            for i in ids
        )
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
    read = "qe" if skipped else "q"
    read_query = ", to_tsquery('english', :qe) AS qe" if skipped else ""
    counted_terms = ", ".join(f"(SELECT d{i} FROM s) AS d{i}" for i in ids)  # noqa: S608
    # Unsized, a query that matches nothing still returns the count, in a row without an
    # id: otherwise a large field whose searches miss is counted again by each of them.
    nothing = ", ".join(f"CAST(NULL AS bigint) AS d{i}" for i in ids)
    missed = (
        ""
        if sized
        else f""" UNION ALL SELECT NULL, NULL, {_PG_FIELD_SIZE}, {nothing}
        WHERE NOT EXISTS (SELECT 1 FROM hits)"""  # noqa: S608
    )
    return text(
        f"""WITH hits AS MATERIALIZED (
            SELECT m.id AS id, ts_rank(m.content_tsv, q, 1) AS rank, {holds}
            FROM memories AS m, to_tsquery('english', :q) AS q{read_query}, {queries}
            WHERE m.field_id = :field_id AND m.content_tsv @@ {read} {restrict}),
        s AS MATERIALIZED (SELECT {size} AS n, {counts}),
        w AS MATERIALIZED (SELECT {weights} FROM s)
        (SELECT h.id AS id, ({matched}) / (SELECT {whole} FROM w) AS coverage,
            (SELECT n FROM s) AS n, {counted_terms}
        FROM hits AS h
        ORDER BY coverage DESC, h.rank DESC, h.id
        LIMIT :k){missed}"""  # noqa: S608
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
    ``SIZE_KEPT_FROM`` memories (:class:`~persistence.field_cache.FieldCache`, which any
    process's write to the field empties; counting 20,000 took ~5 ms of each search). A
    smaller field is counted by every search, for less than a fifth of a millisecond.

    ``counts``: the terms' document counts in such a field, as the last search that read
    every row counted them, kept as long as its size. A search may skip the rows of its
    commonest counted terms (:func:`skippable`; terms not counted yet are read): on 100k
    LoCoMo turns, a term such as "going" is held by 9,435 of them, and reading its rows was
    most of the statement's time."""

    def __init__(
        self,
        tx: Transaction,
        sizes: FieldCache[int] | None = None,
        *,
        cap: int = LOCAL_IDF_MAX_FIELD,
        beside: BesideReads | None = None,
        counts: FieldCache[dict[str, int]] | None = None,
        terms: TermStore | None = None,
        wrote_memories: Callable[[], object] = lambda: True,
    ) -> None:
        self._tx = tx
        self._terms = terms
        self._wrote_memories = wrote_memories
        self._sizes = sizes
        self._counts = counts
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
        # The process's own postings hold committed memories only: a transaction that wrote
        # memories asks the statement, which sees its rows (one that wrote a chat message
        # does not need to).
        postings = self._terms if self._terms is not None and not self._wrote_memories() else None
        kept = postings.get(field_id) if postings is not None else None
        if kept is not None:
            return kept.search(words, k, allowed)
        found, size = await self._statement(field_id=field_id, words=words, k=k, allowed=allowed)
        if postings is not None and size >= postings.build_from:
            postings.build(field_id)  # the statement answers until they are ready
        return found

    async def _statement(
        self, *, field_id: str, words: list[str], k: int, allowed: Sequence[str] | None
    ) -> tuple[list[tuple[str, float]], int]:
        """The statement's best ``k`` and the field's size as it counted it (0: unknown)."""
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
        known = self._counts.get(field_id) if self._counts is not None else None
        if known is not None and size is not None and not restricted:
            found = await self._pruned(words, known, params, size=size, k=k, field_id=field_id)
            if found is not None:
                return found, size
        sized = size is not None
        stmt = _pg_statement(len(words), restricted=restricted, sized=sized)
        rows = (await self._read(stmt, params)).all()
        if rows and size is None:
            size = int(rows[0].n)
            if rows[0].id is None:
                rows = []  # nothing matched: the row only carried the count
            if size >= self._cap:  # the count stopped at the cap
                size = params["n"] = (await self._read(_PG_EXACT_SIZE, params)).scalar_one()
                if rows:
                    stmt = _pg_statement(len(words), restricted=restricted, sized=True)
                    rows = (await self._read(stmt, params)).all()
                    sized = True
            if self._sizes is not None and size >= SIZE_KEPT_FROM:
                self._sizes.put(field_id, size)
        if rows and sized and not restricted and int(size or 0) >= SIZE_KEPT_FROM:
            # Exact counts (sized, every row read), kept for the searches that skip terms.
            counted = {w: int(getattr(rows[0], f"d{i}")) for i, w in enumerate(words)}
            self._keep_counts(field_id, known, counted)
        return [(row.id, min(1.0, float(row.coverage))) for row in rows], int(size or 0)

    async def _pruned(
        self,
        words: list[str],
        known: dict[str, int],
        params: dict[str, object],
        *,
        size: int,
        k: int,
        field_id: str,
    ) -> list[tuple[str, float]] | None:
        """The search without reading the rows of the terms :func:`skippable` picks, or None
        when nothing can be skipped or fewer than ``k`` rows hold another term (the best
        ``k`` may then hold only skipped terms: the caller reads every row)."""
        skipped = skippable(words, known, size=size, k=k)
        if not skipped:
            return None
        read = [tsquery_term(w) for i, w in enumerate(words) if i not in skipped]
        pruned = {**params, "qe": " | ".join(read)}
        pruned.update({f"d{i}": known[words[i]] for i in skipped})
        stmt = _pg_statement(len(words), restricted=False, sized=True, skipped=skipped)
        rows = (await self._read(stmt, pruned)).all()
        if len(rows) < k:
            return None
        counts = {w: int(getattr(rows[0], f"d{i}")) for i, w in enumerate(words)}
        weights = {w: idf(size, c) for w, c in counts.items()}
        # The best a memory holding only skipped terms can score; the k-th must beat it
        # (the margin covers the last bits of PostgreSQL's and Python's logarithms).
        ceiling = sum(weights[words[i]] for i in skipped) / (sum(weights.values()) or 1.0)
        if float(rows[-1].coverage) <= ceiling + 1e-9:
            return None
        read_counts = {w: counts[w] for i, w in enumerate(words) if i not in skipped}
        self._keep_counts(field_id, known, read_counts)
        return [(row.id, min(1.0, float(row.coverage))) for row in rows]

    def _keep_counts(
        self, field_id: str, known: dict[str, int] | None, counted: dict[str, int]
    ) -> None:
        """Keep the document counts a search took. Into the field's live entry in place, so
        no count outlives the entry's expiry; otherwise as a new entry. An entry holds at
        most ``MAX_COUNTS_PER_FIELD`` words (searches of ever new words start it over)."""
        if known is not None:
            if len(known) + len(counted) > MAX_COUNTS_PER_FIELD:
                known.clear()
            known.update(counted)
        elif self._counts is not None:
            self._counts.put(field_id, dict(counted))
