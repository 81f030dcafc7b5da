"""Durable background jobs, shared by every server process of one deployment.

A job is a row written in the transaction that committed the change it follows (so it
exists exactly when that change committed), holding ids only. A worker claims a batch with
a lease; a job whose lease lapsed (its process died, or hung) is claimable again. A job is
removed when its work is done, retried with a backoff when its handler raised, and marked
failed (and logged) once it has been claimed ``max_attempts`` times: a job that keeps
killing or stalling its worker must not circle forever.

Work is therefore done at least once: a process that dies after committing a job's effect
but before removing the job hands it to the next claimer. Handlers that can remove the job
in the transaction of their effect do so (see :data:`JobHandler`) and are exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from domain.clock import Clock

if TYPE_CHECKING:
    from domain.ports.unit_of_work import UnitOfWorkFactory

log = logging.getLogger("memoria.jobs")

PATTERN_LEARNING = "pattern_learning"  # payload: message_id
MEMORY_EXTRACTION = "memory_extraction"  # payload: see domain.services.extraction
MESSAGE_RECALL = "message_recall"  # payload: message_id; see domain.services.message_recall
JOB_KINDS = (PATTERN_LEARNING, MEMORY_EXTRACTION, MESSAGE_RECALL)

JobPayload = Mapping[str, str | bool | None]


class JobStatus(StrEnum):
    PENDING = "pending"  # waiting, or claimed while its lease holds
    FAILED = "failed"  # gave up after max_attempts; kept for inspection


@dataclass(frozen=True, slots=True)
class JobDraft:
    """A job to write: what to do, for whom, on which rows (ids only, never content)."""

    kind: str
    user_id: str
    payload: JobPayload = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Job:
    """A claimed job. ``attempts`` counts claims including this one, and fences the job:
    only the holder of this claim may finish, release or fail it."""

    id: str
    kind: str
    user_id: str
    payload: JobPayload
    attempts: int
    created_at: datetime
    lease_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Claimed:
    """One claim round: jobs leased to the caller, and jobs given up at this claim (their
    lease lapsed with no attempt left)."""

    jobs: list[Job]
    given_up: list[Job]


# Runs one job. True when the handler removed the job itself (``uow.jobs.finish``) in the
# transaction that committed its effect; otherwise the runner removes it afterwards.
JobHandler = Callable[[Job], Awaitable[bool]]
# A handler of every claimed job of its kind at once (same return as JobHandler's).
BatchHandler = Callable[[list[Job]], Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class JobPolicy:
    """How long a claim holds, how often a job is tried, and the pause between tries."""

    lease: timedelta = timedelta(minutes=5)
    max_attempts: int = 5
    retry_base: timedelta = timedelta(seconds=5)
    retry_cap: timedelta = timedelta(minutes=5)
    batch: int = 4

    @property
    def renew_every(self) -> timedelta:
        """How often a running job's lease is extended: three times a lease, so one late or
        failed renewal does not let the lease lapse under a job that is still running."""
        return self.lease / 3

    def retry_delay(self, attempts: int) -> timedelta:
        seconds = self.retry_base.total_seconds() * 2 ** max(attempts - 1, 0)
        return timedelta(seconds=min(seconds, self.retry_cap.total_seconds()))


class JobRunner:
    """Claims due jobs of its kinds and runs them concurrently (one claim round per call).

    A kind with a ``batch_handlers`` entry has all its jobs of a round handed over in one
    call instead (cheap jobs that gain from one unit of work: one embedding pass, one
    write): it either finishes them all or fails them all."""

    def __init__(
        self,
        *,
        uow_factory: UnitOfWorkFactory,
        clock: Clock,
        handlers: Mapping[str, JobHandler] | None = None,
        batch_handlers: Mapping[str, BatchHandler] | None = None,
        policy: JobPolicy | None = None,
    ) -> None:
        self._uow_factory = uow_factory
        self._clock = clock
        self._handlers = dict(handlers or {})
        self._batch_handlers = dict(batch_handlers or {})
        self.policy = policy or JobPolicy()
        self._running: set[asyncio.Task[None]] = set()

    @property
    def running(self) -> int:
        """Jobs this process is running now."""
        return len(self._running)

    async def run_once(self) -> int:
        """Claim and run one batch; returns how many jobs were claimed."""
        now = self._clock.now()
        policy = self.policy
        async with self._uow_factory() as uow:
            claimed = await uow.jobs.claim(
                kinds=sorted({*self._handlers, *self._batch_handlers}),
                now=now,
                lease_until=now + policy.lease,
                limit=policy.batch,
                max_attempts=policy.max_attempts,
            )
            await uow.commit()
        for job in claimed.given_up:
            log.error(
                "%s job %s given up: its lease lapsed on all %d attempts",
                job.kind,
                job.id,
                job.attempts,
            )
        if claimed.jobs:
            # A job alone, or a batch kind's whole round: each group runs as one task.
            groups = [[job] for job in claimed.jobs if job.kind not in self._batch_handlers]
            rounds: dict[str, list[Job]] = {}
            for job in claimed.jobs:
                if job.kind in self._batch_handlers:
                    rounds.setdefault(job.kind, []).append(job)
            groups += rounds.values()
            tasks = [asyncio.ensure_future(self._run(group)) for group in groups]
            self._running.update(tasks)
            try:
                await asyncio.gather(*tasks)
            finally:
                self._running.difference_update(tasks)
        return len(claimed.jobs) + len(claimed.given_up)

    async def settle(self) -> None:
        """Wait for the jobs this process is running now (not for the queue behind them)."""
        while self._running:
            await asyncio.gather(*list(self._running), return_exceptions=True)

    async def _run(self, jobs: list[Job]) -> None:
        """Run one job, or a batch kind's round, keeping every lease while it runs."""
        stop = asyncio.Event()
        heartbeats = [asyncio.ensure_future(self._renew(job, stop)) for job in jobs]
        try:
            finished = await self._handle(jobs)
        except asyncio.CancelledError:
            for heartbeat in heartbeats:
                heartbeat.cancel()
            raise  # shutdown: the lease lapses and another claim runs the job again
        except Exception as exc:  # noqa: BLE001  # logged by _failed; one job never stops the loop
            await self._stop(heartbeats, stop)
            for job in jobs:
                await self._failed(job, exc)
            return
        await self._stop(heartbeats, stop)
        if not finished:
            async with self._uow_factory() as uow:
                for job in jobs:
                    await uow.jobs.finish(job)
                await uow.commit()

    def _handle(self, jobs: list[Job]) -> Awaitable[bool]:
        kind = jobs[0].kind
        if kind in self._batch_handlers:
            return self._batch_handlers[kind](jobs)
        return self._handlers[kind](jobs[0])

    @staticmethod
    async def _stop(heartbeats: Sequence[asyncio.Future[None]], stop: asyncio.Event) -> None:
        """Stop renewing, letting a renewal already under way commit first: cancelled inside
        its transaction, it could leave SQLite's write lock held, and the job's own last
        write then waited for it forever (seen once in CI)."""
        stop.set()
        await asyncio.gather(*heartbeats)

    async def _renew(self, job: Job, stop: asyncio.Event) -> None:
        """Keep the lease of a job that is still running (an extraction waiting on a slow
        model may outlast one lease): without it another process would claim the job and
        run it a second time. Stops when ``stop`` is set or the claim no longer holds the
        job."""
        pause = self.policy.renew_every.total_seconds()
        while True:
            # asyncio.timeout: wait_for can lose a cancellation on Python 3.11.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(pause):
                    await stop.wait()
            if stop.is_set():
                return
            try:
                async with self._uow_factory() as uow:
                    until = self._clock.now() + self.policy.lease
                    held = await uow.jobs.renew(job, lease_until=until)
                    await uow.commit()
            except Exception:  # the next round tries again; the lease still holds
                log.warning("%s job %s: could not renew its lease", job.kind, job.id, exc_info=True)
                continue
            if not held:
                log.warning("%s job %s: its lease lapsed while it ran", job.kind, job.id)
                return

    async def _failed(self, job: Job, exc: Exception) -> None:
        error = f"{type(exc).__name__}: {exc}"[:1000]
        async with self._uow_factory() as uow:
            if job.attempts >= self.policy.max_attempts:
                log.error(
                    "%s job %s failed on all %d attempts; giving up",
                    job.kind,
                    job.id,
                    job.attempts,
                    exc_info=exc,
                )
                await uow.jobs.fail(job, error=error)
            else:
                delay = self.policy.retry_delay(job.attempts)
                log.warning(
                    "%s job %s failed (attempt %d), retrying in %.0f s: %s",
                    job.kind,
                    job.id,
                    job.attempts,
                    delay.total_seconds(),
                    error,
                )
                await uow.jobs.release(job, available_at=self._clock.now() + delay, error=error)
            await uow.commit()
