"""Background queue depths, read when Prometheus scrapes.

Every queue lives in the database (webhook deliveries, source syncs, fields awaiting
re-embedding, pending background jobs by kind) and is counted by ``refresh`` (async, run by
the /metrics endpoint just before it renders). On PostgreSQL every process reports the same
depths: aggregate them with ``max``, not ``sum``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.jobs import JOB_KINDS, JobStatus
from domain.sources import SyncStatus
from domain.webhooks import DeliveryStatus
from persistence.tables.jobs import jobs
from persistence.tables.memories import memory_fields
from persistence.tables.sources import source_syncs
from persistence.tables.webhooks import webhook_deliveries

log = logging.getLogger("memoria.metrics")

NAME = "memoria_queue_depth"
HELP = (
    "Work waiting in background queues: webhook_deliveries (pending), source_syncs (queued), "
    "reembed_fields (fields whose vectors are from another embedder), memory_extraction "
    "(chat turns waiting to be mined for memories), pattern_learning (messages to learn from), "
    "message_recall (messages waiting to be kept as memories)."
)
REFRESH_TIMEOUT_SECONDS = 5.0


class QueueDepths:
    """A Prometheus collector of ``memoria_queue_depth{queue}``."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        embedder_name: Callable[[], str],
    ) -> None:
        self._engine = engine
        self._embedder_name = embedder_name
        self._stored: dict[str, int] = {}

    async def refresh(self) -> None:
        """Counts the database-backed queues; on failure the last counts stay."""
        try:
            self._stored = await asyncio.wait_for(self._count(), REFRESH_TIMEOUT_SECONDS)
        except Exception as exc:  # noqa: BLE001  # a scrape must not fail with the database
            log.warning("queue depths unavailable: %s", type(exc).__name__)

    async def _count(self) -> dict[str, int]:
        deliveries = select(func.count()).where(
            webhook_deliveries.c.status == DeliveryStatus.PENDING.value
        )
        syncs = select(func.count()).where(source_syncs.c.status == SyncStatus.QUEUED.value)
        stale = select(func.count()).where(memory_fields.c.embedder != self._embedder_name())
        pending = (
            select(jobs.c.kind, func.count())
            .where(jobs.c.status == JobStatus.PENDING.value)
            .group_by(jobs.c.kind)
        )
        async with self._engine.connect() as conn:
            by_kind = {str(kind): int(n) for kind, n in await conn.execute(pending)}
            return {
                "webhook_deliveries": int((await conn.execute(deliveries)).scalar_one()),
                "source_syncs": int((await conn.execute(syncs)).scalar_one()),
                "reembed_fields": int((await conn.execute(stale)).scalar_one()),
                **{kind: by_kind.get(kind, 0) for kind in JOB_KINDS},
            }

    def describe(self) -> Iterable[Metric]:
        return [GaugeMetricFamily(NAME, HELP, labels=["queue"])]

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(NAME, HELP, labels=["queue"])
        for queue, depth in self._stored.items():
            family.add_metric([queue], depth)
        return [family]
