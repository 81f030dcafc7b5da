"""Pseudo-relevance feedback inside a candidate pool: which words the best hits share, and
how much each candidate gains from containing them (used by :mod:`domain.retrieval`)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence


def feedback_terms(
    ranked: Sequence[tuple[str, float]],
    words: Mapping[str, set[str]],
    *,
    asked: set[str],
    docs: int,
    min_docs: int = 1,
) -> list[str]:
    """The content words (not asked already) shared by the ``docs`` best of ``ranked``
    (memory id, score; best first), most shared first, then by the best score of a hit using
    them, then alphabetically. Hits tied with the last one taken come too (up to twice as
    many), so the choice depends on contents and scores only, never on memory ids."""
    if len(ranked) > docs > 0:
        cut = ranked[docs - 1][1]
        top = [(m, score) for m, score in ranked[: 2 * docs] if score >= cut]
    else:
        top = list(ranked)
    counts: Counter[str] = Counter()
    best: dict[str, float] = {}
    for memory_id, score in top:
        for term in words.get(memory_id, set()) - asked:
            counts[term] += 1
            best[term] = max(best.get(term, 0.0), score)
    chosen = [t for t in counts if counts[t] >= min_docs]
    return sorted(chosen, key=lambda t: (-counts[t], -best[t], t))


def feedback_scores(
    pool: Sequence[str], words: Mapping[str, set[str]], borrowed: set[str]
) -> dict[str, float]:
    """Each pool member's share of the borrowed words, as a BM25-style IDF sum over the
    words it contains, divided by the pool's best (so 0..1; empty when nothing matches).
    The IDF is the pool's own: a word every candidate has says nothing about which is
    better, a word a few have singles them out."""
    matched = {m: words.get(m, set()) & borrowed for m in pool}
    df = Counter(t for found in matched.values() for t in found)
    n = len(pool)
    idf = {t: math.log(1.0 + (n - c + 0.5) / (c + 0.5)) for t, c in df.items()}
    raw = {m: sum(idf[t] for t in found) for m, found in matched.items()}
    best = max(raw.values(), default=0.0)
    if best <= 0.0:
        return {}
    return {m: value / best for m, value in raw.items() if value > 0.0}
