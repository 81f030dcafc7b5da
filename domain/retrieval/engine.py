"""Hybrid retrieval over one user's memory fields: dense + lexical, fused, time-aware,
with neighbour expansion; every hit says why it matched.

Filters are turned into an allowed-id set that both retrievers apply *inside* their
search, so a top-k is never emptied by filtering.
"""

from __future__ import annotations

import asyncio
import inspect
import math
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import datetime

from domain.entities import Memory, MemoryField, MemoryHit
from domain.ports import UnitOfWork, Vector
from domain.ports.memories import SearchContext
from domain.retrieval.feedback import feedback_scores, feedback_terms
from domain.retrieval.fusion import Fused, Fusion, convex, rrf
from domain.retrieval.query_analysis import QueryAnalysis, TimeIntent, content_terms, mentions_time
from domain.retrieval.settings import RetrievalSettings, SearchFilter
from domain.retrieval.speakers import named_speakers, speaker_of

Scored = dict[str, float]


@dataclass(slots=True)
class _Candidate:
    memory_id: str
    score: float
    reason: str


def _run(
    around: Sequence[tuple[str, datetime]], anchor: str, max_gap: float, steps: int
) -> set[str]:
    """The turns up to ``steps`` away from ``anchor`` in ``around`` (ordered by time) reached
    without crossing a silence longer than ``max_gap`` seconds; the anchor not included."""
    at = next((i for i, (m, _) in enumerate(around) if m == anchor), None)
    if at is None:
        return set()
    reached: set[str] = set()
    for direction in (-1, 1):
        i = at
        for _ in range(steps):
            j = i + direction
            if not 0 <= j < len(around):
                break
            if abs((around[j][1] - around[i][1]).total_seconds()) > max_gap:
                break
            reached.add(around[j][0])
            i = j
    return reached


def _lexical_confidence(searched: int | None, trusted: int) -> float:
    """How far keyword statistics can be trusted over ``searched`` memories: 1 from
    ``trusted`` memories up, less below (by the logarithm of the size). In a field of five
    memories every word is "rare": one word shared with a longer question says little, and
    the sentence encoder's judgement of the whole question is the better evidence (a memory
    holding every word of the question still counts fully: see :func:`convex`)."""
    if searched is None or trusted <= 1 or searched >= trusted:
        return 1.0
    return max(0.0, math.log(max(searched, 1)) / math.log(trusted))


