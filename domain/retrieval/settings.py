"""Search inputs: the filter a search runs inside, and the knobs of hybrid ranking."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class SearchFilter:
    """Restricts a search *inside* the index, so top-k is never emptied by filtering."""

    sources: list[str] | None = None
    tags: list[str] | None = None
    occurred_from: datetime | None = None
    occurred_to: datetime | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def is_empty(self) -> bool:
        return not (
            self.sources or self.tags or self.occurred_from or self.occurred_to or self.metadata
        )

    def matches_metadata(self, metadata: dict[str, Any]) -> bool:
        return all(metadata.get(key) == value for key, value in self.metadata.items())


@dataclass(frozen=True, slots=True)
class RetrievalSettings:
    """How hybrid search ranks; the defaults are what LoCoMo tuning chose (docs/BENCHMARKS.md).

    ``mode`` is ``hybrid`` (dense + lexical, fused), ``dense`` or ``lexical``. ``fusion`` is
    ``convex`` (weighted normalised scores) or ``rrf``. Neighbour expansion adds the memories
    just before/after a strong hit (by ``occurred_at`` within ``neighbour_gap_seconds``), at
    ``neighbour_weight`` of that hit's score: in a conversation the answer is often the turn
    that replies to the one matching the question. ``neighbour_window`` is how many turns
    on each side (2: the reply and the reply to the reply).

    ``dense_norm`` (``zscore`` or ``cosine``) is how convex fusion scales dense cosines; see
    :mod:`domain.retrieval.fusion`.

    Sessions: conversation turns separated by more than ``session_gap_seconds`` of silence
    belong to different sessions. Every candidate in the session of one of the
    ``session_hits`` best hits gains ``session_weight`` x that session's best score (a topic
    is talked about for a while). A session is looked for up to ``session_steps`` turns and
    ``session_span_seconds`` on each side of a hit, in the same window query as neighbours;
    ``session_fill`` > 0 also brings in its turns that no retriever found.

    Pseudo-relevance feedback (``prf_terms`` 0 turns it off): the content words shared by the
    ``prf_docs`` best fused hits (in at least ``prf_min_docs`` of them) are borrowed, and each
    of the ``prf_pool`` best hits gains up to ``prf_weight`` by how many of them it contains
    (IDF-weighted within the pool). No second full-text search: only the pool is read.

    Speakers: when a query names some (not all) of the speakers among the best hits, their
    own turns move up by 1 + ``speaker_weight`` among the best max(``speaker_pool``, 2 x
    top-k), after neighbour expansion; a turn's speaker is its ``speaker`` metadata or the
    ``Name:`` label it starts with (:func:`domain.retrieval.speakers.speaker_of`).

    Time cues: a "when ...?" question multiplies the score of memories that state a time
    (a weekday, "last week", a month, a year, ...) by 1 + ``when_weight``; a date range named
    in the query, or "latest"/"first", reweights by ``occurred_at`` by up to 1 + ``time_weight``.
    """

    mode: str = "hybrid"
    fusion: str = "convex"
    dense_weight: float = 1.0
    lexical_weight: float = 1.5
    rrf_k: int = 60
    dense_floor: float = 0.15
    dense_norm: str = "zscore"
    candidates: int = 500
    neighbour_hits: int = 30
    neighbour_weight: float = 0.5
    neighbour_gap_seconds: float = 1800.0
    neighbour_window: int = 2
    session_weight: float = 0.2
    session_hits: int = 20
    session_gap_seconds: float = 4 * 3600.0
    session_steps: int = 40
    session_span_seconds: float = 12 * 3600.0
    session_fill: float = 0.0
    prf_terms: int = 10
    prf_docs: int = 3
    prf_min_docs: int = 1
    prf_weight: float = 0.5
    prf_pool: int = 30
    speaker_weight: float = 0.5
    speaker_pool: int = 30
    time_weight: float = 0.6
    when_weight: float = 0.5
