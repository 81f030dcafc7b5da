"""Timing decorators for ports and services, applied where the runtime is wired."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from prometheus_client import Counter, Histogram

from domain.clock import Clock
from domain.entities import MemoryHit
from domain.policy import Limits
from domain.ports import Embedder, Vector
from domain.services.memories import MemoryService
from memoria.observability.metrics import AppMetrics


class TimedEmbedder:
    """An ``Embedder`` that times each call of the one it wraps. Anything else the wrapped
    embedder offers (``detect`` of remote ones, for instance) is passed through."""

    def __init__(self, inner: Embedder, *, seconds: Histogram, texts: Counter) -> None:
        self._inner = inner
        self._query_seconds = seconds.labels("query")
        self._batch_seconds = seconds.labels("batch")
        self._query_texts = texts.labels("query")
        self._batch_texts = texts.labels("batch")

    @property
    def name(self) -> str:
        return self._inner.name

    @property
    def dimension(self) -> int:
        return self._inner.dimension

    async def embed(self, texts: Sequence[str]) -> Sequence[Vector]:
        started = time.perf_counter()
        try:
            return await self._inner.embed(texts)
        finally:
            self._batch_seconds.observe(time.perf_counter() - started)
            self._batch_texts.inc(len(texts))

    async def embed_query(self, text: str) -> Vector:
        started = time.perf_counter()
        try:
            return await self._inner.embed_query(text)
        finally:
            self._query_seconds.observe(time.perf_counter() - started)
            self._query_texts.inc()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class TimedMemoryService(MemoryService):
    """``MemoryService`` whose searches (API calls and chat context alike) are timed."""

    def __init__(self, *, search_seconds: Histogram, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._search_seconds = search_seconds

    async def search(self, **kwargs: Any) -> list[MemoryHit]:
        started = time.perf_counter()
        try:
            return await super().search(**kwargs)
        finally:
            self._search_seconds.observe(time.perf_counter() - started)


def memory_service(
    metrics: AppMetrics | None,
    *,
    embedder: Embedder,
    clock: Clock,
    limits: Limits,
    dedupe_threshold: float,
) -> MemoryService:
    """The memory service, with timed searches when metrics are on."""
    if metrics is None:
        return MemoryService(
            embedder=embedder, clock=clock, limits=limits, dedupe_threshold=dedupe_threshold
        )
    return TimedMemoryService(
        search_seconds=metrics.search_seconds,
        embedder=embedder,
        clock=clock,
        limits=limits,
        dedupe_threshold=dedupe_threshold,
    )
