"""The durable job queue (see :mod:`domain.jobs`) and the claims that keep two server
processes off the same piece of shared work."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from domain.jobs import Claimed, Job, JobDraft


class JobRepository(Protocol):
    async def add(self, drafts: Sequence[JobDraft], *, now: datetime) -> None:
        """Write jobs in this transaction: they exist exactly when it commits."""

    async def claim(
        self,
        *,
        kinds: Sequence[str],
        now: datetime,
        lease_until: datetime,
        limit: int,
        max_attempts: int,
    ) -> Claimed:
        """Lease up to ``limit`` due jobs of ``kinds`` (of every user: the worker is not a
        tenant) that nobody else holds, counting an attempt each; jobs whose lease lapsed
        with no attempt left are marked failed instead."""

    async def finish(self, job: Job) -> bool:
        """Remove a done job; False if this claim no longer holds it."""

    async def renew(self, job: Job, *, lease_until: datetime) -> bool:
        """Extend this claim's lease while its job runs; False if it no longer holds it."""

    async def release(self, job: Job, *, available_at: datetime, error: str) -> None:
        """Give a failed job back, to be claimed again from ``available_at``."""

    async def fail(self, job: Job, *, error: str) -> None:
        """Give up on a job: it stays, marked failed, for an operator to see."""

    async def try_lock(self, scope: str, key: str) -> bool:
        """Hold ``(scope, key)`` until this transaction ends, if no other transaction of
        any process holds it; False if one does. (One process on SQLite: always True.)"""
