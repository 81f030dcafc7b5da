"""Hybrid retrieval over one user's memory fields: dense + lexical, fused, time-aware,
with neighbour expansion; every hit says why it matched.

Filters are turned into an allowed-id set that both retrievers apply *inside* their
search, so a top-k is never emptied by filtering.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from domain.entities import Memory, MemoryField, MemoryHit
from domain.fusion import FusedHit, Fusion, convex, rrf
from domain.ports import UnitOfWork, Vector
from domain.query_analysis import QueryAnalysis, TimeIntent
from domain.search import RetrievalSettings, SearchFilter

Scored = dict[str, float]


@dataclass(slots=True)
class _Candidate:
    memory_id: str
    score: float
    reason: str


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
        self, dense: Sequence[tuple[str, float]], lexical: Sequence[tuple[str, float]]
    ) -> list[FusedHit]:
        s = self.settings
        lists = {"dense": dense, "lexical": lexical}
        weights = {"dense": s.dense_weight, "lexical": s.lexical_weight}
        if Fusion(s.fusion) is Fusion.RRF:
            return rrf(lists, weights, k=s.rrf_k)
        return convex(lists, weights, dense_floor=s.dense_floor, dense_norm=s.dense_norm)

    async def _field_hits(
        self,
        uow: UnitOfWork,
        user_id: str,
        field: MemoryField,
        analysis: QueryAnalysis,
        vector: Vector | None,
        flt: SearchFilter,
        top_k: int,
    ) -> list[_Candidate]:
        s = self.settings
        allowed = await self._allowed(uow, user_id, field.id, flt)
        if allowed is not None and not allowed:
            return []
        depth = max(s.candidates, top_k)
        dense: list[tuple[str, float]] = []
        lexical: list[tuple[str, float]] = []
        if vector is not None:
            dense = await uow.vectors.search(
                field_id=field.id, vector=vector, k=depth, allowed=allowed
            )
        if s.mode != "dense" and analysis.terms:
            lexical = await uow.lexical.search(
                field_id=field.id, terms=analysis.terms, k=depth, allowed=allowed
            )
        fused = self._fuse(dense, lexical)
        hits = [_Candidate(h.memory_id, h.score, h.reason) for h in fused]
        if s.neighbour_weight > 0 and s.neighbour_hits > 0 and hits:
            hits = await self._expand(uow, user_id, field.id, hits, allowed)
        return hits

    async def _expand(
        self,
        uow: UnitOfWork,
        user_id: str,
        field_id: str,
        hits: list[_Candidate],
        allowed: Sequence[str] | None,
    ) -> list[_Candidate]:
        """Give the turns around each strong hit (up to ``neighbour_window`` on each side,
        each step within the gap) a share of its score."""
        s = self.settings
        top = hits[: s.neighbour_hits]
        # Walk outwards one turn per round trip: ring i holds the turns i steps away.
        reach: dict[str, set[str]] = {h.memory_id: set() for h in top}
        frontier: dict[str, set[str]] = {h.memory_id: {h.memory_id} for h in top}
        for _ in range(max(1, s.neighbour_window)):
            ids = sorted({m for ring in frontier.values() for m in ring})
            if not ids:
                break
            around = await uow.memory_query.neighbours(
                field_id=field_id,
                user_id=user_id,
                memory_ids=ids,
                max_gap_seconds=s.neighbour_gap_seconds,
            )
            for anchor, ring in frontier.items():
                seen = reach[anchor] | {anchor}
                step = {o for m in ring for o in around.get(m, []) if o not in seen}
                reach[anchor] |= step
                frontier[anchor] = step
        allowed_set = set(allowed) if allowed is not None else None
        by_id = {h.memory_id: h for h in hits}
        bonus: Scored = {}
        for hit in top:
            for other in reach[hit.memory_id]:
                if allowed_set is None or other in allowed_set:
                    bonus[other] = max(bonus.get(other, 0.0), hit.score * s.neighbour_weight)
        for memory_id, extra in bonus.items():
            found = by_id.get(memory_id)
            if found is None:
                by_id[memory_id] = _Candidate(memory_id, extra, "neighbour")
            elif found.score <= 0.0:  # no evidence of its own: here as a neighbour
                found.score, found.reason = extra, "neighbour"
            else:
                found.score += extra * 0.5
        return sorted(by_id.values(), key=lambda h: (-h.score, h.memory_id))

    def _time_rerank(
        self, analysis: QueryAnalysis, hits: list[_Candidate], memories: dict[str, Memory]
    ) -> None:
        """Soft time cues: in-range memories, or the newest/oldest, move up."""
        weight = self.settings.time_weight
        present = [h for h in hits if h.memory_id in memories]
        if weight <= 0 or not present:
            return
        if analysis.time_range is not None:
            for hit in present:
                days = analysis.time_range.distance_days(memories[hit.memory_id].occurred_at)
                hit.score *= 1.0 + weight * math.exp(-days / 30.0)
        elif analysis.intent in (TimeIntent.LATEST, TimeIntent.EARLIEST):
            order = sorted(present, key=lambda h: memories[h.memory_id].occurred_at)
            if analysis.intent is TimeIntent.LATEST:
                order.reverse()
            span = max(1, len(order) - 1)
            for rank, hit in enumerate(order):
                hit.score *= 1.0 + weight * (1.0 - rank / span)
        else:
            return
        hits.sort(key=lambda h: (-h.score, h.memory_id))

    async def search(
        self,
        *,
        uow: UnitOfWork,
        user_id: str,
        fields: Sequence[MemoryField],
        analysis: QueryAnalysis,
        vector: Vector | None,
        flt: SearchFilter,
        top_k: int,
    ) -> list[MemoryHit]:
        hits: list[_Candidate] = []
        for field in fields:
            hits += await self._field_hits(uow, user_id, field, analysis, vector, flt, top_k)
        hits.sort(key=lambda h: (-h.score, h.memory_id))
        timed = analysis.time_range is not None or analysis.intent in (
            TimeIntent.LATEST,
            TimeIntent.EARLIEST,
        )
        # A hit with no score has no evidence from any retriever (a dense neighbour below the
        # similarity floor): returning it would pad top-k with arbitrary memories.
        hits = [h for h in hits if h.score > 0.0]
        # Time cues rerank a deeper pool; otherwise only the final top-k is loaded.
        pool = hits[: max(top_k * 3, 30)] if timed else hits[:top_k]
        loaded = {
            m.id: m
            for m in await uow.memories.get_many([h.memory_id for h in pool], user_id=user_id)
        }
        if timed:
            self._time_rerank(analysis, pool, loaded)
        return [
            MemoryHit(memory=loaded[h.memory_id], score=round(h.score, 6), reason=h.reason)
            for h in pool
            if h.memory_id in loaded
        ][:top_k]
