"""Several sentence encoders as one embedder (:class:`domain.ports.Embedder`).

A text's vector is the concatenation of each part's unit vector scaled by the square root
of the part's weight (the weights sum to 1), so the cosine of two such vectors is the
weighted mean of the parts' cosines, and every index (FAISS, pgvector) searches it as any
other vector. Two encoders trained on different data make different mistakes: on LoCoMo's
tuning conversations, dense retrieval alone, MiniLM reached R@10 0.493 and e5-small 0.533,
0.2 x MiniLM + 0.8 x e5-small 0.567; on the everyday questions' tuning split P@1 0.892,
0.853 and 0.919 (docs/BENCHMARKS.md, "Embedders").

The parts embed side by side (each has its own worker thread). The name lists the parts
and their weights, so a field embedded with other parts or weights is re-embedded.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from typing import cast

import numpy as np
from numpy.typing import NDArray

from domain.ports import Embedder, Vector


class EnsembleEmbedder:
    """``parts``: (embedder, weight) pairs; weights are positive and normalised to sum 1."""

    def __init__(self, parts: Sequence[tuple[Embedder, float]]) -> None:
        if len(parts) < 2:
            raise ValueError("an ensemble needs at least two embedders")
        if any(not (weight > 0 and math.isfinite(weight)) for _, weight in parts):
            raise ValueError("ensemble weights must be positive")
        total = sum(weight for _, weight in parts)
        self.parts = [(embedder, weight / total) for embedder, weight in parts]
        self._scales = [np.float32(math.sqrt(weight)) for _, weight in self.parts]

    @property
    def name(self) -> str:
        return "+".join(f"{embedder.name}*{weight:g}" for embedder, weight in self.parts)

    @property
    def dimension(self) -> int:
        return sum(embedder.dimension for embedder, _ in self.parts)

    def _joined(self, pieces: Sequence[Sequence[Vector]], rows: int) -> NDArray[np.float32]:
        out = np.hstack(
            [
                np.asarray(piece, dtype=np.float32).reshape(rows, -1) * scale
                for piece, scale in zip(pieces, self._scales, strict=True)
            ]
        )
        # Unit length already when every part is; a part's zero vector (an empty text) must
        # not leave the rest short of it.
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return cast("NDArray[np.float32]", out / np.maximum(norms, np.float32(1e-12)))

    async def load(self) -> None:
        """Load every part that loads lazily (see ``BertEmbedder.load``)."""
        for embedder, _ in self.parts:
            load = getattr(embedder, "load", None)
            if load is not None:
                await load()

    async def embed(self, texts: Sequence[str]) -> Sequence[Vector]:
        if not texts:
            return []
        pieces = await asyncio.gather(*(embedder.embed(texts) for embedder, _ in self.parts))
        return cast("Sequence[Vector]", self._joined(pieces, len(texts)))

    async def embed_query(self, text: str) -> Vector:
        pieces = await asyncio.gather(*(embedder.embed_query(text) for embedder, _ in self.parts))
        return cast("Vector", self._joined([[p] for p in pieces], 1)[0])
