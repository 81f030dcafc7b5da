"""Fusing ranked lists from the dense and lexical retrievers into one ranking.

Two methods, both measured on LoCoMo (docs/BENCHMARKS.md):

- ``rrf``: reciprocal-rank fusion, ``sum w / (k + rank)``; ignores score magnitudes.
- ``convex``: a weighted sum of per-list normalised scores. Lexical BM25 scores are divided
  by the best lexical score of the query so a strong keyword match counts fully and weak ones
  fade. Dense cosines are either kept on their own scale above a floor (``cosine``) or
  standardised within the query's candidate list (``zscore``: how many standard deviations
  above the list's mean, divided by 3, negatives clamped): a cosine of 0.5 is a standout for
  one query and background for another.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping, Sequence
from enum import StrEnum
from operator import itemgetter
from typing import NamedTuple

Ranked = Sequence[tuple[str, float]]  # (memory id, retriever score), best first


class Fusion(StrEnum):
    RRF = "rrf"
    CONVEX = "convex"


class DenseNorm(StrEnum):
    COSINE = "cosine"
    ZSCORE = "zscore"


class FusedHit(NamedTuple):
    """A tuple, not a dataclass: a search fuses ~1,000 candidates, and building a frozen
    dataclass each cost more than the fusion arithmetic."""

    memory_id: str
    score: float
    sources: frozenset[str]  # which retrievers found it: {"dense"}, {"lexical"} or both
    reason: str  # "both", or the one retriever that found it


# Which retrievers found a candidate, as bits while fusing (sets per candidate were the
# cost), turned into one shared frozenset per combination at the end.
_DENSE_BIT = 1


def _bit_of(name: str, bits: dict[str, int]) -> int:
    if name not in bits:
        bits[name] = 1 << len(bits)
    return bits[name]


class Fused(list[FusedHit]):
    """The best fused hits, best first (all of them unless a ``head`` was asked for), and
    :meth:`other` for any candidate, kept or not. A search fuses ~1,000 candidates but
    carries only its best few hundred further: building, sorting and indexing the rest was
    a third of fusion's cost."""

    def __init__(
        self,
        best: list[FusedHit],
        scores: dict[str, float],
        found: dict[str, int],
        sources: dict[int, tuple[frozenset[str], str]],
    ) -> None:
        super().__init__(best)
        self._scores = scores
        self._found = found
        self._sources = sources

    def other(self, memory_id: str) -> FusedHit | None:
        """The fused hit of any candidate, kept among the best or not; None for an id no
        retriever returned."""
        score = self._scores.get(memory_id)
        if score is None:
            return None
        return FusedHit(memory_id, score, *self._sources[self._found[memory_id]])


def rrf(
    lists: Mapping[str, Ranked],
    weights: Mapping[str, float],
    k: int = 60,
    *,
    head: int | None = None,
) -> Fused:
    scores: dict[str, float] = {}
    found: dict[str, int] = {}
    bits: dict[str, int] = {"dense": _DENSE_BIT}
    for name, ranked in lists.items():
        weight = weights.get(name, 1.0)
        bit = _bit_of(name, bits)
        for rank, (memory_id, _score) in enumerate(ranked, start=1):
            scores[memory_id] = scores.get(memory_id, 0.0) + weight / (k + rank)
            found[memory_id] = found.get(memory_id, 0) | bit
    return _sorted(scores, found, bits, head)


def _zscores(ranked: Ranked) -> list[tuple[str, float]]:
    # Non-finite scores carry no evidence (pgvector's cosine distance to a zero vector is
    # NaN): they count as 0 and must not poison the mean (statistics.pstdev raises on NaN).
    isfinite = math.isfinite
    values = [s if isfinite(s) else 0.0 for _, s in ranked]
    mean = math.fsum(values) / len(values)
    # Plain floats: statistics.pstdev's exact rational arithmetic cost ~0.7 ms per query here.
    spread = math.sqrt(math.fsum([(v - mean) ** 2 for v in values]) / len(values))
    if spread <= 1e-9:
        return [(m, 1.0 / 3.0) for m, _ in ranked]  # nothing stands out: all equal, weak
    return [
        (m, (v - mean) / spread / 3.0 if v > mean else 0.0)
        for (m, _), v in zip(ranked, values, strict=True)
    ]


def _dense_normalised(
    ranked: Ranked, dense_norm: str, dense_floor: float
) -> list[tuple[str, float]]:
    if not ranked:
        return []
    if DenseNorm(dense_norm) is DenseNorm.ZSCORE:
        return _zscores(ranked)
    scale = 1.0 / max(1e-9, 1.0 - dense_floor)
    return [(m, max(0.0, s - dense_floor) * scale) for m, s in ranked]


_WHOLE_QUERY = 0.999  # a lexical share this high: every query term found in the memory


