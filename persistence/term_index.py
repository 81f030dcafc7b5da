"""One memory field's keyword postings, kept in process memory (embedded mode).

Tokens are FTS5's (``porter unicode61 remove_diacritics 2``, migration 0002): words of
letters and digits, folded to lower case without diacritics, reduced by the Porter
stemmer. A long query word also matches its :func:`family`: every stored token that starts
with the word's first letters, as the FTS5 and PostgreSQL queries' prefix terms do
(``persistence.lexical_index``).

Scoring is :class:`~persistence.lexical_index.SqliteLexicalIndex`'s: IDF-weighted coverage
of the query's words with the field's own document counts, BM25 (k1 1.2, b 0.75) among
equal coverage. The difference is reach: FTS5 ranks every match with ``bm25()`` in SQL and
covers only the best ``k`` of them (144 ms of a search at a million memories); here every
match's coverage and BM25 are a few array operations over the words' postings.

Not thread-safe: the store (``persistence.term_store``) changes and searches an index on
the event loop's thread only, and builds a new one off it before anyone can see it.
"""

from __future__ import annotations

import math
import re
import threading
import unicodedata
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import Stemmer

# Words of letters and digits: unicode61's token characters (underscore separates).
_WORD = re.compile(r"[^\W_]+")
# Words this long also match by their first letters (all but the last three, at least
# five): the stemmers leave allergic/allergies or injured/injury apart ("allerg", "allergi").
FAMILY_MIN_LENGTH = 7
_FAMILY_MIN_PREFIX = 5
# BM25's constants, as FTS5's bm25() uses them.
_K1, _B = 1.2, 0.75
# Coverage decides; BM25, scaled below this step, only orders equal coverage.
_COVERAGE_STEP = 1e4
_local = threading.local()


def _stemmer() -> Any:
    # PyStemmer's objects are not thread-safe: one per thread (builds run off the loop).
    found = getattr(_local, "stemmer", None)
    if found is None:
        found = _local.stemmer = Stemmer.Stemmer("porter")
    return found


def _fold(text: str) -> str:
    text = text.lower()
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def tokens(text: str) -> list[str]:
    """The stemmed tokens of ``text``, in order, as FTS5's tokenizer gives them."""
    words: list[str] = _WORD.findall(_fold(text))
    stemmed: list[str] = _stemmer().stemWords(words)
    return stemmed


def family(word: str) -> str | None:
    """The first letters a long query word shares with its word family, or None."""
    if len(word) < FAMILY_MIN_LENGTH or not word.isalpha():
        return None
    return word[: max(_FAMILY_MIN_PREFIX, len(word) - 3)]


def idf(total: float, df: float) -> float:
    """FTS5's BM25 IDF, clamped as FTS5 clamps it."""
    return max(1e-6, math.log((total - df + 0.5) / (df + 0.5)))