class HybridRetriever:
    def __init__(self, settings: RetrievalSettings) -> None:
        self.settings = settings

    async def _allowed(
        self, uow: UnitOfWork, user_id: str, field_id: str, flt: SearchFilter
    ) -> list[str] | None:
        if flt.is_empty:
            return None
        return await uow.memory_query.candidate_ids(
            field_id=field_id,
            user_id=user_id,
            sources=flt.sources,
            tags=flt.tags,
            occurred_from=flt.occurred_from,
            occurred_to=flt.occurred_to,
            metadata=flt.metadata,
        )

    def _fuse(
        self,
        dense: Sequence[tuple[str, float]],
        lexical: Sequence[tuple[str, float]],
        *,
        searched: int | None,
        head: int | None,
    ) -> Fused:
        """``searched``: how many memories the search ran over, when known (a field, or a
        filter's allowed set, smaller than the candidate depth). ``head``: how many of the
        best hits to keep in the list (see :meth:`_reach`)."""
        s = self.settings
        lists = {"dense": dense, "lexical": lexical}
        weights = {"dense": s.dense_weight, "lexical": s.lexical_weight}
        if Fusion(s.fusion) is Fusion.RRF:
            return rrf(lists, weights, k=s.rrf_k, head=head)
        return convex(
            lists,
            weights,
            dense_floor=s.dense_floor,
            dense_norm=s.dense_norm,
            lexical_norm=s.lexical_norm,
            lexical_full=s.lexical_full,
            lexical_trust=_lexical_confidence(searched, s.lexical_trusted_size),
            small_field=s.small_field,
            head=head,
        )

    async def _field_hits(
        self,
        uow: UnitOfWork,
        user_id: str,
        field: MemoryField,
        analysis: QueryAnalysis,
        vector: Awaitable[Vector] | Vector | None,
        flt: SearchFilter,
        top_k: int,
    ) -> tuple[list[_Candidate], dict[str, Memory]]:
        """The field's candidates, best first, and the memories already loaded on the way
        (feedback reads the best hits' contents; the caller need not load them again)."""
        s = self.settings
        allowed = await self._allowed(uow, user_id, field.id, flt)
        if allowed is not None and not allowed:
            return [], {}
        depth = max(s.candidates, top_k)
        no_hits: list[tuple[str, float]] = []

        async def nothing() -> list[tuple[str, float]]:
            return no_hits

        async def dense_hits(query: Awaitable[Vector] | Vector) -> list[tuple[str, float]]:
            ready = await query if inspect.isawaitable(query) else query
            return await uow.vectors.search(
                field_id=field.id, vector=ready, k=depth, allowed=allowed
            )

        # The two retrievers wait on different things (the embedder and vector index's
        # threads, the database's), so they run side by side.
        dense, lexical = await asyncio.gather(
            dense_hits(vector) if vector is not None else nothing(),
            uow.lexical.search(field_id=field.id, terms=analysis.terms, k=depth, allowed=allowed)
            if s.mode != "dense" and analysis.terms
            else nothing(),
        )
        # The dense retriever returns every memory it searched when there are fewer than
        # ``depth``: then their number is known for free.
        searched = len(dense) if vector is not None and len(dense) < depth else None
        fused = self._fuse(dense, lexical, searched=searched, head=self._reach(top_k))
        hits = [_Candidate(h.memory_id, h.score, h.reason) for h in fused]
        loaded: dict[str, Memory] = {}
        feedback = s.prf_terms > 0 and s.mode == "hybrid" and bool(hits) and bool(analysis.terms)
        # A field that never held a conversation turn has no neighbours or sessions to read.
        expand = bool(hits) and field.has_turns and (self._neighbours_on or self._sessions_on)
        context = SearchContext(memories={}, around={}, sessions={})
        if feedback or expand:
            context = await self._context(uow, user_id, field.id, hits, feedback, expand)
            loaded.update(context.memories)
        if feedback:
            # Borrowed words are keyword statistics too: as little trusted as keywords.
            trust = _lexical_confidence(searched, s.lexical_trusted_size)
            await self._feedback(uow, user_id, analysis, hits, loaded, trust=trust)
        if expand:
            # The rest cannot reach the results unless expansion reaches them as neighbours.
            hits = self._expand(hits, fused, allowed, context)
        if s.speaker_weight > 0 and hits and analysis.terms:
            # After expansion: the turns it brought in are mostly replies by the other side.
            await self._speaker_prior(
                uow, user_id, analysis, hits, loaded, depth=max(s.speaker_pool, 2 * top_k)
            )
        return hits, loaded

    def _reach(self, top_k: int) -> int | None:
        """How many of the best fused hits can end up among the results (None: all). Every
        later step only raises scores (none of its weights is negative) and reads or reranks
        at most the best ``reach`` hits; hits are ordered by (score, id), so the hits kept
        stay ahead of every hit cut, and a hit ranked after the ``reach``-th can only be
        returned if expansion makes it a neighbour (see ``fused`` in :meth:`_expand`).
        Carrying the ~1,000 candidates of a search through those steps was most of their
        cost."""
        s = self.settings
        weights = (
            s.neighbour_weight,
            s.session_weight,
            s.prf_weight,
            s.speaker_weight,
            s.time_weight,
            s.when_weight,
        )
        if min(weights) < 0:
            return None
        return max(
            s.session_pool,
            s.session_hits,
            s.neighbour_hits,
            s.speaker_pool,
            s.prf_pool,
            2 * s.prf_docs,
            3 * top_k,
            30,  # the time rerank's pool: see search
        )

    async def _context(
        self,
        uow: UnitOfWork,
        user_id: str,
        field_id: str,
        hits: Sequence[_Candidate],
        feedback: bool,
        expand: bool,
    ) -> SearchContext:
        """Everything feedback and expansion read, in one request: the feedback pool's
        memories, the turns around the best hits and the sessions of the best candidates.
        Feedback reorders only inside its pool (the best ``pool`` hits: scores there only
        grow), so the best n hits after it are among the best max(n, ``pool``) now; those
        are asked for, and :meth:`_expand` picks what it needs."""
        s = self.settings
        pool = max(s.prf_pool, 2 * s.prf_docs) if feedback else 0
        load = [h.memory_id for h in hits[:pool] if h.score > 0.0]
        anchors: list[str] = []
        session_of: list[str] = []
        if expand and self._neighbours_on:
            anchors = [h.memory_id for h in hits[: max(s.neighbour_hits, pool)]]
        if expand and self._sessions_on:
            session_of = [h.memory_id for h in hits[: max(s.session_pool, s.session_hits, pool)]]
        return await uow.memory_query.search_context(
            field_id=field_id,
            user_id=user_id,
            load=load,
            anchors=anchors,
            steps=s.neighbour_window,
            max_span_seconds=s.neighbour_window * s.neighbour_gap_seconds,
            session_of=session_of,
        )

    async def _load(
        self, uow: UnitOfWork, user_id: str, ids: Sequence[str], loaded: dict[str, Memory]
    ) -> None:
        """Read the memories among ``ids`` not in ``loaded`` yet into it (one primary-key read)."""
        missing = [i for i in ids if i not in loaded]
        if missing:
            loaded.update((m.id, m) for m in await uow.memories.get_many(missing, user_id=user_id))

    async def _feedback(
        self,
        uow: UnitOfWork,
        user_id: str,
        analysis: QueryAnalysis,
        hits: list[_Candidate],
        loaded: dict[str, Memory],
        trust: float = 1.0,
    ) -> None:
        """Pseudo-relevance feedback inside the candidate pool, with no second full-text
        search: the ``prf_pool`` best fused hits are loaded, the words their best few share
        (:func:`feedback_terms`) are borrowed, and every hit of the pool gains up to
        ``prf_weight`` by the borrowed words it contains (:func:`feedback_scores`). Only
        hits already found are reordered, so a small field is not padded with memories
        that merely share common words, and the cost is one primary-key read of at most
        ``prf_pool`` rows whatever the field's size (a second FTS pass over the borrowed
        words read their long postings: ~290 ms at 100k memories). ``hits`` is re-sorted in
        place; the memories read are added to ``loaded`` for reuse. The gain is scaled by
        ``trust`` (:func:`_lexical_confidence`): in a small field the borrowed words are noise."""
        s = self.settings
        pool = [h for h in hits[: max(s.prf_pool, 2 * s.prf_docs)] if h.score > 0.0]
        await self._load(uow, user_id, [h.memory_id for h in pool], loaded)
        words = {
            h.memory_id: set(content_terms(loaded[h.memory_id].content))
            for h in pool
            if h.memory_id in loaded
        }
        ranked = [(h.memory_id, h.score) for h in pool if h.memory_id in words]
        borrowed = feedback_terms(
            ranked, words, asked=set(analysis.terms), docs=s.prf_docs, min_docs=s.prf_min_docs
        )[: s.prf_terms]
        gains = feedback_scores([m for m, _ in ranked], words, set(borrowed))
        if gains:
            for hit in pool:
                hit.score += s.prf_weight * trust * gains.get(hit.memory_id, 0.0)
            hits.sort(key=lambda h: (-h.score, h.memory_id))

    async def _speaker_prior(
        self,
        uow: UnitOfWork,
        user_id: str,
        analysis: QueryAnalysis,
        hits: list[_Candidate],
        loaded: dict[str, Memory],
        *,
        depth: int,
    ) -> None:
        """A question that names some of a conversation's speakers (not all) is about
        them, and is mostly answered by what they said themselves ("What books has John
        read?" by John's turns, not by the turns that reply to him): among the ``depth``
        best hits, the turns said by a named speaker (:func:`speaker_of`) are multiplied
        by 1 + ``speaker_weight``. Reads the pool's memories not loaded yet (``loaded``
        keeps them for the caller); ``hits`` is re-sorted in place."""
        pool = [h for h in hits[:depth] if h.score > 0.0]
        await self._load(uow, user_id, [h.memory_id for h in pool], loaded)
        said = {h.memory_id: speaker_of(loaded[h.memory_id]) for h in pool if h.memory_id in loaded}
        named = named_speakers(analysis.terms, {who for who in said.values() if who})
        if not named:
            return
        boost = 1.0 + self.settings.speaker_weight
        for hit in pool:
            if said.get(hit.memory_id) in named:
                hit.score *= boost
        # Scores only grew, and only inside the pool: the rest stays below it, in order.
        hits[:depth] = sorted(hits[:depth], key=lambda h: (-h.score, h.memory_id))

    @property
    def _neighbours_on(self) -> bool:
        s = self.settings
        return s.neighbour_weight > 0 and s.neighbour_hits > 0 and s.neighbour_window > 0

    @property
    def _sessions_on(self) -> bool:
        s = self.settings
        return s.session_weight > 0 and s.session_hits > 0

    def _expand(
        self,
        hits: list[_Candidate],
        fused: Fused,
        allowed: Sequence[str] | None,
        context: SearchContext,
    ) -> list[_Candidate]:
        """Conversation context around the strong hits:

        - neighbours: the turns up to ``neighbour_window`` steps before/after each of the
          ``neighbour_hits`` best hits (each step within ``neighbour_gap_seconds``) get
          ``neighbour_weight`` of its score, from one read of the turn order;
        - sessions: every candidate among the ``session_pool`` best that shares the session
          of one of the ``session_hits`` best hits gains ``session_weight`` x the session's
          best score, from one read of the candidates' session numbers.

        Both come from ``context`` (:meth:`_context`), whose reads cost the same however
        large the field is. ``fused``: every fused candidate (see :meth:`_reach`); a
        neighbour among those not in ``hits`` joins ``hits`` with its fused score.
        """
        s = self.settings
        by_id = {h.memory_id: h for h in hits}
        base = {h.memory_id: h.score for h in hits}
        allowed_set = set(allowed) if allowed is not None else None
        if self._neighbours_on:
            top = hits[: s.neighbour_hits]
            around = context.around
            bonus: Scored = {}
            for hit in top:
                for other in _run(
                    around.get(hit.memory_id, []),
                    hit.memory_id,
                    s.neighbour_gap_seconds,
                    s.neighbour_window,
                ):
                    if allowed_set is None or other in allowed_set:
                        bonus[other] = max(bonus.get(other, 0.0), hit.score * s.neighbour_weight)
            for memory_id, extra in bonus.items():
                found = by_id.get(memory_id)
                fused_hit = fused.other(memory_id) if found is None else None
                if fused_hit is not None:
                    found = by_id[memory_id] = _Candidate(
                        memory_id, fused_hit.score, fused_hit.reason
                    )
                if found is None:
                    by_id[memory_id] = _Candidate(memory_id, extra, "neighbour")
                elif found.score <= 0.0:  # no evidence of its own: here as a neighbour
                    found.score, found.reason = extra, "neighbour"
                else:
                    found.score += extra * 0.5
        if self._sessions_on:
            pool = [h.memory_id for h in hits[: max(s.session_pool, s.session_hits)]]
            known = context.sessions  # may hold more ids than the pool: see _context
            sessions = {m: known[m] for m in pool if m in known}
            best: dict[int, float] = {}
            for hit in hits[: s.session_hits]:
                session = sessions.get(hit.memory_id)
                if session is not None:
                    best[session] = max(best.get(session, 0.0), base[hit.memory_id])
            for memory_id, session in sessions.items():
                share = best.get(session)
                if share is not None and base.get(memory_id, 0.0) > 0.0:
                    by_id[memory_id].score += s.session_weight * share
        return sorted(by_id.values(), key=lambda h: (-h.score, h.memory_id))

    def _timed(self, analysis: QueryAnalysis) -> bool:
        """Whether time cues rerank this query (over a deeper, loaded pool)."""
        s = self.settings
        if analysis.intent is TimeIntent.WHEN and s.when_weight > 0:
            return True
        return s.time_weight > 0 and (
            analysis.time_range is not None
            or analysis.intent in (TimeIntent.LATEST, TimeIntent.EARLIEST)
        )

    def _time_rerank(
        self, analysis: QueryAnalysis, hits: list[_Candidate], memories: dict[str, Memory]
    ) -> None:
        """Soft time cues: for "when ...?" the memories that state a time move up (by
        ``when_weight``); in-range memories, or the newest/oldest, move up (``time_weight``)."""
        s = self.settings
        weight = s.time_weight
        present = [h for h in hits if h.memory_id in memories]
        if not present:
            return
        if analysis.intent is TimeIntent.WHEN and s.when_weight > 0:
            for hit in present:
                if mentions_time(memories[hit.memory_id].content):
                    hit.score *= 1.0 + s.when_weight
        if weight > 0 and analysis.time_range is not None:
            for hit in present:
                days = analysis.time_range.distance_days(memories[hit.memory_id].occurred_at)
                hit.score *= 1.0 + weight * math.exp(-days / 30.0)
        elif weight > 0 and analysis.intent in (TimeIntent.LATEST, TimeIntent.EARLIEST):
            order = sorted(present, key=lambda h: memories[h.memory_id].occurred_at)
            if analysis.intent is TimeIntent.LATEST:
                order.reverse()
            span = max(1, len(order) - 1)
            for rank, hit in enumerate(order):
                hit.score *= 1.0 + weight * (1.0 - rank / span)
        hits.sort(key=lambda h: (-h.score, h.memory_id))

    async def search(
        self,
        *,
        uow: UnitOfWork,
        user_id: str,
        fields: Sequence[MemoryField],
        analysis: QueryAnalysis,
        vector: Awaitable[Vector] | Vector | None,
        flt: SearchFilter,
        top_k: int,
    ) -> list[MemoryHit]:
        hits: list[_Candidate] = []
        known: dict[str, Memory] = {}
        for field in fields:
            found, loaded = await self._field_hits(
                uow, user_id, field, analysis, vector, flt, top_k
            )
            hits += found
            known.update(loaded)
        hits.sort(key=lambda h: (-h.score, h.memory_id))
        timed = self._timed(analysis)
        # A hit with no score has no evidence from any retriever (a dense neighbour below the
        # similarity floor): returning it would pad top-k with arbitrary memories.
        hits = [h for h in hits if h.score > 0.0]
        # Time cues rerank a deeper pool; otherwise only the final top-k is loaded.
        pool = hits[: max(top_k * 3, 30)] if timed else hits[:top_k]
        # Feedback has loaded the best hits already; usually only a few are left to read.
        await self._load(uow, user_id, [h.memory_id for h in pool], known)
        if timed:
            self._time_rerank(analysis, pool, known)
        return [
            MemoryHit(memory=known[h.memory_id], score=round(h.score, 6), reason=h.reason)
            for h in pool
            if h.memory_id in known
        ][:top_k]