def _backed(
    ranked: Ranked, dense: Sequence[tuple[str, float]], full: float, trust: float
) -> list[tuple[str, float]]:
    """Lexical values where keyword statistics are not trusted (see :func:`convex`). A
    match that covers the whole query keeps its full value: names, codes and rare words the
    sentence encoder does not know (or an encoder that knows no meaning at all) must still
    find their memory in a small field."""
    scale = 1.0 / max(full, max(s for _, s in ranked), 1e-9)
    best = max((v for _, v in dense), default=0.0)
    share = {m: v / best for m, v in dense} if best > 0.0 else {}
    mute = 1.0 - trust
    return [
        (
            m,
            s * scale
            if s >= _WHOLE_QUERY
            else trust * s * scale * (trust + mute * s * share.get(m, 0.0)),
        )
        for m, s in ranked
    ]


def convex(
    lists: Mapping[str, Ranked],
    weights: Mapping[str, float],
    *,
    dense_floor: float = 0.0,
    dense_norm: str = DenseNorm.COSINE,
    lexical_norm: str = "coverage",
    lexical_full: float = 0.4,
    lexical_trust: float = 1.0,
    small_field: str = "backed",
    head: int | None = None,
) -> Fused:
    """With ``cosine``, ``dense_floor`` is subtracted from cosines (clamped at 0): unrelated
    texts of most sentence encoders still score ~0.1-0.2, which is not evidence of anything.
    With ``zscore`` the floor is not used (the list's own mean is the floor).

    Lexical scores arrive as the share of the query's evidence a memory carries (see
    :class:`domain.ports.LexicalIndex`). With ``coverage`` the best hit counts fully when it
    covers at least ``lexical_full`` of the query, and in proportion below that, so one
    common word shared with a long question weighs little; ``max`` always rescales the best
    hit to 1, however little of the query it matched. ``lexical_trust`` < 1 (a small field,
    where keyword statistics say little) mutes partial matches: a hit covering the share c
    of the query keeps trust + (1 - trust) x c of its value, a full match all of it.

    ``small_field`` ``backed`` (the default) mutes keywords more where they are not trusted:
    the whole lexical list weighs ``lexical_trust`` of its weight, and a match keeps
    trust + (1 - trust) x c x r of its value, r being how close the memory's dense score is
    to the query's best dense score. In a small field every memory is a dense candidate, so
    keywords find nothing the sentence encoder has not scored: a word shared with a
    distractor ("Where does my brother work?" and "I work remotely") must not outrank the
    encoder's clear choice, while a match the encoder backs still breaks its near-ties.
    ``partial`` is the earlier rule (only the coverage mute).

    ``head``: keep only the best ``head`` hits in the list (see :class:`Fused`)."""
    scores: dict[str, float] = {}
    found: dict[str, int] = {}
    bits: dict[str, int] = {"dense": _DENSE_BIT}
    dense = _dense_normalised(lists.get("dense") or (), dense_norm, dense_floor)
    backed = lexical_trust < 1.0 and small_field == "backed"
    for name, ranked in lists.items():
        if not ranked:
            continue
        weight = weights.get(name, 1.0)
        bit = _bit_of(name, bits)
        if name == "dense":
            normalised = dense
        elif lexical_norm == "max":
            best = max(s for _, s in ranked) or 1.0
            normalised = [(m, s / best) for m, s in ranked]
        elif backed:
            normalised = _backed(ranked, dense, lexical_full, lexical_trust)
        else:
            scale = 1.0 / max(lexical_full, max(s for _, s in ranked), 1e-9)
            mute = 1.0 - lexical_trust
            normalised = [(m, s * scale * (lexical_trust + mute * s)) for m, s in ranked]
        get, seen = scores.get, found.get
        for memory_id, value in normalised:
            if value <= 0.0:
                # Below the floor: kept at the bottom (score 0), but not counted as evidence.
                scores.setdefault(memory_id, 0.0)
                found.setdefault(memory_id, 0)
                continue
            scores[memory_id] = get(memory_id, 0.0) + weight * value
            found[memory_id] = seen(memory_id, 0) | bit
    return _sorted(scores, found, bits, head)


def _sorted(
    scores: dict[str, float], found: dict[str, int], bits: dict[str, int], head: int | None
) -> Fused:
    names = {bit: name for name, bit in bits.items()}
    # Found by nothing: only a weak nearest neighbour, reported as dense.
    shared: dict[int, tuple[frozenset[str], str]] = {0: (frozenset({"dense"}), "dense")}
    for mask in set(found.values()):
        if mask not in shared:
            found_by = frozenset(names[b] for b in names if mask & b)
            shared[mask] = (found_by, "both" if len(found_by) > 1 else next(iter(found_by)))
    items: list[tuple[str, float]] | dict[str, float] = scores
    if head is not None and head < len(scores):
        # Every hit scoring at least the head-th best score: ties with it are all kept, so
        # the best ``head`` by (score, id) are among them.
        floor = heapq.nlargest(head, scores.values())[-1]
        items = [(m, score) for m, score in scores.items() if score >= floor]
    # Best score first, equal scores by id: sorted by id, then stably by score (two sorts
    # without a Python key function cost a third of one with a (-score, id) key).
    order = sorted(items.items() if isinstance(items, dict) else items)
    order.sort(key=itemgetter(1), reverse=True)
    if head is not None:
        del order[head:]
    best = [FusedHit(m, score, *shared[found[m]]) for m, score in order]
    return Fused(best, scores, found, shared)
