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

    ``dense_norm`` (``zscore`` or ``cosine``) is how convex fusion scales dense cosines;
    ``lexical_norm`` is ``coverage`` (lexical hits count by the IDF-weighted share of the
    query they match, the best fully once it reaches ``lexical_full``: one common word
    shared with a long question weighs little) or ``max`` (the best lexical hit counts fully,
    however little of the query it matched). Below ``lexical_trusted_size`` memories
    searched, partial keyword matches are muted by trust = log(size) /
    log(lexical_trusted_size): keyword statistics over a handful of memories say little.
    ``small_field`` ``backed`` also weighs the whole keyword list by that trust and mutes
    matches the dense retriever does not back; ``partial`` only mutes partial matches (a
    memory holding every word of the question still counts fully). See
    :mod:`domain.retrieval.fusion`.

    Sessions: conversation turns are numbered into sessions when stored (a silence longer
    than :data:`domain.sessions.SESSION_GAP` starts a new one). Every candidate among the
    ``session_pool`` best that shares the session of one of the ``session_hits`` best hits
    gains ``session_weight`` x that session's best score (a topic is talked about for a
    while).

    Turns in context: a conversation turn is stored with ``turn_context_weight`` x the
    vector of the turn before it in its session blended into its own
    (:mod:`domain.turn_vectors`; 0 stores its own). Applied when turns are written: changing
    it changes the turns written after.

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
    lexical_norm: str = "coverage"
    lexical_full: float = 0.4
    lexical_trusted_size: int = 300
    small_field: str = "backed"
    candidates: int = 500
    neighbour_hits: int = 30
    neighbour_weight: float = 0.5
    neighbour_gap_seconds: float = 1800.0
    neighbour_window: int = 2
    session_weight: float = 0.2
    session_hits: int = 20
    session_pool: int = 200
    turn_context_weight: float = 0.3
    prf_terms: int = 10
    prf_docs: int = 3
    prf_min_docs: int = 1
    prf_weight: float = 0.5
    prf_pool: int = 30
    speaker_weight: float = 0.5
    speaker_pool: int = 30
    time_weight: float = 0.6
    when_weight: float = 0.5
