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

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

Ranked = Sequence[tuple[str, float]]  # (memory id, retriever score), best first


class Fusion(StrEnum):
    RRF = "rrf"
    CONVEX = "convex"


class DenseNorm(StrEnum):
    COSINE = "cosine"
    ZSCORE = "zscore"


@dataclass(frozen=True, slots=True)
class FusedHit:
    memory_id: str
    score: float
    sources: frozenset[str]  # which retrievers found it: {"dense"}, {"lexical"} or both

    @property
    def reason(self) -> str:
        return "both" if len(self.sources) > 1 else next(iter(self.sources))


def rrf(lists: Mapping[str, Ranked], weights: Mapping[str, float], k: int = 60) -> list[FusedHit]:
    scores: dict[str, float] = {}
    found: dict[str, set[str]] = {}
    for name, ranked in lists.items():
        weight = weights.get(name, 1.0)
        for rank, (memory_id, _score) in enumerate(ranked, start=1):
            scores[memory_id] = scores.get(memory_id, 0.0) + weight / (k + rank)
            found.setdefault(memory_id, set()).add(name)
    return _sorted(scores, found)


def _zscores(ranked: Ranked) -> list[tuple[str, float]]:
    # Non-finite scores carry no evidence (pgvector's cosine distance to a zero vector is
    # NaN): they count as 0 and must not poison the mean (statistics.pstdev raises on NaN).
    ranked = [(m, float(s) if math.isfinite(s) else 0.0) for m, s in ranked]
    values = [s for _, s in ranked]
    mean = math.fsum(values) / len(values)
    # Plain floats: statistics.pstdev's exact rational arithmetic cost ~0.7 ms per query here.
    spread = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / len(values))
    if spread <= 1e-9:
        return [(m, 1.0 / 3.0) for m, _ in ranked]  # nothing stands out: all equal, weak
    return [(m, max(0.0, (s - mean) / spread) / 3.0) for m, s in ranked]


def convex(
    lists: Mapping[str, Ranked],
    weights: Mapping[str, float],
    *,
    dense_floor: float = 0.0,
    dense_norm: str = DenseNorm.COSINE,
) -> list[FusedHit]:
    """With ``cosine``, ``dense_floor`` is subtracted from cosines (clamped at 0): unrelated
    texts of most sentence encoders still score ~0.1-0.2, which is not evidence of anything.
    With ``zscore`` the floor is not used (the list's own mean is the floor)."""
    scores: dict[str, float] = {}
    found: dict[str, set[str]] = {}
    for name, ranked in lists.items():
        if not ranked:
            continue
        weight = weights.get(name, 1.0)
        if name == "dense" and DenseNorm(dense_norm) is DenseNorm.ZSCORE:
            normalised = _zscores(ranked)
        elif name == "dense":
            scale = 1.0 / max(1e-9, 1.0 - dense_floor)
            normalised = [(m, max(0.0, s - dense_floor) * scale) for m, s in ranked]
        else:
            best = max(s for _, s in ranked) or 1.0
            normalised = [(m, s / best) for m, s in ranked]
        for memory_id, value in normalised:
            if value <= 0.0:
                # Below the floor: kept at the bottom (score 0), but not counted as evidence.
                scores.setdefault(memory_id, 0.0)
                found.setdefault(memory_id, set())
                continue
            scores[memory_id] = scores.get(memory_id, 0.0) + weight * value
            found.setdefault(memory_id, set()).add(name)
    for sources in found.values():
        if not sources:
            sources.add("dense")  # only a weak nearest neighbour
    return _sorted(scores, found)


def _sorted(scores: dict[str, float], found: dict[str, set[str]]) -> list[FusedHit]:
    hits = [FusedHit(m, s, frozenset(found[m])) for m, s in scores.items()]
    hits.sort(key=lambda h: (-h.score, h.memory_id))
    return hits