class FieldTerms:
    """The postings of one field: for each token, the slots of the memories that hold it
    and how often. A removed memory keeps its postings until the index is rebuilt
    (:attr:`waste`) and is skipped by every search."""

    def __init__(self) -> None:
        self._ids: list[str | None] = []  # slot -> memory id; None once removed
        self._slots: dict[str, int] = {}
        self._lengths = array("i")  # tokens per slot; 0 once removed
        self._hashes = array("q")  # hash of each slot's text: an unchanged text is kept
        self._length_sum = 0
        self._postings: dict[str, tuple[array[int], array[int]]] = {}
        self._by_prefix: dict[str, set[str]] = {}
        self.waste = 0  # slots of removed memories
        self._work: tuple[Any, Any, Any] | None = None

    def __len__(self) -> int:
        return len(self._slots)

    def __contains__(self, memory_id: object) -> bool:
        return memory_id in self._slots

    def add(self, memory_id: str, text: str) -> None:
        """Index ``text`` as ``memory_id``'s (replacing what it held)."""
        held = self._slots.get(memory_id)
        if held is not None and self._hashes[held] == hash(text):
            return  # updated without a new text (a layer, tags): its postings stand
        self.remove(memory_id)
        counts = Counter(tokens(text))
        slot = len(self._ids)
        self._ids.append(memory_id)
        self._slots[memory_id] = slot
        length = sum(counts.values())
        self._lengths.append(length)
        self._hashes.append(hash(text))
        self._length_sum += length
        for token, n in counts.items():
            posting = self._postings.get(token)
            if posting is None:
                posting = self._postings[token] = (array("i"), array("i"))
                if len(token) >= _FAMILY_MIN_PREFIX:
                    key = token[:_FAMILY_MIN_PREFIX]
                    self._by_prefix.setdefault(key, set()).add(token)
            posting[0].append(slot)
            posting[1].append(n)

    def add_many(self, rows: Iterable[tuple[str, str]]) -> None:
        for memory_id, text in rows:
            self.add(memory_id, text)

    def remove(self, memory_id: str) -> None:
        slot = self._slots.pop(memory_id, None)
        if slot is None:
            return
        self._ids[slot] = None
        self._length_sum -= self._lengths[slot]
        self._lengths[slot] = 0
        self.waste += 1

    def _matching(self, word: str) -> list[str]:
        """The stored tokens a query word matches: its stem and, for a long word, the tokens
        that start with its :func:`family` (unstemmed, as an FTS5 prefix query)."""
        found = [t for t in dict.fromkeys(tokens(word)) if t in self._postings]
        prefix = family(word)
        if prefix is not None:
            prefix = _fold(prefix)
            found += [
                t
                for t in self._by_prefix.get(prefix[:_FAMILY_MIN_PREFIX], ())
                if t.startswith(prefix) and t not in found
            ]
        return found

    def search(
        self,
        words: Sequence[str],
        k: int,
        allowed: Sequence[str] | None = None,
    ) -> list[tuple[str, float]]:
        """The best ``k`` memories holding any of ``words`` (query words), best
        first, with their IDF-weighted coverage of the words (0-1]. Document counts are the
        field's, whatever ``allowed`` keeps."""
        live = len(self._slots)
        if live == 0 or k <= 0 or not words:
            return []
        size = len(self._ids)
        lengths = np.frombuffer(self._lengths, dtype=np.int32)
        mean_length = max(self._length_sum / live, 1e-9)
        coverage, rank, marked = self._scratch(size)
        weights: list[float] = []
        found = np.zeros(0, dtype=np.int64)
        try:
            for word in words:
                matched = self._matching(word)
                if not matched:
                    weights.append(idf(live, 0))
                    continue
                held, freq = self._term_postings(matched)
                if self.waste:
                    alive = lengths[held] > 0
                    held, freq = held[alive], freq[alive]
                weight = idf(live, len(held))
                weights.append(weight)
                coverage[held] += weight
                norm = _K1 * (1 - _B + _B * lengths[held] / mean_length)
                rank[held] += weight * freq * (_K1 + 1) / (freq + norm)
                marked[held] = True
            found = np.flatnonzero(marked[:size])
            scores, ranks = coverage[found], rank[found]
        finally:
            # The scratch arrays are zero again for the next search: only the touched slots.
            coverage[found] = 0.0
            rank[found] = 0.0
            marked[found] = False
        if allowed is not None:
            keep = np.zeros(size, dtype=bool)
            chosen = [s for s in map(self._slots.get, allowed) if s is not None]
            keep[np.array(chosen, dtype=np.int64)] = True
            inside = keep[found]
            found, scores, ranks = found[inside], scores[inside], ranks[inside]
        if len(found) == 0:
            return []
        share = scores / (sum(weights) or 1.0)
        key = share * _COVERAGE_STEP + ranks / (float(ranks.max()) + 1.0)
        if len(found) > k:
            best = np.argpartition(-key, k - 1)[:k]
            found, share, key = found[best], share[best], key[best]
        order = np.argsort(-key, kind="stable")
        ids = self._ids
        # Plain ints and floats first: numpy scalars taken one by one were most of this
        # step's time under a profiler.
        slots, shares = found[order].tolist(), np.minimum(share[order], 1.0).tolist()
        return [(ids[s], c) for s, c in zip(slots, shares, strict=True)]

    def _scratch(self, size: int) -> tuple[Any, Any, Any]:
        """Zeroed per-slot arrays for a search (coverage, BM25, matched), kept between
        searches: allocating and zeroing them per search cost more than using them."""
        if self._work is None or len(self._work[0]) < size:
            room = max(size * 2, 1024)
            self._work = (np.zeros(room), np.zeros(room), np.zeros(room, dtype=bool))
        return self._work

    def _term_postings(self, matched: list[str]) -> tuple[Any, Any]:
        """The slots holding any of ``matched`` tokens (each once) and the summed counts."""
        parts = [self._postings[t] for t in matched]
        if len(parts) == 1:
            slots, freq = parts[0]
            return np.frombuffer(slots, dtype=np.int32), np.frombuffer(freq, dtype=np.int32)
        all_slots = np.concatenate([np.frombuffer(p[0], dtype=np.int32) for p in parts])
        all_freq = np.concatenate([np.frombuffer(p[1], dtype=np.int32) for p in parts])
        unique, where = np.unique(all_slots, return_inverse=True)
        return unique, np.bincount(where, weights=all_freq).astype(np.int32)
