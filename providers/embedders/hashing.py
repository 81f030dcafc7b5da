"""A deterministic bag-of-words hashing embedder: instant, dependency-free, for tests."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import cast

import numpy as np
import numpy.typing as npt

from domain.ports import Vector

_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "is",
        "are",
        "was",
        "were",
        "be",
        "to",
        "of",
        "and",
        "or",
        "in",
        "on",
        "at",
        "for",
        "with",
        "my",
        "your",
        "i",
        "you",
        "it",
        "this",
        "that",
        "what",
        "do",
        "does",
        "did",
        "how",
        "which",
        "who",
    ]
)


def _stem(word: str) -> str:
    for suffix in ("ing", "es", "s", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


class HashingEmbedder:
    """Signed feature hashing of stemmed words into ``dimension`` buckets, L2-normalised.

    Texts sharing words are close; it has no notion of synonyms. Never the default.
    """

    def __init__(self, dimension: int = 256) -> None:
        self._dimension = dimension

    @property
    def name(self) -> str:
        return f"hashing-{self._dimension}"

    @property
    def dimension(self) -> int:
        return self._dimension

    def embed_sync(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                if word in _STOP:
                    continue
                digest = hashlib.blake2b(_stem(word).encode(), digest_size=8).digest()
                value = int.from_bytes(digest, "little")
                out[row, value % self._dimension] += 1.0 if value & (1 << 63) else -1.0
            norm = float(np.linalg.norm(out[row]))
            if norm > 0:
                out[row] /= norm
        return out

    async def embed(self, texts: Sequence[str]) -> Sequence[Vector]:
        # A float32 matrix: its rows are the port's vectors (numpy is not a typing.Sequence).
        return cast("Sequence[Vector]", self.embed_sync(texts))

    async def embed_query(self, text: str) -> Vector:
        return cast("Vector", self.embed_sync([text])[0])
